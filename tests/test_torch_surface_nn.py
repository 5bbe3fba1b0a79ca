"""nn's torch surface: ReLU/LeakyReLU/Dropout(inplace=...), Conv2d(padding_mode=...), Dropout2d, PReLU,
BCEWithLogitsLoss, Module.to(device=, dtype=), Module.requires_grad_; against torch in float64, with
float64 gradient checks over drawn shapes for the new differentiable ops (prelu, BCE with logits).
"""

import numpy
import pytest
from hypothesis import strategies as st

import minitorch_seg as mt
from minitorch_seg import functional as F
from minitorch_seg import nn
from minitorch_seg.testing import Arguments, check_gradients, shapes, tensors
from torch_compare import compare
from helpers import assert_one_sentence

pytestmark = pytest.mark.nn


def copy_weights(ours, theirs, torch):
    with torch.no_grad():
        for (name, p), (other_name, q) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert name == other_name
            q.copy_(torch.from_numpy(p.numpy().astype(numpy.float64)))


# ---- inplace and padding_mode are accepted --------------------------------------------------------------
@pytest.mark.parametrize("build", [lambda ns: ns.ReLU(inplace=True), lambda ns: ns.ReLU(),
                                   lambda ns: ns.LeakyReLU(0.2, inplace=True), lambda ns: ns.LeakyReLU(),
                                   lambda ns: ns.Dropout2d(), lambda ns: ns.Dropout2d(0.3, inplace=True),
                                   lambda ns: ns.PReLU(), lambda ns: ns.PReLU(4),
                                   lambda ns: ns.Conv2d(2, 3, 3, padding=1, padding_mode="zeros")])
def test_reprs_match_torch(torch, build):
    assert repr(build(nn)) == repr(build(torch.nn))


def test_inplace_relu_gives_torchs_values_and_gradients_and_keeps_its_input(torch):
    x = mt.tensor([[-1.0, 2.0], [0.5, -3.0]], dtype="float64", requires_grad=True)
    before = x.numpy().copy()
    compare(torch, lambda a: nn.ReLU(inplace=True)(a * 1.0), lambda a: torch.nn.ReLU(inplace=True)(a * 1.0), [x])
    numpy.testing.assert_array_equal(x.numpy(), before)
    y = mt.tensor([[-1.0, 2.0]], dtype="float64", requires_grad=True)
    compare(torch, lambda a: nn.LeakyReLU(0.1, inplace=True)(a * 1.0),
            lambda a: torch.nn.LeakyReLU(0.1, inplace=True)(a * 1.0), [y])


def test_conv2d_padding_mode_zeros_is_the_default_and_others_say_so(torch):
    mt.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="zeros").double()
    theirs = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="zeros")
    copy_weights(conv, theirs, torch)
    x = mt.randn(1, 2, 5, 4, dtype="float64", requires_grad=True)
    compare(torch, conv, theirs, [x], rtol=1e-10)
    for mode in ("reflect", "replicate", "circular"):
        with pytest.raises(NotImplementedError) as raised:
            nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
        assert_one_sentence(raised.value, repr(mode), "'zeros'")
    with pytest.raises(ValueError) as raised:
        nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect")
    assert_one_sentence(raised.value, "'zeros'")


def test_layers_take_device_and_dtype():
    conv = nn.Conv2d(2, 3, 3, device="strict", dtype=mt.float64)
    assert conv.weight.backend == "strict" and conv.weight.dtype == numpy.float64
    linear = nn.Linear(2, 3, dtype="float64")
    assert linear.weight.dtype == numpy.float64 and linear.bias.device == mt.device("cpu")
    assert nn.PReLU(3, init=0.1, dtype=mt.float64).weight.tolist() == [0.1, 0.1, 0.1]


# ---- Dropout2d ---------------------------------------------------------------------------------------------
def test_dropout2d_zeroes_whole_channels_and_rescales(backend):
    layer = nn.Dropout2d(0.5)
    x = mt.ones(8, 16, 3, 3)
    y = layer(x).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert numpy.all((per_channel == 0).all(axis=2) | (per_channel == 2).all(axis=2))   # whole planes: 0 or 1/(1-p)
    dropped = (per_channel == 0).all(axis=2).mean()
    assert 0.3 < dropped < 0.7
    x = mt.ones(2, 3, 4, 4, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), out.numpy())                  # d(x * m)/dx = m
    assert layer.eval()(x) is x
    assert nn.Dropout2d(1.0)(mt.ones(1, 2, 2, 2)).sum().item() == 0


def test_dropout2d_checks_its_arguments():
    with pytest.raises(ValueError) as raised:
        nn.Dropout2d(1.5)
    assert_one_sentence(raised.value, "1.5")
    with pytest.raises(ValueError) as raised:
        F.dropout2d(mt.ones(2, 3))
    assert_one_sentence(raised.value, "(2, 3)")


# ---- PReLU -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_parameters, shape", [(1, (2, 3, 4, 4)), (3, (2, 3, 4, 4)), (3, (5, 3)), (1, (7,))])
def test_prelu_matches_torch_in_input_and_weight_gradients(torch, num_parameters, shape):
    rng = numpy.random.default_rng(1)
    ours = nn.PReLU(num_parameters, init=0.1).double()
    with mt.no_grad():
        ours.weight.copy_(mt.tensor(rng.uniform(-0.5, 0.5, num_parameters)))
    theirs = torch.nn.PReLU(num_parameters)
    copy_weights(ours, theirs, torch)
    x = mt.tensor(rng.standard_normal(shape), requires_grad=True)
    compare(torch, ours, theirs, [x], rtol=1e-12)
    numpy.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10)
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]


@st.composite
def prelu_arguments(draw):
    shape = draw(shapes(2, 4))
    slopes = draw(st.sampled_from([1, shape[1]]))
    return Arguments(draw(tensors(shape, away_from=0.0)), draw(tensors((slopes,))))


def test_prelu_gradients_by_finite_differences():
    check_gradients(F.prelu, prelu_arguments(), max_examples=20)


def test_prelu_with_the_wrong_number_of_slopes_is_one_sentence():
    with pytest.raises(ValueError) as raised:
        nn.PReLU(4)(mt.ones(2, 3, 5, 5))
    assert_one_sentence(raised.value, "4 slopes", "(2, 3, 5, 5)")


# ---- BCEWithLogitsLoss ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted, pos_weighted", [(False, False), (True, False), (False, True), (True, True)])
def test_bce_with_logits_matches_torch(torch, reduction, weighted, pos_weighted):
    rng = numpy.random.default_rng(2)
    x = mt.tensor(rng.normal(0, 3, (2, 3, 4, 4)), requires_grad=True)
    t = mt.tensor(rng.random((2, 3, 4, 4)), requires_grad=True)
    w = mt.tensor(rng.random((3, 1, 1))) if weighted else None                  # torch refuses gradients for
    p = mt.tensor(rng.uniform(0.5, 3, (3, 1, 1))) if pos_weighted else None     # these (ours are checked below)
    inputs = [x, t] + [v for v in (w, p) if v is not None]

    def call(F_, a, b, *rest):
        rest = list(rest)
        weight = rest.pop(0) if weighted else None
        pos_weight = rest.pop(0) if pos_weighted else None
        return F_.binary_cross_entropy_with_logits(a, b, weight, reduction=reduction, pos_weight=pos_weight)
    compare(torch, lambda *a: call(F, *a), lambda *a: call(torch.nn.functional, *a), inputs, rtol=1e-10)


def test_bce_with_logits_module_matches_torch_and_moves_its_buffers(torch):
    pos_weight = [2.0, 0.5]
    ours = nn.BCEWithLogitsLoss(pos_weight=mt.tensor(pos_weight, dtype="float64"))
    theirs = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
    x = mt.tensor([[0.3, -1.2], [4.0, 0.0]], dtype="float64", requires_grad=True)
    target = mt.tensor([[1.0, 0.0], [0.0, 1.0]], dtype="float64")
    compare(torch, lambda a: ours(a, target), lambda a: theirs(a, torch.tensor(target.numpy())), [x])
    assert [n for n, _ in ours.named_buffers()] == ["pos_weight"]
    assert ours.to("strict").pos_weight.backend == "strict"


def test_bce_with_logits_is_stable_at_huge_logits(torch):
    x = mt.tensor([1000.0, -1000.0, 50.0, -50.0], dtype="float64", requires_grad=True)
    target = mt.tensor([0.0, 1.0, 1.0, 0.0], dtype="float64")
    out = compare(torch, lambda a: F.binary_cross_entropy_with_logits(a, target, reduction="none"),
                  lambda a: torch.nn.functional.binary_cross_entropy_with_logits(
                      a, torch.tensor(target.numpy()), reduction="none"), [x])
    assert numpy.all(numpy.isfinite(out.numpy()))


@st.composite
def bce_arguments(draw):
    shape = draw(shapes(1, 4))
    trailing = (1,) * (len(shape) - 1) + shape[-1:]
    return Arguments(draw(tensors(shape, -4.0, 4.0)), draw(tensors(shape, 0.0, 1.0)),
                     draw(tensors(trailing, 0.1, 2.0)), draw(tensors(shape[-1:], 0.2, 3.0)),
                     reduction=draw(st.sampled_from(["mean", "sum", "none"])))


def test_bce_with_logits_gradients_by_finite_differences():
    check_gradients(lambda x, t, w, p, reduction: F.binary_cross_entropy_with_logits(
        x, t, w, reduction=reduction, pos_weight=p), bce_arguments(), max_examples=20)


@pytest.mark.parametrize("call, error, needles", [
    (lambda: F.binary_cross_entropy_with_logits(mt.ones(2, 3), mt.ones(3)), ValueError, ["(3,)", "(2, 3)"]),
    (lambda: F.binary_cross_entropy_with_logits(mt.ones(2), mt.tensor([1, 0])), TypeError, ["int64"]),
    (lambda: F.binary_cross_entropy_with_logits(mt.ones(2), mt.ones(2), reduction="avg"), ValueError, ["'avg'"]),
])
def test_bce_with_logits_bad_arguments_are_one_sentence(call, error, needles):
    with pytest.raises(error) as raised:
        call()
    assert_one_sentence(raised.value, *needles)


# ---- Module.to and requires_grad_ ------------------------------------------------------------------------------
def test_module_to_takes_torchs_forms(backend):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert model.to(device=backend, dtype=mt.float64) is model
    assert {p.backend for p in model.parameters()} == {backend}
    assert {p.dtype for p in model.parameters()} == {numpy.dtype("float64")}
    assert model[1].num_batches_tracked.dtype == numpy.int64             # integer buffers keep their dtype
    model.to(mt.zeros(1, dtype=mt.float32).to(backend))
    assert {p.dtype for p in model.parameters()} == {numpy.dtype("float32")}
    assert model.cpu()[0].weight.device == mt.device("cpu")
    with pytest.raises(TypeError) as raised:
        model.to(mt.int64)
    assert_one_sentence(raised.value, "int64")


def test_requires_grad_false_freezes_every_parameter():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    assert model[0].requires_grad_(False) is model[0]
    model(mt.ones(1, 2)).sum().backward()
    assert model[0].weight.grad is None and model[1].weight.grad is not None
