"""Scoped state: a Trainer (and the command line) leaves the caller's backend, random generator and
host threads as it found them, the grad mode is per thread, and a checkpoint's meta holds each fact
once (old checkpoints, which held the model twice, still load and resume)."""
import dataclasses
import json
import os
import threading

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend, checkpoint, parallel
from minitorch_seg.data import make_dataset
from minitorch_seg.train import TrainConfig, Trainer, load_model

from cli_helpers import run_main

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_dataset(out=tmp_path_factory.mktemp("tiny_data"), train=4, val=2, size=(32, 64), seed=0)


def tiny_config(epochs=1):
    return TrainConfig(model="unet", model_options={"width": 4, "depth": 2}, epochs=epochs, batch_size=2,
                       crop=(32, 32), dtype="float64", prefetch=False, warmup_steps=1, seed=3)


def make_trainer(data, out, config=None):
    return Trainer(config or tiny_config(), data, str(out), log=lambda line: None, progress=False)


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    make_trainer(tiny_data, out).run()
    return str(out)


def saved(config):
    """``config`` as a checkpoint gives it back: JSON has lists, not tuples."""
    return dataclasses.replace(config, crop=list(config.crop))


def weights(trainer):
    return {name: backend.to_numpy(t.data).copy() for name, t in trainer.model.state_dict().items()}


# ---- the trainer's scope ------------------------------------------------------------------------
@pytest.mark.parametrize("outer", ["numpy", "strict"])
def test_a_trainer_leaves_the_backend_generator_and_threads_as_it_found_them(tiny_data, tmp_path, outer):
    with backend.use_backend(outer):
        backend.manual_seed(123)
        backend.host_generator().random(7)                         # somewhere in the caller's stream
        before, threads = backend.get_rng_state(), parallel.host_threads()
        expected = numpy.random.default_rng(123)
        expected.random(7)
        trainer = make_trainer(tiny_data, tmp_path)
        assert (backend.get_backend(), backend.get_rng_state()) == (outer, before)
        summary = trainer.run()
        assert (backend.get_backend(), backend.get_rng_state(), parallel.host_threads()) == (outer, before, threads)
        assert numpy.array_equal(backend.host_generator().random(3), expected.random(3))
    assert not summary["interrupted"] and len(summary["history"]) == 1
    assert next(iter(trainer.model.parameters())).backend == "numpy"    # the config's backend, not the caller's


def test_the_trainers_weights_come_from_its_seed_not_from_the_callers_generator(tiny_data, tmp_path):
    backend.manual_seed(1)
    first = weights(make_trainer(tiny_data, tmp_path / "a"))
    backend.manual_seed(2)
    backend.host_generator().random(11)
    second = weights(make_trainer(tiny_data, tmp_path / "b"))
    assert first.keys() == second.keys()
    assert all(numpy.array_equal(first[name], second[name]) for name in first)
    other_seed = weights(make_trainer(tiny_data, tmp_path / "c", dataclasses.replace(tiny_config(), seed=4)))
    assert not all(numpy.array_equal(first[name], other_seed[name]) for name in first)


def test_the_command_line_leaves_the_backend_as_it_found_it(finished_run, tiny_data, capsys):
    with backend.use_backend("strict"):
        status, out, _ = run_main(capsys, "evaluate", finished_run + "/last.npz", "--data", tiny_data, "--json",
                                  "--backend", "numpy")
        assert backend.get_backend() == "strict"
    assert status == 0 and "miou" in json.loads(out)
    assert backend.get_backend() == "numpy" and parallel.host_threads() == 1


# ---- one schema for the checkpoint's meta ---------------------------------------------------------
def test_a_checkpoint_holds_the_model_once(finished_run):
    meta = checkpoint.read_meta(os.path.join(finished_run, "last.npz"))
    assert (meta["model_name"], meta["model_options"]) == ("unet", {"width": 4, "depth": 2})
    assert "model" not in meta["config"] and "model_options" not in meta["config"]
    assert TrainConfig.from_saved(meta) == saved(tiny_config())          # the config is whole again


def write_old_schema(path, out):
    """The checkpoint at ``path`` as the versions before the one schema wrote it: the model in ``config`` too."""
    with numpy.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(arrays[checkpoint.META_KEY].tobytes().decode())
    meta["config"] = {"model": meta["model_name"], "model_options": meta["model_options"], **meta["config"]}
    arrays[checkpoint.META_KEY] = numpy.frombuffer(json.dumps(meta).encode(), dtype=numpy.uint8)
    os.makedirs(out, exist_ok=True)
    numpy.savez(os.path.join(out, "last.npz"), **arrays)
    return meta


def test_a_checkpoint_of_the_old_schema_loads_and_resumes_as_the_new_one(finished_run, tiny_data, tmp_path):
    old_folder = str(tmp_path / "old")
    old_meta = write_old_schema(os.path.join(finished_run, "last.npz"), old_folder)
    assert old_meta["config"]["model"] == old_meta["model_name"] == "unet"    # the model twice, as before
    model, meta = load_model(os.path.join(old_folder, "last.npz"))
    reference, _ = load_model(os.path.join(finished_run, "last.npz"))
    for (name, value), (_, expected) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert numpy.array_equal(backend.to_numpy(value.data), backend.to_numpy(expected.data)), name
    assert TrainConfig.from_saved(meta) == saved(tiny_config())

    new_folder = str(tmp_path / "new")
    os.makedirs(new_folder)
    with open(os.path.join(finished_run, "last.npz"), "rb") as source, \
            open(os.path.join(new_folder, "last.npz"), "wb") as target:
        target.write(source.read())
    resumed = []
    for folder in (old_folder, new_folder):
        trainer = make_trainer(tiny_data, folder, tiny_config(epochs=2))   # one more epoch
        resumed.append((trainer.run(resume=True), weights(trainer)))
    (old_summary, old_weights), (new_summary, new_weights) = resumed
    assert len(old_summary["history"]) == 2 and old_summary["best_miou"] == new_summary["best_miou"]
    assert all(numpy.array_equal(old_weights[name], new_weights[name]) for name in new_weights)
    rewritten = checkpoint.read_meta(os.path.join(old_folder, "last.npz"))     # saved again: the one schema
    assert "model" not in rewritten["config"] and rewritten["model_name"] == "unet"


# ---- the grad mode, per thread ----------------------------------------------------------------------
def test_no_grad_in_one_thread_leaves_another_thread_recording():
    evaluating, learnt = threading.Event(), threading.Event()
    seen = {}

    def evaluator():
        with mt.no_grad():
            evaluating.set()
            learnt.wait(timeout=60)                      # the other thread's step runs while we are inside
            seen["evaluator"] = (mt.is_grad_enabled(), (mt.ones(2, requires_grad=True) * 2).requires_grad)
        seen["evaluator after"] = mt.is_grad_enabled()

    def learner():
        try:
            evaluating.wait(timeout=60)
            x = mt.tensor([1.0, 2.0], requires_grad=True)
            y = (x * x).sum()
            seen["learner"] = (mt.is_grad_enabled(), y.requires_grad)
            y.backward()
            seen["grad"] = x.grad.tolist()
            mt.set_grad_enabled(False)                   # switched off for this thread only
        finally:
            learnt.set()

    threads = [threading.Thread(target=evaluator), threading.Thread(target=learner)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert seen == {"evaluator": (False, False), "evaluator after": True, "learner": (True, True),
                    "grad": [2.0, 4.0]}
    assert mt.is_grad_enabled()                          # and this thread never saw either switch
