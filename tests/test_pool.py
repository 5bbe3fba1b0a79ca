"""max_pool2d, max_unpool2d and avg_pool2d, and the MaxPool2d / MaxUnpool2d / AvgPool2d layers.

Configurations come from ``strategies.pool_configs`` (non-square kernels 1-3, strides below and
above the kernel, padding up to half the kernel, dilation 1-2, ceil_mode, odd and even sides).
Each op is checked against finite differences in float64 on non-contiguous inputs (distinct
values for max pooling, so no window has a tie), against the plain-loop references (ties
included: the switches decide), against torch (values, gradients and the switch indices), and
for what the notes say: max unpooling keeps each window's maximum at its switch and zeros
elsewhere, 2 -> [[0, 2], [0, 0]].
"""
import math

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import functional as F
from minitorch_seg import nn, parallel
from minitorch_seg.reference.pool import (avg_pool2d_backward_loops, avg_pool2d_composed, avg_pool2d_loops,
                                          max_pool2d_backward_loops, max_pool2d_composed, max_pool2d_loops,
                                          max_unpool2d_loops)
from minitorch_seg.testing import layouts, make, pool_configs
from helpers import assert_one_sentence, host
from torch_compare import compare, to_torch

pytestmark = pytest.mark.pool

GRAD_EXAMPLES = 12
FORWARD_EXAMPLES = 12
TORCH_EXAMPLES = 10
seeds = st.integers(0, 2**16)


def distinct(shape, seed=0, layout=None, low=-2.0):
    """All-different values in [low, low + 4) (a shuffled ramp: no ties for max), stored in ``layout``
    order, so the tensor is a non-contiguous view."""
    values = numpy.random.default_rng(seed).permutation(math.prod(shape)).reshape(shape) / math.prod(shape) * 4 + low
    if layout is not None:
        values = numpy.ascontiguousarray(values.transpose(layout)).transpose(numpy.argsort(layout))
    return mt.Tensor(shim.to_backend(values), requires_grad=True)


def with_ties(shape, seed=0):
    """Small integers: most windows hold a tie, so the first-maximum rule is exercised."""
    values = numpy.random.default_rng(seed).integers(-2, 3, shape).astype(numpy.float64)
    return mt.Tensor(shim.to_backend(values), requires_grad=True)


def upstream(shape, seed):
    return mt.Tensor(shim.to_backend(numpy.random.default_rng(seed).standard_normal(shape)))


# ---- gradients ------------------------------------------------------------------------------------
@settings(max_examples=GRAD_EXAMPLES)
@given(data=st.data(), seed=seeds)
def test_max_pool_gradcheck_on_noncontiguous_distinct_inputs(backend, data, seed):
    config = data.draw(pool_configs(), label="config")
    x = distinct(config["x_shape"], seed, data.draw(layouts(4)))
    assert mt.gradcheck(lambda t: F.max_pool2d(t, **config.kwargs, return_indices=True), (x,))


@settings(max_examples=GRAD_EXAMPLES)
@given(data=st.data(), seed=seeds, count_include_pad=st.booleans(), override=st.sampled_from([None, 3]))
def test_avg_pool_gradcheck_on_noncontiguous_inputs(backend, data, seed, count_include_pad, override):
    config = data.draw(pool_configs(dilation=False), label="config")
    x = make(config["x_shape"], seed=seed, layout=data.draw(layouts(4)))
    assert mt.gradcheck(lambda t: F.avg_pool2d(t, **config.kwargs, count_include_pad=count_include_pad,
                                               divisor_override=override), (x,))


@settings(max_examples=GRAD_EXAMPLES)
@given(data=st.data(), seed=seeds)
def test_max_unpool_gradcheck_on_noncontiguous_values(backend, data, seed):
    config = data.draw(pool_configs(dilation=False, overlap=False), label="config")
    _, switches = F.max_pool2d(distinct(config["x_shape"], seed), **config.kwargs, return_indices=True)
    values = make(switches.shape, seed=seed + 1, layout=data.draw(layouts(4)))
    size = config["x_shape"][2:]
    assert mt.gradcheck(lambda v: F.max_unpool2d(v, switches, config["kernel_size"], config["stride"],
                                                 config["padding"], output_size=size), (values,))


# ---- the loop references --------------------------------------------------------------------------
@settings(max_examples=FORWARD_EXAMPLES)
@given(data=st.data(), seed=seeds, ties=st.booleans())
def test_max_pool_matches_the_loops_values_switches_and_gradient(backend, data, seed, ties):
    """With ties too: the switch is the first maximum, row-major, and the gradient goes there."""
    config = data.draw(pool_configs(), label="config")
    x = with_ties(config["x_shape"], seed) if ties else distinct(config["x_shape"], seed, data.draw(layouts(4)))
    y, switches = F.max_pool2d(x, **config.kwargs, return_indices=True)
    assert y.backend == switches.backend == backend and switches.dtype == numpy.int64
    expected_y, expected_switches = max_pool2d_loops(host(x), **config.kwargs)
    numpy.testing.assert_array_equal(host(y), expected_y)
    numpy.testing.assert_array_equal(host(switches), expected_switches)
    g = upstream(y.shape, seed)
    (y * g).sum().backward()
    numpy.testing.assert_allclose(host(x.grad), max_pool2d_backward_loops(host(g), expected_switches, x.shape),
                                  rtol=1e-12, atol=1e-12)


@settings(max_examples=FORWARD_EXAMPLES)
@given(data=st.data(), seed=seeds, count_include_pad=st.booleans(), override=st.sampled_from([None, 5]))
def test_avg_pool_matches_the_loops(backend, data, seed, count_include_pad, override):
    config = data.draw(pool_configs(dilation=False), label="config")
    kwargs = dict(config.kwargs, count_include_pad=count_include_pad, divisor_override=override)
    x = make(config["x_shape"], seed=seed, layout=data.draw(layouts(4)))
    y = F.avg_pool2d(x, **kwargs)
    numpy.testing.assert_allclose(host(y), avg_pool2d_loops(host(x), **kwargs), rtol=1e-12, atol=1e-12)
    g = upstream(y.shape, seed)
    (y * g).sum().backward()
    kwargs.pop("ceil_mode")
    numpy.testing.assert_allclose(host(x.grad), avg_pool2d_backward_loops(host(g), x.shape, **kwargs),
                                  rtol=1e-12, atol=1e-12)


@settings(max_examples=FORWARD_EXAMPLES)
@given(data=st.data(), seed=seeds)
def test_max_unpool_matches_the_loops(backend, data, seed):
    config = data.draw(pool_configs(dilation=False), label="config")
    _, switches = F.max_pool2d(distinct(config["x_shape"], seed), **config.kwargs, return_indices=True)
    values = make(switches.shape, seed=seed + 1)
    args = (config["kernel_size"], config["stride"], config["padding"])
    z = F.max_unpool2d(values, switches, *args, output_size=config["x_shape"])
    expected = max_unpool2d_loops(host(values), host(switches), *args, output_size=config["x_shape"])
    numpy.testing.assert_array_equal(host(z), expected)


def test_an_empty_batch_pools_unpools_and_has_an_empty_gradient(backend):
    x = make((0, 3, 4, 4), seed=0)
    y, switches = F.max_pool2d(x, 2, return_indices=True)
    y.sum().backward()
    assert y.shape == switches.shape == (0, 3, 2, 2) and x.grad.shape == (0, 3, 4, 4)
    assert F.max_unpool2d(y.detach(), switches, 2).shape == (0, 3, 4, 4)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("tile_bytes", [1, 3000], ids=["one-plane-tiles", "partial-last-tile"])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), dict(kernel_size=2)],
                         ids=["overlapping", "disjoint"])
def test_tiled_forward_agrees_with_the_loops(backend, monkeypatch, tile_bytes, threads, kwargs):
    """The host path goes through the planes in tiles on the host threads, each thread with its own
    buffers, and so does the backward's scatter (a scatter-add where windows overlap); a 2x5x9x11
    input in tiles of one plane and of two (the last tile then holds one), on one thread and on
    three, gives the loops' values, switches and gradient."""
    monkeypatch.setattr(parallel, "POOL_TILES", parallel.POOL_TILES._replace(bytes=tile_bytes))
    monkeypatch.setattr(parallel, "STREAM_TILES", parallel.STREAM_TILES._replace(bytes=tile_bytes * 4 // 5))
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    x = with_ties((2, 5, 9, 11), seed=3)
    y, switches = F.max_pool2d(x, **kwargs, return_indices=True)
    expected_y, expected_switches = max_pool2d_loops(host(x), **kwargs)
    numpy.testing.assert_array_equal(host(y), expected_y)
    numpy.testing.assert_array_equal(host(switches), expected_switches)
    y.sum().backward()
    numpy.testing.assert_array_equal(host(x.grad), max_pool2d_backward_loops(numpy.ones(y.shape), expected_switches,
                                                                             x.shape))


@settings(max_examples=FORWARD_EXAMPLES)
@given(data=st.data(), seed=seeds)
def test_composed_twins_have_the_hand_derived_gradients(backend, data, seed):
    """max: pad(-inf) + strided slices + stack + max(dim); avg: the same with mean. Autograd's
    gradient through them equals the hand-derived backward passes."""
    config = data.draw(pool_configs(ceil_mode=False), label="config")
    layout = data.draw(layouts(4))
    x1, x2 = distinct(config["x_shape"], seed, layout), distinct(config["x_shape"], seed, layout)
    twin, fast = max_pool2d_composed(x1, **config.kwargs), F.max_pool2d(x2, **config.kwargs)
    avg_kwargs = {k: config[k] for k in ("kernel_size", "stride", "padding")}
    x3, x4 = make(config["x_shape"], seed=seed), make(config["x_shape"], seed=seed)
    avg_twin, avg_fast = avg_pool2d_composed(x3, **avg_kwargs), F.avg_pool2d(x4, **avg_kwargs)
    for a, b, leaves in ((twin, fast, (x1, x2)), (avg_twin, avg_fast, (x3, x4))):
        numpy.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-12)
        u = upstream(b.shape, seed)
        (a * u).sum().backward()
        (b * u).sum().backward()
        numpy.testing.assert_allclose(host(leaves[0].grad), host(leaves[1].grad), rtol=1e-12, atol=1e-12)


# ---- torch ----------------------------------------------------------------------------------------
@settings(max_examples=TORCH_EXAMPLES)
@given(data=st.data(), seed=seeds, ties=st.booleans())
def test_max_pool_values_switches_and_gradient_match_torch(torch, data, seed, ties):
    config = data.draw(pool_configs(), label="config")
    x = with_ties(config["x_shape"], seed) if ties else distinct(config["x_shape"], seed, data.draw(layouts(4)))
    compare(torch, lambda t: F.max_pool2d(t, **config.kwargs, return_indices=True),
            lambda t: torch.nn.functional.max_pool2d(t, **config.kwargs, return_indices=True), [x], seed=seed)


@settings(max_examples=TORCH_EXAMPLES)
@given(data=st.data(), seed=seeds, count_include_pad=st.booleans(), override=st.sampled_from([None, 2]))
def test_avg_pool_matches_torch(torch, data, seed, count_include_pad, override):
    config = data.draw(pool_configs(dilation=False), label="config")
    kwargs = dict(config.kwargs, count_include_pad=count_include_pad, divisor_override=override)
    x = make(config["x_shape"], seed=seed, layout=data.draw(layouts(4)))
    compare(torch, lambda t: F.avg_pool2d(t, **kwargs), lambda t: torch.nn.functional.avg_pool2d(t, **kwargs),
            [x], seed=seed)


@settings(max_examples=TORCH_EXAMPLES)
@given(data=st.data(), seed=seeds)
def test_max_unpool_matches_torch(torch, data, seed):
    config = data.draw(pool_configs(dilation=False, overlap=False), label="config")
    _, switches = F.max_pool2d(distinct(config["x_shape"], seed), **config.kwargs, return_indices=True)
    values = make(switches.shape, seed=seed + 1)
    args = (config["kernel_size"], config["stride"], config["padding"])
    torch_switches = to_torch(torch, switches)
    size = config["x_shape"][2:]
    compare(torch, lambda v: F.max_unpool2d(v, switches, *args, output_size=size),
            lambda v: torch.nn.functional.max_unpool2d(v, torch_switches, *args, output_size=size), [values],
            seed=seed)


def test_nan_propagates_and_its_switch_is_reported_as_torch(torch):
    values = numpy.array([[[[1.0, math.nan, 3.0, math.nan], [0.0, 2.0, -1.0, 5.0]]]])
    y, switches = F.max_pool2d(mt.tensor(values), 2, return_indices=True)
    expected, expected_switches = torch.nn.functional.max_pool2d(torch.tensor(values), 2, return_indices=True)
    numpy.testing.assert_array_equal(y.numpy(), expected.numpy())
    numpy.testing.assert_array_equal(switches.numpy(), expected_switches.numpy())


# ---- the notes' examples and other properties -------------------------------------------------------
def test_max_unpool_puts_the_maximum_at_its_switch_the_notes_example(backend):
    """The notes: 2 -> [[0, 2], [0, 0]] when the 2 came from the top right of its window."""
    x = mt.tensor([[[[1.0, 2.0], [0.0, -1.0]]]])
    y, switches = F.max_pool2d(x, 2, return_indices=True)
    assert y.tolist() == [[[[2.0]]]] and switches.tolist() == [[[[1]]]]
    assert F.max_unpool2d(y, switches, 2).tolist() == [[[[0.0, 2.0], [0.0, 0.0]]]]


@settings(max_examples=FORWARD_EXAMPLES)
@given(data=st.data(), seed=seeds)
def test_unpool_of_pool_keeps_exactly_the_window_maxima(backend, data, seed):
    """Non-overlapping windows: max_unpool2d(max_pool2d(x)) is x at each window's maximum and 0 elsewhere."""
    config = data.draw(pool_configs(dilation=False, overlap=False, ceil_mode=False), label="config")
    x = distinct(config["x_shape"], seed, data.draw(layouts(4)), low=1.0)     # no maximum is 0
    y, switches = F.max_pool2d(x, **config.kwargs, return_indices=True)
    z = host(F.max_unpool2d(y, switches, config["kernel_size"], config["stride"], config["padding"],
                            output_size=x.shape))
    kept = z != 0
    assert kept.sum() == math.prod(y.shape)
    numpy.testing.assert_array_equal(z[kept], host(x)[kept])
    numpy.testing.assert_array_equal(numpy.sort(z[kept]), numpy.sort(host(y).ravel()))


def test_a_tie_on_an_all_zero_window_goes_to_the_first_element_as_torch(backend):
    x = mt.zeros(1, 1, 2, 2, dtype="float64", requires_grad=True)
    y, switches = F.max_pool2d(x, 2, return_indices=True)
    y.sum().backward()
    assert switches.tolist() == [[[[0]]]]
    assert x.grad.tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]


def test_tie_rule_matches_torch_on_an_all_zero_input(torch):
    x = mt.zeros(1, 2, 4, 5, dtype="float64", requires_grad=True)
    compare(torch, lambda t: F.max_pool2d(t, 3, stride=1, padding=1, return_indices=True),
            lambda t: torch.nn.functional.max_pool2d(t, 3, stride=1, padding=1, return_indices=True), [x])


def test_padding_never_wins_even_against_minus_infinity(backend):
    """Torch pads max pooling with -inf and starts each window at its first input pixel: an input
    of -inf still reports a switch inside the input."""
    x = mt.tensor(numpy.full((1, 1, 3, 3), -math.inf))
    y, switches = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    assert switches.tolist() == [[[[0, 1], [3, 4]]]]
    assert numpy.isneginf(y.numpy()).all()


def test_overlapping_windows_add_their_gradients(backend):
    """Both 1x2 windows of [0, 5, 0] pick the 5 (stride 1 < kernel 2), so its gradient is 1 + 1."""
    x = mt.tensor([[[[0.0, 5.0, 0.0]]]], requires_grad=True)
    F.max_pool2d(x, (1, 2), stride=1).sum().backward()
    assert x.grad.tolist() == [[[[0.0, 2.0, 0.0]]]]


def test_avg_pool_divisors_with_padding_and_ceil_mode(backend):
    """x = [[0, 1, 2], [3, 4, 5], [6, 7, 8]], kernel 2, stride 2. With padding 1 the top-left window
    holds only the 0 and three padding pixels: divisor 4, or 1 with count_include_pad=False. With
    ceil_mode the windows past the right and bottom edges divide by the pixels they cover."""
    x = mt.tensor(numpy.arange(9.0).reshape(1, 1, 3, 3))
    assert F.avg_pool2d(x, 2, padding=1).tolist() == [[[[0 / 4, 3 / 4], [9 / 4, 24 / 4]]]]
    assert F.avg_pool2d(x, 2, padding=1, count_include_pad=False).tolist() == [[[[0 / 1, 3 / 2], [9 / 2, 24 / 4]]]]
    assert F.avg_pool2d(x, 2, ceil_mode=True).tolist() == [[[[8 / 4, 7 / 2], [13 / 2, 8 / 1]]]]


def test_max_pool_and_unpool_keep_integer_maps_exact(backend):
    """Integer maps (say a uint8 mask) pool with their own lowest value as the padding."""
    x = mt.Tensor(shim.to_backend(numpy.array([[[[3, 0, 7], [1, 9, 2]]]], dtype=numpy.uint8)))
    y, switches = F.max_pool2d(x, 2, stride=2, padding=1, return_indices=True)
    assert y.dtype == numpy.uint8 and y.tolist() == [[[[3, 7], [1, 9]]]]
    assert switches.tolist() == [[[[0, 2], [3, 4]]]]
    z = F.max_unpool2d(y, switches, 2, stride=2, padding=1, output_size=(2, 3))
    assert z.dtype == numpy.uint8 and z.tolist() == [[[[3, 0, 7], [1, 9, 0]]]]


def test_float32_stays_float32(backend):
    x = mt.Tensor(shim.to_backend(numpy.arange(16, dtype=numpy.float32).reshape(1, 1, 4, 4)), requires_grad=True)
    y, switches = F.max_pool2d(x, 2, return_indices=True)
    z = F.max_unpool2d(y, switches, 2)
    a = F.avg_pool2d(x, 2)
    assert y.dtype == z.dtype == a.dtype == numpy.float32
    (z.sum() + a.sum()).backward()
    assert x.grad.dtype == numpy.float32


# ---- bad arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.max_pool2d(x[0], 2), ValueError, "expected a 4-D input"),
    (lambda x: F.max_pool2d(x, 2, padding=2), ValueError, "at most half the kernel size"),
    (lambda x: F.max_pool2d(x, 3, padding=-1), ValueError, "padding must be non-negative"),
    (lambda x: F.max_pool2d(x, 6), ValueError, "more than the padded input"),
    (lambda x: F.max_pool2d(x, 2, stride=0), ValueError, "stride must be positive"),
    (lambda x: F.max_pool2d(x, (2, 2, 2)), ValueError, "kernel_size must be an int or a pair"),
    (lambda x: F.max_pool2d(x[:, :, :2, :2], 2, dilation=3, padding=1), ValueError, "holds no input pixel"),
    (lambda x: F.avg_pool2d(x, 7, padding=1), ValueError, "more than the padded input"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override must be positive"),
    (lambda x: F.avg_pool2d(x.long(), 2), TypeError, "expected a floating-point input"),
    (lambda x: F.max_unpool2d(x, mt.zeros(1, 2, 4, 4, dtype="int64"), 2), ValueError, "must have the input's shape"),
    (lambda x: F.max_unpool2d(x, mt.zeros(1, 2, 4, 5), 2), TypeError, "indices must be integers"),
    (lambda x: F.max_unpool2d(x, mt.zeros(1, 2, 4, 5, dtype="int64"), 2, output_size=(5, 5)), ValueError,
     "within one stride"),
    (lambda x: F.max_unpool2d(x, mt.full((1, 2, 4, 5), 80, dtype="int64"), 2), IndexError, "outside the 8x10"),
])
def test_bad_arguments_raise_one_clear_sentence(call, error, match):
    x = mt.zeros(1, 2, 4, 5)
    with pytest.raises(error, match=match) as raised:
        call(x)
    assert_one_sentence(raised.value)


# ---- layers -----------------------------------------------------------------------------------------
def test_layers_repr_and_forward_like_torch(backend):
    assert repr(nn.MaxPool2d(3, stride=2, padding=1)) == \
        "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.MaxUnpool2d(2)) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    x = distinct((2, 3, 6, 8), seed=1)
    y, switches = nn.MaxPool2d(2, return_indices=True)(x)
    numpy.testing.assert_array_equal(host(y), host(F.max_pool2d(x, 2)))
    z = nn.MaxUnpool2d(2)(y, switches, output_size=x.shape)
    assert z.shape == x.shape
    numpy.testing.assert_allclose(host(nn.AvgPool2d(2, count_include_pad=False)(x)), host(F.avg_pool2d(x, 2)))
