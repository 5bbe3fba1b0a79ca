"""Every output-size formula, once. Sizes are per spatial axis; the ops apply them to H and W.

A kernel of size k with dilation d spans d*(k-1)+1 input pixels. Sliding it with stride s over an
input of size n padded by p on both sides gives

    conv:            out = floor((n + 2p - d(k-1) - 1) / s) + 1
    transposed conv: out = (n - 1)s - 2p + d(k-1) + output_padding + 1   (conv's formula solved for n)
    pooling:         conv's formula, or with ceil instead of floor when ceil_mode, except that a
                     last window starting inside the right padding is dropped (torch's rule)
    max unpooling:   the transposed conv's formula with d = 1, output_padding = 0 (the size pooled from)
    interpolation:   out = floor(n * scale_factor)

>>> conv_output_size(128, kernel_size=3, stride=1, padding=1)        # "same" 3x3
128
>>> conv_output_size(8, kernel_size=3, padding=12, dilation=12)      # atrous: the map keeps its size
8
>>> conv_transpose_output_size(16, kernel_size=2, stride=2)          # exactly 2x: the notes' crop-free case
32
>>> conv_transpose_output_size(16, kernel_size=4, stride=2, padding=1)
32
>>> pool_output_size(5, kernel_size=2, stride=2), pool_output_size(5, kernel_size=2, stride=2, ceil_mode=True)
(2, 3)
>>> interpolate_output_size(5, 1.7), interpolate_output_size(64, 2.0)
(8, 128)
"""
import math


def pair(value, name="argument"):
    """An int or a pair of ints as a pair (h, w); one clear error otherwise."""
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}.")
    return value


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def pool_output_size(size, kernel_size, stride, padding=0, dilation=1, ceil_mode=False):
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def interpolate_output_size(size, scale_factor):
    return math.floor(size * scale_factor)
