"""Ops that move elements without changing them: reshape permute cat stack pad roll (getitem: indexing.py).

Their backward passes move the gradient back the same way, so each one's backward is its own
inverse movement: reshape back, permute by the inverse permutation, split the concatenation,
crop the padding, roll the other way.
"""
from .. import parallel
from ..autograd import Function, sum_to_shape
from ..backend import get_array_module, module_name
from .reduce import _axes


class Reshape(Function):
    """y = x with a new shape (same elements, row-major order).  Backward: g reshaped to x's shape."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    """y = x with axes reordered: y.shape[i] = x.shape[dims[i]].

    Backward: y's axis i is x's axis dims[i], so g goes back through the inverse permutation.
    """

    @staticmethod
    def forward(ctx, x, dims):
        ctx.inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


class Expand(Function):
    """y = x broadcast to ``shape`` (a view).  Backward: g summed over the broadcast axes."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return get_array_module(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return sum_to_shape(g, ctx.shape)


class Cat(Function):
    """y = concatenation of the inputs along ``dim``.  Backward: g split back into the inputs' parts.

    On the host, from a tile's worth of values (``parallel.STREAM_TILES``) up, the copies go in tiles
    of each input's leading axis to the host threads (the U-Net's skip concatenations, 16 MiB at the
    top level); below that, and on CuPy, one ``concatenate``.
    """

    @staticmethod
    def forward(ctx, *arrays, dim):
        xp = get_array_module(*arrays)
        ctx.dim, ctx.sizes = dim, [a.shape[dim] for a in arrays]
        if module_name(xp) == "cupy" or sum(a.nbytes for a in arrays) < parallel.STREAM_TILES.bytes:
            return xp.concatenate(arrays, axis=dim)                 # one kernel; or small: one thread
        shape = arrays[0].shape[:dim] + (sum(ctx.sizes),) + arrays[0].shape[dim + 1:]
        y, places, start = xp.empty(shape, dtype=xp.result_type(*arrays)), [], 0
        for size in ctx.sizes:
            places.append(y[(slice(None),) * dim + (slice(start, start + size),)])      # input k's part of y
            start += size
        tiles = [(k, rows) for k, a in enumerate(arrays)
                 for (rows,) in parallel.tiles(xp, parallel.STREAM_TILES, a.shape[:1], a[:1].nbytes)]

        def copy(tile):
            k, rows = tile
            places[k][rows] = arrays[k][rows]
        parallel.map_tiles(xp, copy, tiles)
        return y

    @staticmethod
    def backward(ctx, g):
        grads, start = [], 0
        for size, need in zip(ctx.sizes, ctx.needs_input_grad):
            index = (slice(None),) * ctx.dim + (slice(start, start + size),)
            grads.append(g[index] if need else None)
            start += size
        return tuple(grads)


class Stack(Function):
    """y = the inputs stacked along a new axis ``dim``.  Backward: input i gets g's slice i there."""

    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.dim = dim
        return get_array_module(*arrays).stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        prefix = (slice(None),) * ctx.dim
        return tuple(g[prefix + (i,)] if need else None for i, need in enumerate(ctx.needs_input_grad))


class Pad(Function):
    """y = x placed inside a larger array filled with ``value`` (negative padding crops).

    ``pairs[i] = (before, after)`` for every axis of x. Backward: dL/dx is g cropped back to the
    window where x was placed (the padding did not depend on x).
    """

    @staticmethod
    def forward(ctx, x, pairs, value):
        xp = get_array_module(x)
        out_shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pairs))
        y = xp.full(out_shape, value, dtype=x.dtype)
        ctx.source, ctx.target = _pad_windows(x.shape, pairs)
        ctx.shape = x.shape
        y[ctx.target] = x[ctx.source]
        return y

    @staticmethod
    def backward(ctx, g):
        grad = get_array_module(g).zeros(ctx.shape, dtype=g.dtype)
        grad[ctx.source] = g[ctx.target]
        return grad


def _pad_windows(shape, pairs):
    """Slices of x (``source``) and of the padded y (``target``) that hold the same elements."""
    source, target = [], []
    for n, (lo, hi) in zip(shape, pairs):
        source.append(slice(max(-lo, 0), n - max(-hi, 0)))
        target.append(slice(max(lo, 0), max(lo, 0) + n - max(-lo, 0) - max(-hi, 0)))
    return tuple(source), tuple(target)


class Roll(Function):
    """y = x shifted cyclically by ``shifts`` along ``dims``.  Backward: g rolled back by -shifts."""

    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return get_array_module(x).roll(x, shifts, axis=dims)

    @staticmethod
    def backward(ctx, g):
        return get_array_module(g).roll(g, tuple(-s for s in ctx.shifts), axis=ctx.dims)


# ---- public functions -------------------------------------------------------------------------
def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def _resolve_shape(shape, size, old_shape):
    """Fill in one -1 in ``shape``; raise one sentence when the sizes cannot match."""
    shape = tuple(int(n) for n in shape)
    known = 1
    for n in shape:
        known *= n if n != -1 else 1
    if shape.count(-1) > 1 or any(n < -1 for n in shape):
        raise ValueError(f"reshape: invalid shape {shape}; at most one -1 and no other negative sizes.")
    if -1 in shape:
        if known == 0 or size % known:
            raise ValueError(f"reshape: shape {shape} is invalid for an input of shape {old_shape} ({size} elements).")
        shape = tuple(size // known if n == -1 else n for n in shape)
    elif known != size:
        raise ValueError(f"reshape: shape {shape} is invalid for an input of shape {old_shape} ({size} elements).")
    return shape


def reshape(input, *shape):
    """``x.reshape(2, -1)`` or ``reshape(x, (2, -1))``: a new shape with the same number of elements."""
    return Reshape.apply(input, shape=_resolve_shape(_shape_arg(shape), input.numel(), input.shape))


def flatten(input, start_dim=0, end_dim=-1):
    if input.ndim == 0:
        return reshape(input, 1)
    start, end = _axes(start_dim, input.ndim)[0], _axes(end_dim, input.ndim)[0]
    if start > end:
        raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim}).")
    return reshape(input, input.shape[:start] + (-1,) + input.shape[end + 1:])


def unsqueeze(input, dim):
    dim = _axes(dim, input.ndim + 1)[0]
    return reshape(input, input.shape[:dim] + (1,) + input.shape[dim:])


def squeeze(input, dim=None):
    dims = _axes(dim, input.ndim) if dim is not None else tuple(range(input.ndim))
    return reshape(input, tuple(n for i, n in enumerate(input.shape) if not (i in dims and n == 1)))


def permute(input, *dims):
    dims = _shape_arg(dims)
    if (sorted(d % max(input.ndim, 1) for d in dims) != list(range(input.ndim)) or len(dims) != input.ndim
            or any(not -input.ndim <= d < max(input.ndim, 1) for d in dims)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {input.ndim} dims of shape {input.shape}.")
    return Permute.apply(input, dims=tuple(d % input.ndim for d in dims))


def transpose(input, dim0, dim1):
    dims = list(range(input.ndim))
    a, b = _axes(dim0, input.ndim)[0], _axes(dim1, input.ndim)[0]
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(input, dims=tuple(dims))


def expand(input, *shape):
    shape = tuple(old if new == -1 else new for new, old in
                  zip(_shape_arg(shape), (1,) * (len(_shape_arg(shape)) - input.ndim) + input.shape))
    try:
        return Expand.apply(input, shape=shape)
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {input.shape} to {_shape_arg(shape)}; only size-1 dims "
                         "can grow, and new dims go in front.") from None


def _tensor_list(name, tensors):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty sequence of tensors.")
    return tensors


def cat(tensors, dim=0):
    """Concatenate along an existing ``dim``; all other sizes must agree."""
    tensors = _tensor_list("cat", tensors)
    axis = _axes(dim, tensors[0].ndim)[0]
    for t in tensors[1:]:
        if t.ndim != tensors[0].ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, tensors[0].shape)) if i != axis):
            raise ValueError(f"cat: sizes must match except in dim {axis}, got shapes "
                             f"{', '.join(str(u.shape) for u in tensors)}.")
    return Cat.apply(*tensors, dim=axis)


def stack(tensors, dim=0):
    """Stack equal-shaped tensors along a new ``dim``."""
    tensors = _tensor_list("stack", tensors)
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: expects tensors of equal shape, got {', '.join(str(t.shape) for t in tensors)}.")
    return Stack.apply(*tensors, dim=_axes(dim, tensors[0].ndim + 1)[0])


def pad(input, pad, mode="constant", value=0.0):
    """Pad the last ``len(pad) // 2`` dims, torch's order: (last_left, last_right, 2nd_last_left, ...).

    Negative amounts crop, as in torch. Only ``mode="constant"`` is implemented.
    """
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not implemented; only 'constant' is.")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expected an even number of amounts for at most {input.ndim} dims, got {pad}.")
    pairs = [(0, 0)] * input.ndim
    for k in range(len(pad) // 2):
        pairs[input.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    for n, (lo, hi) in zip(input.shape, pairs):
        if n + lo + hi < 0 or n + min(lo, 0) + min(hi, 0) < 0:  # as torch: no crop beyond the input
            raise ValueError(f"pad: amounts {pad} would give a negative size for input of shape {input.shape}.")
    return Pad.apply(input, pairs=tuple(pairs), value=value)


def roll(input, shifts, dims=None):
    """Cyclic shift; with ``dims=None`` the flattened tensor is rolled, then reshaped back."""
    if dims is None:
        return reshape(roll(flatten(input), shifts, 0), input.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length.")
    return Roll.apply(input, shifts=shifts, dims=tuple(_axes(d, input.ndim)[0] for d in dims))


def t(input):
    """The transpose of a matrix: a 0-D or 1-D tensor as it is, a 2-D one with its dims swapped (torch's ``t``)."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D.")
    return input if input.ndim < 2 else transpose(input, 0, 1)
