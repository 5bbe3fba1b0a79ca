"""interpolate (nearest, nearest-exact, bilinear with and without align_corners) and nn.Upsample.

Sizes and scale factors are drawn up and down, whole and fractional (torch maps output pixels
back with 1/scale_factor when one is given, not with in/out), sides odd and even. Each mode is
checked against finite differences in float64 on non-contiguous inputs, against the plain-loop
reference (forward and backward), against torch, and for the notes' duplication 2 -> [[2, 2], [2, 2]].
"""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import functional as F
from minitorch_seg import nn, parallel
from minitorch_seg.reference.upsample import interpolate_backward_loops, interpolate_loops
from minitorch_seg.testing import layouts, make
from helpers import assert_one_sentence, host
from torch_compare import compare

pytestmark = pytest.mark.upsample

GRAD_EXAMPLES = 15
FORWARD_EXAMPLES = 15
TORCH_EXAMPLES = 15
seeds = st.integers(0, 2**16)
SCALES = [0.5, 0.7, 1.0, 1.5, 1.7, 2.0, 2.5, 3.0, 4.0]


@st.composite
def resize_cases(draw, max_side=6, max_out=13):
    """(x_shape, kwargs): a mode, and either an output size or a scale factor (pair) that gives a
    non-empty output."""
    x_shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, max_side)),
               draw(st.integers(1, max_side)))
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "bilinear", "bilinear"]))
    kwargs = {"mode": mode}
    if mode == "bilinear":
        kwargs["align_corners"] = draw(st.sampled_from([None, False, True]))
    if draw(st.booleans()):
        kwargs["size"] = (draw(st.integers(1, max_out)), draw(st.integers(1, max_out)))
    else:
        scale = (draw(st.sampled_from(SCALES)), draw(st.sampled_from(SCALES)))
        if int(x_shape[2] * scale[0]) < 1 or int(x_shape[3] * scale[1]) < 1:
            scale = (2.0, 3.0)
        kwargs["scale_factor"] = scale if scale[0] != scale[1] else scale[0]
    return x_shape, kwargs


@settings(max_examples=GRAD_EXAMPLES)
@given(data=st.data(), case=resize_cases(), seed=seeds)
def test_gradcheck_on_noncontiguous_inputs(backend, data, case, seed):
    x_shape, kwargs = case
    x = make(x_shape, seed=seed, layout=data.draw(layouts(4)))
    assert mt.gradcheck(lambda t: F.interpolate(t, **kwargs), (x,))


@settings(max_examples=FORWARD_EXAMPLES)
@given(data=st.data(), case=resize_cases(), seed=seeds)
def test_forward_and_backward_match_the_loops(backend, data, case, seed):
    x_shape, kwargs = case
    x = make(x_shape, seed=seed, layout=data.draw(layouts(4)))
    y = F.interpolate(x, **kwargs)
    assert y.backend == backend
    numpy.testing.assert_allclose(host(y), interpolate_loops(host(x), **kwargs), rtol=1e-12, atol=1e-12)
    g = make(y.shape, seed=seed + 1, requires_grad=False)
    (y * g).sum().backward()
    numpy.testing.assert_allclose(host(x.grad), interpolate_backward_loops(host(g), x.shape, **kwargs),
                                  rtol=1e-12, atol=1e-12)


@settings(max_examples=TORCH_EXAMPLES)
@given(data=st.data(), case=resize_cases(), seed=seeds)
def test_forward_and_gradient_match_torch(torch, data, case, seed):
    x_shape, kwargs = case
    x = make(x_shape, seed=seed, layout=data.draw(layouts(4)))
    compare(torch, lambda t: F.interpolate(t, **kwargs), lambda t: torch.nn.functional.interpolate(t, **kwargs),
            [x], seed=seed)


@pytest.mark.parametrize("kwargs", [dict(scale_factor=2.5, mode="bilinear", align_corners=False),
                                    dict(size=(70, 33), mode="bilinear", align_corners=True),
                                    dict(scale_factor=0.45, mode="bilinear"),
                                    dict(size=(45, 90), mode="nearest")],
                         ids=["up-2.5", "corners", "down", "nearest"])
def test_large_maps_whose_matrices_go_in_several_bands(backend, kwargs):
    """A 1x2x40x36 map: its interpolation matrices have more rows than one band (BAND_ROWS), in the
    forward and in the transposed backward; forward and gradient equal the loops'."""
    x = make((1, 2, 40, 36), seed=5)
    y = F.interpolate(x, **kwargs)
    numpy.testing.assert_allclose(host(y), interpolate_loops(host(x), **kwargs), rtol=1e-12, atol=1e-12)
    g = make(y.shape, seed=6, requires_grad=False)
    (y * g).sum().backward()
    numpy.testing.assert_allclose(host(x.grad), interpolate_backward_loops(host(g), x.shape, **kwargs),
                                  rtol=1e-12, atol=1e-12)



@pytest.mark.parametrize("threads", [1, 3])
def test_planes_in_tiles_of_one_on_host_threads_agree_with_the_loops(backend, threads, monkeypatch):
    """The planes go through the two products a few at a time (``parallel.UPSAMPLE_TILES``): in
    tiles of one plane, on one host thread and on three, forward and gradient equal the loops'."""
    monkeypatch.setattr(parallel, "UPSAMPLE_TILES", parallel.UPSAMPLE_TILES._replace(bytes=1))
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    x = make((2, 3, 5, 7), seed=7)
    kwargs = dict(scale_factor=1.7, mode="bilinear", align_corners=False)
    assert len(parallel.tiles(shim.get_array_module(x.data), parallel.UPSAMPLE_TILES, (6,), 8)) == 6
    y = F.interpolate(x, **kwargs)
    numpy.testing.assert_allclose(host(y), interpolate_loops(host(x), **kwargs), rtol=1e-12, atol=1e-12)
    g = make(y.shape, seed=8, requires_grad=False)
    (y * g).sum().backward()
    numpy.testing.assert_allclose(host(x.grad), interpolate_backward_loops(host(g), x.shape, **kwargs),
                                  rtol=1e-12, atol=1e-12)

# ---- the notes' examples and other properties -------------------------------------------------------
def test_nearest_duplicates_each_pixel_the_notes_example(backend):
    """The notes: 2 -> [[2, 2], [2, 2]]."""
    assert F.interpolate(mt.tensor([[[[2.0]]]]), scale_factor=2).tolist() == [[[[2.0, 2.0], [2.0, 2.0]]]]
    x = mt.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert F.interpolate(x, scale_factor=2, mode="nearest").tolist() == \
        [[[[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0], [3.0, 3.0, 4.0, 4.0]]]]


def test_bilinear_by_hand(backend):
    """[0, 4] to 4 pixels. align_corners=False: output centres (u + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75,
    1.25 (clamped to [0, 1]) give 0, 1, 3, 4. align_corners=True to 3 pixels: 0, 2, 4."""
    x = mt.tensor([[[[0.0, 4.0]]]])
    assert F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=False).tolist() == [[[[0.0, 1.0, 3.0, 4.0]]]]
    assert F.interpolate(x, size=(1, 3), mode="bilinear", align_corners=True).tolist() == [[[[0.0, 2.0, 4.0]]]]


def test_nearest_gradient_sums_the_copies(backend):
    """Each input pixel fed a 2x2 block of copies, so its gradient is the sum of that block's."""
    x = mt.zeros(1, 1, 2, 2, dtype="float64", requires_grad=True)
    g = numpy.arange(16.0).reshape(1, 1, 4, 4)
    (F.interpolate(x, scale_factor=2) * mt.Tensor(shim.to_backend(g))).sum().backward()
    assert x.grad.tolist() == [[[[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]]]]


@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_keeps_a_constant_image_constant(backend, align_corners):
    """Each output is a weighted mean of inputs (weights summing to 1)."""
    y = F.interpolate(mt.full((1, 2, 3, 5), 7.0, dtype="float64"), size=(8, 4), mode="bilinear",
                      align_corners=align_corners)
    numpy.testing.assert_allclose(host(y), 7.0, rtol=1e-15)


def test_nearest_keeps_integer_label_maps_exact(backend):
    """Labels (int64) resized with nearest stay labels: no float round trip."""
    labels = mt.Tensor(shim.to_backend(numpy.arange(6, dtype=numpy.int64).reshape(1, 1, 2, 3)))
    y = F.interpolate(labels, size=(4, 6))
    assert y.dtype == numpy.int64
    numpy.testing.assert_array_equal(host(y), numpy.arange(6).reshape(2, 3).repeat(2, 0).repeat(2, 1)[None, None])


def test_float32_stays_float32(backend):
    x = mt.Tensor(shim.to_backend(numpy.ones((1, 2, 3, 4), dtype=numpy.float32)), requires_grad=True)
    y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == numpy.float32


# ---- bad arguments ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(size=4, scale_factor=2), ValueError, "exactly one of size and scale_factor"),
    (dict(), ValueError, "exactly one of size and scale_factor"),
    (dict(size=4, mode="bicubic"), ValueError, "unknown mode 'bicubic'"),
    (dict(size=4, mode="nearest", align_corners=True), ValueError, "align_corners can only be set"),
    (dict(scale_factor=0.1), ValueError, "must be positive"),
    (dict(scale_factor=-2), ValueError, "scale_factor must be a positive number"),
    (dict(size=(2, 3, 4)), ValueError, "size must be an int or a pair"),
])
def test_bad_arguments_raise_one_clear_sentence(kwargs, error, match):
    with pytest.raises(error, match=match) as raised:
        F.interpolate(mt.zeros(1, 1, 4, 5), **kwargs)
    assert_one_sentence(raised.value)


def test_non_4d_input_raises_one_clear_sentence():
    with pytest.raises(ValueError, match="expected a 4-D input") as raised:
        F.interpolate(mt.zeros(1, 4, 5), scale_factor=2)
    assert_one_sentence(raised.value)


# ---- the layer ----------------------------------------------------------------------------------------
def test_upsample_layer_repr_and_forward_like_torch(backend):
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    assert repr(up) == "Upsample(scale_factor=2.0, mode='bilinear')"
    assert repr(nn.Upsample(size=(3, 4))) == "Upsample(size=(3, 4), mode='nearest')"
    x = make((1, 2, 3, 4), seed=1)
    numpy.testing.assert_array_equal(host(up(x)), host(F.interpolate(x, scale_factor=2, mode="bilinear",
                                                                      align_corners=True)))
