"""Hypothesis strategies for property-based checks of ops: shapes, tensors, and valid geometries.

Each strategy draws something a test or a learner can feed to an op: a float64 tensor of a
drawn shape, a convolution whose output is not empty, a pooling torch accepts, a segmentation
target with void pixels. Sizes are drawn by hypothesis, so a failure shrinks to the smallest
case (a 1x1 image, one channel, stride 1); tensor *values* come from a drawn seed, because a
gradient bug does not hide in particular values, and shrinking them teaches nothing.

>>> from hypothesis import given
>>> @given(tensors(shapes(min_dims=2, max_dims=2)))
... def test_transpose_twice(x):
...     assert (x.transpose(0, 1).transpose(0, 1).numpy() == x.numpy()).all()
>>> test_transpose_twice()
"""
from __future__ import annotations

import numpy
from hypothesis import assume
from hypothesis import strategies as st

from .. import backend as shim
from ..shapes import interpolate_output_size, pool_output_size
from ..tensor import Tensor

VOID = 255


# ---- shapes and tensors ---------------------------------------------------------------------------
def shapes(min_dims=1, max_dims=4, min_side=1, max_side=5):
    """Shape tuples of ``min_dims``..``max_dims`` sides, each ``min_side``..``max_side``."""
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def broadcastable_pair(draw, max_dims=4, max_side=4):
    """Two shapes that broadcast together, of three kinds, each drawn often: both operands expanded
    ((3, 1) and (1, 4) -> (3, 4): the case a backward that reduces only one operand gets wrong),
    one inside the other ((2, 3) and (3,) or (1, 3)), and equal shapes.
    """
    kind = draw(st.sampled_from(["both", "one", "equal"] if max_dims >= 2 else ["one", "equal"]))
    if kind == "both":             # axis i of a and axis j of b are 1, where the other keeps the full size
        out = draw(shapes(2, max_dims, 2, max(2, max_side)))
        i, j = draw(st.permutations(range(len(out))))[:2]
        a = [1 if k == i else n if k == j else (1 if draw(st.booleans()) else n) for k, n in enumerate(out)]
        b = [1 if k == j else n if k == i else (1 if draw(st.booleans()) else n) for k, n in enumerate(out)]
        return tuple(a), tuple(b[draw(st.integers(0, i)):])      # b may drop leading axes, never axis i
    out = draw(shapes(1, max_dims, 1, max_side))
    if kind == "equal":
        return out, out
    drop = draw(st.integers(0, len(out) - 1))
    inner = tuple(1 if draw(st.booleans()) else n for n in out[drop:])
    return (out, inner) if draw(st.booleans()) else (inner, out)


@st.composite
def layouts(draw, ndim):
    """A permutation used to make a non-contiguous view (see ``make``)."""
    return tuple(draw(st.permutations(range(ndim)))) if ndim > 1 else tuple(range(ndim))


def make(shape, seed=0, low=-2.0, high=2.0, layout=None, away_from=None, requires_grad=True, dtype="float64"):
    """A leaf tensor (float64 by default) on the current backend with values in [low, high).

    ``layout``: a permutation; the values are stored in that axis order and viewed back, so the
    tensor has ``shape`` but non-contiguous strides. ``away_from``: points (e.g. 0 for relu) to
    keep values at least 0.1 away from, so finite differences never straddle a kink.
    """
    rng = numpy.random.default_rng(seed)
    values = rng.uniform(low, high, shape)
    if away_from is not None:
        for point in numpy.atleast_1d(away_from):
            close = numpy.abs(values - point) < 0.1
            values[close] = point + numpy.where(values[close] >= point, 0.1, -0.1) + values[close] - point
    if layout is not None and len(layout) == len(shape) and len(shape) > 1:
        stored = numpy.ascontiguousarray(values.transpose(layout))
        values = stored.transpose(numpy.argsort(layout))
    data = shim.to_backend(values.astype(dtype, copy=False))
    return Tensor(data, requires_grad=requires_grad)


def distinct(shape, seed=0, dtype="float64", requires_grad=True):
    """Values that are all different (a shuffled ramp in [-2, 2)), for max pooling and max: no ties."""
    rng = numpy.random.default_rng(seed)
    size = int(numpy.prod(shape))
    values = rng.permutation(size).reshape(shape) / max(size, 1) * 4 - 2
    return Tensor(shim.to_backend(values.astype(dtype)), requires_grad=requires_grad)


@st.composite
def tensors(draw, shape, low=-2.0, high=2.0, away_from=None, all_distinct=False, requires_grad=True,
            dtype="float64"):
    """Leaf tensors of ``shape`` (a tuple, or a strategy of tuples), float64 by default.

    ``all_distinct``: no two values equal (max pooling, argmax: no ties for finite differences
    to straddle). ``away_from``: see ``make``.
    """
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else tuple(shape)
    seed = draw(st.integers(0, 2 ** 16))
    if all_distinct:
        return distinct(shape, seed, dtype, requires_grad)
    return make(shape, seed, low, high, away_from=away_from, requires_grad=requires_grad, dtype=dtype)


# ---- segmentation targets -------------------------------------------------------------------------
def make_target(shape, num_classes, seed=0, void=0, ignore_index=VOID):
    """An int64 target of ``shape`` with classes 0..num_classes-1 and exactly ``void`` pixels
    (placed at random) set to ``ignore_index``."""
    rng = numpy.random.default_rng(seed)
    target = rng.integers(0, num_classes, shape)
    flat = target.reshape(-1)
    flat[rng.permutation(flat.size)[:void]] = ignore_index
    return Tensor(shim.to_backend(target.astype(numpy.int64)))


@st.composite
def segmentation_targets(draw, shape, num_classes, void=True, min_kept=1, ignore_index=VOID):
    """Int64 targets of ``shape`` (tuple or strategy) with classes below ``num_classes`` (int or strategy).

    ``void``: True draws how many pixels are void (``ignore_index``, 255 by default): from none to
    all but ``min_kept`` (1 by default, so a mean over kept pixels exists; 0 allows an all-void
    target). The count is drawn by hypothesis, so a failure that needs no void pixel shrinks to
    none, and one that needs them keeps as few as it can.
    """
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else tuple(shape)
    classes = draw(num_classes) if isinstance(num_classes, st.SearchStrategy) else num_classes
    size = int(numpy.prod(shape))
    void_count = draw(st.integers(0, max(0, size - min_kept))) if void else 0
    return make_target(shape, classes, draw(st.integers(0, 2 ** 16)), void_count, ignore_index)


@st.composite
def logits_and_targets(draw, max_batch=3, min_classes=2, max_classes=5, max_side=6, void=True, min_kept=1):
    """(logits (N, C, H, W) float64, target (N, H, W) int64): batches, classes and sides drawn."""
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(min_classes, max_classes))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    logits = draw(tensors((n, c, h, w), low=-3.0, high=3.0))
    return logits, draw(segmentation_targets((n, h, w), c, void, min_kept))


# ---- convolution ----------------------------------------------------------------------------------
class ConvConfig(dict):
    """One drawn convolution: ``x_shape``, ``weight_shape`` and the keyword arguments in ``kwargs``."""

    @property
    def kwargs(self):
        keys = ("stride", "padding", "dilation", "groups") + (("output_padding",) if self["transposed"] else ())
        return {k: self[k] for k in keys}


@st.composite
def conv_configs(draw, transposed=False, max_batch=2, max_channels=4, max_side=7, max_kernel=4, max_stride=3,
                 max_padding=2, max_dilation=3, max_groups=3):
    """A conv2d (or conv_transpose2d) configuration whose output is not empty.

    Kernels may be non-square, strides smaller or larger than the kernel, sides odd or even; each
    axis's input side is drawn last, from the sides that leave at least one output pixel.
    Transposed configs also draw output_padding < max(stride, dilation), as torch requires.
    """
    groups = draw(st.integers(1, max_groups))
    per_group = max(1, max_channels // groups)
    in_channels = groups * draw(st.integers(1, per_group))
    out_channels = groups * draw(st.integers(1, per_group))
    axes = []            # per axis: (kernel, stride, padding, dilation, output_padding, input side)
    for _ in range(2):
        k, s = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_stride))
        p, d = draw(st.integers(0, max_padding)), draw(st.integers(1, max_dilation))
        op = draw(st.integers(0, max(s, d) - 1)) if transposed else 0
        if transposed:   # (n - 1)s - 2p + d(k-1) + op + 1 >= 1
            smallest = 1 + max(0, -(-(2 * p - d * (k - 1) - op) // s))
        else:            # the dilated kernel, d(k-1) + 1 pixels, fits in n + 2p
            smallest = max(1, d * (k - 1) + 1 - 2 * p)
        assume(smallest <= max_side)
        axes.append((k, s, p, d, op, draw(st.integers(smallest, max_side))))
    kernel, stride, padding, dilation, output_padding, size = zip(*axes)
    batch = draw(st.integers(1, max_batch))
    if transposed:
        weight_shape = (in_channels, out_channels // groups) + kernel
    else:
        weight_shape = (out_channels, in_channels // groups) + kernel
    return ConvConfig(transposed=transposed, x_shape=(batch, in_channels) + size, weight_shape=weight_shape,
                      out_channels=out_channels, stride=stride, padding=padding, dilation=dilation, groups=groups,
                      output_padding=output_padding)


# ---- pooling and upsampling -----------------------------------------------------------------------
class PoolConfig(dict):
    """One drawn pooling: ``x_shape`` and the keyword arguments in ``kwargs``."""

    @property
    def kwargs(self):
        keys = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
        return {k: self[k] for k in keys if k in self}


@st.composite
def pool_configs(draw, max_batch=2, max_channels=3, max_side=7, max_kernel=3, max_stride=3, dilation=True,
                 ceil_mode=True, overlap=True):
    """A max/avg pooling configuration with torch's constraints: padding <= kernel // 2, a
    non-empty output, and every window holding at least one input pixel (dilation can skip them).

    Kernels may be non-square, strides below (overlapping windows) and above the kernel, sides odd
    or even. ``overlap=False`` draws strides >= the dilated kernel (for max unpooling);
    ``dilation=False`` keeps dilation 1 and leaves it out of ``kwargs`` (avg pooling has none).
    """
    ceil = draw(st.booleans()) if ceil_mode else False
    axes = []
    for _ in range(2):
        k, d = draw(st.integers(1, max_kernel)), draw(st.integers(1, 2)) if dilation else 1
        span = d * (k - 1) + 1
        s = draw(st.integers(span, span + 1)) if not overlap else draw(st.integers(1, max_stride))
        p = draw(st.integers(0, k // 2))
        n = draw(st.integers(max(1, span - 2 * p), max_side))
        out = pool_output_size(n, k, s, p, d, ceil)
        assume(out >= 1 and all(any(0 <= u * s - p + i * d < n for i in range(k)) for u in range(out)))
        axes.append((k, s, p, d, n))
    kernel, stride, padding, dilations, size = zip(*axes)
    config = PoolConfig(x_shape=(draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))) + size,
                        kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil)
    if dilation:
        config["dilation"] = dilations
    return config


@st.composite
def upsample_configs(draw, max_batch=2, max_channels=3, max_side=5, max_scale=3):
    """(x_shape, scale_factor): an integer factor 1..max_scale per side (a pair, possibly unequal)."""
    scale = (draw(st.integers(1, max_scale)), draw(st.integers(1, max_scale)))
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)),
             draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
    assume(all(interpolate_output_size(n, s) >= 1 for n, s in zip(shape[2:], scale)))
    return shape, scale


# ---- windows (Swin) -------------------------------------------------------------------------------
@st.composite
def window_configs(draw, max_batch=2, max_windows=3, max_window=4, max_channels=4):
    """A Swin window geometry: ``x_shape`` (B, H, W, C) with H, W multiples of a (Wh, Ww) window.

    Windows may be non-square, maps non-square, with 1..max_windows windows per side. Also draws
    ``heads`` (dividing C) and a ``shift`` (sh, sw) below the window, for attention tests.
    """
    window = (draw(st.integers(1, max_window)), draw(st.integers(1, max_window)))
    grid = (draw(st.integers(1, max_windows)), draw(st.integers(1, max_windows)))
    heads = draw(st.integers(1, 2))
    channels = heads * draw(st.integers(1, max(1, max_channels // heads)))
    shape = (draw(st.integers(1, max_batch)), grid[0] * window[0], grid[1] * window[1], channels)
    shift = tuple(draw(st.integers(0, w - 1)) for w in window)
    return {"x_shape": shape, "window_size": window, "heads": heads, "shift": shift}
