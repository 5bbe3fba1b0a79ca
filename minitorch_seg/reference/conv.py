"""Convolution written the slow, obvious way: the references the lessons show first and the tests trust.

Notation: x (N, C, H, W) input; G groups; stride s, padding p, dilation d (kernel taps d pixels
apart: the notes' atrous convolution), each an int or an (h, w) pair.

- ``conv2d_loops``: conv2d as nested Python loops, on NumPy arrays.
- ``conv_transpose2d_loops``: the transposed conv as the notes say it: each input value adds a
  copy of the filter, weighted by itself, into the output; copies add where they overlap; then
  the padding is cropped off.
- ``im2col``: the column matrix of a convolution, on raw arrays: one column per output pixel
  holding the window it reads, so that conv2d is one matrix product (torch's ``unfold`` layout).
  It lives in ``functional.sliding``, beside its adjoint ``col2im``, and is re-exported here.
- ``conv2d_im2col``: conv2d composed from differentiable minitorch_seg ops (pad, strided slices,
  stack, reshape, matmul), so autograd derives its backward; the tests check that it matches the
  hand-derived backward of ``functional.conv2d``.

The output sizes are ``shapes.conv_output_size`` and ``shapes.conv_transpose_output_size``.
"""
import numpy

from .. import functional as F
from ..functional.sliding import im2col, tap, windows  # noqa: F401 - im2col is re-exported for the lessons
from ..shapes import conv_output_size, conv_transpose_output_size, pair


def conv2d_loops(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d (cross-correlation, as torch) by loops over n, output channel, output pixel and kernel tap.

    Shapes: x (N, C, H, W), weight (O, C/G, kh, kw), bias (O,) -> y (N, O, Ho, Wo) with
    Ho = floor((H + 2p - d(kh-1) - 1) / s) + 1 and likewise Wo (``shapes.conv_output_size``).
    Output channel o belongs to group o // (O/G) and reads only that group's C/G input channels:

        y[n, o, u, v] = bias[o] + sum_{c, i, j} weight[o, c, i, j] * xpad[n, group's c, u*s + i*d, v*s + j*d]

    >>> x = numpy.arange(16.0).reshape(1, 1, 4, 4)
    >>> conv2d_loops(x, numpy.ones((1, 1, 2, 2)), stride=2)[0, 0]     # sums of the 2x2 blocks
    array([[10., 18.],
           [42., 50.]])
    """
    (sh, sw), (ph, pw), (dh, dw) = pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")
    batch, _, height, width = x.shape
    out_channels, group_channels, kh, kw = weight.shape
    out_h, out_w = conv_output_size(height, kh, sh, ph, dh), conv_output_size(width, kw, sw, pw, dw)
    xpad = numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))            # (N, C, H + 2ph, W + 2pw)
    y = numpy.zeros((batch, out_channels, out_h, out_w), dtype=numpy.result_type(x, weight))
    outputs_per_group = out_channels // groups
    for n in range(batch):
        for o in range(out_channels):
            first = o // outputs_per_group * group_channels              # o's group reads these input channels
            inputs = slice(first, first + group_channels)
            for u in range(out_h):
                for v in range(out_w):
                    total = 0.0 if bias is None else bias[o]
                    for i in range(kh):
                        for j in range(kw):
                            total += weight[o, :, i, j] @ xpad[n, inputs, u * sh + i * dh, v * sw + j * dw]
                    y[n, o, u, v] = total
    return y


def conv_transpose2d_loops(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The transposed conv by loops over n, input channel and input pixel: each adds a weighted filter copy.

    Shapes: x (N, C, H, W), weight (C, O/G, kh, kw) as torch, bias (O,) -> y (N, O, Ho, Wo) with
    Ho = (H - 1)s - 2p + d(kh-1) + output_padding + 1 (``shapes.conv_transpose_output_size``).

    Input value x[n, c, u, v] adds ``x[n, c, u, v] * weight[c]`` (the (O/G, kh, kw) filter of c's
    group's output channels) into a canvas, its top-left tap at (u*s, v*s) and its taps d apart.
    Copies s apart overlap when s < d(k-1) + 1 and add there. The canvas is
    (H - 1)s + d(kh-1) + 1 + output_padding tall (output_padding adds rows at the bottom, as
    torch); cropping p rows off the top and the bottom leaves Ho (likewise for columns).

    >>> x = numpy.array([[[[1.0, 2.0]]]])                                # (1, 1, 1, 2)
    >>> conv_transpose2d_loops(x, numpy.ones((1, 1, 3, 3)), stride=2)[0, 0]   # the middle column: 1 + 2
    array([[1., 1., 3., 2., 2.],
           [1., 1., 3., 2., 2.],
           [1., 1., 3., 2., 2.]])
    """
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    (oph, opw), (dh, dw) = pair(output_padding, "output_padding"), pair(dilation, "dilation")
    batch, channels, height, width = x.shape
    _, outputs_per_group, kh, kw = weight.shape
    inputs_per_group = channels // groups
    canvas = numpy.zeros((batch, outputs_per_group * groups,
                          (height - 1) * sh + dh * (kh - 1) + 1 + oph,
                          (width - 1) * sw + dw * (kw - 1) + 1 + opw), dtype=numpy.result_type(x, weight))
    for n in range(batch):
        for c in range(channels):
            first = c // inputs_per_group * outputs_per_group            # c's group writes these output channels
            outputs = slice(first, first + outputs_per_group)
            for u in range(height):
                for v in range(width):
                    rows = slice(u * sh, u * sh + dh * (kh - 1) + 1, dh)  # the filter's taps, d apart
                    cols = slice(v * sw, v * sw + dw * (kw - 1) + 1, dw)
                    canvas[n, outputs, rows, cols] += x[n, c, u, v] * weight[c]
    out_h = conv_transpose_output_size(height, kh, sh, ph, oph, dh)
    out_w = conv_transpose_output_size(width, kw, sw, pw, opw, dw)
    y = canvas[:, :, ph:ph + out_h, pw:pw + out_w]                        # crop the padding
    return y if bias is None else y + bias.reshape(-1, 1, 1)


def conv2d_im2col(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d composed from differentiable ops on Tensors; autograd derives the backward.

    Shapes as ``conv2d_loops``. Each kernel tap (i, j) reads a strided slice of the padded input,
    xpad[:, :, i*d :: s, j*d :: s] cut to (Ho, Wo) (``sliding.tap``); stacking the kh*kw slices gives the
    "columns", and one batched matrix product per group with the flattened weight does the sums.
    No backward is written here: the slices' backward scatters, the stack's splits, the matmul's
    is two products; the tests compare the result with ``functional.conv2d``'s derived backward.

    >>> import minitorch_seg as mt
    >>> x = mt.tensor(numpy.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    >>> y = conv2d_im2col(x, mt.ones(1, 1, 2, 2, dtype="float64"), stride=2)
    >>> y[0, 0].tolist()
    [[10.0, 18.0], [42.0, 50.0]]
    >>> y.sum().backward()                   # every pixel is read by exactly one output
    >>> x.grad[0, 0].tolist()
    [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    """
    batch = x.shape[0]
    out_channels, group_channels, kh, kw = weight.shape
    geometry = windows(x.shape[2:], (kh, kw), stride, padding, dilation)  # where the Ho x Wo windows sit
    (ph, pw), (out_h, out_w) = geometry.padding, geometry.out_hw
    xpad = F.pad(x, (pw, pw, ph, ph))                                      # (N, C, H + 2ph, W + 2pw)
    taps = [tap(xpad, geometry, i, j) for i, j in geometry.taps()]         # kh*kw of (N, C, Ho, Wo)
    columns = F.stack(taps, dim=2)                                         # (N, C, kh*kw, Ho, Wo)
    columns = columns.reshape(batch, groups, group_channels * kh * kw, out_h * out_w)   # (N, G, C/G*kh*kw, Ho*Wo)
    w = weight.reshape(groups, out_channels // groups, group_channels * kh * kw)        # (G, O/G, C/G*kh*kw)
    y = (w @ columns).reshape(batch, out_channels, out_h, out_w)          # (N, G, O/G, Ho*Wo) -> (N, O, Ho, Wo)
    return y if bias is None else y + bias.reshape(1, out_channels, 1, 1)
