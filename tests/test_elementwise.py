"""Elementwise arithmetic and math: add sub mul div neg pow exp log sqrt abs.

Each op: a float64 gradient check on drawn (broadcast, non-contiguous) shapes, forward values
against NumPy, agreement with torch, Python-number operands that keep float32, and the errors.
"""
import warnings

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import functional as F
from minitorch_seg.testing import broadcastable_pair, layouts, make, shapes
from torch_compare import compare
from helpers import host

pytestmark = pytest.mark.elementwise

GRAD_EXAMPLES = 12
TORCH_EXAMPLES = 6
seeds = st.integers(0, 2**16)

# name -> (ours, numpy formula, torch's name, keyword arguments of ``make`` for the right operand)
BINARY = {
    "add": (F.add, numpy.add, "add", {}),
    "sub": (F.sub, numpy.subtract, "sub", {}),
    "mul": (F.mul, numpy.multiply, "mul", {}),
    "div": (F.div, numpy.divide, "div", {"away_from": 0.0}),
    # a ** b with a in [0.5, 2): a positive base has a real power and a real ln a for d/db.
    "pow": (F.pow, numpy.power, "pow", {}),
}
LEFT_RANGE = {"pow": {"low": 0.5, "high": 2.0}}

# name -> (ours, numpy formula, torch's name, keyword arguments of ``make``)
UNARY = {
    "neg": (F.neg, numpy.negative, "neg", {}),
    "exp": (F.exp, numpy.exp, "exp", {}),
    "log": (F.log, numpy.log, "log", {"low": 0.2, "high": 3.0}),
    "sqrt": (F.sqrt, numpy.sqrt, "sqrt", {"low": 0.2, "high": 3.0}),
    "abs": (F.abs, numpy.abs, "abs", {"away_from": 0.0}),
}


@st.composite
def pair_with_layouts(draw):
    a, b = draw(broadcastable_pair(max_dims=4, max_side=4))
    return a, b, draw(layouts(len(a))), draw(layouts(len(b))), draw(seeds)


@st.composite
def shape_with_layout(draw, max_dims=4, max_side=4):
    shape = draw(shapes(1, max_dims, 1, max_side))
    return shape, draw(layouts(len(shape))), draw(seeds)


# ---- hand-computed cases ----------------------------------------------------------------------
def test_hand_computed_values_and_gradients(backend):
    a = mt.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64", requires_grad=True)
    b = mt.tensor([2.0, -1.0], dtype="float64", requires_grad=True)  # broadcast over rows
    y = (a * b + a / b - b).sum()   # d/da = b + 1/b;  d/db = sum_rows(a - a / b^2) - 2
    y.backward()
    assert y.item() == pytest.approx(2.0 - 4.0 - 2.0)   # sum(a*b) + sum(a/b) - 2 * sum(b)
    numpy.testing.assert_allclose(a.grad.numpy(), [[2.5, -2.0], [2.5, -2.0]])
    numpy.testing.assert_allclose(b.grad.numpy(), [4 - 4 / 4 - 2, 6 - 6 / 1 - 2])


def test_pow_hand_computed(backend):
    x = mt.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    (x ** 2).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    x.grad = None
    (2.0 ** x).sum().backward()                      # d/dx 2^x = 2^x ln 2
    numpy.testing.assert_allclose(x.grad.numpy(), numpy.array([2.0, 4.0, 8.0]) * numpy.log(2.0))


def test_pow_negative_base_with_constant_exponent(backend):
    """x ** 2 for x < 0 is fine: ln x is only needed for the exponent's gradient, so no warning."""
    x = mt.tensor([-2.0, 3.0], dtype="float64", requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x ** 2).sum().backward()
        (x ** mt.tensor(3.0, dtype="float64")).sum().backward()     # a constant exponent tensor
    numpy.testing.assert_allclose(x.grad.numpy(), [-4.0 + 12.0, 6.0 + 27.0])


# ---- gradient checks --------------------------------------------------------------------------
@pytest.mark.parametrize("name", BINARY)
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=pair_with_layouts())
def test_binary_gradcheck_broadcasting(backend, name, drawn):
    a_shape, b_shape, a_layout, b_layout, seed = drawn
    op, _, _, right = BINARY[name]
    a = make(a_shape, seed=seed, layout=a_layout, **LEFT_RANGE.get(name, {}))
    b = make(b_shape, seed=seed + 1, layout=b_layout, **right)
    assert mt.gradcheck(op, (a, b))


@pytest.mark.parametrize("name", UNARY)
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shape_with_layout())
def test_unary_gradcheck(backend, name, drawn):
    shape, layout, seed = drawn
    op, _, _, kwargs = UNARY[name]
    x = make(shape, seed=seed, layout=layout, **kwargs)
    assert mt.gradcheck(op, (x,))


@pytest.mark.parametrize("name", BINARY)
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shape_with_layout(), scalar=st.sampled_from([2, -1, 0.5, 2.5, -1.5]), scalar_first=st.booleans())
def test_binary_gradcheck_with_python_number(backend, name, drawn, scalar, scalar_first):
    shape, layout, seed = drawn
    op = BINARY[name][0]
    if name == "pow" and scalar_first:
        scalar = abs(scalar)                              # scalar ** x needs a positive base
    kwargs = {"low": 0.5, "high": 2.0} if name == "pow" else {"away_from": 0.0} if name == "div" else {}
    x = make(shape, seed=seed, layout=layout, **kwargs)
    fn = (lambda t: op(scalar, t)) if scalar_first else (lambda t: op(t, scalar))
    assert mt.gradcheck(fn, (x,))


@pytest.mark.parametrize("name", BINARY)
def test_binary_gradcheck_one_input_requires_grad(backend, name):
    """needs_input_grad: each side alone still gets the right gradient, the other gets none."""
    op, _, _, right = BINARY[name]
    for a_grad in (True, False):
        a = make((3, 4), seed=1, requires_grad=a_grad, **LEFT_RANGE.get(name, {}))
        b = make((4,), seed=2, requires_grad=not a_grad, **right)
        assert mt.gradcheck(op, (a, b))
        op(a, b).sum().backward()                # gradcheck works on copies: look at a and b here
        assert (a.grad is None) != a_grad and (b.grad is None) == a_grad
        grad = (a if a_grad else b).grad
        assert grad.shape == (a if a_grad else b).shape


# ---- forward against NumPy --------------------------------------------------------------------
@pytest.mark.parametrize("name", BINARY)
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=pair_with_layouts())
def test_binary_forward_matches_numpy(backend, name, drawn):
    a_shape, b_shape, a_layout, b_layout, seed = drawn
    op, formula, _, right = BINARY[name]
    a = make(a_shape, seed=seed, layout=a_layout, **LEFT_RANGE.get(name, {}))
    b = make(b_shape, seed=seed + 1, layout=b_layout, **right)
    y = op(a, b)
    expected = formula(host(a), host(b))
    assert y.shape == expected.shape
    assert y.backend == backend
    numpy.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", UNARY)
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shape_with_layout())
def test_unary_forward_matches_numpy(backend, name, drawn):
    shape, layout, seed = drawn
    op, formula, _, kwargs = UNARY[name]
    x = make(shape, seed=seed, layout=layout, **kwargs)
    y = op(x)
    assert y.backend == backend
    numpy.testing.assert_allclose(y.numpy(), formula(host(x)), rtol=1e-12, atol=0)


def test_operators_call_the_ops(backend):
    a = make((2, 3), seed=1, low=0.5, high=2.0)
    b = make((2, 3), seed=2, low=0.5, high=2.0)
    ha, hb = host(a), host(b)
    cases = [(a + b, ha + hb), (a - b, ha - hb), (a * b, ha * hb), (a / b, ha / hb), (a ** b, ha ** hb),
             (-a, -ha), (a.exp(), numpy.exp(ha)), (a.log(), numpy.log(ha)), (a.sqrt(), numpy.sqrt(ha)),
             (a.pow(2), ha ** 2), (2 - a, 2 - ha), (2 / a, 2 / ha), (3 ** a, 3 ** ha)]
    for ours, expected in cases:
        numpy.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12)


# ---- Python numbers keep the tensor's dtype ------------------------------------------------------
SCALAR_CASES = {
    "x + s": (lambda x, s: x + s, lambda x, s: x + s),
    "s + x": (lambda x, s: s + x, lambda x, s: s + x),
    "x - s": (lambda x, s: x - s, lambda x, s: x - s),
    "s - x": (lambda x, s: s - x, lambda x, s: s - x),
    "x * s": (lambda x, s: x * s, lambda x, s: x * s),
    "s * x": (lambda x, s: s * x, lambda x, s: s * x),
    "x / s": (lambda x, s: x / s, lambda x, s: x / s),
    "s / x": (lambda x, s: s / x, lambda x, s: s / x),
    "x ** s": (lambda x, s: x ** s, lambda x, s: x ** s),
    "s ** x": (lambda x, s: s ** x, lambda x, s: s ** x),
}


@pytest.mark.parametrize("scalar", [3, 2.5])
@pytest.mark.parametrize("case", SCALAR_CASES)
def test_python_number_keeps_float32(backend, case, scalar):
    """A Python int or float is a weak scalar: neither the output nor the gradient is upcast."""
    ours, formula = SCALAR_CASES[case]
    x = make((2, 3), seed=3, low=0.5, high=2.0, dtype="float32")
    y = ours(x, scalar)
    assert y.dtype == numpy.float32, f"{case} gave {y.dtype}"
    numpy.testing.assert_allclose(y.numpy(), formula(host(x).astype(numpy.float64), scalar), rtol=1e-6)
    y.sum().backward()
    assert x.grad.dtype == numpy.float32, f"the gradient of {case} is {x.grad.dtype}"
    assert x.grad.backend == backend


@pytest.mark.parametrize("name", UNARY)
def test_unary_keeps_float32(backend, name):
    op, _, _, kwargs = UNARY[name]
    x = make((3, 2), seed=4, dtype="float32", **kwargs)
    y = op(x)
    y.sum().backward()
    assert y.dtype == numpy.float32 and x.grad.dtype == numpy.float32


# ---- torch -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BINARY)
@settings(max_examples=TORCH_EXAMPLES)
@given(drawn=pair_with_layouts())
def test_binary_matches_torch(backend, torch, name, drawn):
    a_shape, b_shape, a_layout, b_layout, seed = drawn
    op, _, torch_name, right = BINARY[name]
    a = make(a_shape, seed=seed, layout=a_layout, **LEFT_RANGE.get(name, {}))
    b = make(b_shape, seed=seed + 1, layout=b_layout, **right)
    compare(torch, op, getattr(torch, torch_name), [a, b])


@pytest.mark.parametrize("name", UNARY)
@settings(max_examples=TORCH_EXAMPLES)
@given(drawn=shape_with_layout())
def test_unary_matches_torch(backend, torch, name, drawn):
    shape, layout, seed = drawn
    op, _, torch_name, kwargs = UNARY[name]
    x = make(shape, seed=seed, layout=layout, **kwargs)
    compare(torch, op, getattr(torch, torch_name), [x])


@pytest.mark.parametrize("scalar", [2, 0.5, -1.5])
@pytest.mark.parametrize("name", BINARY)
def test_python_number_matches_torch(backend, torch, name, scalar):
    op, _, torch_name, _ = BINARY[name]
    kwargs = {"low": 0.5, "high": 2.0} if name in ("pow", "div") else {}
    x = make((3, 4), seed=5, **kwargs)
    compare(torch, lambda t: op(t, scalar), lambda t: getattr(torch, torch_name)(t, scalar), [x])
    base = abs(scalar) if name == "pow" else scalar
    x = make((3, 4), seed=6, **kwargs)
    compare(torch, lambda t: op(base, t), lambda t: getattr(torch, torch_name)(base, t), [x])


# ---- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BINARY)
def test_shape_mismatch_is_one_clear_error(backend, name):
    op = BINARY[name][0]
    a, b = make((2, 3), seed=1, low=0.5), make((4,), seed=2, low=0.5)
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        op(a, b)


def test_mixed_backends_are_refused():
    with mt.use_backend("numpy"):
        a = make((2,), seed=1)
    with mt.use_backend("strict"):
        b = make((2,), seed=2)
    with pytest.raises(shim.BackendError, match="two backends"):
        F.add(a, b)


# ---- numerical stability ---------------------------------------------------------------------
def test_exp_at_extremes_in_float32(backend):
    """e^-1000 underflows to 0 and e^1000 overflows to inf, as in torch, with no warning."""
    low = mt.tensor([-1000.0, 0.0], dtype="float32", requires_grad=True)
    high = mt.tensor([1000.0], dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.exp(low)
        y.sum().backward()
        big = F.exp(high)
    assert y.dtype == numpy.float32 and big.dtype == numpy.float32
    numpy.testing.assert_array_equal(y.numpy(), [0.0, 1.0])
    numpy.testing.assert_array_equal(low.grad.numpy(), [0.0, 1.0])
    assert numpy.isposinf(big.numpy()).all()
