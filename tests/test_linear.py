"""Matrix products: matmul (1-D operands, batched with broadcast batch dims) and linear."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import functional as F
from minitorch_seg.testing import broadcastable_pair, layouts, make, shapes
from torch_compare import compare
from helpers import host

pytestmark = pytest.mark.elementwise   # no "linear" marker is registered; products sit with arithmetic

GRAD_EXAMPLES = 12
TORCH_EXAMPLES = 6
seeds = st.integers(0, 2**16)
sides = st.integers(1, 4)


@st.composite
def matmul_case(draw):
    """Shapes for every kind of operand pair torch accepts: 1-D x 1-D, 1-D x N-D, N-D x 1-D, N-D x N-D."""
    kind = draw(st.sampled_from(["vv", "vm", "mv", "mm"]))
    n, k, m = draw(sides), draw(sides), draw(sides)
    batch_a, batch_b = draw(st.one_of(st.just(((), ())), broadcastable_pair(max_dims=2, max_side=3)))
    if draw(st.booleans()):                            # sometimes only one side is batched
        batch_a, batch_b = (batch_a, ()) if draw(st.booleans()) else ((), batch_b)
    a = (k,) if kind[0] == "v" else batch_a + (n, k)
    b = (k,) if kind[1] == "v" else batch_b + (k, m)
    return a, b, draw(layouts(len(a))), draw(layouts(len(b))), draw(seeds)


@st.composite
def linear_case(draw):
    lead = draw(shapes(0, 2, 1, 3))                    # x is 1-D, 2-D or 3-D
    features_in, features_out = draw(sides), draw(sides)
    x = lead + (features_in,)
    return x, (features_out, features_in), draw(layouts(len(x))), draw(layouts(2)), draw(st.booleans()), draw(seeds)


# ---- hand-computed ------------------------------------------------------------------------------
def test_hand_computed(backend):
    a = mt.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64", requires_grad=True)
    v = mt.tensor([1.0, -1.0], dtype="float64", requires_grad=True)
    numpy.testing.assert_array_equal((a @ a).numpy(), [[7, 10], [15, 22]])
    assert (v @ v).shape == () and (v @ v).item() == 2.0
    y = a @ v                                            # [-1, -1]
    numpy.testing.assert_array_equal(y.numpy(), [-1, -1])
    y.sum().backward()
    numpy.testing.assert_array_equal(a.grad.numpy(), [[1, -1], [1, -1]])   # dL/dA = g v^T
    numpy.testing.assert_array_equal(v.grad.numpy(), [4, 6])               # dL/dv = A^T g
    w = mt.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype="float64")
    b = mt.tensor([0.5, 0.0, -1.0], dtype="float64")
    numpy.testing.assert_array_equal(F.linear(v, w, b).numpy(), [1.5, -2.0, -1.0])


# ---- matmul -------------------------------------------------------------------------------------
@settings(max_examples=GRAD_EXAMPLES)
@given(case=matmul_case())
def test_matmul_gradcheck_and_values(backend, case):
    a_shape, b_shape, a_layout, b_layout, seed = case
    a = make(a_shape, seed=seed, layout=a_layout)
    b = make(b_shape, seed=seed + 1, layout=b_layout)
    y = a @ b
    expected = numpy.matmul(host(a), host(b))
    assert y.shape == expected.shape and y.backend == backend
    numpy.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-14)
    assert mt.gradcheck(F.matmul, (a, b))


@settings(max_examples=TORCH_EXAMPLES)
@given(case=matmul_case())
def test_matmul_matches_torch(backend, torch, case):
    a_shape, b_shape, a_layout, b_layout, seed = case
    a = make(a_shape, seed=seed, layout=a_layout)
    b = make(b_shape, seed=seed + 1, layout=b_layout)
    compare(torch, F.matmul, torch.matmul, [a, b])


@pytest.mark.parametrize("which", ["a", "b"])
def test_matmul_one_side_requires_grad(backend, which):
    a = make((2, 3, 4), seed=1, requires_grad=which == "a")
    b = make((4, 5), seed=2, requires_grad=which == "b")
    assert mt.gradcheck(F.matmul, (a, b))            # gradcheck works on copies: backward here too
    F.matmul(a, b).sum().backward()
    assert (a.grad is None) == (which == "b") and (b.grad is None) == (which == "a")


def test_matmul_float32_stays_float32(backend):
    a, b = make((2, 3), seed=1, dtype="float32"), make((3,), seed=2, dtype="float32")
    y = a @ b
    y.sum().backward()
    assert y.dtype == a.grad.dtype == b.grad.dtype == numpy.float32


# ---- linear -------------------------------------------------------------------------------------
@settings(max_examples=GRAD_EXAMPLES)
@given(case=linear_case())
def test_linear_gradcheck_and_values(backend, case):
    x_shape, w_shape, x_layout, w_layout, with_bias, seed = case
    x = make(x_shape, seed=seed, layout=x_layout)
    w = make(w_shape, seed=seed + 1, layout=w_layout)
    b = make(w_shape[:1], seed=seed + 2) if with_bias else None
    y = F.linear(x, w, b)
    expected = host(x) @ host(w).T + (host(b) if with_bias else 0.0)
    assert y.shape == x_shape[:-1] + w_shape[:1]
    numpy.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-14)
    inputs = (x, w, b) if with_bias else (x, w)
    assert mt.gradcheck(F.linear, inputs)


@settings(max_examples=TORCH_EXAMPLES)
@given(case=linear_case())
def test_linear_matches_torch(backend, torch, case):
    x_shape, w_shape, x_layout, w_layout, with_bias, seed = case
    x = make(x_shape, seed=seed, layout=x_layout)
    w = make(w_shape, seed=seed + 1, layout=w_layout)
    inputs = [x, w, make(w_shape[:1], seed=seed + 2)] if with_bias else [x, w]
    compare(torch, F.linear, torch.nn.functional.linear, inputs)


def test_linear_only_the_weight_requires_grad(backend):
    x = make((2, 3, 4), seed=1, requires_grad=False)
    w, b = make((5, 4), seed=2), make((5,), seed=3, requires_grad=False)
    assert mt.gradcheck(F.linear, (x, w, b))
    F.linear(x, w, b).sum().backward()
    assert x.grad is None and b.grad is None and w.grad.shape == (5, 4)


# ---- errors ------------------------------------------------------------------------------------
def test_matmul_errors(backend):
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not match: the inner sizes 3 and 4"):
        make((2, 3), seed=0) @ make((4, 5), seed=1)
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(4,\) do not match"):
        make((3,), seed=0) @ make((4,), seed=1)
    with pytest.raises(ValueError, match=r"matmul: the batch dims of \(2, 2, 3\) and \(3, 3, 4\) cannot be broadcast"):
        make((2, 2, 3), seed=0) @ make((3, 3, 4), seed=1)
    with pytest.raises(ValueError, match="matmul: both operands need at least one dimension"):
        F.matmul(make((), seed=0), make((3,), seed=1))


def test_linear_errors(backend):
    with pytest.raises(ValueError, match=r"linear: input has 3 features in its last dim but weight \(5, 4\) expects 4"):
        F.linear(make((2, 3), seed=0), make((5, 4), seed=1))
