"""Sliding windows: where a kernel's windows sit, the strided view of one tap, padding, im2col, col2im.

Notation: x (N, C, H, W); a kernel (kh, kw) with stride (sh, sw), padding (ph, pw) and dilation
(dh, dw); Ho x Wo windows (``shapes.pool_output_size``, which is ``shapes.conv_output_size``
unless ceil_mode). Window (u, v) covers the padded pixels

    xpad[n, c, u*sh + i*dh, v*sw + j*dw]      for the kernel taps i < kh, j < kw.

For one tap (i, j), the strided slice

    xpad[:, :, i*dh : i*dh + (Ho-1)*sh + 1 : sh,  j*dw : j*dw + (Wo-1)*sw + 1 : sw]      (N, C, Ho, Wo)

holds that pixel of *every* window at once (``tap``), so a pass over the kernel is kh*kw array
operations and no Python loop over pixels. Pooling compares or adds the taps one after another;
im2col copies them side by side, one column per window, so that a convolution becomes one matrix
product; col2im, its adjoint, adds columns back onto an image (where windows overlap, the adds
add up: the backward of reading a pixel twice). ``functional.conv``, ``functional.pool`` and the
references use this module; ``im2col`` and ``col2im`` are public, on raw arrays, in the layout
of torch's ``unfold`` and ``fold``.

>>> import numpy
>>> x = numpy.arange(16.0).reshape(1, 1, 4, 4)
>>> geometry = windows(x.shape[2:], kernel_size=2, stride=2)
>>> geometry.out_hw
(2, 2)
>>> tap(x, geometry, 0, 1)[0, 0]          # the top-right pixel of each of the four 2x2 windows
array([[ 1.,  3.],
       [ 9., 11.]])
"""
from typing import NamedTuple

from ..backend import get_array_module
from ..shapes import pair, pool_output_size


# ---- where the windows sit ----------------------------------------------------------------------
class Windows(NamedTuple):
    """Where the Ho x Wo windows of one call sit: each field an (h, w) pair."""

    in_hw: tuple
    out_hw: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple

    def taps(self):
        """The kernel taps (i, j) in row-major order: tap number o = i*kw + j."""
        return [(i, j) for i in range(self.kernel[0]) for j in range(self.kernel[1])]

    def padded_hw(self):
        """The padded extent every window fits in: ph + H + ph, or more when ceil_mode runs past it."""
        return tuple(max(p + n + p, (o - 1) * s + d * (k - 1) + 1)
                     for n, o, k, s, p, d in zip(self.in_hw, self.out_hw, self.kernel, self.stride,
                                                 self.padding, self.dilation))

    def overlap(self):
        """True when one input pixel can fall in two windows (then adds into it must add up)."""
        return any(s < d * (k - 1) + 1 for k, s, d in zip(self.kernel, self.stride, self.dilation))


def windows(in_hw, kernel_size, stride=1, padding=0, dilation=1, ceil_mode=False):
    """The ``Windows`` of a kernel sliding over an input of ``in_hw`` pixels; ints or (h, w) pairs.

    Geometry only: the ops check their own arguments first, each with its own error messages.
    """
    kernel, stride = pair(kernel_size, "kernel_size"), pair(stride, "stride")
    padding, dilation = pair(padding, "padding"), pair(dilation, "dilation")
    out_hw = tuple(pool_output_size(n, k, s, p, d, ceil_mode)
                   for n, k, s, p, d in zip(in_hw, kernel, stride, padding, dilation))
    return Windows(tuple(in_hw), out_hw, kernel, stride, padding, dilation)


def pad(x, geometry):
    """x (N, C, H, W) inside a (N, C, Hp, Wp) array of zeros that every window fits in; x itself if it fits."""
    (ph, pw), (h, w) = geometry.padding, geometry.in_hw
    hp, wp = geometry.padded_hw()
    if (ph, pw, hp, wp) == (0, 0, h, w):
        return x
    xp = get_array_module(x)
    padded = xp.empty(x.shape[:2] + (hp, wp), dtype=x.dtype)
    padded[:, :, :ph] = 0                                  # the border only: zeroing the whole array
    padded[:, :, ph + h:] = 0                              # first would write every pixel twice
    padded[:, :, ph:ph + h, :pw] = 0
    padded[:, :, ph:ph + h, pw + w:] = 0
    padded[:, :, ph:ph + h, pw:pw + w] = x
    return padded


# ---- the taps -----------------------------------------------------------------------------------
def tap(xpad, geometry, i, j):
    """The (N, C, Ho, Wo) strided view holding tap (i, j) of every window (an array or a Tensor)."""
    (ho, wo), (sh, sw), (dh, dw) = geometry.out_hw, geometry.stride, geometry.dilation
    return xpad[:, :, i * dh:i * dh + (ho - 1) * sh + 1:sh, j * dw:j * dw + (wo - 1) * sw + 1:sw]


def all_taps(xpad, geometry):
    """All the taps as one (N, C, kh, kw, Ho, Wo) view of a padded array, no copy: [:, :, i, j] is ``tap(.., i, j)``.

    The same strided slices, stacked by giving the view two more axes: a step along i moves
    dh rows, along u sh rows (likewise j, v). Copying it is one pass, faster than kh*kw copies
    (the columns of a 64-channel 3x3 conv of 4x128x256 in row tiles: 65 ms against 95 ms).

    >>> import numpy
    >>> xpad = numpy.arange(30.0).reshape(1, 1, 5, 6)
    >>> geometry = windows((5, 6), (2, 3), stride=(2, 1), dilation=(2, 1))
    >>> all(numpy.array_equal(all_taps(xpad, geometry)[:, :, i, j], tap(xpad, geometry, i, j))
    ...     for i, j in geometry.taps())
    True
    """
    xp = get_array_module(xpad)
    (kh, kw), (ho, wo), (sh, sw), (dh, dw) = geometry.kernel, geometry.out_hw, geometry.stride, geometry.dilation
    stride_n, stride_c, stride_h, stride_w = xpad.strides
    shape = xpad.shape[:2] + (kh, kw, ho, wo)
    strides = (stride_n, stride_c, stride_h * dh, stride_w * dw, stride_h * sh, stride_w * sw)
    return xp.lib.stride_tricks.as_strided(xpad, shape=shape, strides=strides)


def strided(base, offset, shape, strides):
    """``as_strided(base.reshape(-1)[offset:], shape, strides)`` (strides in bytes) for a C-contiguous host
    array ``base``: the same view on base's memory, of base's own type, made by the array constructor,
    which also refuses a view that reads past base's end.

    NumPy's ``as_strided`` builds its view through a stand-in object's ``__array_interface__``: 3.5 us a
    view alone against 0.5, and about 20 us inside the U-Net step's tiles, where MEC's bands take some
    150 views a step (``mec.py``). On the 2-core Xeon this took 1.3 and 1.9 ms off the step (two runs of
    40 rounds, the two taking turns) and 1.5 off the training job's.
    """
    return type(base)(shape, base.dtype, buffer=base, offset=offset * base.itemsize, strides=strides)


def add_taps(image, columns, geometry):
    """``image`` (N, C, Hp, Wp) += each column (N, C, kh, kw, Ho, Wo) at its window, in place: im2col's adjoint."""
    for i, j in geometry.taps():
        view = tap(image, geometry, i, j)
        view += columns[:, :, i, j]
    return image


# ---- kernels' layouts ---------------------------------------------------------------------------
def copy_taps(out, src):
    """out[...] = src for two (A, B, kh, kw) arrays of kernels, any strides: one (A, B) copy per tap.

    The conv kernels hold a weight in several layouts: torch's (O, C, kh, kw); MEC's (O, kh, C, kw)
    (``mec.lower_weight``); the backward's flipped kernel, a view with negative strides. Copied as
    one array, NumPy would run its innermost loop along a row's kw = 3 taps, three values at a time;
    a copy per tap runs it along B channels. 128 -> 128 channels, 3x3, on the 2-core Xeon: MEC's
    layout in 72 us against 224, the flipped kernel's in 134 against 304.
    """
    for i in range(src.shape[2]):
        for j in range(src.shape[3]):
            out[:, :, i, j] = src[:, :, i, j]
    return out


# ---- im2col and col2im, public, on raw arrays ---------------------------------------------------
def _fitted_windows(name, shape, kernel_size, stride, padding, dilation):
    if len(shape) != 4:
        raise ValueError(f"{name}: expected a 4-D (N, C, H, W) array, got shape {tuple(shape)}.")
    geometry = windows(shape[2:], kernel_size, stride, padding, dilation)
    if min(geometry.out_hw) < 1:
        (kh, kw), (ph, pw), (dh, dw) = geometry.kernel, geometry.padding, geometry.dilation
        raise ValueError(f"{name}: the {kh}x{kw} kernel with dilation ({dh}, {dw}) does not fit the "
                         f"{shape[2]}x{shape[3]} input padded by ({ph}, {pw}).")
    return geometry


def im2col(input, kernel_size, stride=1, padding=0, dilation=1):
    """The columns of a convolution ("im2col"): column (u, v) is the window output pixel (u, v) reads.

    Shapes: input (N, C, H, W), a NumPy (or CuPy) array, not a Tensor -> (N, C*kh*kw, Ho*Wo), with
    Ho, Wo the output size of conv2d (``shapes.conv_output_size``). ``kernel_size``, ``stride``,
    ``padding`` and ``dilation`` are ints or (h, w) pairs. Row c*kh*kw + i*kw + j of column
    u*Wo + v holds xpad[n, c, u*s + i*d, v*s + j*d] (xpad: p zeros around each side, zero outside
    the image), the layout of ``torch.nn.functional.unfold``. So conv2d without bias is one matrix
    product per image, the filter flattened to one row per output channel:

        y[n].reshape(O, Ho*Wo) = weight.reshape(O, C*kh*kw) @ im2col(x, (kh, kw), s, p, d)[n]

    Built from the kh*kw strided slices of the padded input, one per kernel tap (i, j), each the
    (N, C, Ho, Wo) grid of pixels that tap reads (``tap``), copied side by side (``all_taps`` is
    them all as one view); the result is about kh*kw times the input. No gradient: ``reference.conv.conv2d_im2col`` is
    the differentiable twin, on Tensors.

    >>> import numpy
    >>> x = numpy.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(x, 2)[0]                          # four 2x2 windows, one per column
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    >>> from minitorch_seg.reference.conv import conv2d_loops
    >>> rng = numpy.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    >>> columns = im2col(x, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2))      # (2, 18, 4 * 6)
    >>> columns.shape
    (2, 18, 24)
    >>> y = (w.reshape(4, 18) @ columns).reshape(2, 4, 4, 6)
    >>> numpy.allclose(y, conv2d_loops(x, w, stride=(2, 1), padding=1, dilation=(1, 2)))
    True
    """
    geometry = _fitted_windows("im2col", input.shape, kernel_size, stride, padding, dilation)
    xp = get_array_module(input)
    n, c = input.shape[:2]
    (kh, kw), (ho, wo) = geometry.kernel, geometry.out_hw
    columns = xp.ascontiguousarray(all_taps(pad(input, geometry), geometry))  # (N, C, kh, kw, Ho, Wo), a copy
    return columns.reshape(n, c * kh * kw, ho * wo)                           # (N, C*kh*kw, Ho*Wo)


def col2im(columns, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """im2col's adjoint ("col2im"): each column added back onto the window it came from; overlaps add.

    Shapes: columns (N, C*kh*kw, Ho*Wo), a raw array in im2col's layout -> (N, C, H, W) with
    (H, W) = ``output_size``, the layout of ``torch.nn.functional.fold``. The adds go into a zero
    padded image, one strided add per tap (``add_taps``), and the padding is cropped off. It is
    the backward of im2col: <im2col(x), c> = <x, col2im(c)> for every x and c.

    >>> import numpy
    >>> col2im(numpy.ones((1, 4, 4)), (3, 3), 2)[0, 0]          # how many 2x2 windows hold each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> rng = numpy.random.default_rng(0)
    >>> x, c = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((2, 18, 24))
    >>> args = dict(kernel_size=(3, 2), stride=(2, 1), padding=1, dilation=(1, 2))
    >>> bool(numpy.isclose((im2col(x, **args) * c).sum(), (x * col2im(c, (7, 6), **args)).sum()))
    True
    """
    if columns.ndim != 3:
        raise ValueError(f"col2im: expected 3-D (N, C*kh*kw, Ho*Wo) columns, got shape {columns.shape}.")
    output_size = pair(output_size, "output_size")
    n = columns.shape[0]
    geometry = _fitted_windows("col2im", (n, 1) + output_size, kernel_size, stride, padding, dilation)
    (kh, kw), (ho, wo) = geometry.kernel, geometry.out_hw
    if columns.shape[1] % (kh * kw) or columns.shape[2] != ho * wo:
        raise ValueError(f"col2im: columns of shape {columns.shape} do not fit a {kh}x{kw} kernel whose "
                         f"{ho}x{wo} windows cover a {output_size[0]}x{output_size[1]} output.")
    c = columns.shape[1] // (kh * kw)
    xp = get_array_module(columns)
    image = xp.zeros((n, c) + geometry.padded_hw(), dtype=columns.dtype)                  # (N, C, Hp, Wp)
    add_taps(image, columns.reshape(n, c, kh, kw, ho, wo), geometry)
    (ph, pw), (h, w) = geometry.padding, output_size
    return image[:, :, ph:ph + h, pw:pw + w]                                              # (N, C, H, W)
