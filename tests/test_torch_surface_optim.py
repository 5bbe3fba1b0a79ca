"""RMSprop and ReduceLROnPlateau step for step against torch (float64), their defaults and bad arguments.

RMSprop runs under the ``backend`` fixture: on "strict" an update that made a host array or read a
device value back would raise, so passing there means the step runs on CuPy too.
"""
import inspect

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import nn, optim
from minitorch_seg.optim import lr_scheduler
from helpers import assert_one_sentence

pytestmark = pytest.mark.optim

SHAPES = [(3, 4), (4,), (2, 1, 3)]
STEPS = 6


def defaults(callable_):
    return {name: p.default for name, p in inspect.signature(callable_).parameters.items()
            if p.default is not inspect.Parameter.empty}


# ---- RMSprop ----------------------------------------------------------------------------------------
def test_rmsprop_defaults_are_torchs(torch):
    ours, theirs = defaults(optim.RMSprop), defaults(torch.optim.RMSprop)
    for name, value in ours.items():
        assert theirs[name] == value, name


@pytest.mark.parametrize("kwargs", [
    {}, dict(lr=0.05, alpha=0.9), dict(momentum=0.9), dict(centered=True), dict(weight_decay=0.1),
    dict(lr=0.02, alpha=0.95, eps=1e-6, weight_decay=0.05, momentum=0.8, centered=True),
], ids=["defaults", "alpha", "momentum", "centered", "weight_decay", "everything"])
def test_rmsprop_matches_torch_step_for_step(torch, backend, kwargs):
    rng = numpy.random.default_rng(0)
    values = [rng.standard_normal(s) for s in SHAPES]
    ours = [nn.Parameter(shim.to_backend(v.copy())) for v in values]
    theirs = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    # Two groups, the second with its own lr: groups keep their own hyper-parameters.
    groups = lambda params: [{"params": params[:2]}, {"params": params[2:], "lr": 0.003}]  # noqa: E731
    opt, ref = optim.RMSprop(groups(ours), **kwargs), torch.optim.RMSprop(groups(theirs), **kwargs)
    for step in range(STEPS):
        for index, (p, q, shape) in enumerate(zip(ours, theirs, SHAPES)):
            skip = step == 2 and index == 1                     # a parameter without a gradient is left alone
            g = None if skip else rng.standard_normal(shape)
            p.grad = None if skip else mt.Tensor(shim.to_backend(g.copy()))
            q.grad = None if skip else torch.from_numpy(g.copy())
        opt.step()
        ref.step()
        for index, (p, q) in enumerate(zip(ours, theirs)):
            numpy.testing.assert_allclose(shim.to_numpy(p.data), q.detach().numpy(), rtol=1e-12, atol=1e-14,
                                          err_msg=f"parameter {index} after step {step + 1}")


def test_rmsprop_state_round_trips_through_a_checkpoint(tmp_path):
    def run(resume):
        mt.manual_seed(0)
        model = nn.Linear(3, 2)
        opt = optim.RMSprop(model.parameters(), lr=0.01, momentum=0.9, centered=True)
        for step in range(4):
            if resume and step == 2:
                mt.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ck.pt")
                state = mt.load(tmp_path / "ck.pt")
                model = nn.Linear(3, 2)
                model.load_state_dict(state["model"])
                opt = optim.RMSprop(model.parameters(), lr=0.01, momentum=0.9, centered=True)
                opt.load_state_dict(state["opt"])
            opt.zero_grad()
            model(mt.ones(4, 3) * step).pow(2).sum().backward()
            opt.step()
        return model.weight.tolist()
    assert run(resume=True) == run(resume=False)


def test_rmsprop_bad_arguments_are_one_sentence():
    with pytest.raises(ValueError) as raised:
        optim.RMSprop(nn.Linear(2, 2).parameters(), lr=-1)
    assert_one_sentence(raised.value, "lr=-1")


# ---- ReduceLROnPlateau --------------------------------------------------------------------------------
def test_plateau_defaults_are_torchs(torch):
    ours, theirs = defaults(lr_scheduler.ReduceLROnPlateau), defaults(torch.optim.lr_scheduler.ReduceLROnPlateau)
    for name, value in ours.items():
        assert theirs[name] == value, name


METRICS = [1.0, 0.9, 0.95, 0.9, 0.9, 0.91, 0.89995, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.7, 0.71, 0.72, 0.73,
           0.74, 0.75, 0.76, 0.77, 0.78]


@pytest.mark.parametrize("kwargs", [
    {}, dict(patience=2), dict(patience=1, factor=0.5, cooldown=2), dict(mode="max", patience=1),
    dict(patience=0, threshold_mode="abs", threshold=0.02), dict(patience=1, min_lr=[0.004, 0.0002], factor=0.2),
    dict(mode="max", threshold_mode="abs", threshold=0.01, patience=0, cooldown=1),
    dict(patience=0, factor=0.5, eps=0.003), dict(patience=1, min_lr=0.005),
], ids=["defaults", "patience", "cooldown", "max", "abs", "min_lr_list", "max_abs_cooldown", "eps", "min_lr"])
def test_plateau_matches_torch_epoch_for_epoch(torch, kwargs):
    metrics = METRICS * 2
    ours = optim.SGD([{"params": [nn.Parameter(mt.zeros(1).data)]},
                      {"params": [nn.Parameter(mt.zeros(1).data)], "lr": 0.001}], lr=0.1)
    theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))]},
                              {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.001}], lr=0.1)
    scheduler = lr_scheduler.ReduceLROnPlateau(ours, **kwargs)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **kwargs)
    reductions = 0
    for epoch, metric in enumerate(metrics):
        scheduler.step(mt.tensor(metric) if epoch % 3 == 0 else metric)     # a tensor or a number
        reference.step(metric)
        got = [g["lr"] for g in ours.param_groups]
        assert got == [g["lr"] for g in theirs.param_groups], f"epoch {epoch}"
        assert scheduler.get_last_lr() == reference.get_last_lr()
        reductions += got[0] < 0.1
    assert reductions > 0 or kwargs.get("min_lr") == 0.1


def test_plateau_resumes_from_its_state_dict():
    def schedule(resume_at):
        opt = optim.SGD([nn.Parameter(mt.zeros(1).data)], lr=1.0)
        scheduler = lr_scheduler.ReduceLROnPlateau(opt, patience=1, cooldown=1)
        lrs = []
        for epoch, metric in enumerate(METRICS):
            if epoch == resume_at:
                state = scheduler.state_dict()
                opt_state = opt.state_dict()
                opt = optim.SGD([nn.Parameter(mt.zeros(1).data)], lr=1.0)
                opt.load_state_dict(opt_state)
                scheduler = lr_scheduler.ReduceLROnPlateau(opt)
                scheduler.load_state_dict(state)
            scheduler.step(metric)
            lrs.append(opt.param_groups[0]["lr"])
        return lrs
    assert schedule(resume_at=7) == schedule(resume_at=None)
    assert "optimizer" not in lr_scheduler.ReduceLROnPlateau(optim.SGD([nn.Parameter(mt.zeros(1).data)])).state_dict()


@pytest.mark.parametrize("kwargs, needle", [(dict(factor=1.0), "factor"), (dict(mode="lowest"), "'lowest'"),
                                            (dict(threshold_mode="relative"), "'relative'"),
                                            (dict(min_lr=[0.1, 0.2]), "expected 1 min_lrs, got 2")])
def test_plateau_bad_arguments_are_one_sentence(kwargs, needle):
    with pytest.raises(ValueError) as raised:
        lr_scheduler.ReduceLROnPlateau(optim.SGD([nn.Parameter(mt.zeros(1).data)]), **kwargs)
    assert_one_sentence(raised.value, needle)
