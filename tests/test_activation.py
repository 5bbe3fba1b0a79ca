"""Activations: relu leaky_relu sigmoid tanh gelu softmax log_softmax dropout."""
import math
import warnings

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import functional as F, parallel
from minitorch_seg.functional import activation as activation_module
from minitorch_seg.testing import layouts, make, shapes
from torch_compare import compare
from helpers import host

pytestmark = pytest.mark.activation

GRAD_EXAMPLES = 12
TORCH_EXAMPLES = 6
seeds = st.integers(0, 2**16)
_erf = numpy.vectorize(math.erf)


def _sigmoid(x):
    return 1 / (1 + numpy.exp(-x))


# name -> (ours, NumPy formula, torch's, keyword arguments of ``make``)
POINTWISE = {
    "relu": (F.relu, lambda x: numpy.maximum(x, 0), lambda torch: torch.relu, {"away_from": 0.0}),
    "leaky_relu": (F.leaky_relu, lambda x: numpy.where(x > 0, x, 0.01 * x),
                   lambda torch: torch.nn.functional.leaky_relu, {"away_from": 0.0}),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), lambda x: numpy.where(x > 0, x, 0.2 * x),
                       lambda torch: lambda x: torch.nn.functional.leaky_relu(x, 0.2), {"away_from": 0.0}),
    "sigmoid": (F.sigmoid, _sigmoid, lambda torch: torch.sigmoid, {"low": -6.0, "high": 6.0}),
    "tanh": (F.tanh, numpy.tanh, lambda torch: torch.tanh, {"low": -3.0, "high": 3.0}),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
             lambda torch: torch.nn.functional.gelu, {"low": -4.0, "high": 4.0}),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + numpy.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
                  lambda torch: lambda x: torch.nn.functional.gelu(x, approximate="tanh"), {"low": -4.0, "high": 4.0}),
}


def _softmax(x, dim):
    e = numpy.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _log_softmax(x, dim):
    return x - numpy.log(numpy.exp(x).sum(axis=dim, keepdims=True))


NORMALISED = {
    "softmax": (F.softmax, _softmax, lambda torch: torch.softmax),
    "log_softmax": (F.log_softmax, _log_softmax, lambda torch: torch.log_softmax),
}


@st.composite
def shaped(draw, max_dims=4, max_side=4):
    shape = draw(shapes(1, max_dims, 1, max_side))
    return shape, draw(layouts(len(shape))), draw(seeds)


@st.composite
def shaped_with_dim(draw):
    shape, layout, seed = draw(shaped())
    return shape, layout, seed, draw(st.integers(-len(shape), len(shape) - 1))


# ---- hand-computed ----------------------------------------------------------------------------
def test_hand_computed(backend):
    x = mt.tensor([-2.0, -0.5, 0.0, 1.0, 3.0], dtype="float64", requires_grad=True)
    numpy.testing.assert_array_equal(F.relu(x).numpy(), [0, 0, 0, 1, 3])
    numpy.testing.assert_allclose(F.leaky_relu(x, 0.1).numpy(), [-0.2, -0.05, 0, 1, 3])
    assert F.sigmoid(x).numpy()[2] == 0.5
    assert F.gelu(x).numpy()[2] == 0.0
    F.relu(x).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 1, 1])    # 0 at the kink, as torch
    y = F.softmax(mt.tensor([[0.0, math.log(3.0)]], dtype="float64"), 1)
    numpy.testing.assert_allclose(y.numpy(), [[0.25, 0.75]])


@pytest.mark.parametrize("threads", [1, 3])
def test_relu_in_runs_of_two_values_on_several_threads(backend, threads, monkeypatch):
    """ReLU goes through its values in runs (``parallel.map_runs``). In runs of two values, on one
    host thread and on three, over a non-contiguous input that holds -0, +-inf and NaN: the output
    and the gradient (passed at x > 0 and at NaN, stopped at x <= 0) are the elementwise ones."""
    monkeypatch.setattr(parallel, "STREAM_TILES", parallel.STREAM_TILES._replace(bytes=16))   # 2 float64s a run
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    values = numpy.array([-2.0, -0.0, 0.0, 0.5, numpy.inf, -numpy.inf, numpy.nan, 3.0, -1.0, 1e-300, 7.0])
    x = mt.tensor(numpy.stack([values, -values]).T, requires_grad=True)          # (11, 2), transposed memory
    g = numpy.arange(1.0, 23.0).reshape(11, 2)
    y = F.relu(x)
    y.backward(mt.tensor(g))
    numpy.testing.assert_array_equal(host(y), numpy.maximum(host(x), 0))
    passes = (host(x) > 0) | numpy.isnan(host(x))
    numpy.testing.assert_array_equal(host(x.grad), numpy.where(passes, g, 0))


@pytest.mark.parametrize("row", [4, 16, 64])
@pytest.mark.parametrize("width", [48, 52, 64, 7, 66])
def test_relu_in_rows_against_zeros_is_the_elementwise_maximum(row, width, monkeypatch):
    """``relu_into`` compares x with a row of zeros, its last axis cut into rows of at most ``ZERO_ROW``
    values (a power of two down to a sixteenth of it that divides the axis) or left whole, and
    compares a longer axis that none divides with the number 0. Over widths cut in rows of 16, 8, 4,
    2 and 1, ones left whole, and 66 at ZERO_ROW = 64 (no power from 64 down to 4 divides it), float32
    and float64, on a tile view with -0, +-inf, NaN and subnormals: the same bits as
    numpy.maximum(x, 0), and the mask y != 0."""
    monkeypatch.setattr(activation_module, "ZERO_ROW", row)
    specials = [-0.0, 0.0, numpy.inf, -numpy.inf, numpy.nan, 1e-310, -1e-310, 2.5, -2.5]
    for dtype in (numpy.float32, numpy.float64):
        whole = numpy.random.default_rng(width).standard_normal((2, 5, width)).astype(dtype)
        whole.reshape(-1)[:len(specials)] = specials
        x = whole[:, 1:4]                                               # a tile of channels: a view
        y, mask = numpy.empty(x.shape, dtype), numpy.empty(x.shape, bool)
        activation_module.relu_into(x, y, mask)
        expected = numpy.maximum(x, dtype(0))
        assert y.tobytes() == expected.tobytes()
        numpy.testing.assert_array_equal(mask, expected != 0)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("scaled", [False, True], ids=["the caller's gradient", "a free one"])
def test_relu_takes_a_gradient_that_is_a_view_as_it_is(backend, threads, scaled, monkeypatch):
    """A skip's part of a concatenation's gradient reaches ReLU as a view of it: of the caller's
    gradient, or of a free one (the concatenation's output scaled), which ReLU masks in place once
    the other part has gone. In runs of one sample, on one thread and on three, the gradient is the
    elementwise one, the other input's part is untouched, and so is the caller's gradient."""
    monkeypatch.setattr(parallel, "STREAM_TILES", parallel.STREAM_TILES._replace(bytes=16))
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    x, other = make((3, 2, 2, 2), seed=1), make((3, 1, 2, 2), seed=2)
    g = make((3, 3, 2, 2), seed=3, requires_grad=False)
    before = host(g).copy()
    y = mt.cat([F.relu(x), other], dim=1)
    (y * 2.0 if scaled else y).backward(g)
    scale = 2.0 if scaled else 1.0
    numpy.testing.assert_array_equal(host(x.grad), numpy.where(host(x) > 0, scale * before[:, :2], 0))
    numpy.testing.assert_array_equal(host(other.grad), scale * before[:, 2:])
    numpy.testing.assert_array_equal(host(g), before)


# ---- gradient checks ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", POINTWISE)
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped())
def test_pointwise_gradcheck(backend, name, drawn):
    shape, layout, seed = drawn
    op, _, _, kwargs = POINTWISE[name]
    x = make(shape, seed=seed, layout=layout, **kwargs)
    assert mt.gradcheck(op, (x,))


@pytest.mark.parametrize("name", NORMALISED)
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped_with_dim())
def test_normalised_gradcheck(backend, name, drawn):
    shape, layout, seed, dim = drawn
    op = NORMALISED[name][0]
    x = make(shape, seed=seed, layout=layout, low=-3.0, high=3.0)
    assert mt.gradcheck(lambda t: op(t, dim), (x,))


@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped(), p=st.sampled_from([0.2, 0.5, 0.8]))
def test_dropout_gradcheck_with_a_fixed_mask(backend, drawn, p):
    shape, layout, seed = drawn
    x = make(shape, seed=seed, layout=layout)

    def fixed(t):
        mt.manual_seed(seed)                     # the same mask at every evaluation
        return F.dropout(t, p)

    assert mt.gradcheck(fixed, (x,))


# ---- forward against NumPy ----------------------------------------------------------------------
@pytest.mark.parametrize("name", POINTWISE)
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped())
def test_pointwise_forward_matches_numpy(backend, name, drawn):
    shape, layout, seed = drawn
    op, formula, _, _ = POINTWISE[name]
    x = make(shape, seed=seed, layout=layout, low=-5.0, high=5.0)
    y = op(x)
    assert y.backend == backend and y.shape == shape
    numpy.testing.assert_allclose(y.numpy(), formula(host(x)), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NORMALISED)
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped_with_dim())
def test_normalised_forward_matches_numpy(backend, name, drawn):
    shape, layout, seed, dim = drawn
    op, formula, _ = NORMALISED[name]
    x = make(shape, seed=seed, layout=layout, low=-5.0, high=5.0)
    y = op(x, dim)
    numpy.testing.assert_allclose(y.numpy(), formula(host(x), dim), rtol=1e-12, atol=1e-15)
    probabilities = y.numpy() if name == "softmax" else numpy.exp(y.numpy())
    numpy.testing.assert_allclose(probabilities.sum(axis=dim), 1.0, rtol=1e-12)


def test_methods_call_the_ops(backend):
    x = make((2, 3), seed=1)
    numpy.testing.assert_array_equal(x.relu().numpy(), F.relu(x).numpy())
    numpy.testing.assert_array_equal(x.sigmoid().numpy(), F.sigmoid(x).numpy())
    numpy.testing.assert_array_equal(x.tanh().numpy(), F.tanh(x).numpy())
    numpy.testing.assert_array_equal(x.softmax(0).numpy(), F.softmax(x, 0).numpy())
    numpy.testing.assert_array_equal(x.log_softmax(-1).numpy(), F.log_softmax(x, -1).numpy())


@pytest.mark.parametrize("name", list(POINTWISE) + list(NORMALISED))
def test_float32_stays_float32(backend, name):
    op = POINTWISE[name][0] if name in POINTWISE else (lambda t: NORMALISED[name][0](t, 1))
    x = make((3, 4), seed=2, dtype="float32", away_from=0.0)
    y = op(x)
    (y * y).sum().backward()
    assert y.dtype == numpy.float32 and x.grad.dtype == numpy.float32


# ---- torch --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", POINTWISE)
@settings(max_examples=TORCH_EXAMPLES)
@given(drawn=shaped())
def test_pointwise_matches_torch(backend, torch, name, drawn):
    shape, layout, seed = drawn
    op, _, theirs, kwargs = POINTWISE[name]
    x = make(shape, seed=seed, layout=layout, **kwargs)
    compare(torch, op, theirs(torch), [x])


@pytest.mark.parametrize("name", NORMALISED)
@settings(max_examples=TORCH_EXAMPLES)
@given(drawn=shaped_with_dim())
def test_normalised_matches_torch(backend, torch, name, drawn):
    shape, layout, seed, dim = drawn
    op, _, theirs = NORMALISED[name]
    x = make(shape, seed=seed, layout=layout, low=-5.0, high=5.0)
    compare(torch, lambda t: op(t, dim), lambda t: theirs(torch)(t, dim), [x])


# ---- numerical stability --------------------------------------------------------------------------
STABLE = {
    "sigmoid": (F.sigmoid, [0.0, 0.5, 1.0]),
    "tanh": (F.tanh, [-1.0, 0.0, 1.0]),
    "gelu": (F.gelu, [0.0, 0.0, 1000.0]),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), [0.0, 0.0, 1000.0]),
    "softmax": (lambda t: F.softmax(t, 0), [0.0, 0.0, 1.0]),
    "log_softmax": (lambda t: F.log_softmax(t, 0), [-2000.0, -1000.0, 0.0]),
}


@pytest.mark.parametrize("name", STABLE)
def test_extremes_in_float32_give_no_nan_and_no_warning(backend, name):
    op, expected = STABLE[name]
    x = mt.tensor([-1000.0, 0.0, 1000.0], dtype="float32", requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # an overflow or 0/0 warning fails the test
        y = op(x)
        y.backward(mt.tensor([1.0, -2.0, 0.5], dtype="float32"))
    assert y.dtype == numpy.float32
    assert numpy.isfinite(y.numpy()).all() and numpy.isfinite(x.grad.numpy()).all()
    numpy.testing.assert_allclose(y.numpy(), expected, atol=1e-6)


def test_extremes_match_torch_in_float32(torch):
    x = mt.tensor([-1000.0, -20.0, 0.0, 20.0, 1000.0], dtype="float32")
    t = torch.tensor(x.numpy(), dtype=torch.float32)
    pairs = [(F.sigmoid(x), torch.sigmoid(t)), (F.tanh(x), torch.tanh(t)), (F.gelu(x), torch.nn.functional.gelu(t)),
             (F.gelu(x, approximate="tanh"), torch.nn.functional.gelu(t, approximate="tanh")),
             (F.softmax(x, 0), torch.softmax(t, 0)), (F.log_softmax(x, 0), torch.log_softmax(t, 0))]
    for ours, theirs in pairs:
        numpy.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)


# ---- dropout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(backend, p):
    """About a fraction p is zeroed (within 6 standard deviations), survivors are x / (1 - p)."""
    x = make((100, 100), seed=1, low=0.5, high=1.5, dtype="float32")
    y = F.dropout(x, p)
    zeroed = y.numpy() == 0
    n = zeroed.size
    assert abs(zeroed.mean() - p) < 6 * math.sqrt(p * (1 - p) / n)
    kept = ~zeroed
    numpy.testing.assert_allclose(y.numpy()[kept], host(x)[kept] / (1 - p), rtol=1e-6)
    assert y.dtype == numpy.float32 and y.backend == backend


def test_dropout_gradient_equals_the_mask(backend):
    p = 0.3
    x = make((20, 30), seed=2, away_from=0.0)
    y = F.dropout(x, p)
    u = make((20, 30), seed=3, requires_grad=False)
    y.backward(u)
    mask = (y.numpy() != 0) / (1 - p)
    numpy.testing.assert_allclose(x.grad.numpy(), host(u) * mask, rtol=1e-12)
    numpy.testing.assert_allclose(y.numpy(), host(x) * mask, rtol=1e-12)


def test_dropout_is_identity_when_not_training(backend):
    x = make((4, 5), seed=4)
    for y in (F.dropout(x, 0.5, training=False), F.dropout(x, 0.0)):
        numpy.testing.assert_array_equal(y.numpy(), host(x))
    F.dropout(x, 0.5, training=False).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), numpy.ones((4, 5)))
    module = mt.nn.Dropout(0.5)
    module.eval()
    numpy.testing.assert_array_equal(module(x).numpy(), host(x))
    module.train()
    assert (module(x).numpy() == 0).any()


def test_dropout_p_one_zeroes_everything(backend):
    x = make((4, 5), seed=5)
    y = F.dropout(x, 1.0)
    y.sum().backward()
    assert (y.numpy() == 0).all() and (x.grad.numpy() == 0).all()


def test_dropout_same_seed_same_mask(backend):
    x = make((30, 30), seed=6, away_from=0.0)
    mt.manual_seed(7)
    first = F.dropout(x, 0.5).numpy().copy()
    second = F.dropout(x, 0.5).numpy().copy()
    mt.manual_seed(7)
    again = F.dropout(x, 0.5).numpy()
    numpy.testing.assert_array_equal(first, again)
    assert (first != second).any()                    # the generator moved on between calls


def test_dropout_mask_is_the_same_on_every_backend():
    masks = []
    for name in ("numpy", "strict"):
        with mt.use_backend(name):
            mt.manual_seed(11)
            masks.append(F.dropout(mt.ones(50), 0.5).numpy() != 0)
    numpy.testing.assert_array_equal(*masks)


# ---- errors -------------------------------------------------------------------------------------
def test_gelu_bad_approximate(backend):
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(make((2,), seed=0), approximate="erf")


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_bad_p(backend, p):
    with pytest.raises(ValueError, match=f"dropout probability has to be between 0 and 1, but got {p}"):
        F.dropout(make((2,), seed=0), p)


@pytest.mark.parametrize("name", NORMALISED)
def test_normalised_bad_dim(backend, name):
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        NORMALISED[name][0](make((2, 3), seed=0), 2)
