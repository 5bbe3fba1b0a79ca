"""Interpolation written the slow, obvious way: the reference the lessons show first and the tests trust.

For every output pixel (u, v), find where it comes from in the input, per axis, with torch's
rules (an output of n_out pixels from an input of n_in, ``scale`` = 1/scale_factor when one was
given, else n_in/n_out):

- "nearest":       src = floor(u * scale)            (2 -> [[2, 2], [2, 2]] at scale 2)
- "nearest-exact": src = floor((u + 0.5) * scale)
- "bilinear", align_corners=False: src = max((u + 0.5) * scale - 0.5, 0), the pixel *centres*
  lined up; align_corners=True: src = u * (n_in - 1) / (n_out - 1), the corner pixels lined up.
  The value is then the mix of the two neighbouring rows (and columns) of src, weighted by how
  close src is to each.

Sources are clamped to the last input pixel. ``interpolate_loops`` computes the output,
``interpolate_backward_loops`` hands each output's gradient back to the input pixels it mixed,
with the same weights. Both take and return NumPy arrays.
"""
import math

import numpy


def _axis_taps(n_in, n_out, mode, align_corners, scale_factor):
    """Per output index: [(input index, weight), ...] along one axis."""
    taps = []
    for u in range(n_out):
        if mode in ("nearest", "nearest-exact"):
            # torch does this arithmetic in float32; so do we, or a few sizes round differently
            scale = numpy.float32(1.0 / scale_factor) if scale_factor else numpy.float32(n_in) / numpy.float32(n_out)
            if mode == "nearest":
                src = u if n_out == n_in else u // 2 if n_out == 2 * n_in else math.floor(numpy.float32(u) * scale)
            else:
                src = math.floor(numpy.float32((u + 0.5) * float(scale)))
            taps.append([(min(src, n_in - 1), 1.0)])
        elif n_out == n_in:
            taps.append([(u, 1.0)])
        else:
            if align_corners:
                src = u * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            else:
                scale = 1.0 / scale_factor if scale_factor else n_in / n_out
                src = max((u + 0.5) * scale - 0.5, 0.0)
            low = min(math.floor(src), n_in - 1)
            high = min(low + 1, n_in - 1)
            frac = min(max(src - low, 0.0), 1.0)
            taps.append([(low, 1.0 - frac), (high, frac)])
    return taps


def _output_size(in_hw, size, scale_factor):
    if size is not None:
        return (size, size) if isinstance(size, int) else tuple(size), (None, None)
    scales = (scale_factor, scale_factor) if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
    return tuple(math.floor(n * s) for n, s in zip(in_hw, scales)), tuple(float(s) for s in scales)


def interpolate_loops(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """y[n, c, u, v] = sum over the taps (h, a) of row u and (w, b) of column v of a * b * x[n, c, h, w].

    >>> interpolate_loops(numpy.array([[[[2.0]]]]), scale_factor=2)[0, 0]
    array([[2., 2.],
           [2., 2.]])
    >>> interpolate_loops(numpy.array([[[[0.0, 4.0]]]]), size=(1, 4), mode="bilinear")[0, 0]
    array([[0., 1., 3., 4.]])
    """
    batch, channels, height, width = x.shape
    (out_h, out_w), (scale_h, scale_w) = _output_size((height, width), size, scale_factor)
    rows = _axis_taps(height, out_h, mode, bool(align_corners), scale_h)
    cols = _axis_taps(width, out_w, mode, bool(align_corners), scale_w)
    y = numpy.zeros((batch, channels, out_h, out_w), dtype=x.dtype)
    for n in range(batch):
        for c in range(channels):
            for u in range(out_h):
                for v in range(out_w):
                    total = 0.0
                    for h, a in rows[u]:
                        for w, b in cols[v]:
                            total += a * b * x[n, c, h, w]
                    y[n, c, u, v] = total
    return y


def interpolate_backward_loops(grad_output, input_shape, size=None, scale_factor=None, mode="nearest",
                               align_corners=None):
    """dL/dx: each grad_output[n, c, u, v] added to the input pixels output (u, v) mixed, with their weights."""
    batch, channels, height, width = input_shape
    (out_h, out_w), (scale_h, scale_w) = _output_size((height, width), size, scale_factor)
    rows = _axis_taps(height, out_h, mode, bool(align_corners), scale_h)
    cols = _axis_taps(width, out_w, mode, bool(align_corners), scale_w)
    grad = numpy.zeros(input_shape, dtype=grad_output.dtype)
    for n in range(batch):
        for c in range(channels):
            for u in range(out_h):
                for v in range(out_w):
                    for h, a in rows[u]:
                        for w, b in cols[v]:
                            grad[n, c, h, w] += a * b * grad_output[n, c, u, v]
    return grad
