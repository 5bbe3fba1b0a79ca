"""Tensor's torch surface: .device, .to's forms, .cpu/.cuda, contiguous, casts, t, min, any/all, clamp,
bool operators, in-place ops (and ``-=`` on a parameter under no_grad), int division's dtype.

Values are compared with torch in float64; the new differentiable ops (clamp, min) get a float64
gradient check over drawn shapes.
"""

import numpy
import pytest
from hypothesis import strategies as st

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import nn
from minitorch_seg.backend import BackendError
from minitorch_seg.testing import Arguments, check_gradients, shapes, tensors
from torch_compare import compare
from helpers import assert_one_sentence

pytestmark = pytest.mark.autograd


# ---- devices ------------------------------------------------------------------------------------
def test_device_of_each_backend_and_its_names():
    assert mt.ones(2).device == mt.device("cpu") and str(mt.ones(2).device) == "cpu"
    assert mt.ones(2).to("strict").device == mt.device("strict")
    assert mt.device("cuda:0") == mt.device("cuda", 0) != mt.device("cuda")
    assert mt.device("numpy") == mt.device("cpu") and mt.device("cupy").type == "cuda"
    assert repr(mt.device("cuda:0")) == "device(type='cuda', index=0)"
    assert {mt.device("cpu"): 1}[mt.device("cpu")] == 1
    assert not mt.ones(1).is_cuda


@pytest.mark.parametrize("name, needle", [("tpu", "'tpu'"), ("cuda:1", "cuda:1"), ("cuda:x", "'cuda:x'")])
def test_a_bad_device_is_one_sentence(name, needle):
    with pytest.raises(RuntimeError) as raised:
        mt.device(name)
    assert_one_sentence(raised.value, needle)


def test_device_type_matches_torch(torch):
    for name in ("cpu", "cuda", "cuda:0"):
        assert str(mt.device(name)) == str(torch.device(name))
        assert repr(mt.device(name)) == repr(torch.device(name))


# ---- to's forms -----------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda x, o: x.to("cpu"), lambda x, o: x.to(mt.device("cpu")), lambda x, o: x.to(device="cpu"),
    lambda x, o: x.to("numpy"), lambda x, o: x.cpu(), lambda x, o: x.to(mt.float32),
    lambda x, o: x.to("cpu", mt.float32), lambda x, o: x.to(device="cpu", dtype="float32"),
    lambda x, o: x.to(o), lambda x, o: x.to(memory_format=mt.channels_last),
    lambda x, o: x.contiguous(), lambda x, o: x.contiguous(memory_format=mt.channels_last),
    lambda x, o: x.float(), lambda x, o: x.to("cpu", non_blocking=True),
], ids=["str", "device", "kw", "backend", "cpu", "dtype", "str+dtype", "kw+kw", "tensor", "format",
        "contiguous", "contiguous_format", "float", "non_blocking"])
def test_to_without_a_change_returns_the_tensor_itself(call):
    x = mt.ones(2, 3, requires_grad=True)
    assert call(x, mt.zeros(1)) is x


@pytest.mark.parametrize("call, backend_name, dtype", [
    (lambda x, o: x.to("strict"), "strict", "float32"),
    (lambda x, o: x.to("strict", mt.float64), "strict", "float64"),
    (lambda x, o: x.to(device=mt.device("strict"), dtype=mt.float64), "strict", "float64"),
    (lambda x, o: x.to(o), "strict", "float64"),
    (lambda x, o: x.to(dtype=mt.int32), "numpy", "int32"),
    (lambda x, o: x.int(), "numpy", "int32"),
    (lambda x, o: x.half(), "numpy", "float16"),
    (lambda x, o: x.bool(), "numpy", "bool"),
    (lambda x, o: x.type_as(o), "numpy", "float64"),
])
def test_to_moves_and_casts(call, backend_name, dtype):
    x = mt.tensor([[1.5, -2.0], [0.0, 3.0]])
    y = call(x, mt.zeros(1, dtype="float64").to("strict"))
    assert y.backend == backend_name and y.dtype == numpy.dtype(dtype)
    numpy.testing.assert_array_equal(y.numpy(), x.numpy().astype(dtype))


def test_to_copy_gives_a_new_tensor_and_cpu_brings_strict_back():
    x = mt.ones(3)
    copy = x.to("cpu", copy=True)
    assert copy is not x and copy.data is not x.data
    moved = x.to("strict").requires_grad_()
    back = moved.cpu()
    assert back.backend == "numpy" and back.requires_grad and back.device == mt.device("cpu")


def test_to_unknown_argument_is_one_sentence():
    with pytest.raises(TypeError) as raised:
        mt.ones(2).to("complex64")
    assert_one_sentence(raised.value, "complex64")
    with pytest.raises(TypeError) as raised:
        mt.ones(2).to(devise="cpu")
    assert_one_sentence(raised.value, "devise")


def test_cuda_without_cupy_says_why_in_one_sentence():
    if shim.cupy_unavailable_reason() is None:
        pytest.skip("CuPy works here: the missing-CuPy message cannot be shown")
    for move in (lambda: mt.ones(2).cuda(), lambda: mt.ones(2).to("cuda"), lambda: mt.zeros(2, device="cuda"),
                 lambda: nn.Linear(2, 2).to(device="cuda")):
        with pytest.raises(BackendError) as raised:
            move()
        assert_one_sentence(raised.value, "'cuda'", "minitorch-seg[cuda")
    assert mt.cuda.is_available() is False and mt.cuda.device_count() == 0


def test_contiguous_copies_a_transposed_view_and_keeps_the_gradient():
    x = mt.tensor(numpy.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.t()
    assert not y.is_contiguous()
    z = y.contiguous()
    assert z.is_contiguous() and z is not y and z.tolist() == y.tolist()
    (z * mt.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])).sum().backward()
    assert x.grad.tolist() == [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]


# ---- t, min, any, all ------------------------------------------------------------------------------
def test_t_matches_torch_and_refuses_3d(torch):
    for shape in [(), (3,), (2, 3)]:
        x = mt.tensor(numpy.arange(float(numpy.prod(shape))).reshape(shape), requires_grad=True)
        compare(torch, lambda a: a.t(), lambda a: a.t(), [x])
    with pytest.raises(RuntimeError) as raised:
        mt.zeros(1, 2, 3).t()
    assert_one_sentence(raised.value, "3D")


@pytest.mark.parametrize("dim, keepdim", [(None, False), (0, False), (1, True), (-1, False)])
def test_min_matches_torch_values_indices_and_gradient(torch, dim, keepdim):
    x = mt.tensor([[3.0, -1.0, 2.0], [0.5, 4.0, 0.5]], dtype="float64", requires_grad=True)
    if dim is None:
        compare(torch, lambda a: a.min(), lambda a: a.min(), [x])
        return
    out = compare(torch, lambda a: a.min(dim, keepdim), lambda a: a.min(dim, keepdim), [x])
    expected = torch.tensor(x.numpy()).min(dim, keepdim)
    assert out.indices.tolist() == expected.indices.tolist() and out.indices.dtype == numpy.int64
    assert type(out).__name__ == "min" and out.values.shape == tuple(expected.values.shape)


def test_min_argmin_amin_of_uint8_do_not_wrap(torch):
    data = numpy.array([[200, 3, 255], [0, 17, 9]], dtype=numpy.uint8)
    x, t = mt.from_numpy(data.copy()), torch.from_numpy(data.copy())
    assert x.min().item() == t.min().item() == 0
    assert x.min(dim=1).values.tolist() == t.min(dim=1).values.tolist()
    assert x.min(dim=1).indices.tolist() == t.min(dim=1).indices.tolist()
    assert x.argmin().item() == t.argmin().item()
    assert x.amin(dim=0).tolist() == t.amin(dim=0).tolist()


@st.composite
def tensor_and_dim(draw):
    """A float64 tensor of 1 to 3 dims without ties, and one of its dims."""
    dims = draw(st.integers(1, 3))
    return Arguments(draw(tensors(shapes(dims, dims), all_distinct=True)), draw(st.integers(-dims, dims - 1)))


def test_min_and_amin_gradients_by_finite_differences():
    check_gradients(lambda x, dim: x.min(dim).values, tensor_and_dim(), max_examples=12)
    check_gradients(lambda x, dim: x.amin(dim, keepdim=True), tensor_and_dim(), max_examples=12)
    check_gradients(lambda x: x.min(), tensors(shapes(1, 3), all_distinct=True), max_examples=8)


@pytest.mark.parametrize("dim, keepdim", [(None, False), (0, False), (1, True), ((0, 1), False)])
def test_any_and_all_match_torch(torch, dim, keepdim):
    data = numpy.array([[0, 1, 0], [0, 0, 0]], dtype=numpy.int64)
    ours, theirs = mt.tensor(data), torch.tensor(data)
    for name in ("any", "all"):
        args = () if dim is None else (dim, keepdim)
        got, expected = getattr(ours, name)(*args), getattr(theirs, name)(*args)
        assert got.dtype == numpy.bool_ and got.tolist() == expected.tolist()


# ---- clamp ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("low, high", [(-0.5, 0.7), (None, 0.3), (-0.2, None), (1.0, -1.0)])
def test_clamp_with_numbers_matches_torch(torch, low, high):
    def x():
        return mt.tensor([[-2.0, -0.5, 0.0], [0.3, 0.7, 5.0]], dtype="float64", requires_grad=True)
    compare(torch, lambda a: a.clamp(low, high), lambda a: a.clamp(low, high), [x()])
    compare(torch, lambda a: mt.clip(a, min=low, max=high), lambda a: torch.clip(a, min=low, max=high), [x()])


def test_clamp_with_tensor_bounds_matches_torch_in_every_gradient(torch):
    rng = numpy.random.default_rng(3)
    x, lo, hi = (mt.tensor(rng.uniform(-2, 2, shape), requires_grad=True) for shape in [(3, 4), (4,), (3, 1)])
    compare(torch, lambda a, b, c: a.clamp(b, c), lambda a, b, c: a.clamp(b, c), [x, lo, hi])
    x2, lo2 = mt.tensor(x.numpy(), requires_grad=True), mt.tensor(lo.numpy(), requires_grad=True)
    compare(torch, lambda a, b: a.clamp(min=b), lambda a, b: a.clamp(min=b), [x2, lo2])


@st.composite
def clamp_arguments(draw):
    """x and tensor bounds lo, hi broadcasting against it (lo > hi in places, as torch allows).

    The three ranges differ, so that equal drawn seeds do not put x exactly on a bound (a kink).
    """
    shape = draw(shapes(1, 3))
    return Arguments(draw(tensors(shape, -2.0, 2.0)), draw(tensors(shape[-1:], -1.3, 0.1)),
                     draw(tensors((1,) * len(shape), -0.45, 1.7)))


def test_clamp_gradients_by_finite_differences():
    check_gradients(lambda x: x.clamp(-0.5, 0.7), tensors(shapes(1, 3), away_from=[-0.5, 0.7]), max_examples=12)
    check_gradients(lambda x, lo, hi: mt.clamp(x, lo, hi), clamp_arguments(), max_examples=12)
    check_gradients(lambda x, lo, hi: mt.clamp(x, max=hi), clamp_arguments(), max_examples=6)


def test_clamp_needs_a_bound():
    with pytest.raises(RuntimeError) as raised:
        mt.ones(2).clamp()
    assert_one_sentence(raised.value, "min", "max")


# ---- bool operators --------------------------------------------------------------------------------
def test_bool_operators_match_torch(torch):
    a_data, b_data = numpy.array([True, True, False, False]), numpy.array([True, False, True, False])
    a, b, ta, tb = mt.tensor(a_data), mt.tensor(b_data), torch.tensor(a_data), torch.tensor(b_data)
    for op in (lambda p, q: p | q, lambda p, q: p & q, lambda p, q: p ^ q, lambda p, q: ~p,
               lambda p, q: (p > 0) & True, lambda p, q: False | q):
        got, expected = op(a, b), op(ta, tb)
        assert got.dtype == numpy.bool_ and got.tolist() == expected.tolist()
    x = mt.tensor([1.0, -2.0, 3.0])
    assert ((x > 0) & (x < 2)).tolist() == [True, False, False]
    assert (mt.tensor([6]) & mt.tensor([3])).tolist() == [2]                 # integers: bitwise


def test_not_on_a_float_tensor_is_one_sentence():
    with pytest.raises(TypeError) as raised:
        ~mt.ones(2)
    assert_one_sentence(raised.value, "float32")


# ---- in-place ops ----------------------------------------------------------------------------------
def test_isub_on_a_parameter_under_no_grad_updates_the_module(backend):
    layer = nn.Linear(3, 2)
    weight = layer.weight
    before = weight.numpy().copy()
    layer(mt.ones(1, 3)).sum().backward()
    with mt.no_grad():
        for p in layer.parameters():
            p -= 0.1 * p.grad
    assert layer.weight is weight and weight.requires_grad and weight.is_leaf
    numpy.testing.assert_allclose(weight.numpy(), before - 0.1 * weight.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name, args, expected", [
    ("add_", (mt.tensor([1.0, 2.0]),), [2.0, 4.0]),
    ("add_", (mt.tensor([[1.0, 2.0]]).reshape(2),), [2.0, 4.0]),
    ("sub_", (0.5,), [0.5, 1.5]),
    ("mul_", (mt.tensor([3.0, -1.0]),), [3.0, -2.0]),
    ("div_", (4,), [0.25, 0.5]),
    ("clamp_", (1.5, None), [1.5, 2.0]),
    ("clamp_", (None, 1.5), [1.0, 1.5]),
    ("zero_", (), [0.0, 0.0]),
    ("fill_", (7,), [7.0, 7.0]),
    ("copy_", (mt.tensor([5.0, 6.0], dtype="float64"),), [5.0, 6.0]),
])
def test_in_place_ops_change_the_array_and_return_self(backend, name, args, expected):
    x = mt.tensor([1.0, 2.0])
    array = x.data
    args = tuple(a.to(backend) if isinstance(a, mt.Tensor) else a for a in args)
    assert getattr(x, name)(*args) is x
    assert x.data is array and x.dtype == numpy.float32 and x.tolist() == expected


def test_add_and_sub_with_alpha_match_torch(torch):
    x, t = mt.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])
    x.add_(mt.tensor([1.0, 1.0]), alpha=3).sub_(mt.tensor([0.5, 0.5]), alpha=2)
    t.add_(torch.tensor([1.0, 1.0]), alpha=3).sub_(torch.tensor([0.5, 0.5]), alpha=2)
    assert x.tolist() == t.tolist()


def test_in_place_on_a_view_changes_the_base_as_in_torch():
    x = mt.zeros(2, 3)
    x[0].fill_(1)
    x[:, 2].add_(5)
    assert x.tolist() == [[1.0, 1.0, 6.0], [0.0, 0.0, 5.0]]


@pytest.mark.parametrize("op", [lambda w: w.add_(1), lambda w: w.mul_(2), lambda w: w.zero_(),
                                lambda w: w.clamp_(0, 1), lambda w: w.copy_(mt.ones(2)), lambda w: w.fill_(3),
                                lambda w: w.__isub__(1)])
def test_in_place_on_a_leaf_that_requires_grad_raises_torchs_sentence(torch, op):
    w = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError) as raised:
        op(w)
    with pytest.raises(RuntimeError) as theirs:
        torch.tensor([1.0, 2.0], requires_grad=True).add_(1)
    assert str(raised.value) == str(theirs.value) == "a leaf Variable that requires grad is being used in an in-place operation."
    assert w.tolist() == [1.0, 2.0]


def test_in_place_on_a_non_leaf_is_recorded_as_in_torch(torch):
    def run(lib, a, b):
        x = lib.tensor(a, dtype=lib.float64, requires_grad=True)
        y = lib.tensor(b, dtype=lib.float64, requires_grad=True)
        z = x * 2
        z += y
        z.mul_(y)
        z.sub_(x, alpha=0.5)
        z.clamp_(min=-1.0)
        z.div_(3)
        buffer = lib.zeros(3, dtype=lib.float64)
        buffer.copy_(z)
        buffer.add_(1)
        row = lib.zeros(2, 3, dtype=lib.float64)
        row.copy_(y)                                # broadcast into the whole tensor, still in the graph
        with lib.no_grad():
            row.mul_(1.0)                           # its array is writable (not a broadcast view)
        buffer = buffer + row.sum(0)
        (buffer * buffer).sum().backward()
        return buffer, x.grad, y.grad
    a, b = [0.5, -2.0, 1.5], [1.0, 0.25, -3.0]
    for ours, theirs in zip(run(mt, a, b), run(torch, a, b)):
        numpy.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)


def test_loss_accumulation_with_plus_equals_matches_torch(torch):
    def run(lib):
        w = lib.tensor([1.0, -1.0], dtype=lib.float64, requires_grad=True)
        loss = (w * w).sum()
        for k in range(3):
            loss += (w * k).sum()
        loss.backward()
        return loss.item(), w.grad.tolist()
    assert run(mt) == run(torch)


def test_in_place_that_cannot_fit_is_one_sentence():
    with pytest.raises(RuntimeError) as raised:
        mt.zeros(3).add_(mt.zeros(2, 3))
    assert_one_sentence(raised.value, "(2, 3)", "(3,)")
    with pytest.raises(RuntimeError) as raised:
        mt.arange(3).div_(2)
    assert_one_sentence(raised.value, "int64")


# ---- promotion --------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", [lambda a, lib: a / 2, lambda a, lib: a * 0.5, lambda a, lib: a / a,
                                lambda a, lib: 3 / a, lambda a, lib: a + lib.ones(4),
                                lambda a, lib: a + lib.ones(4, dtype=lib.float64), lambda a, lib: a * 2,
                                lambda a, lib: a - 1.5, lambda a, lib: (a > 1) / 2],
                         ids=["div_int", "mul_float", "int_div_int", "rdiv", "float32", "float64", "int", "sub",
                              "bool"])
def test_integer_tensors_promote_as_in_torch(torch, op):
    torch.set_default_dtype(torch.float32)            # both libraries' default (the fixture restores it)
    ours, theirs = op(mt.arange(1, 5), mt), op(torch.arange(1, 5), torch)
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
    numpy.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-7)
