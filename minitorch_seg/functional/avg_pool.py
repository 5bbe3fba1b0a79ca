"""Average pooling: avg_pool2d, window sums over torch's divisor, and its backward the sums' col2im.

The windows and their tap views are those of max pooling (see ``pool.py``'s notation; the
arguments are checked by ``pool.pool_windows``), without dilation: for each kernel tap (i, j),
one strided add of the slice holding that element of every window.
"""
from ..autograd import Function
from ..backend import get_array_module
from . import sliding
from .pool import pool_windows
from .sliding import tap


class AvgPool2d(Function):
    """y[n, c, u, v] = (1 / D[u, v]) * sum_{i, j} xpad[n, c, u*sh + i, v*sw + j], xpad padded with zeros.

    Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), Ho = ``shapes.pool_output_size(H, kh, sh, ph,
    ceil_mode=ceil_mode)``, likewise Wo.

    Forward: the window sums, one strided add per kernel tap, times 1/D. The divisor D[u, v]
    follows torch: the window's size clipped to the padded input (a ceil_mode window may run past
    it), or with ``count_include_pad=False`` only its pixels inside the input, or
    ``divisor_override``. D factors as D_h[u] * D_w[v] (or is a constant).

    Backward: xpad[n, c, u*sh + i, v*sw + j] enters y[n, c, u, v] with weight 1 / D[u, v], once
    for every window (u, v) it lies in, so

        dL/dxpad[n, c, r, t] = sum of g[n, c, u, v] / D[u, v] over (u, v, i, j) with u*sh + i = r, v*sw + j = t:

    for each tap (i, j), g / D is added into the (i, j) strided view of a zero dL/dxpad
    (where windows overlap, the adds add up): col2im of g / D, the same for every tap
    (``sliding.add_taps``). dL/dx is the unpadded part of dL/dxpad.

    Unlike PyTorch: 4-D input only.

    >>> import minitorch_seg as mt
    >>> x = mt.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]], requires_grad=True)
    >>> avg_pool2d(x, 2, stride=1).tolist()
    [[[[3.0, 4.0]]]]
    >>> avg_pool2d(x, 2, stride=1).sum().backward(); x.grad.tolist()
    [[[[0.25, 0.5, 0.25], [0.25, 0.5, 0.25]]]]
    """

    @staticmethod
    def forward(ctx, x, windows, count_include_pad, divisor_override):
        xp = get_array_module(x)
        padded = sliding.pad(x, windows)
        taps = windows.taps()
        total = tap(padded, windows, *taps[0]).copy()                  # (N, C, Ho, Wo)
        for i, j in taps[1:]:
            total += tap(padded, windows, i, j)
        scale = _reciprocal_divisor(windows, count_include_pad, divisor_override, x.dtype, xp)
        total *= scale
        ctx.windows, ctx.scale, ctx.in_shape = windows, scale, x.shape
        return total

    @staticmethod
    def backward(ctx, g):
        windows = ctx.windows
        xp = get_array_module(g)
        scaled = g * ctx.scale                                         # (N, C, Ho, Wo)
        every_tap = xp.broadcast_to(scaled[:, :, None, None], scaled.shape[:2] + windows.kernel + scaled.shape[2:])
        grad = xp.zeros(ctx.in_shape[:2] + windows.padded_hw(), dtype=g.dtype)   # dL/dxpad
        sliding.add_taps(grad, every_tap, windows)                     # (N, C, kh, kw, Ho, Wo) onto it
        (ph, pw), (h, w) = windows.padding, windows.in_hw
        return grad[:, :, ph:ph + h, pw:pw + w]


def _reciprocal_divisor(windows, count_include_pad, divisor_override, dtype, xp):
    """1 / D as a (Ho, Wo) array (or a Python float for ``divisor_override``); see AvgPool2d."""
    if divisor_override:
        return 1.0 / divisor_override
    counts = []
    for n, o, k, s, p in zip(windows.in_hw, windows.out_hw, windows.kernel, windows.stride, windows.padding):
        starts = [u * s - p for u in range(o)]
        if count_include_pad:   # clipped to the padded input only
            counts.append([min(a + k, n + p) - a for a in starts])
        else:                   # clipped to the input
            counts.append([min(a + k, n) - max(a, 0) for a in starts])
    count_h = xp.asarray(counts[0], dtype=dtype)[:, None]
    count_w = xp.asarray(counts[1], dtype=dtype)
    return 1 / (count_h * count_w)                                    # (Ho, Wo)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each kh x kw window (torch.nn.functional.avg_pool2d); see ``AvgPool2d``."""
    windows = pool_windows("avg_pool2d", input.shape, kernel_size, stride, padding, 1, ceil_mode)
    if input.dtype.kind != "f":
        raise TypeError(f"avg_pool2d: expected a floating-point input, got {input.dtype} (as torch).")
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"avg_pool2d: divisor_override must be positive, got {divisor_override}.")
    return AvgPool2d.apply(input, windows=windows, count_include_pad=count_include_pad,
                           divisor_override=divisor_override)
