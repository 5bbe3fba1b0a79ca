"""Reductions: sum mean amax max argmax over dims (None, int, negative, tuple), with keepdim."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import functional as F, parallel
from minitorch_seg.testing import distinct, layouts, make, shapes
from torch_compare import compare
from helpers import host

pytestmark = pytest.mark.reduce

GRAD_EXAMPLES = 12
TORCH_EXAMPLES = 6
seeds = st.integers(0, 2**16)


@st.composite
def dims_for(draw, ndim):
    """None, one dim (maybe negative), a tuple of distinct dims (each maybe negative), or ()."""
    kind = draw(st.sampled_from(["none", "int", "tuple", "empty"]))
    if kind == "none":
        return None
    if kind == "empty":
        return ()                                     # torch: every dim, like None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in chosen)


@st.composite
def reduction_case(draw, max_dims=4, max_side=4):
    shape = draw(shapes(1, max_dims, 1, max_side))
    return shape, draw(layouts(len(shape))), draw(dims_for(len(shape))), draw(st.booleans()), draw(seeds)


@st.composite
def one_dim_case(draw, max_dims=4, max_side=4):
    shape = draw(shapes(1, max_dims, 1, max_side))
    ndim = len(shape)
    return shape, draw(layouts(ndim)), draw(st.integers(-ndim, ndim - 1)), draw(st.booleans()), draw(seeds)


def distinct_with_layout(shape, layout, seed):
    """All-different values (no ties) stored in ``layout`` order: a non-contiguous leaf."""
    stored = distinct(tuple(shape[i] for i in layout), seed=seed)
    return mt.Tensor(stored.data.transpose(tuple(numpy.argsort(layout))), requires_grad=True)


REDUCTIONS = {
    "sum": (F.sum, numpy.sum),
    "mean": (F.mean, numpy.mean),
    "amax": (F.amax, numpy.amax),
}


# ---- hand-computed ------------------------------------------------------------------------------
def test_hand_computed(backend):
    x = mt.tensor([[1.0, 5.0, 2.0], [4.0, 3.0, 6.0]], dtype="float64", requires_grad=True)
    assert x.sum().item() == 21.0
    numpy.testing.assert_array_equal(x.sum(0).numpy(), [5.0, 8.0, 8.0])
    numpy.testing.assert_array_equal(x.mean(-1, keepdim=True).numpy(), [[8 / 3], [13 / 3]])
    numpy.testing.assert_array_equal(x.amax((0, 1)).numpy(), 6.0)
    values, indices = x.max(1)
    numpy.testing.assert_array_equal(values.numpy(), [5.0, 6.0])
    numpy.testing.assert_array_equal(indices.numpy(), [1, 2])
    (values * mt.tensor([10.0, 20.0], dtype="float64")).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [[0, 10, 0], [0, 0, 20]])


# ---- gradient checks ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean"])
@settings(max_examples=GRAD_EXAMPLES)
@given(case=reduction_case())
def test_sum_mean_gradcheck(backend, name, case):
    shape, layout, dim, keepdim, seed = case
    op = REDUCTIONS[name][0]
    x = make(shape, seed=seed, layout=layout)
    assert mt.gradcheck(lambda t: op(t, dim, keepdim), (x,))


@settings(max_examples=GRAD_EXAMPLES)
@given(case=reduction_case())
def test_amax_gradcheck(backend, case):
    shape, layout, dim, keepdim, seed = case
    x = distinct_with_layout(shape, layout, seed)
    assert mt.gradcheck(lambda t: F.amax(t, dim, keepdim), (x,))


@settings(max_examples=GRAD_EXAMPLES)
@given(case=one_dim_case())
def test_max_along_dim_gradcheck(backend, case):
    shape, layout, dim, keepdim, seed = case
    x = distinct_with_layout(shape, layout, seed)
    assert mt.gradcheck(lambda t: F.max(t, dim, keepdim), (x,))


@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=st.tuples(shapes(1, 4, 1, 4), seeds))
def test_max_without_dim_gradcheck(backend, drawn):
    shape, seed = drawn
    x = distinct(shape, seed=seed)
    assert mt.gradcheck(lambda t: t.max(), (x,))


# ---- forward against NumPy ----------------------------------------------------------------------
@pytest.mark.parametrize("name", REDUCTIONS)
@settings(max_examples=GRAD_EXAMPLES)
@given(case=reduction_case())
def test_forward_matches_numpy(backend, name, case):
    shape, layout, dim, keepdim, seed = case
    op, formula = REDUCTIONS[name]
    x = make(shape, seed=seed, layout=layout)
    y = op(x, dim, keepdim)
    expected = formula(host(x), axis=None if dim == () else dim, keepdims=keepdim)   # NumPy: () is no dim
    assert y.shape == expected.shape
    assert y.backend == backend
    numpy.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)


@settings(max_examples=GRAD_EXAMPLES)
@given(case=one_dim_case())
def test_max_along_dim_returns_values_and_indices(backend, case):
    shape, layout, dim, keepdim, seed = case
    x = make(shape, seed=seed, layout=layout)
    result = F.max(x, dim, keepdim)
    values, indices = result
    assert result.values is values and result.indices is indices
    numpy.testing.assert_array_equal(values.numpy(), numpy.amax(host(x), axis=dim, keepdims=keepdim))
    numpy.testing.assert_array_equal(indices.numpy(), numpy.argmax(host(x), axis=dim, keepdims=keepdim))
    assert indices.dtype == numpy.int64
    assert not indices.requires_grad and values.requires_grad
    assert x.max(dim, keepdim=keepdim).values.shape == values.shape


@settings(max_examples=GRAD_EXAMPLES)
@given(case=one_dim_case())
def test_argmax(backend, case):
    shape, layout, dim, keepdim, seed = case
    x = make(shape, seed=seed, layout=layout)
    flat = F.argmax(x)
    assert flat.shape == () and flat.item() == numpy.argmax(host(x))
    along = x.argmax(dim, keepdim=keepdim)
    numpy.testing.assert_array_equal(along.numpy(), numpy.argmax(host(x), axis=dim, keepdims=keepdim))
    assert along.dtype == numpy.int64 and not along.requires_grad
    assert along.backend == backend


def test_argmax_ties_pick_the_first(backend):
    x = mt.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    numpy.testing.assert_array_equal(F.argmax(x, 1).numpy(), [1, 0])
    assert F.argmax(x).item() == 1


@pytest.mark.parametrize("threads", [1, 3])
@settings(max_examples=GRAD_EXAMPLES)
@given(case=one_dim_case(), name=st.sampled_from(["argmax", "argmin"]), tile_bytes=st.sampled_from([8, 24, 1 << 22]))
def test_argmax_and_argmin_in_runs_of_the_first_axis_on_several_threads(backend, threads, case, name, tile_bytes,
                                                                        monkeypatch):
    """Along a dim past the first, argmax and argmin go through runs of the first axis on the host
    threads (``reduce._along``: the class scores of a batch). In runs of one sample up to whole, on
    one thread and on three, over non-contiguous values with ties and NaNs, the indices are NumPy's:
    the first extreme, and the first NaN where there is one."""
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    monkeypatch.setattr(parallel, "STREAM_TILES", parallel.STREAM_TILES._replace(bytes=tile_bytes))
    shape, layout, dim, keepdim, seed = case
    rng = numpy.random.default_rng(seed)
    values = rng.integers(0, 3, shape).astype(float)                    # ties in most runs along dim
    values[rng.random(shape) < 0.1] = numpy.nan
    x = mt.tensor(numpy.ascontiguousarray(values.transpose(layout)), dtype="float64").permute(
        *numpy.argsort(layout).tolist())
    expected = getattr(numpy, name)(host(x), axis=dim, keepdims=keepdim)
    indices = getattr(F, name)(x, dim, keepdim)
    numpy.testing.assert_array_equal(indices.numpy(), expected)
    assert indices.dtype == numpy.int64 and indices.backend == backend


# ---- ties ------------------------------------------------------------------------------------------
def test_amax_splits_ties_evenly(backend):
    x = mt.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype="float64", requires_grad=True)
    F.amax(x, 1).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.grad = None
    F.amax(x).backward()                                   # one maximum, 3, shared by two elements
    numpy.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [0, 0, 0]])
    x.grad = None
    x.max().backward()                                     # max() without dim is amax
    numpy.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [0, 0, 0]])


def test_max_along_dim_sends_gradient_to_the_first_maximum(backend):
    x = mt.tensor([[3.0, 1.0, 3.0], [2.0, 5.0, 5.0]], dtype="float64", requires_grad=True)
    values, indices = x.max(dim=1)
    numpy.testing.assert_array_equal(indices.numpy(), [0, 1])
    values.sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 0], [0, 1, 0]])


def test_ties_match_torch(backend, torch):
    x = mt.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, 7.0, 7.0]], dtype="float64", requires_grad=True)
    compare(torch, lambda t: F.amax(t, 1), lambda t: torch.amax(t, 1), [x])
    x.grad = None
    compare(torch, lambda t: F.amax(t, (0, 1), True), lambda t: torch.amax(t, (0, 1), True), [x])
    x.grad = None
    compare(torch, lambda t: t.max(), lambda t: t.max(), [x])
    x.grad = None
    compare(torch, lambda t: F.max(t, 0), lambda t: torch.max(t, 0), [x])


@pytest.mark.parametrize("name", REDUCTIONS)
def test_empty_dim_tuple_reduces_every_dim(backend, name):
    """torch reads dim=() as "all dims" (amax's default), not as "no dim"."""
    op, formula = REDUCTIONS[name]
    x = make((2, 3), seed=1)
    assert op(x, ()).shape == () and op(x, (), True).shape == (1, 1)
    numpy.testing.assert_allclose(op(x, ()).numpy(), formula(host(x)), rtol=1e-12)


def test_float32_stays_float32(backend):
    x = make((3, 4), seed=2, dtype="float32")
    for y in (x.sum(1), x.mean(), x.amax(0), x.max(1).values):
        assert y.dtype == numpy.float32
        x.grad = None
        y.sum().backward()
        assert x.grad.dtype == numpy.float32


# ---- torch -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean"])
@settings(max_examples=TORCH_EXAMPLES)
@given(case=reduction_case())
def test_sum_mean_match_torch(backend, torch, name, case):
    shape, layout, dim, keepdim, seed = case
    ours = REDUCTIONS[name][0]
    theirs = getattr(torch, name)
    x = make(shape, seed=seed, layout=layout)
    compare(torch, lambda t: ours(t, dim, keepdim), lambda t: theirs(t, dim=dim, keepdim=keepdim), [x])


@settings(max_examples=TORCH_EXAMPLES)
@given(case=reduction_case())
def test_amax_matches_torch(backend, torch, case):
    shape, layout, dim, keepdim, seed = case
    x = distinct_with_layout(shape, layout, seed)
    torch_dim = () if dim is None else dim                  # torch.amax: () means every dim
    compare(torch, lambda t: F.amax(t, dim, keepdim), lambda t: torch.amax(t, torch_dim, keepdim), [x])


@settings(max_examples=TORCH_EXAMPLES)
@given(case=one_dim_case())
def test_max_along_dim_matches_torch(backend, torch, case):
    shape, layout, dim, keepdim, seed = case
    x = distinct_with_layout(shape, layout, seed)
    compare(torch, lambda t: F.max(t, dim, keepdim), lambda t: torch.max(t, dim, keepdim), [x])


@settings(max_examples=TORCH_EXAMPLES)
@given(case=one_dim_case())
def test_argmax_matches_torch(backend, torch, case):
    shape, layout, dim, keepdim, seed = case
    x = make(shape, seed=seed, layout=layout, requires_grad=False)
    expected = torch.argmax(torch.from_numpy(x.numpy().copy()), dim, keepdim)
    numpy.testing.assert_array_equal(F.argmax(x, dim, keepdim).numpy(), expected.numpy())


# ---- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "max", "argmax"])
@pytest.mark.parametrize("dim", [2, -3, (0, 5)])
def test_dim_out_of_range(backend, name, dim):
    op = getattr(F, name)
    if name in ("max", "argmax") and isinstance(dim, tuple):
        dim = 7
    x = make((2, 3), seed=0)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\]"):
        op(x, dim)


@pytest.mark.parametrize("name", ["max", "argmax"])
def test_max_and_argmax_take_one_dim(backend, name):
    """torch.max(x, dim) and argmax reduce one dim; a tuple is refused, not cut to its first dim."""
    x = make((2, 3), seed=0)
    with pytest.raises(TypeError, match=f"{name}: dim must be an int"):
        getattr(F, name)(x, (0, 1))
