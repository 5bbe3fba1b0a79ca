"""The autograd engine, the Tensor API and the factories.

Hand-computed gradients throughout: each test says which derivative it expects and why.
"""
import weakref

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import autograd, dtypes
from minitorch_seg import backend as shim
from minitorch_seg.autograd import Function

pytestmark = pytest.mark.autograd


def leaf(values, dtype="float64"):
    return mt.tensor(numpy.asarray(values, dtype=dtype), requires_grad=True)


def nodes_of(root):
    """Every graph node reachable from ``root`` (iteratively: the chain test is 10,000 deep)."""
    seen, stack = {}, [root.grad_fn]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(e[0] for e in node.edges if e is not None and isinstance(e[0], autograd.Context))
    return list(seen.values())


# ---- the engine -----------------------------------------------------------------------------
def test_gradients_accumulate_into_leaves_across_backward_calls():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()               # d/dx sum x^2 = 2x
    numpy.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])
    (x * x).sum().backward()               # a second, fresh graph adds another 2x
    numpy.testing.assert_allclose(x.grad.numpy(), [4.0, -8.0, 12.0])
    assert x.grad.dtype == numpy.float64


def test_grad_is_owned_by_the_leaf_not_aliased_to_the_upstream_gradient():
    x = leaf([1.0, 2.0])
    g = numpy.array([1.0, 1.0])
    (x * 1.0).backward(g)
    x.grad.data += 5.0                     # must not write into the gradient the caller passed
    numpy.testing.assert_array_equal(g, [1.0, 1.0])


def test_fan_out_sums_every_path():
    x = leaf([0.5, 2.0])
    y = x * x + x * 3.0 + x                # dy/dx = 2x + 3 + 1
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [2 * 0.5 + 4, 2 * 2.0 + 4])


def test_fan_out_of_an_intermediate_node():
    x = leaf([1.5])
    h = x * 2.0                            # used twice below: its gradient must be the sum
    y = h * h + h                          # y = 4x^2 + 2x, dy/dx = 8x + 2
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [8 * 1.5 + 2])


def test_ten_thousand_op_chain_backward_without_recursion_error():
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001                     # y = x * 1.0001^10000, dy/dx = 1.0001^10000
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 10_000] * 2, rtol=1e-9)
    nodes = nodes_of(y)
    assert len(nodes) == 10_000            # y's node and the 9,999 muls before it
    assert all(node.freed and node.saved_arrays == () for node in nodes)


def test_second_backward_through_a_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward_that_doubles_the_grad():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    assert not y.grad_fn.freed
    y.backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])   # 2 * 2x
    assert all(node.freed for node in nodes_of(y))


def test_graph_frees_saved_arrays_and_attributes_after_backward():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0])
    p = x * w                              # Mul saves both operands
    s = p + 1.0                            # Add keeps the shapes as a ctx attribute
    assert len(p.grad_fn.saved_arrays) == 2 and hasattr(s.grad_fn, "shapes")
    s.sum().backward()
    assert p.grad_fn.saved_arrays == () and p.grad_fn.freed
    assert s.grad_fn.freed and not hasattr(s.grad_fn, "shapes")
    numpy.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])
    numpy.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])


# ---- free gradients: arrays a backward may write its result into ----------------------------------
class Probe(Function):
    """Identity that records whether the engine called its incoming gradient free (and, if ``keep``, the gradient)."""
    seen, got, keep = [], [], False

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        Probe.seen.append(ctx.free_grads[0])
        if Probe.keep:                                # a reference: the gradient is no longer free
            Probe.got.append(g)
        return g


class Fresh(Function):
    """Identity whose backward returns a gradient of its own: a new array, or a reshaped view of one."""
    sent = None

    @staticmethod
    def forward(ctx, x, view):
        ctx.view = view
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        h = g * 1.0
        Fresh.sent = weakref.ref(h)                                          # not a reference: h stays free
        return h.reshape(-1).reshape(h.shape) if ctx.view else h


class Both(Function):
    """x + y, whose backward hands one array to both inputs, or two halves of one array."""

    @staticmethod
    def forward(ctx, x, y, halves):
        ctx.halves = halves
        return numpy.concatenate([x, y]) if halves else x + y

    @staticmethod
    def backward(ctx, g):
        h = g * 1.0
        return (h[:len(h) // 2], h[len(h) // 2:]) if ctx.halves else (h, h)


class Saved(Function):
    """Identity whose backward returns an array it saved."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x * 1.0)
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return ctx.saved_arrays[0]


@pytest.mark.parametrize("view", [False, True], ids=["new array", "view of a new array"])
def test_a_gradient_nothing_else_holds_is_free_and_one_the_caller_holds_is_not(view):
    Probe.seen = []
    x = leaf([1.0, 2.0])
    Fresh.apply(Probe.apply(x), view=view).backward(numpy.ones(2))   # Probe gets Fresh's gradient
    Probe.apply(x).backward(numpy.ones(2))                             # Probe gets the caller's
    assert Probe.seen == [True, False]


@pytest.mark.parametrize("halves", [False, True], ids=["one array", "halves of one array"])
def test_a_gradient_handed_to_two_inputs_is_free_only_for_the_last_to_take_it(halves):
    """Both inputs get one array (or views of one): while the other still holds it, it is not
    free; once the first has run, the array (its owner) is the last one's alone."""
    Probe.seen = []
    x = leaf([1.0, 2.0])
    Both.apply(Probe.apply(x), Probe.apply(x), halves=halves).backward(numpy.ones(4 if halves else 2))
    assert Probe.seen == [False, True]


@pytest.mark.parametrize("retain", [True, False])
def test_a_saved_array_handed_back_is_free_only_once_the_graph_lets_it_go(retain):
    Probe.seen = []
    Saved.apply(Probe.apply(leaf([1.0, 2.0]))).backward(numpy.ones(2), retain_graph=retain)
    assert Probe.seen == [not retain]


def test_paths_that_meet_add_into_the_first_gradient_where_it_is_free():
    slot, grad = [numpy.ones(3)], numpy.full(3, 2.0)
    first = weakref.ref(slot[0])
    autograd._accumulate(slot, 0, grad)
    assert slot[0] is first() and slot[0].tolist() == [3.0, 3.0, 3.0]       # in place
    held = slot[0]                                                           # someone else holds it now
    autograd._accumulate(slot, 0, grad)
    assert slot[0] is not held and held.tolist() == [3.0, 3.0, 3.0] and slot[0].tolist() == [5.0, 5.0, 5.0]


class Breaks(Saved):
    """``Saved``, whose backward writes into the array it saved, then fails half way."""

    @staticmethod
    def backward(ctx, g):
        (saved,) = ctx.saved_arrays
        saved *= 2
        raise ValueError("stopped half way")


def test_a_backward_that_stops_half_way_cannot_be_run_again_on_what_it_overwrote():
    """With no retain_graph a backward may write into what it saved; if it stops half way (an
    error, Ctrl-C), a second backward() raises instead of reading those arrays."""
    y = Breaks.apply(leaf([1.0, 2.0]))
    with pytest.raises(ValueError, match="half way"):
        y.backward(numpy.ones(2))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward(numpy.ones(2))


def test_relu_writes_its_gradient_into_a_free_one_only():
    """Two ReLUs handed one array (x + y's backward): neither may write into it; the caller's
    gradient stays as it was; a fresh one is taken over."""
    x, y = leaf([-1.0, 2.0, 3.0]), leaf([4.0, -5.0, 6.0])
    upstream = numpy.array([1.0, 2.0, 3.0])
    (mt.relu(x) + mt.relu(y)).backward(upstream)
    numpy.testing.assert_array_equal(x.grad.numpy(), [0.0, 2.0, 3.0])
    numpy.testing.assert_array_equal(y.grad.numpy(), [1.0, 0.0, 3.0])
    numpy.testing.assert_array_equal(upstream, [1.0, 2.0, 3.0])
    mt.relu(Fresh.apply(x, view=False)).backward(upstream)
    numpy.testing.assert_array_equal(x.grad.numpy(), [0.0, 4.0, 6.0])
    numpy.testing.assert_array_equal(upstream, [1.0, 2.0, 3.0])
    Probe.seen, Probe.got, Probe.keep = [], [], True
    Fresh.apply(mt.relu(Probe.apply(x)), view=False).backward(upstream)   # Probe gets ReLU's gradient
    Probe.keep = False
    assert Probe.seen == [True] and numpy.shares_memory(Probe.got[0], Fresh.sent())


def test_non_scalar_backward_needs_a_gradient():
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"one-element.*gradient="):
        y.backward()


def test_one_element_non_scalar_output_backward_defaults_to_one():
    x = leaf([[3.0]])
    (x * 2.0).backward()                   # shape (1, 1): gradient 1 implied, as in torch
    numpy.testing.assert_allclose(x.grad.numpy(), [[2.0]])


@pytest.mark.parametrize("wrap", [mt.tensor, numpy.asarray], ids=["Tensor", "ndarray"])
def test_backward_with_an_explicit_gradient(wrap):
    x = leaf([1.0, 2.0, 3.0])
    y = x * x                              # dL/dx = 2x * g
    y.backward(wrap(numpy.array([1.0, 0.5, -1.0])))
    numpy.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, -6.0])


def test_backward_with_a_wrongly_shaped_gradient_raises():
    y = leaf([1.0, 2.0, 3.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"gradient of shape \(2,\) for an output of shape \(3,\)"):
        y.backward(numpy.ones(2))


def test_create_graph_is_refused_with_a_clear_error():
    y = (leaf([1.0]) * 2.0).sum()
    with pytest.raises(NotImplementedError, match=r"create_graph=True is not supported.*first-order gradients only"):
        y.backward(create_graph=True)


def test_backward_on_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (mt.tensor([1.0, 2.0]) * 2.0).sum().backward()


def test_backward_on_a_leaf_sets_its_own_grad():
    x = leaf([5.0])
    x.backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [1.0])


# ---- no_grad ----------------------------------------------------------------------------------
def test_no_grad_as_a_context_manager():
    x = leaf([1.0, 2.0])
    assert mt.is_grad_enabled()
    with mt.no_grad():
        assert not mt.is_grad_enabled()
        y = x * 2.0
    assert mt.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    z = x * 2.0                            # recording is back on outside the block
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_as_a_decorator_and_nested_and_after_an_exception():
    @mt.no_grad()
    def double(t):
        assert not mt.is_grad_enabled()
        return t * 2.0

    x = leaf([1.0])
    y = double(x)
    assert not y.requires_grad and y.grad_fn is None
    assert mt.is_grad_enabled()

    with mt.no_grad():
        with mt.no_grad():
            pass
        assert not mt.is_grad_enabled()    # the inner block restores "off", not "on"
    with pytest.raises(ZeroDivisionError):
        with mt.no_grad():
            1 / 0
    assert mt.is_grad_enabled()


# ---- retain_grad, detach, requires_grad --------------------------------------------------------
def test_retain_grad_keeps_the_grad_of_a_non_leaf():
    x = leaf([1.0, -2.0])
    h = x * 3.0
    h.retain_grad()
    other = x * 3.0                        # the same op, not retained
    ((h * h).sum() + other.sum()).backward()
    numpy.testing.assert_allclose(h.grad.numpy(), 2 * numpy.array([3.0, -6.0]))   # d(h^2)/dh = 2h
    assert other.grad is None
    numpy.testing.assert_allclose(x.grad.numpy(), 2 * 3.0 * numpy.array([3.0, -6.0]) + 3.0)


def test_retain_grad_on_a_leaf_is_harmless():
    x = leaf([1.0])
    assert x.retain_grad() is x
    (x * 2.0).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [2.0])


def test_detach_cuts_the_graph_and_shares_the_data():
    x = leaf([2.0, 3.0])
    d = (x * x).detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    (d * x).sum().backward()               # d is a constant here: d/dx (c * x) = c = x^2
    numpy.testing.assert_allclose(x.grad.numpy(), [4.0, 9.0])
    assert numpy.shares_memory(x.detach().numpy(), x.numpy())


@pytest.mark.parametrize("make", [lambda: mt.tensor([1, 2], requires_grad=True),
                                  lambda: mt.tensor([1, 2]).requires_grad_(),
                                  lambda: mt.zeros(2, dtype="int64", requires_grad=True),
                                  lambda: mt.tensor([True], requires_grad=True)])
def test_requires_grad_on_a_non_float_tensor_raises(make):
    with pytest.raises(RuntimeError, match="Only floating-point tensors can require gradients"):
        make()


# ---- Functions --------------------------------------------------------------------------------
class BadShape(Function):
    """y = 2x, with a backward that forgets to keep x's shape."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g.sum()


def test_a_wrongly_shaped_gradient_from_a_function_is_named():
    y = BadShape.apply(leaf([1.0, 2.0, 3.0]))
    with pytest.raises(RuntimeError, match=r"BadShape\.backward returned a gradient of shape \(\) "
                                           r"for an input of shape \(3,\)"):
        y.sum().backward()


class ScaledProduct(Function):
    """y = scale * a * b.  Backward: dL/da = scale * b * g, dL/db = scale * a * g."""

    calls = []

    @staticmethod
    def forward(ctx, a, b, scale):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return scale * a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        ScaledProduct.calls.append(ctx.needs_input_grad)
        return (ctx.scale * b * g if ctx.needs_input_grad[0] else None,
                ctx.scale * a * g if ctx.needs_input_grad[1] else None)


def test_a_custom_function_works_through_apply():
    ScaledProduct.calls.clear()
    a, b = leaf([1.0, 2.0]), leaf([3.0, -4.0])
    y = ScaledProduct.apply(a, b, scale=0.5)
    assert y.grad_fn.name == "ScaledProduct" and y.grad_fn.scale == 0.5
    numpy.testing.assert_allclose(y.numpy(), [1.5, -4.0])
    y.backward(numpy.array([1.0, 2.0]))
    assert ScaledProduct.calls == [(True, True)]
    numpy.testing.assert_allclose(a.grad.numpy(), [1.5, -4.0])    # 0.5 * b * g
    numpy.testing.assert_allclose(b.grad.numpy(), [0.5, 2.0])     # 0.5 * a * g


def test_needs_input_grad_follows_requires_grad():
    ScaledProduct.calls.clear()
    a, b = leaf([1.0, 2.0]), mt.tensor([3.0, -4.0], dtype="float64")
    ScaledProduct.apply(a, b, scale=1.0).sum().backward()
    assert ScaledProduct.calls == [(True, False)]
    assert b.grad is None
    numpy.testing.assert_allclose(a.grad.numpy(), [3.0, -4.0])


def test_a_custom_function_records_nothing_when_no_input_requires_grad():
    y = ScaledProduct.apply(mt.tensor([1.0]), mt.tensor([2.0]), scale=1.0)
    assert y.grad_fn is None and not y.requires_grad


class SplitScale(Function):
    """(2x, 3x): two outputs.  Backward: dL/dx = 2 g1 + 3 g2."""

    @staticmethod
    def forward(ctx, x):
        return x * 2, x * 3

    @staticmethod
    def backward(ctx, g1, g2):
        return 2 * g1 + 3 * g2


def test_a_function_with_two_outputs_sums_both_and_fills_an_unused_one_with_zeros():
    x = leaf([1.0, 2.0])
    y1, y2 = SplitScale.apply(x)
    (y1.sum() + y2.sum()).backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])
    x.grad = None
    y1, _ = SplitScale.apply(x)            # the second output never reached: its gradient is zero
    y1.sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


# ---- factories ----------------------------------------------------------------------------------
@pytest.fixture
def default_dtype():
    """Restores the default dtype whatever the test does to it."""
    before = mt.get_default_dtype()
    yield
    mt.set_default_dtype(before)


@pytest.mark.parametrize("data, dtype", [
    ([1.0, 2.0], numpy.float32), (2.5, numpy.float32), ([1, 2.5], numpy.float32),
    ([[1, 2], [3, 4]], numpy.int64), (7, numpy.int64), ([True, False], numpy.bool_), (True, numpy.bool_),
    (numpy.zeros(2, dtype=numpy.float64), numpy.float64), (numpy.zeros(2, dtype=numpy.int32), numpy.int32),
    (numpy.zeros(2, dtype=numpy.uint8), numpy.uint8), (numpy.float64(1.5), numpy.float64),
])
def test_tensor_dtype_rules(data, dtype):
    t = mt.tensor(data)
    assert t.dtype == dtype
    numpy.testing.assert_array_equal(t.numpy(), numpy.asarray(data))


def test_tensor_copies_its_data_and_takes_a_dtype():
    source = numpy.array([1.0, 2.0])
    t = mt.tensor(source)
    source[0] = 99.0
    assert t.tolist() == [1.0, 2.0]
    assert mt.tensor([1, 2], dtype="float64").dtype == numpy.float64
    assert mt.tensor(t, dtype=mt.float32).dtype == numpy.float32
    assert mt.tensor([1.0]).requires_grad is False and mt.tensor([1.0], requires_grad=True).is_leaf


@pytest.mark.parametrize("factory, value", [(mt.zeros, 0.0), (mt.ones, 1.0), (mt.empty, None)])
def test_zeros_ones_empty_take_varargs_or_a_tuple(factory, value):
    for t in (factory(2, 3), factory((2, 3)), factory([2, 3])):
        assert t.shape == (2, 3) and t.dtype == numpy.float32 and t.is_leaf
        if value is not None:
            assert (t.numpy() == value).all()
    assert factory(4, dtype="float64").dtype == numpy.float64
    assert factory(4, requires_grad=True).requires_grad
    assert factory(()).shape == ()


def test_full():
    t = mt.full((2, 2), 7.5)
    assert t.shape == (2, 2) and t.dtype == numpy.float32 and (t.numpy() == 7.5).all()
    assert mt.full(3, -1.0, dtype="float64").numpy().tolist() == [-1.0, -1.0, -1.0]
    assert mt.full((1,), 2, dtype="int64").dtype == numpy.int64


def test_zeros_like_and_ones_like_keep_shape_dtype_and_backend():
    x = mt.tensor(numpy.arange(6, dtype=numpy.float64).reshape(2, 3))
    z, o = mt.zeros_like(x), mt.ones_like(x)
    assert z.shape == o.shape == (2, 3) and z.dtype == o.dtype == numpy.float64
    assert (z.numpy() == 0).all() and (o.numpy() == 1).all()
    assert mt.ones_like(x, dtype="int64").dtype == numpy.int64
    with shim.use_backend("strict"):
        s = mt.tensor([1.0, 2.0])
    assert mt.zeros_like(s).backend == "strict"    # follows its input, not the current backend


@pytest.mark.parametrize("factory", [mt.rand, mt.randn])
def test_rand_and_randn_are_reproducible_and_identical_on_numpy_and_strict(factory):
    mt.manual_seed(123)
    a = factory(3, 4)
    b = factory(3, 4)
    mt.manual_seed(123)
    with shim.use_backend("strict"):
        c = factory((3, 4))
    assert a.dtype == c.dtype == numpy.float32 and a.shape == (3, 4)
    assert c.backend == "strict" and a.backend == "numpy"
    numpy.testing.assert_array_equal(a.numpy(), c.numpy())
    assert not numpy.array_equal(a.numpy(), b.numpy())   # the generator moved on


def test_rand_and_randn_distributions():
    u = mt.rand(20_000, dtype="float64").numpy()
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.01
    n = mt.randn(20_000).numpy()
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1.0) < 0.03


def test_arange_dtypes_and_values():
    assert mt.arange(4).dtype == numpy.int64 and mt.arange(4).tolist() == [0, 1, 2, 3]
    assert mt.arange(1, 7, 2).tolist() == [1, 3, 5]
    f = mt.arange(0.0, 1.0, 0.25)
    assert f.dtype == numpy.float32 and f.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert mt.arange(0, 2, 0.5).dtype == numpy.float32      # any float argument makes it float
    assert mt.arange(3, dtype="float64").dtype == numpy.float64


def test_set_default_dtype_changes_the_factories_and_can_be_restored(default_dtype):
    mt.set_default_dtype(mt.float64)
    assert mt.get_default_dtype() == numpy.float64
    assert mt.tensor([1.0]).dtype == mt.zeros(2).dtype == mt.rand(2).dtype == numpy.float64
    assert mt.arange(0.0, 1.0, 0.5).dtype == numpy.float64
    assert mt.tensor([1]).dtype == numpy.int64              # ints are not affected
    assert repr(mt.tensor([1.0])) == "tensor([1.])"          # the default dtype is not printed
    mt.set_default_dtype("float32")
    assert mt.tensor([1.0]).dtype == numpy.float32


@pytest.mark.parametrize("dtype", ["int64", mt.int32, "bool", mt.uint8])
def test_a_non_float_default_dtype_raises(dtype, default_dtype):
    with pytest.raises(TypeError, match="default dtype must be a floating dtype"):
        mt.set_default_dtype(dtype)
    assert mt.get_default_dtype() == numpy.float32


@pytest.mark.parametrize("name", ["complex64", "nope", "int8"])
def test_resolve_an_unknown_dtype_raises_with_the_list(name):
    with pytest.raises(TypeError, match=rf"Unknown dtype '{name}'; expected one of float16, float32, float64, "
                                        r"int32, int64, uint8, bool\."):
        dtypes.resolve(name)


@pytest.mark.parametrize("name", ["float", "double", "half", "int", "long", "bool", "float64", "uint8"])
def test_resolve_gives_torch_meaning_to_alias_names(name):
    # NumPy reads "float" as float64 and "int" as int64; torch.float is float32, torch.int int32.
    assert dtypes.resolve(name) == getattr(dtypes, name)


# ---- casts --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cast, dtype", [(lambda t: t.double(), numpy.float64),
                                         (lambda t: t.to(mt.float64), numpy.float64),
                                         (lambda t: t.to("float16"), numpy.float16)])
def test_a_cast_is_differentiable_and_the_grad_comes_back_in_the_original_dtype(cast, dtype):
    x = mt.tensor([1.5, -2.0], requires_grad=True)              # float32
    y = cast(x)
    assert y.dtype == dtype and y.grad_fn.name == "Cast"
    (y * y).sum().backward()                                    # 2x
    assert x.grad.dtype == numpy.float32
    numpy.testing.assert_allclose(x.grad.numpy(), [3.0, -4.0])


def test_float_and_to_same_dtype():
    x = mt.tensor([1.0], dtype="float64", requires_grad=True)
    assert x.float().dtype == numpy.float32
    assert x.to(mt.float64) is x and x.double() is x
    assert mt.tensor([1, 2]).float().tolist() == [1.0, 2.0]


def test_long_of_a_float_tensor_that_requires_grad_gives_an_integer_tensor_without_grad():
    x = mt.tensor([1.7, -2.2], requires_grad=True)
    n = x.long()
    assert n.dtype == numpy.int64 and n.tolist() == [1, -2]
    assert not n.requires_grad and n.grad_fn is None            # as torch: integers carry no gradient


# ---- leaving the tensor -------------------------------------------------------------------------
def test_numpy_shares_memory_on_the_numpy_backend():
    x = mt.tensor([1.0, 2.0])
    a = x.numpy()
    assert type(a) is numpy.ndarray and numpy.shares_memory(a, x.data)


def test_item():
    assert mt.tensor(2.5).item() == 2.5 and type(mt.tensor(2.5).item()) is float
    assert mt.tensor([[7]]).item() == 7 and type(mt.tensor([[7]]).item()) is int
    assert mt.tensor([True]).item() is True
    with pytest.raises(ValueError, match=r"one-element tensor, got shape \(2,\)"):
        mt.tensor([1.0, 2.0]).item()


def test_tolist():
    assert mt.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert mt.tensor(1.5).tolist() == 1.5
    assert all(type(v) is float for v in mt.tensor([1.0, 2.0]).tolist())


def test_python_number_conversions():
    assert float(mt.tensor([2.5])) == 2.5 and int(mt.tensor(3)) == 3
    assert bool(mt.tensor(1.0)) and not bool(mt.tensor(0))


@pytest.mark.parametrize("data", [[1.0, 2.0], 3.0, 0.5, [[1, 2], [3, 4]], [1.5, -2.25], [[0.1, 0.2]],
                                  [[1.0, 2.0], [3.0, 4.0]], [1e-8, 1.0], [], [True, False], [100.25, 3.5]])
def test_repr_matches_torch_for_simple_cases(data):
    torch = pytest.importorskip("torch")
    assert repr(mt.tensor(data)) == repr(torch.tensor(data))


def test_repr_extras():
    torch = pytest.importorskip("torch")
    assert repr(mt.tensor([1.0, 2.0], requires_grad=True)) == repr(torch.tensor([1.0, 2.0], requires_grad=True))
    assert repr(mt.tensor([1.0], requires_grad=True).sum()) == "tensor(1., grad_fn=<Sum>)"
    assert repr(mt.tensor([1.0], dtype="float64")) == "tensor([1.], dtype=float64)"
    with shim.use_backend("strict"):
        assert repr(mt.tensor([1.0])) == "tensor([1.], backend='strict')"


def test_comparisons_give_bool_tensors_outside_the_graph():
    x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = mt.tensor([3.0, 2.0, 1.0])
    expected = {
        "<": [True, False, False], "<=": [True, True, False], ">": [False, False, True],
        ">=": [False, True, True], "==": [False, True, False], "!=": [True, False, True],
    }
    results = {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y, "==": x == y, "!=": x != y}
    for op, result in results.items():
        assert isinstance(result, mt.Tensor) and result.dtype == numpy.bool_, op
        assert result.tolist() == expected[op], op
        assert not result.requires_grad and result.grad_fn is None, op
    assert (x > 1.5).tolist() == [False, True, True]
