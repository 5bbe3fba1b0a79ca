"""Reductions over dims: sum mean max amax argmax, each with ``keepdim`` as in torch.

Backward of a reduction puts the reduced axes back (size 1) and broadcasts ``g`` over them: every
input element that fed an output element receives that element's gradient (scaled for mean,
routed to the winner for max).
"""
import builtins
from collections import namedtuple

from .. import parallel
from ..autograd import Function
from ..backend import get_array_module, module_name

MaxResult = namedtuple("max", ["values", "indices"])


def _axes(dim, ndim):
    """``dim`` (None, an int or a sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    bound = builtins.max(ndim, 1)
    for d in dims:
        if not -bound <= d < bound:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d}).")
    return tuple(sorted(d % bound for d in dims)) if ndim else ()


def _reduced_axes(dim, ndim):
    """As ``_axes``, but an empty tuple means every dim, as torch's reductions read ``dim=()``."""
    return _axes(None if isinstance(dim, (tuple, list)) and not dim else dim, ndim)


def _keepdim_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = sum of x over ``axes``.  Backward: dy/dx = 1, so dL/dx = g broadcast back to x's shape."""

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes = x.shape, axes
        return x.sum(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        return xp.broadcast_to(g.reshape(_keepdim_shape(ctx.shape, ctx.axes)), ctx.shape)


class Mean(Function):
    """y = sum of x over ``axes`` / n, n = the number of summed elements.  Backward: dL/dx = g / n."""

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes = x.shape, axes
        return x.mean(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        count = 1
        for a in ctx.axes:
            count *= ctx.shape[a]
        return xp.broadcast_to(g.reshape(_keepdim_shape(ctx.shape, ctx.axes)) / count, ctx.shape)


class Amax(Function):
    """y = max of x over ``axes``.

    Backward: y depends on the maximal elements only; where several tie, torch's ``amax`` shares
    the gradient equally among them: dL/dx = g * [x == y] / (number of ties). ``nan_wins``: a NaN
    maximum counts the NaNs as its winners (torch's ``max()`` without dim does; ``amax`` does not,
    so its gradient there is NaN, as torch's).
    """

    @staticmethod
    def forward(ctx, x, axes, keepdim, nan_wins=False):
        y = x.max(axis=axes, keepdims=True)
        ctx.axes, ctx.keepdim, ctx.nan_wins = axes, keepdim, nan_wins
        ctx.save_for_backward(x, y)
        return y if keepdim else y.reshape([n for i, n in enumerate(y.shape) if i not in axes])

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        x, y = ctx.saved_arrays
        winners = x == y
        if ctx.nan_wins:
            winners |= xp.isnan(x) & xp.isnan(y)
        share = winners / winners.sum(axis=ctx.axes, keepdims=True)
        return (g.reshape(y.shape) * share).astype(x.dtype, copy=False)


class MaxAlongDim(Function):
    """(values, indices) = max of x along one ``dim``, indices of the first maximum.

    Backward: only the element each index names fed the output, so dL/dx is zero except
    dL/dx[..., indices, ...] = g (a scatter along ``dim``).
    """

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        xp = get_array_module(x)
        indices = x.argmax(axis=dim)
        indices = xp.expand_dims(xp.asarray(indices), dim)
        values = xp.take_along_axis(x, indices, axis=dim)
        ctx.dim, ctx.shape, ctx.dtype = dim, x.shape, x.dtype
        ctx.save_for_backward(indices)
        if not keepdim:
            values, indices = values.squeeze(dim), indices.squeeze(dim)
        ctx.mark_non_differentiable(indices)
        return values, indices

    @staticmethod
    def backward(ctx, g, _):
        (indices,) = ctx.saved_arrays
        xp = get_array_module(g)
        positions = xp.arange(ctx.shape[ctx.dim]).reshape([-1 if i == ctx.dim else 1 for i in range(len(ctx.shape))])
        return ((positions == indices) * g.reshape(indices.shape)).astype(ctx.dtype, copy=False)


def sum(input, dim=None, keepdim=False):  # noqa: A001 - torch's name
    return Sum.apply(input, axes=_reduced_axes(dim, input.ndim), keepdim=keepdim)


def mean(input, dim=None, keepdim=False):
    return Mean.apply(input, axes=_reduced_axes(dim, input.ndim), keepdim=keepdim)


def amax(input, dim=None, keepdim=False):
    return Amax.apply(input, axes=_reduced_axes(dim, input.ndim), keepdim=keepdim)


def _one_dim(name, dim):
    if not isinstance(dim, int):
        raise TypeError(f"{name}: dim must be an int (one dim), got {dim!r}; use amax for several dims.")


def max(input, dim=None, keepdim=False):  # noqa: A001 - torch's name
    """Without ``dim``: the largest element. With an int ``dim``: a named tuple (values, indices)."""
    if dim is None:
        return Amax.apply(input, axes=_axes(None, input.ndim), keepdim=False, nan_wins=True)
    _one_dim("max", dim)
    if input.ndim == 0:                 # dim 0 or -1 of a 0-d tensor: itself, at index 0 (torch)
        _axes(dim, 0)
        values, indices = max(input.reshape(1), 0)
        return MaxResult(values.reshape(()), indices.reshape(()))
    return MaxResult(*MaxAlongDim.apply(input, dim=_axes(dim, input.ndim)[0], keepdim=keepdim))


def argmax(input, dim=None, keepdim=False):
    """Indices of the first maximum (over the flattened tensor when ``dim`` is None); no gradient."""
    return _arg_reduce("argmax", input, dim, keepdim)


def _arg_reduce(name, input, dim, keepdim):
    """argmax or argmin (``name``) of a tensor, as torch: over the flattened tensor, or along one dim."""
    from ..tensor import Tensor
    xp = get_array_module(input.data)
    if dim is None:
        return Tensor(xp.asarray(getattr(input.data, name)()))
    _one_dim(name, dim)
    if input.ndim == 0:
        _axes(dim, 0)
        return Tensor(xp.zeros((), dtype=xp.int64))
    axis = _axes(dim, input.ndim)[0]
    indices = _along(name, input.data, axis)
    return Tensor(xp.expand_dims(indices, axis) if keepdim else indices)


def _along(name, x, axis):
    """``x.argmax(axis)`` (or argmin), on the host threads in runs of the first axis when ``axis``
    is another: the class scores of a batch, (N, C, H, W) along C, read C strided planes a pixel,
    and a batch of 8 at 19x128x256 took 13.3-14.5 ms on one thread, 7.2-8.7 on two (a 2-core EPYC)."""
    xp = get_array_module(x)
    if axis == 0 or module_name(xp) != "numpy" or parallel.host_threads() < 2:
        return xp.asarray(getattr(x, name)(axis=axis))
    out = xp.empty(x.shape[:axis] + x.shape[axis + 1:], dtype=xp.intp)
    parallel.map_leading(xp, lambda tile: getattr(x[tile], name)(axis=axis, out=out[tile]), x)
    return out


# ---- the mirror images of max, and the boolean reductions ------------------------------------------
MinResult = namedtuple("min", ["values", "indices"])


def _is_float(input):
    return input.dtype.kind == "f"


def amin(input, dim=None, keepdim=False):
    """The smallest elements over ``dim``: -amax(-x), so the gradient is amax's (ties share it)."""
    if _is_float(input):
        return -amax(-input, dim, keepdim)
    from ..tensor import Tensor
    xp = get_array_module(input.data)
    return Tensor(xp.asarray(input.data.min(axis=_reduced_axes(dim, input.ndim), keepdims=keepdim)))


def min(input, dim=None, keepdim=False):  # noqa: A001 - torch's name
    """Without ``dim``: the smallest element. With an int ``dim``: a named tuple (values, indices).

    For floats min(x) = -max(-x) (the first minimum's index, max's gradient rules, NaN wins); other
    dtypes (uint8 images, where negation would wrap) are reduced directly, with no gradient.
    """
    from ..tensor import Tensor
    if _is_float(input):
        if dim is None:
            return -max(-input)
        values, indices = max(-input, dim, keepdim)
        return MinResult(-values, indices)
    if dim is None:
        return Tensor(get_array_module(input.data).asarray(input.data.min()))
    _one_dim("min", dim)
    return MinResult(amin(input, dim, keepdim), argmin(input, dim, keepdim))


def argmin(input, dim=None, keepdim=False):
    """Indices of the first minimum (over the flattened tensor when ``dim`` is None); no gradient."""
    return _arg_reduce("argmin", input, dim, keepdim)


def any(input, dim=None, keepdim=False):  # noqa: A001 - torch's name
    """True where any element over ``dim`` (an int, a tuple, or None for all) is nonzero; a bool tensor."""
    from ..tensor import Tensor
    xp = get_array_module(input.data)
    return Tensor(xp.asarray(input.data.any(axis=_reduced_axes(dim, input.ndim), keepdims=keepdim)))


def all(input, dim=None, keepdim=False):  # noqa: A001 - torch's name
    """True where every element over ``dim`` is nonzero; a bool tensor."""
    from ..tensor import Tensor
    xp = get_array_module(input.data)
    return Tensor(xp.asarray(input.data.all(axis=_reduced_axes(dim, input.ndim), keepdims=keepdim)))
