"""Winograd F(2x2, 3x3): the 1-D identity, the transforms, and conv2d through it against the direct path.

The direct im2col path (``conv._correlate``, ``conv._weight_gradient``) and the loop reference are
the oracles. Every test that goes through ``F.conv2d`` switches the dispatch on for all channel
counts (``conv.WINOGRAD_MIN_CHANNELS = 1``), so the Winograd path is what runs.
"""
import numpy
import pytest
from hypothesis import assume, given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import functional as F, nn, parallel
from minitorch_seg.functional import conv as conv_module, winograd
from minitorch_seg.reference.conv import conv2d_loops, conv_transpose2d_loops
from minitorch_seg.testing import layouts, make
from helpers import host

pytestmark = pytest.mark.conv

seeds = st.integers(0, 2**16)

# Float32 against the float64 direct conv, on activations like the U-Net's (unit-variance input,
# He-initialised weights, std sqrt(2 / 9C)): the largest |error| over the result divided by its
# largest |value|. Measured 2026-12-02 over 16-128 channels, maps 8x16 to 64x128, 3 seeds each
# (18 cases): forward 1.7e-7 to 6.0e-7 (the direct im2col path 2.4e-7 to 7.2e-7), weight gradient
# 4.2e-7 to 9.0e-7 (direct 2.3e-7 to 5.4e-7). The bound is about 2x the largest Winograd error.
FLOAT32_BOUND = 2e-6


@pytest.fixture
def winograd_on(monkeypatch):
    """conv2d's 3x3 stride-1 convs go through Winograd at every channel count, for this test."""
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_CHANNELS", 1)


# ---- the identity and the transforms ------------------------------------------------------------
def test_one_dimensional_f23_takes_four_multiplications_for_two_outputs():
    """y0 = d0 g0 + d1 g1 + d2 g2, y1 = d1 g0 + d2 g1 + d3 g2 from the four products m0..m3."""
    d, g = numpy.array([3.0, -1.0, 4.0, 2.0]), numpy.array([0.5, -2.0, 1.5])
    m0 = (d[0] - d[2]) * g[0]
    m1 = (d[1] + d[2]) * (g[0] + g[1] + g[2]) / 2
    m2 = (d[2] - d[1]) * (g[0] - g[1] + g[2]) / 2
    m3 = (d[1] - d[3]) * g[2]
    assert [m0 + m1 + m2, m1 - m2 - m3] == [d[0:3] @ g, d[1:4] @ g]


def test_transforms_are_the_matrices_of_the_paper():
    """U = G w G^T, V = B^T d B and y = A^T M A, tile by tile, with the matrices of Lavin & Gray (2016)."""
    bt = numpy.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
    g = numpy.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    at = numpy.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)
    rng = numpy.random.default_rng(0)
    w = rng.standard_normal((2, 3, 3, 3))
    numpy.testing.assert_allclose(winograd.filter_transform(w), numpy.einsum("pi,ocij,qj->pqoc", g, w, g), atol=1e-15)
    x = rng.standard_normal((2, 3, 4, 6))                                     # (N, C, 4, 6): 1x2 tiles, no padding
    phases = winograd._phases(x, (0, 0), (1, 2))
    v = winograd.input_transform(phases, slice(0, 1))                        # (4, 4, C, N, 1, 2)
    for u in range(2):
        expected = numpy.einsum("pi,ncij,qj->pqcn", bt, x[:, :, :, 2 * u:2 * u + 4], bt)
        numpy.testing.assert_allclose(v[..., 0, u], expected, atol=1e-14)
    m = rng.standard_normal((4, 4, 3, 2, 1, 2))                              # (4, 4, O, N, R, Tw)
    y = winograd.output_transform(m, numpy.empty((2, 3, 1, 2, 2, 2)))        # (N, O, R, 2, Tw, 2)
    for u in range(2):
        numpy.testing.assert_allclose(y[:, :, 0, :, u], numpy.einsum("ap,pqon,bq->noab", at, m[..., 0, u], at), atol=1e-14)


@pytest.mark.parametrize("kernel, stride, dilation, groups, expected", [
    ((3, 3), (1, 1), (1, 1), 1, True), ((3, 3), (2, 2), (1, 1), 1, False), ((3, 3), (1, 1), (2, 2), 1, False),
    ((3, 3), (1, 1), (1, 1), 2, False), ((3, 2), (1, 1), (1, 1), 1, False), ((1, 1), (1, 1), (1, 1), 1, False)])
def test_applies_only_to_3x3_stride_1_undilated_ungrouped(kernel, stride, dilation, groups, expected):
    assert winograd.applies((4, 4) + kernel, stride, dilation, groups) is expected


# ---- against the direct path, float64 -----------------------------------------------------------
@st.composite
def winograd_cases(draw, max_side=9):
    """(x shape, w shape, padding): odd and even sides down to 1x1 outputs, padding 0, 1 or 2 per axis."""
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = tuple(draw(st.integers(max(1, 3 - 2 * p), max_side)) for p in padding)     # at least one output pixel
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return (n, c) + size, (o, c, 3, 3), padding


def relative(a, b):
    return numpy.abs(a - b).max() / max(numpy.abs(b).max(), 1e-300)


@settings(max_examples=40)
@given(case=winograd_cases(), seed=seeds)
def test_forward_and_weight_gradient_agree_with_the_direct_path_in_float64(case, seed):
    x_shape, w_shape, padding = case
    rng = numpy.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    direct = conv_module._correlate(x, w, (1, 1), padding, (1, 1), 1)
    assert relative(winograd.conv3x3(x, w, padding), direct) < 1e-12
    g = rng.standard_normal(direct.shape)
    expected = conv_module._weight_gradient(x, g, (3, 3), (1, 1), padding, (1, 1), 1)
    assert relative(winograd.weight_gradient(x, g, padding), expected) < 1e-12


@pytest.mark.parametrize("threads", [1, 3])
def test_tiles_of_one_tile_row_on_several_threads_give_the_same_result(threads, monkeypatch):
    """A map of many tile rows (odd sides), cut into one tile row per tile and run on 1 and 3 threads."""
    monkeypatch.setattr(winograd, "TILES", winograd.TILES._replace(bytes=1))
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    rng = numpy.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 13, 11)), rng.standard_normal((4, 3, 3, 3))
    assert len(winograd._tiles(x, 4, (7, 6))) == 7
    direct = conv2d_loops(x, w, padding=1)
    assert relative(winograd.conv3x3(x, w, (1, 1)), direct) < 1e-12
    g = rng.standard_normal(direct.shape)
    expected = conv_module._weight_gradient(x, g, (3, 3), (1, 1), (1, 1), (1, 1), 1)
    assert relative(winograd.weight_gradient(x, g, (1, 1)), expected) < 1e-12


# ---- conv2d through the dispatch ----------------------------------------------------------------
def test_dispatch_is_off_by_default_and_follows_the_channel_threshold(monkeypatch):
    assert conv_module.WINOGRAD_MIN_CHANNELS is None
    assert not conv_module._use_winograd((64, 64, 3, 3), (1, 1), (1, 1), 1)
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_CHANNELS", 32)
    assert conv_module._use_winograd((64, 32, 3, 3), (1, 1), (1, 1), 1)
    assert not conv_module._use_winograd((64, 16, 3, 3), (1, 1), (1, 1), 1)
    assert not conv_module._use_winograd((64, 64, 3, 3), (2, 2), (1, 1), 1)


def test_conv2d_goes_through_winograd_when_switched_on(winograd_on, monkeypatch):
    calls = []
    original = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *args: calls.append(args[2]) or original(*args))
    x = make((1, 2, 5, 6), seed=0)
    F.conv2d(x, make((3, 2, 3, 3), seed=1), padding=1).sum().backward()
    # the forward, on the input Conv2d padded once (it saves that for dL/dw), then dL/dx (flipped kernel)
    assert calls == [(0, 0), (1, 1)]


@settings(max_examples=15)
@given(case=winograd_cases(max_side=6), data=st.data(), seed=seeds, bias=st.booleans())
def test_gradcheck_every_input_through_winograd(backend, winograd_on, case, data, seed, bias):
    x_shape, w_shape, padding = case
    x = make(x_shape, seed=seed, layout=data.draw(layouts(4)))
    w = make(w_shape, seed=seed + 1, layout=data.draw(layouts(4)))
    b = make((w_shape[0],), seed=seed + 2) if bias else None
    assert mt.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding), (x, w, b))


@settings(max_examples=15)
@given(case=winograd_cases(max_side=6), seed=seeds)
def test_transposed_3x3_stride_1_conv_through_winograd_matches_the_loops(backend, winograd_on, case, seed):
    """conv_transpose2d at stride 1 is a correlation with the flipped kernel: Winograd runs it too."""
    x_shape, w_shape, padding = case
    x, w = make(x_shape, seed=seed), make((x_shape[1], w_shape[0], 3, 3), seed=seed + 1)     # (C_in, C_out, 3, 3)
    assume(min(n + 2 - 2 * p for n, p in zip(x_shape[2:], padding)) >= 1)   # the transposed output is not empty
    y = F.conv_transpose2d(x, w, padding=padding)
    expected = conv_transpose2d_loops(host(x), host(w), padding=padding)
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-12, atol=1e-12)
    assert mt.gradcheck(lambda x, w: F.conv_transpose2d(x, w, padding=padding), (x, w))


def test_layer_in_float32_matches_the_direct_path_within_the_bound(winograd_on):
    layer = nn.Conv2d(8, 8, 3, padding=1)
    x = mt.tensor(numpy.random.default_rng(0).standard_normal((2, 8, 12, 10)).astype(numpy.float32))
    y = layer(x)
    w, b = (p.data.astype(numpy.float64) for p in (layer.weight, layer.bias))
    expected = conv2d_loops(x.data.astype(numpy.float64), w, b, padding=1)
    assert y.dtype == mt.float32 and relative(y.data.astype(numpy.float64), expected) < FLOAT32_BOUND


# ---- float32 accuracy ---------------------------------------------------------------------------
@pytest.mark.parametrize("channels, side", [(16, 32), (64, 16), (128, 8)])
def test_float32_error_is_within_the_measured_bound(channels, side):
    """Forward and weight gradient in float32, each path against the float64 direct conv."""
    rng = numpy.random.default_rng(channels)
    x = rng.standard_normal((2, channels, side, 2 * side))
    w = rng.standard_normal((channels, channels, 3, 3)) * numpy.sqrt(2 / (9 * channels))
    g = rng.standard_normal((2, channels, side, 2 * side))
    args = ((3, 3), (1, 1), (1, 1), (1, 1), 1)
    exact = conv_module._correlate(x, w, (1, 1), (1, 1), (1, 1), 1), conv_module._weight_gradient(x, g, *args)
    x32, w32, g32 = (a.astype(numpy.float32) for a in (x, w, g))
    ours = winograd.conv3x3(x32, w32, (1, 1)), winograd.weight_gradient(x32, g32, (1, 1))
    direct = conv_module._correlate(x32, w32, (1, 1), (1, 1), (1, 1), 1), conv_module._weight_gradient(x32, g32, *args)
    for result, reference, expected in zip(ours, direct, exact):
        assert result.dtype == numpy.float32
        assert relative(result.astype(numpy.float64), expected) < FLOAT32_BOUND
        assert relative(reference.astype(numpy.float64), expected) < FLOAT32_BOUND
