"""optim: SGD, Adam and AdamW step for step against torch.optim in float64, parameter groups,
optimizer and scheduler checkpoints, the learning-rate schedules against torch's, bad arguments.

The optimizer tests run under the ``backend`` fixture: on "strict" an update that made a host
array or read a device value back would raise, so passing there means the step runs on CuPy too.
"""
import copy

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import nn, optim
from minitorch_seg.optim import lr_scheduler
from helpers import assert_one_sentence, host

pytestmark = pytest.mark.optim

SHAPES = [(3, 4), (4,), (2, 1, 3)]
STEPS = 5


# ---- helpers ----------------------------------------------------------------------------------
def parameter_pair(torch, seed=0, shapes=SHAPES):
    """The same float64 starting values as our Parameters (current backend) and torch's."""
    rng = numpy.random.default_rng(seed)
    values = [rng.standard_normal(s) for s in shapes]
    ours = [nn.Parameter(shim.to_backend(v.copy())) for v in values]
    theirs = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    return ours, theirs


def gradient_sequence(steps=STEPS, seed=1, shapes=SHAPES):
    """Per step, one gradient per parameter; the second parameter gets none at step 2 (skipped)."""
    rng = numpy.random.default_rng(seed)
    return [[None if (step == 2 and index == 1) else rng.standard_normal(s) for index, s in enumerate(shapes)]
            for step in range(steps)]


def set_gradients(torch, ours, theirs, grads):
    for p, q, g in zip(ours, theirs, grads):
        p.grad = None if g is None else mt.Tensor(shim.to_backend(g.copy()))
        if q is not None:
            q.grad = None if g is None else torch.from_numpy(g.copy())


def assert_parameters_agree(ours, theirs, step):
    for index, (p, q) in enumerate(zip(ours, theirs)):
        # Both sides do the same float64 arithmetic in a slightly different order.
        numpy.testing.assert_allclose(host(p), q.detach().numpy(), rtol=1e-12, atol=1e-15,
                                      err_msg=f"parameter {index} after step {step + 1}")


OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),                          # torch's and our default weight_decay, 0.01
    ("AdamW", dict(lr=0.01, weight_decay=0.0)),
    ("AdamW", dict(lr=0.02, betas=(0.85, 0.95), weight_decay=0.2)),
]


# ---- optimizers against torch ---------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", OPTIMIZERS,
                         ids=[n + "(" + ",".join(f"{a}={b}" for a, b in k.items()) + ")" for n, k in OPTIMIZERS])
def test_optimizer_steps_match_torch(torch, backend, name, kwargs):
    ours, theirs = parameter_pair(torch)
    optimizer = getattr(optim, name)(ours, **kwargs)
    reference = getattr(torch.optim, name)(theirs, **kwargs)
    starts = [host(p).copy() for p in ours]
    for step, grads in enumerate(gradient_sequence()):
        set_gradients(torch, ours, theirs, grads)
        optimizer.step()
        reference.step()
        assert_parameters_agree(ours, theirs, step)
    for p, start in zip(ours, starts):
        assert p.backend == backend and p.dtype == numpy.float64
        assert not numpy.allclose(host(p), start)                  # the steps did something


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)),
                                          ("Adam", dict(lr=0.01, weight_decay=0.05)),
                                          ("AdamW", dict(lr=0.01))])
def test_parameter_groups_with_their_own_lr_match_torch(torch, backend, name, kwargs):
    ours, theirs = parameter_pair(torch, seed=2)

    def groups(params):
        return [{"params": params[:1]}, {"params": params[1:], "lr": kwargs["lr"] * 5, "weight_decay": 0.3}]

    optimizer = getattr(optim, name)(groups(ours), **kwargs)
    reference = getattr(torch.optim, name)(groups(theirs), **kwargs)
    assert optimizer.param_groups[0]["lr"] == kwargs["lr"] and optimizer.param_groups[1]["lr"] == kwargs["lr"] * 5
    assert optimizer.param_groups[0]["weight_decay"] == reference.param_groups[0]["weight_decay"]
    for step, grads in enumerate(gradient_sequence(seed=3)):
        set_gradients(torch, ours, theirs, grads)
        optimizer.step()
        reference.step()
        assert_parameters_agree(ours, theirs, step)


def test_optimizer_drives_a_module_like_torch(torch, backend):
    """The whole loop: forward, loss, backward, clip, step, zero_grad, on a model with copied weights."""
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    ours = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    optimizer = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    reference = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    rng = numpy.random.default_rng(4)
    for step in range(STEPS):
        x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
        loss = nn.CrossEntropyLoss()(ours(mt.Tensor(shim.to_backend(x))), mt.Tensor(shim.to_backend(y)))
        expected = torch.nn.CrossEntropyLoss()(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        numpy.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)
        optimizer.zero_grad()
        reference.zero_grad()
        loss.backward()
        expected.backward()
        nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        optimizer.step()
        reference.step()
        assert_parameters_agree(list(ours.parameters()), list(theirs.parameters()), step)


def test_zero_grad_sets_to_none_or_zero(backend):
    p = nn.Parameter(shim.to_backend(numpy.ones(3)))
    optimizer = optim.SGD([p], lr=0.1)
    p.grad = mt.Tensor(shim.to_backend(numpy.ones(3)))
    optimizer.zero_grad(set_to_none=False)
    assert p.grad is not None and not host(p.grad).any()
    optimizer.zero_grad()
    assert p.grad is None


# ---- optimizer checkpoints -------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                          ("Adam", dict(lr=0.01, weight_decay=0.01)),
                                          ("AdamW", dict(lr=0.01, betas=(0.8, 0.9)))])
def test_optimizer_state_dict_round_trip_continues_the_same_trajectory(torch, backend, name, kwargs):
    grads = gradient_sequence(steps=6, seed=5)
    ours, _ = parameter_pair(torch, seed=6)
    optimizer = getattr(optim, name)(ours, **kwargs)
    for g in grads[:3]:
        set_gradients(torch, ours, [None] * 3, g)
        optimizer.step()
    optimizer.param_groups[0]["lr"] *= 0.5                      # as a scheduler would, between steps
    saved = copy.deepcopy(optimizer.state_dict())              # what a checkpoint file holds

    # The layout is torch's: state by parameter index, with torch's names for each entry.
    reference = getattr(torch.optim, name)(parameter_pair(torch, seed=6)[1], **kwargs)
    assert sorted(saved["state"]) == [0, 1, 2] and saved["param_groups"][0]["params"] == [0, 1, 2]
    for q in reference.param_groups[0]["params"]:
        q.grad = torch.ones_like(q)
    reference.step()
    assert set(saved["state"][0]) == set(reference.state_dict()["state"][0])
    for entry in saved["state"].values():
        for value in entry.values():
            assert not hasattr(value, "shape") or type(value) is numpy.ndarray     # host arrays only

    resumed = [nn.Parameter(shim.to_backend(host(p).copy())) for p in ours]
    fresh = getattr(optim, name)(resumed, **kwargs)
    fresh.load_state_dict(saved)
    pristine = copy.deepcopy(saved)
    assert fresh.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    for g in grads[3:]:
        set_gradients(torch, ours, [None] * 3, g)
        set_gradients(torch, resumed, [None] * 3, g)
        optimizer.step()
        fresh.step()
    for p, q in zip(ours, resumed):
        assert q.backend == backend
        numpy.testing.assert_array_equal(host(q), host(p))      # the same operations: bit for bit
    for index, entry in pristine["state"].items():              # loading copied: the checkpoint is untouched
        for key, value in entry.items():
            numpy.testing.assert_array_equal(saved["state"][index][key], value, err_msg=key)


def test_optimizer_load_state_dict_with_other_groups_is_one_sentence(torch):
    ours, _ = parameter_pair(torch)
    saved = optim.SGD(ours, lr=0.1).state_dict()
    with pytest.raises(ValueError) as raised:
        optim.SGD(ours[:2], lr=0.1).load_state_dict(saved)
    assert_one_sentence(raised.value, "parameter")


# ---- learning-rate schedules against torch ----------------------------------------------------------
def build_schedule(ns, optimizer, kind):
    """The same schedule in either namespace (``lr_scheduler`` here or ``torch.optim.lr_scheduler``)."""
    if kind == "step":
        return ns.StepLR(optimizer, step_size=3, gamma=0.5)
    if kind == "cosine":
        return ns.CosineAnnealingLR(optimizer, T_max=8)                      # 20 steps: past T_max too
    if kind == "cosine-eta_min":
        return ns.CosineAnnealingLR(optimizer, T_max=12, eta_min=1e-3)
    if kind == "poly-0.9":
        return ns.PolynomialLR(optimizer, total_iters=15, power=0.9)
    if kind == "poly-1":
        return ns.PolynomialLR(optimizer, total_iters=10, power=1.0)
    if kind == "linear-warmup":
        return ns.LinearLR(optimizer, start_factor=0.1, total_iters=5)
    if kind == "linear-decay":
        return ns.LinearLR(optimizer, start_factor=1.0, end_factor=0.25, total_iters=8)
    if kind == "warmup-cosine":
        warmup = ns.LinearLR(optimizer, start_factor=0.05, total_iters=4)
        cosine = ns.CosineAnnealingLR(optimizer, T_max=14, eta_min=1e-4)
        return ns.SequentialLR(optimizer, [warmup, cosine], milestones=[4])
    if kind == "warmup-poly":
        warmup = ns.LinearLR(optimizer, start_factor=0.2, total_iters=3)
        poly = ns.PolynomialLR(optimizer, total_iters=12, power=0.9)
        return ns.SequentialLR(optimizer, [warmup, poly], milestones=[5])
    raise ValueError(kind)


SCHEDULES = ["step", "cosine", "cosine-eta_min", "poly-0.9", "poly-1", "linear-warmup", "linear-decay",
             "warmup-cosine", "warmup-poly"]


def two_groups(params, lr):
    return [{"params": params[:1]}, {"params": params[1:], "lr": lr * 0.2}]


def schedule_pair(torch, kind, lr=0.1):
    ours, theirs = parameter_pair(torch)
    optimizer = optim.SGD(two_groups(ours, lr), lr=lr, momentum=0.9)
    reference = torch.optim.SGD(two_groups(theirs, lr), lr=lr, momentum=0.9)
    return (optimizer, build_schedule(lr_scheduler, optimizer, kind),
            reference, build_schedule(torch.optim.lr_scheduler, reference, kind))


def run_schedule(optimizer, scheduler, steps):
    lrs = []
    for _ in range(steps):
        optimizer.step()                                       # torch's order: the step, then the schedule
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
        assert [g["lr"] for g in optimizer.param_groups] == lrs[-1]
    return lrs


@pytest.mark.filterwarnings("ignore::UserWarning")             # torch's SequentialLR steps its children with an epoch
@pytest.mark.parametrize("kind", SCHEDULES)
def test_schedule_matches_torch(torch, kind):
    optimizer, scheduler, reference, expected = schedule_pair(torch, kind)
    assert scheduler.get_last_lr() == pytest.approx(expected.get_last_lr(), rel=1e-12, abs=0)
    ours = [scheduler.get_last_lr()] + run_schedule(optimizer, scheduler, 20)
    theirs = [expected.get_last_lr()] + run_schedule(reference, expected, 20)
    # torch's schedules are recursive (each lr from the last); ours are closed forms: equal up to rounding.
    numpy.testing.assert_allclose(numpy.array(ours), numpy.array(theirs), rtol=1e-12, atol=1e-16)
    assert len({tuple(lr) for lr in ours}) > 2                 # the schedule actually moves


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", ["step", "cosine-eta_min", "poly-0.9", "linear-warmup", "warmup-cosine",
                                  "warmup-poly"])
def test_scheduler_state_dict_round_trip_mid_schedule(torch, kind):
    optimizer, scheduler, _, _ = schedule_pair(torch, kind)
    run_schedule(optimizer, scheduler, 6)
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_scheduler = copy.deepcopy(scheduler.state_dict())

    resumed_optimizer, resumed, _, _ = schedule_pair(torch, kind)
    resumed_optimizer.load_state_dict(saved_optimizer)
    resumed.load_state_dict(saved_scheduler)
    assert resumed.get_last_lr() == scheduler.get_last_lr()
    assert resumed.last_epoch == scheduler.last_epoch == 6
    continued = run_schedule(optimizer, scheduler, 12)
    assert run_schedule(resumed_optimizer, resumed, 12) == continued


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_scheduled_optimizer_matches_torch_through_a_milestone(torch, backend):
    """Warm-up then cosine driving Adam: the parameters follow torch's across the hand-over."""
    ours, theirs = parameter_pair(torch, seed=7)
    optimizer, reference = optim.Adam(ours, lr=0.05), torch.optim.Adam(theirs, lr=0.05)
    scheduler = build_schedule(lr_scheduler, optimizer, "warmup-cosine")
    expected = build_schedule(torch.optim.lr_scheduler, reference, "warmup-cosine")
    for step, grads in enumerate(gradient_sequence(steps=8, seed=8)):
        set_gradients(torch, ours, theirs, grads)
        optimizer.step()
        reference.step()
        scheduler.step()
        expected.step()
        assert_parameters_agree(ours, theirs, step)


# ---- bad arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_negative_lr_is_one_sentence(torch, name):
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], lr=-0.1)   # torch refuses it too
    with pytest.raises(ValueError) as raised:
        getattr(optim, name)([nn.Parameter(mt.ones(2))], lr=-0.1)
    assert_one_sentence(raised.value, "lr", "-0.1")


@pytest.mark.parametrize("kwargs", [dict(momentum=0.0), dict(momentum=0.9, dampening=0.1)])
def test_nesterov_needs_momentum_and_no_dampening(torch, kwargs):
    with pytest.raises(ValueError):
        torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1, nesterov=True, **kwargs)
    with pytest.raises(ValueError) as raised:
        optim.SGD([nn.Parameter(mt.ones(2))], lr=0.1, nesterov=True, **kwargs)
    assert_one_sentence(raised.value, "Nesterov", "momentum")


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_empty_parameter_list_is_one_sentence(name):
    with pytest.raises(ValueError) as raised:
        getattr(optim, name)(nn.Sequential(nn.ReLU()).parameters(), lr=0.1)
    assert_one_sentence(raised.value, "empty parameter list", name)


@pytest.mark.parametrize("milestones", [[], [3, 6]])
def test_sequential_lr_milestone_count_is_one_sentence(torch, milestones):
    optimizer = optim.SGD([nn.Parameter(mt.ones(2))], lr=0.1)
    schedulers = [lr_scheduler.LinearLR(optimizer, total_iters=3), lr_scheduler.StepLR(optimizer, 2)]
    with pytest.raises(ValueError) as raised:
        lr_scheduler.SequentialLR(optimizer, schedulers, milestones=milestones)
    assert_one_sentence(raised.value, "milestones", str(len(milestones)))


@pytest.mark.parametrize("start_factor, end_factor", [(0.0, 1.0), (1.5, 1.0), (0.5, 1.5)])
def test_linear_lr_factors_out_of_range_are_one_sentence(start_factor, end_factor):
    optimizer = optim.SGD([nn.Parameter(mt.ones(2))], lr=0.1)
    with pytest.raises(ValueError) as raised:
        lr_scheduler.LinearLR(optimizer, start_factor=start_factor, end_factor=end_factor)
    assert_one_sentence(raised.value, "start_factor", "end_factor")
