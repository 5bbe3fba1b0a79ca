"""Max pooling and max unpooling: max_pool2d max_unpool2d, each the other's backward (avg_pool2d: avg_pool.py).

Notation: x (N, C, H, W) input; kernel (kh, kw), stride (sh, sw), padding (ph, pw), dilation
(dh, dw); y (N, C, Ho, Wo) with Ho = ``shapes.pool_output_size(H, kh, sh, ph, dh, ceil_mode)``,
likewise Wo. Window (u, v) covers the padded pixels

    xpad[n, c, u*sh + i*dh, v*sw + j*dw]   for the kernel taps i < kh, j < kw.

Every pooling op visits the windows tap by tap: for one kernel tap (i, j), the strided slice
``xpad[:, :, i*dh :: sh, j*dw :: sw]`` (cut to Ho x Wo; ``sliding.tap``) holds that element of
*every* window at once, so a pass over the kernel is kh*kw array operations, with no copy of the
windows ("im2col") and no Python loop over pixels. Where the windows sit, the padding and the
tap views come from ``sliding``; ``pool_windows`` below checks a pooling call's arguments (for
avg_pool.py too); max pool's forward kernel is ``max_pool_kernel.window_maxima``.

Max pool remembers where each window's maximum was, the notes' *switches*, encoded as torch
does: the flat index h*W + w into the unpadded H x W plane. Max unpool puts values back at the
switches. One scatter, ``_scatter_to_switches``, is max pool's backward and max unpool's forward;
one gather, ``_gather_at_switches``, is max unpool's backward: max pool <-> max unpool are each
other's backward.
"""

from .. import backend, parallel
from ..autograd import Function
from ..backend import get_array_module, scatter_add
from ..shapes import conv_transpose_output_size, pair
from . import sliding
from .max_pool_kernel import window_maxima


# ---- checking the arguments, placing the windows ---------------------------------------------
def pool_windows(name, shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Check the arguments of a pooling call, one clear sentence per mistake, and place its windows."""
    if len(shape) != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W), got shape {tuple(shape)}.")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == () or stride == [] else pair(stride, "stride")
    padding, dilation = pair(padding, "padding"), pair(dilation, "dilation")
    for label, value in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        if min(value) < 1:
            raise ValueError(f"{name}: {label} must be positive, got {value}.")
    if min(padding) < 0:
        raise ValueError(f"{name}: padding must be non-negative, got {padding}.")
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{name}: padding {padding} must be at most half the kernel size {kernel} "
                         "(torch's rule: each window keeps at least one input pixel).")
    geometry = sliding.windows(shape[2:], kernel, stride, padding, dilation, ceil_mode)
    in_hw, out_hw = geometry.in_hw, geometry.out_hw
    if min(out_hw) < 1:
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ValueError(f"{name}: the kernel spans {span[0]}x{span[1]} pixels (with dilation), more than "
                         f"the padded input's {in_hw[0] + 2 * padding[0]}x{in_hw[1] + 2 * padding[1]}.")
    for n, o, k, s, p, d in zip(in_hw, out_hw, kernel, stride, padding, dilation):
        if d == 1:      # k adjacent pixels with p <= k // 2 always reach into the input
            continue
        empty = next((u for u in range(o) if not any(0 <= u * s - p + i * d < n for i in range(k))), None)
        if empty is not None:
            raise ValueError(f"{name}: with dilation {dilation} and padding {padding}, window {empty} of an input "
                             f"side {n} holds no input pixel, only padding.")
    return geometry


# ---- switches: the scatter and the gather that max pool and max unpool share -----------------------
def _flat_switches(indices, plane_size):
    """Switch indices into each H*W plane (N, C, h, w) -> indices into all N*C planes laid end to end."""
    xp = get_array_module(indices)
    n, c = indices.shape[:2]
    first = xp.arange(0, n * c * plane_size, plane_size, dtype=xp.int64).reshape(n, c, 1, 1)
    return indices + first


def _scatter_to_switches(values, switches, out_shape, accumulate):
    """Zeros of ``out_shape`` (N, C, H, W) with each value written at its switch (an index into its plane).

    ``accumulate``: switches may repeat (overlapping windows), so repeated ones must add up: a
    scatter-add (NumPy's ``add.at``, since NumPy 1.25 nearly as fast as the plain assignment:
    8.2 against 6.5 ms of CPU for 2.1M values into 4x64x128x256; kh*kw masked strided adds took
    65 ms for a 3x3, stride-2 pool of that map). Planes are independent, so runs of them go to the
    host threads (``parallel.STREAM_TILES`` of output), each zeroing its own planes first: on the
    2-core Xeon, the U-Net's 2x2 backward into 8 MiB took 1.16 ms instead of 1.50, into 4 MiB 0.67
    instead of 0.78 (2 MiB and less is one run, as before).
    """
    xp = get_array_module(values)
    planes, plane_size = out_shape[0] * out_shape[1], out_shape[2] * out_shape[3]
    out = xp.empty((planes, plane_size), dtype=values.dtype)                     # (N*C, H*W)
    values, switches = (a.reshape((1, planes) + a.shape[2:]) for a in (values, switches))   # (1, N*C, h, w)

    def scatter(tile):                                    # a run of whole planes
        (run,) = tile
        block = out[run].reshape(-1)                      # the run's planes laid end to end: a view
        block[...] = 0
        at = _flat_switches(switches[:, run], plane_size).reshape(-1)
        if accumulate:
            scatter_add(block, at, values[:, run].reshape(-1))
        else:
            block[at] = values[:, run].reshape(-1)
    parallel.map_tiles(xp, scatter, parallel.tiles(xp, parallel.STREAM_TILES, (planes,),
                                                   plane_size * values.dtype.itemsize))
    return out.reshape(out_shape)


def _gather_at_switches(g, flat_switches):
    """g (N, C, H, W) read at each switch: the (N, C, h, w) array g_flat[flat_switches]."""
    return g.reshape(-1).take(flat_switches)  # (N, C, h, w)


# ---- max pool ------------------------------------------------------------------------------------
class MaxPool2d(Function):
    """y[n, c, u, v] = max over window (u, v) of xpad[n, c, u*sh + i*dh, v*sw + j*dw], xpad padded with -inf.

    Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo) and switches (N, C, Ho, Wo) int64, with
    Ho = ``shapes.pool_output_size(H, kh, sh, ph, dh, ceil_mode)``, likewise Wo.

    Forward: y[n, c, u, v] = x[n, c, s(u, v)], where the switch s(u, v) = h*W + w is the first
    maximum of the window in row-major order (the one torch reports; a NaN counts as a maximum).

    Backward: y[n, c, u, v] = x[n, c, s(u, v)] copies one input element, so
    dy[n, c, u, v] / dx[n, c, h, w] = [h*W + w = s(u, v)], and by the chain rule

        dL/dx[n, c, h, w] = sum_{u, v} g[n, c, u, v] * [h*W + w = s(u, v)],

    i.e. each g[n, c, u, v] is scattered to its switch, and where windows overlap and two windows
    share a switch their gradients add. That is ``max_unpool2d`` of g, with ``+=`` for repeats.

    The forward runs one comparison per kernel tap, in row-major order, over whole arrays of
    windows: a value strictly greater than the best so far (or a NaN) takes over, so the first
    maximum wins ties (``max_pool_kernel.window_maxima``, a few planes at a time on the host).

    Unlike PyTorch: 4-D input only (no unbatched (C, H, W)); a window holding only padding (possible
    with dilation) is an error, where torch returns -inf.

    >>> import minitorch_seg as mt
    >>> x = mt.tensor([[[[1.0, 2.0], [0.0, -1.0]]]], requires_grad=True)
    >>> y, switches = max_pool2d(x, 2, return_indices=True)
    >>> y.tolist(), switches.tolist()
    ([[[[2.0]]]], [[[[1]]]])
    >>> y.sum().backward(); x.grad.tolist()
    [[[[0.0, 1.0], [0.0, 0.0]]]]
    """

    @staticmethod
    def forward(ctx, x, windows, return_indices):
        y, switches = window_maxima(x, windows, with_switches=return_indices or ctx.needs_input_grad[0])
        if switches is None:                                                    # (N, C, Ho, Wo) both
            return y
        ctx.windows, ctx.in_shape = windows, x.shape
        ctx.save_for_backward(switches)
        if return_indices:
            ctx.mark_non_differentiable(switches)
            return y, switches
        return y

    @staticmethod
    def backward(ctx, g, *_):
        (switches,) = ctx.saved_arrays
        return _scatter_to_switches(g, switches, ctx.in_shape, accumulate=ctx.windows.overlap())


# ---- max unpool ----------------------------------------------------------------------------------
class MaxUnpool2d(Function):
    """z = zeros (N, C, Hz, Wz) with z[n, c, s[n, c, u, v]] = y[n, c, u, v]: each value back at its switch.

    Shapes: y, switches (N, C, h, w) -> z (N, C, Hz, Wz), by default Hz = (h - 1)*sh - 2ph + kh
    (``shapes.conv_transpose_output_size``: the size a max pool with these arguments came from),
    likewise Wz; ``output_size`` picks another within one stride of it, as in torch.

    Forward: the scatter of ``max_pool2d``'s backward, with y in place of g (the notes' max
    unpooling: 2 -> [[0, 2], [0, 0]] when the switch is the top right).

    Backward: z[n, c, q] = sum_{u, v} y[n, c, u, v] * [q = s(u, v)], so
    dL/dy[n, c, u, v] = sum_q g[n, c, q] * [q = s(u, v)] = g[n, c, s(u, v)]: gather g at the
    switches, the selection that max pool's forward makes.

    Where two values share a switch (overlapping windows) the last one is kept, as on torch's
    CPU, and the gather still hands g to both: like torch's, the backward is exact only for
    distinct switches, i.e. windows that do not overlap (SegNet's 2x2, stride 2).

    Unlike PyTorch: switches are range-checked on the NumPy backend only (on a GPU it would
    cost a device-to-host sync).

    >>> import minitorch_seg as mt
    >>> y = mt.tensor([[[[2.0]]]])
    >>> max_unpool2d(y, mt.tensor([[[[1]]]]), 2).tolist()
    [[[[0.0, 2.0], [0.0, 0.0]]]]
    """

    @staticmethod
    def forward(ctx, y, switches, out_hw):
        xp = get_array_module(y)
        plane_size = out_hw[0] * out_hw[1]
        if not backend.is_device_module(xp) and switches.size:     # on a GPU this check would cost a sync
            low, high = int(switches.min()), int(switches.max())
            if low < 0 or high >= plane_size:
                raise IndexError(f"max_unpool2d: switch index {low if low < 0 else high} is outside the "
                                 f"{out_hw[0]}x{out_hw[1]} output plane.")
        if ctx.needs_input_grad[0]:
            ctx.plane_size = plane_size
            ctx.save_for_backward(switches)    # the caller's array: saving it costs no memory
        return _scatter_to_switches(y, switches, y.shape[:2] + tuple(out_hw), accumulate=False)

    @staticmethod
    def backward(ctx, g):
        (switches,) = ctx.saved_arrays
        return _gather_at_switches(g, _flat_switches(switches, ctx.plane_size)), None


# ---- public functions ----------------------------------------------------------------------------
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over each kh x kw window (torch.nn.functional.max_pool2d); see ``MaxPool2d``.

    With ``return_indices=True`` also returns the switches, int64 indices h*W + w into each
    input plane, for ``max_unpool2d``.
    """
    windows = pool_windows("max_pool2d", input.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return MaxPool2d.apply(input, windows=windows, return_indices=return_indices)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Each value put back at its switch in a plane of zeros (torch.nn.functional.max_unpool2d).

    ``indices``: the switches from ``max_pool2d(..., return_indices=True)``; see ``MaxUnpool2d``.
    """
    if input.ndim != 4:
        raise ValueError(f"max_unpool2d: expected a 4-D input (N, C, h, w), got shape {input.shape}.")
    if tuple(indices.shape) != tuple(input.shape):
        raise ValueError(f"max_unpool2d: indices must have the input's shape {input.shape}, got {indices.shape}.")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"max_unpool2d: indices must be integers (the switches from max_pool2d), got {indices.dtype}.")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    padding = pair(padding, "padding")
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"max_unpool2d: kernel_size {kernel} and stride {stride} must be positive and "
                         f"padding {padding} non-negative.")
    out_hw = _unpool_output_hw(input.shape[2:], kernel, stride, padding, output_size)
    return MaxUnpool2d.apply(input, indices, out_hw=out_hw)


def _unpool_output_hw(in_hw, kernel, stride, padding, output_size):
    """The default (h - 1)*s - 2p + k per axis, or ``output_size`` if within one stride of it (torch's rule)."""
    default = tuple(conv_transpose_output_size(n, k, s, p) for n, k, s, p in zip(in_hw, kernel, stride, padding))
    if output_size is None:
        size = default
    else:
        size = tuple(int(n) for n in output_size)[-2:]
        if len(tuple(output_size)) not in (2, 4):
            raise ValueError(f"max_unpool2d: output_size must be (H, W) or (N, C, H, W), got {tuple(output_size)}.")
        for n, d, s in zip(size, default, stride):
            if not d - s < n < d + s:
                raise ValueError(f"max_unpool2d: output_size {size} must be within one stride {stride} of "
                                 f"the default size {default} (exclusive).")
    if min(size) < 1:
        raise ValueError(f"max_unpool2d: the output size {size} must be positive.")
    return size
