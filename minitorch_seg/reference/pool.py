"""Pooling written the slow, obvious way: the references the lessons show first and the tests trust.

Notation: x (N, C, H, W) input; kernel (kh, kw), stride s (default: the kernel), padding p,
dilation d, each an int or an (h, w) pair. Window (u, v) covers the input pixels

    h = u*sh - ph + i*dh,  w = v*sw - pw + j*dw   for i < kh, j < kw,

those outside the input being padding. Output sizes: ``shapes.pool_output_size`` (pooling) and
``shapes.conv_transpose_output_size`` (unpooling).

- ``max_pool2d_loops``: each window's first maximum, row-major, and where it was: the *switch*
  h*W + w, as torch encodes it. Padding never wins.
- ``max_pool2d_backward_loops``: each output's gradient added at its switch.
- ``max_unpool2d_loops``: each value put back at its switch, zeros elsewhere (the notes' max
  unpooling).
- ``avg_pool2d_loops`` / ``avg_pool2d_backward_loops``: window sums over torch's divisor, and
  the gradient spread evenly back over the window.
- ``max_pool2d_composed`` / ``avg_pool2d_composed``: the pools built from differentiable
  minitorch_seg ops (pad, strided slices, stack, max/mean), so autograd derives their backward;
  the windows and their strided slices are ``functional.sliding``'s, as in the fast pools.

The loop functions take and return NumPy arrays.
"""
import math

import numpy

from .. import functional as F
from ..functional.sliding import tap, windows
from ..shapes import conv_transpose_output_size, pair, pool_output_size


def _arguments(kernel_size, stride, padding, dilation):
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    return kernel, stride, pair(padding, "padding"), pair(dilation, "dilation")


def max_pool2d_loops(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, switches): the maximum of each window and its index h*W + w, by loops.

    Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), switches (N, C, Ho, Wo) int64.

    >>> x = numpy.array([[[[1.0, 2.0], [0.0, -1.0]]]])
    >>> y, switches = max_pool2d_loops(x, 2)
    >>> y[0, 0], switches[0, 0]
    (array([[2.]]), array([[1]]))
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _arguments(kernel_size, stride, padding, dilation)
    batch, channels, height, width = x.shape
    out_h = pool_output_size(height, kh, sh, ph, dh, ceil_mode)
    out_w = pool_output_size(width, kw, sw, pw, dw, ceil_mode)
    y = numpy.zeros((batch, channels, out_h, out_w), dtype=x.dtype)
    switches = numpy.zeros((batch, channels, out_h, out_w), dtype=numpy.int64)
    for n in range(batch):
        for c in range(channels):
            for u in range(out_h):
                for v in range(out_w):
                    best, switch = -math.inf, None
                    for i in range(kh):
                        for j in range(kw):
                            h, w = u * sh - ph + i * dh, v * sw - pw + j * dw
                            if not (0 <= h < height and 0 <= w < width):
                                continue                      # padding: never the maximum
                            value = x[n, c, h, w]
                            if switch is None or value > best or math.isnan(value):
                                best, switch = value, h * width + w
                    y[n, c, u, v], switches[n, c, u, v] = best, switch
    return y, switches


def max_pool2d_backward_loops(grad_output, switches, input_shape):
    """dL/dx: zeros, with each grad_output[n, c, u, v] added at the switch of window (u, v).

    The max picked one input element per window, so only that element gets the window's gradient;
    where windows overlap and share a switch, their gradients add.
    """
    grad = numpy.zeros(input_shape, dtype=grad_output.dtype)
    batch, channels, out_h, out_w = grad_output.shape
    width = input_shape[3]
    for n in range(batch):
        for c in range(channels):
            for u in range(out_h):
                for v in range(out_w):
                    h, w = divmod(int(switches[n, c, u, v]), width)
                    grad[n, c, h, w] += grad_output[n, c, u, v]
    return grad


def max_unpool2d_loops(y, switches, kernel_size, stride=None, padding=0, output_size=None):
    """Zeros (N, C, Hz, Wz) with each y[n, c, u, v] written at its switch.

    Hz = (h - 1)*sh - 2ph + kh unless ``output_size`` (H, W) is given; likewise Wz.

    >>> max_unpool2d_loops(numpy.array([[[[2.0]]]]), numpy.array([[[[1]]]]), 2)[0, 0]
    array([[0., 2.],
           [0., 0.]])
    """
    (kh, kw), (sh, sw), (ph, pw), _ = _arguments(kernel_size, stride, padding, 1)
    batch, channels, in_h, in_w = y.shape
    if output_size is None:
        output_size = (conv_transpose_output_size(in_h, kh, sh, ph), conv_transpose_output_size(in_w, kw, sw, pw))
    out_h, out_w = tuple(output_size)[-2:]
    z = numpy.zeros((batch, channels, out_h, out_w), dtype=y.dtype)
    for n in range(batch):
        for c in range(channels):
            for u in range(in_h):
                for v in range(in_w):
                    h, w = divmod(int(switches[n, c, u, v]), out_w)
                    z[n, c, h, w] = y[n, c, u, v]
    return z


def _avg_divisor(u, v, height, width, kernel, stride, padding, count_include_pad, divisor_override):
    """torch's divisor for window (u, v): the window clipped to the padded input, or to the input."""
    if divisor_override:
        return divisor_override
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    h0, w0 = u * sh - ph, v * sw - pw
    h1, w1 = min(h0 + kh, height + ph), min(w0 + kw, width + pw)      # a ceil_mode window may run past
    if count_include_pad:
        return (h1 - h0) * (w1 - w0)
    return (min(h1, height) - max(h0, 0)) * (min(w1, width) - max(w0, 0))


def avg_pool2d_loops(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                     divisor_override=None):
    """The sum of each window's input pixels (padding counts as 0) over torch's divisor, by loops.

    >>> avg_pool2d_loops(numpy.arange(6.0).reshape(1, 1, 2, 3), 2, stride=1)[0, 0]
    array([[2., 3.]])
    """
    kernel, stride, padding, _ = _arguments(kernel_size, stride, padding, 1)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    batch, channels, height, width = x.shape
    out_h, out_w = pool_output_size(height, kh, sh, ph, 1, ceil_mode), pool_output_size(width, kw, sw, pw, 1, ceil_mode)
    y = numpy.zeros((batch, channels, out_h, out_w), dtype=x.dtype)
    for n in range(batch):
        for c in range(channels):
            for u in range(out_h):
                for v in range(out_w):
                    total = 0.0
                    for i in range(kh):
                        for j in range(kw):
                            h, w = u * sh - ph + i, v * sw - pw + j
                            if 0 <= h < height and 0 <= w < width:
                                total += x[n, c, h, w]
                    y[n, c, u, v] = total / _avg_divisor(u, v, height, width, kernel, stride, padding,
                                                         count_include_pad, divisor_override)
    return y


def avg_pool2d_backward_loops(grad_output, input_shape, kernel_size, stride=None, padding=0,
                              count_include_pad=True, divisor_override=None):
    """dL/dx: each window's gradient over its divisor, added to every input pixel of the window."""
    kernel, stride, padding, _ = _arguments(kernel_size, stride, padding, 1)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    height, width = input_shape[2:]
    grad = numpy.zeros(input_shape, dtype=grad_output.dtype)
    batch, channels, out_h, out_w = grad_output.shape
    for n in range(batch):
        for c in range(channels):
            for u in range(out_h):
                for v in range(out_w):
                    share = grad_output[n, c, u, v] / _avg_divisor(u, v, height, width, kernel, stride, padding,
                                                                   count_include_pad, divisor_override)
                    for i in range(kh):
                        for j in range(kw):
                            h, w = u * sh - ph + i, v * sw - pw + j
                            if 0 <= h < height and 0 <= w < width:
                                grad[n, c, h, w] += share
    return grad


# ---- composed twins: autograd derives the backward ----------------------------------------------
def _window_stack(x, geometry, fill):
    """(N, C, Ho, Wo, kh*kw): tap (i, j) of every window (``sliding.tap``), stacked last in row-major order."""
    (ph, pw), (h, w), (hp, wp) = geometry.padding, geometry.in_hw, geometry.padded_hw()
    xpad = F.pad(x, (pw, wp - w - pw, ph, hp - h - ph), value=fill)   # more on the right and bottom in ceil_mode
    return F.stack([tap(xpad, geometry, i, j) for i, j in geometry.taps()], dim=-1)


def max_pool2d_composed(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """max_pool2d of a Tensor from pad(-inf), strided slices, stack and max over the stacked offsets."""
    geometry = windows(x.shape[2:], *_arguments(kernel_size, stride, padding, dilation), ceil_mode=ceil_mode)
    return F.max(_window_stack(x, geometry, -math.inf), dim=-1).values


def avg_pool2d_composed(x, kernel_size, stride=None, padding=0):
    """avg_pool2d of a Tensor (count_include_pad=True, floor mode) from pad, strided slices, stack and mean."""
    geometry = windows(x.shape[2:], *_arguments(kernel_size, stride, padding, 1))
    return F.mean(_window_stack(x, geometry, 0.0), dim=-1)
