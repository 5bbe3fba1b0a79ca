"""Hypothesis profiles and strategies, in one place.

Profiles: "ci" (derandomized, no deadline: a random draw cannot block a landing) is loaded when
the CI variable is set, "dev" otherwise. Tests tune ``max_examples`` per op with ``@settings``.
"""
import os

import numpy
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

import minitorch_seg as mt
from minitorch_seg import backend as shim

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=15,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("dev", deadline=None, max_examples=15,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
register_profiles = True


def shapes(min_dims=1, max_dims=4, min_side=1, max_side=5):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def broadcastable_pair(draw, max_dims=4, max_side=4):
    """Two shapes that broadcast together: b drops leading dims and sets some sizes to 1."""
    a = draw(shapes(1, max_dims, 1, max_side))
    drop = draw(st.integers(0, len(a) - 1))
    b = [1 if draw(st.booleans()) else n for n in a[drop:]]
    return (a, tuple(b)) if draw(st.booleans()) else (tuple(b), a)


@st.composite
def layouts(draw, ndim):
    """A permutation used to make a non-contiguous view (see ``make``)."""
    return tuple(draw(st.permutations(range(ndim)))) if ndim > 1 else tuple(range(ndim))


def make(shape, seed=0, low=-2.0, high=2.0, layout=None, away_from=None, requires_grad=True, dtype="float64"):
    """A float64 leaf tensor on the current backend with values in [low, high).

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
    return mt.Tensor(data, requires_grad=requires_grad)


def distinct(shape, seed=0, dtype="float64"):
    """Values that are all different (a shuffled ramp), for max pooling and max: no ties."""
    rng = numpy.random.default_rng(seed)
    size = int(numpy.prod(shape))
    values = rng.permutation(size).reshape(shape) / max(size, 1) * 4 - 2
    return mt.Tensor(shim.to_backend(values.astype(dtype)), requires_grad=True)


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
    from minitorch_seg.shapes import pool_output_size
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
