"""The training job: an interrupted and resumed run equals an uninterrupted one, bit for bit, a
checkpoint survives a process killed in the middle of saving over it, a run resumed with more
epochs follows the schedule recomputed for them, and a second Ctrl-C says what was saved."""
import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend, checkpoint
from minitorch_seg.data import make_dataset
from minitorch_seg.data.transforms import normalize_chw
from minitorch_seg import train as train_module
from minitorch_seg.train import TrainConfig, Trainer

pytestmark = pytest.mark.cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_IMAGES, BATCH, EPOCHS = 8, 2, 2
STEPS_PER_EPOCH = TRAIN_IMAGES // BATCH


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return make_dataset(out=tmp_path_factory.mktemp("tiny_data"), train=TRAIN_IMAGES, val=4, size=(32, 64), seed=0)


def tiny_config(prefetch):
    return TrainConfig(model="unet", model_options={"width": 4, "depth": 2}, epochs=EPOCHS, batch_size=BATCH,
                       crop=(32, 32), dtype="float64", prefetch=prefetch, warmup_steps=2)


def make_trainer(data, out, prefetch):
    return Trainer(tiny_config(prefetch), data, str(out), log=lambda line: None, progress=False)


def interrupt_after(trainer, steps):
    """Send this process a real SIGINT right after the optimizer's ``steps``-th step."""
    step, calls = trainer.optimizer.step, [0]

    def counted(*args, **kwargs):
        result = step(*args, **kwargs)
        calls[0] += 1
        if calls[0] == steps:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    trainer.optimizer.step = counted
    return calls


def final_state(trainer):
    """Everything that must match bit for bit: parameters, buffers, optimizer state, schedule."""
    model = {name: backend.to_numpy(tensor.data) for name, tensor in trainer.model.state_dict().items()}
    optimizer = {f"{index}/{name}": numpy.asarray(value)
                 for index, values in trainer.optimizer.state_dict()["state"].items() for name, value in values.items()}
    return model, optimizer, trainer.schedule.state_dict(), [g["lr"] for g in trainer.optimizer.param_groups]


TIMING = ("images_per_second", "seconds", "time")   # the clock's, not the run's


def without_timing(history):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    trainer = make_trainer(tiny_data, tmp_path_factory.mktemp("run_a"), prefetch=False)
    summary = trainer.run()
    assert not summary["interrupted"] and len(summary["history"]) == EPOCHS
    return trainer, summary


def interrupted_then_resumed(data, out, prefetch, steps):
    first = make_trainer(data, out, prefetch)
    calls = interrupt_after(first, steps)
    summary = first.run()
    assert summary["interrupted"] is True
    assert calls[0] == steps, "the loop must stop right after the step the SIGINT arrived in"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "run() must restore the SIGINT handler"
    last = os.path.join(out, "last.npz")
    assert os.path.isfile(last)
    meta = checkpoint.read(last)[0]
    assert (meta["epoch"], meta["batch_in_epoch"]) == divmod(steps, STEPS_PER_EPOCH)
    resumed = make_trainer(data, out, prefetch)        # a fresh process would start just like this
    summary = resumed.run(resume=True)
    assert summary["interrupted"] is False
    return resumed, summary


def assert_same_run(trainer, summary, reference, reference_summary):
    model, optimizer, schedule, lrs = final_state(trainer)
    ref_model, ref_optimizer, ref_schedule, ref_lrs = final_state(reference)
    assert model.keys() == ref_model.keys()
    assert any("running_mean" in k for k in model) and any("num_batches_tracked" in k for k in model)
    for name in ref_model:
        assert model[name].dtype == ref_model[name].dtype, name
        assert numpy.array_equal(model[name], ref_model[name]), name
    assert optimizer.keys() == ref_optimizer.keys() and any(k.endswith("momentum_buffer") for k in optimizer)
    for name in ref_optimizer:
        assert numpy.array_equal(optimizer[name], ref_optimizer[name]), name
    assert (schedule, lrs) == (ref_schedule, ref_lrs)
    assert without_timing(summary["history"]) == without_timing(reference_summary["history"])
    assert summary["best_miou"] == reference_summary["best_miou"]


@pytest.mark.parametrize("prefetch, steps", [(False, STEPS_PER_EPOCH + 1), (True, 2)],
                         ids=["no-prefetch-epoch2", "prefetch-epoch1"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tiny_data, tmp_path, uninterrupted, prefetch, steps):
    assert steps % STEPS_PER_EPOCH != 0  # mid-epoch
    trainer, summary = interrupted_then_resumed(tiny_data, str(tmp_path), prefetch, steps)
    assert_same_run(trainer, summary, *uninterrupted)
    assert next(iter(trainer.model.parameters())).dtype == numpy.float64


def test_resumed_runs_with_and_without_prefetch_agree(tiny_data, tmp_path):
    steps = STEPS_PER_EPOCH + 3
    runs = [interrupted_then_resumed(tiny_data, str(tmp_path / str(p)), p, steps) for p in (False, True)]
    assert_same_run(*runs[0], *runs[1])


# ---- a kill in the middle of a save -------------------------------------------------------------
CHILD = textwrap.dedent("""
    import os, sys, time
    import minitorch_seg as mt
    from minitorch_seg import checkpoint

    real_fdopen = os.fdopen

    class HalfThenHang:  # writes half the payload, says so, and waits for the SIGKILL
        def __init__(self, stream):
            self.stream = stream
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.stream.__exit__(*exc)
        def write(self, data):
            self.stream.write(data[:len(data) // 2])
            self.stream.flush()
            os.fsync(self.stream.fileno())
            print("HALF-WRITTEN", flush=True)
            time.sleep(120)
        def __getattr__(self, name):
            return getattr(self.stream, name)

    os.fdopen = lambda *args, **kwargs: HalfThenHang(real_fdopen(*args, **kwargs))
    mt.manual_seed(1)
    model = mt.nn.Linear(300, 200)
    checkpoint.save(sys.argv[1], model, epoch=2)
    print("NOT KILLED", flush=True)
""")


def test_a_checkpoint_survives_a_kill_in_the_middle_of_a_save(tmp_path):
    path = tmp_path / "last.npz"
    mt.manual_seed(0)
    model = mt.nn.Linear(300, 200)
    optimizer = mt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(mt.randn(4, 300)).sum().backward()
    optimizer.step()
    checkpoint.save(str(path), model, optimizer, epoch=1)
    original = path.read_bytes()
    meta, state, optimizer_arrays = checkpoint.read(str(path))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        marker = child.stdout.readline()
        assert marker.strip() == "HALF-WRITTEN", (marker, child.stderr.read() if child.poll() is not None else "")
        temporaries = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
        assert len(temporaries) == 1 and temporaries[0].stat().st_size > 0   # the save is really under way
        child.kill()                                                         # SIGKILL: no cleanup runs
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()

    assert path.read_bytes() == original
    meta2, state2, optimizer_arrays2 = checkpoint.read(str(path))
    assert meta2 == meta and meta2["epoch"] == 1
    for saved, loaded in ((state, state2), (optimizer_arrays, optimizer_arrays2)):
        assert saved.keys() == loaded.keys() and saved
        assert all(numpy.array_equal(saved[k], loaded[k]) for k in saved)
    # The half-written temp file is left behind, is no checkpoint, and is not taken for one.
    leftover = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert leftover == temporaries
    with pytest.raises(checkpoint.CheckpointError, match="not a readable"):
        checkpoint.read(str(leftover[0]))
    restored = mt.nn.Linear(300, 200)
    restored.load_state_dict(state2)
    assert numpy.array_equal(restored.weight.numpy(), model.weight.numpy())

    # A new save still works, replaces the file and cleans up its own temp file.
    checkpoint.save(str(path), model, optimizer, epoch=3)
    assert checkpoint.read(str(path))[0]["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.npz", leftover[0].name])


def test_a_run_saved_before_class_weights_and_input_scale_resumes_without_them():
    saved = {"model": "unet", "epochs": 3, "seed": 5}                      # a config from an older checkpoint
    config = TrainConfig.from_saved({"config": saved})
    assert (config.class_weights, config.input_scale, config.epochs, config.seed) == ("none", 1.0, 3, 5)
    newer = TrainConfig.from_saved({"config": {**saved, "class_weights": "enet", "input_scale": 0.5}})
    assert (newer.class_weights, newer.input_scale) == ("enet", 0.5)


def test_a_resumed_run_keeps_the_class_weights_it_started_with(tiny_data, uninterrupted, monkeypatch):
    trainer, _ = uninterrupted
    saved = checkpoint.read(os.path.join(trainer.out_dir, "last.npz"))[0]["class_weight_values"]
    assert saved == backend.to_numpy(trainer.class_weights.data).tolist() and len(saved) == 19
    monkeypatch.setattr(train_module, "build_class_weights", lambda config, data: mt.ones(19, dtype="float64"))
    other = make_trainer(tiny_data, trainer.out_dir, prefetch=False)     # as if --data now held other labels
    assert other.class_weights.numpy().tolist() == [1.0] * 19
    other._restore(os.path.join(trainer.out_dir, "last.npz"))
    assert other.class_weights.numpy().tolist() == saved


# ---- a run extended with --epochs ----------------------------------------------------------------
def poly_lr(config, step, total):
    """The learning rate build_schedule gives at ``step`` of ``total``: linear warm-up, then poly 0.9."""
    warmup = min(config.warmup_steps, max(total - 1, 1))
    if step < warmup:
        return config.lr * (0.1 + 0.9 * step / warmup)
    return config.lr * (1 - min(step - warmup, total - warmup) / (total - warmup)) ** 0.9


def recorded_lrs(trainer):
    """The learning rate of every optimizer step the trainer takes from now on."""
    step, lrs = trainer.optimizer.step, []

    def recording(*args, **kwargs):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    trainer.optimizer.step = recording
    return lrs


def test_a_finished_run_resumed_with_more_epochs_continues_the_schedule_recomputed_for_them(tiny_data, tmp_path):
    config = tiny_config(prefetch=False)
    first = Trainer(config, tiny_data, str(tmp_path), log=lambda line: None, progress=False)
    first_lrs = recorded_lrs(first)
    assert len(first.run()["history"]) == EPOCHS
    total = EPOCHS * STEPS_PER_EPOCH
    assert first_lrs == pytest.approx([poly_lr(config, t, total) for t in range(total)], rel=1e-12)
    assert first.optimizer.param_groups[0]["lr"] == 0                     # finished: the schedule is at its end

    longer, lines = tiny_config(prefetch=False), []
    longer.epochs = EPOCHS + 3
    resumed = Trainer(longer, tiny_data, str(tmp_path), log=lines.append, progress=False)
    resumed_lrs = recorded_lrs(resumed)
    summary = resumed.run(resume=True)
    new_total = longer.epochs * STEPS_PER_EPOCH
    # From the step the run reached, the learning rate of a run planned for the new total from the start.
    assert resumed_lrs == pytest.approx([poly_lr(longer, t, new_total) for t in range(total, new_total)], rel=1e-12)
    assert resumed_lrs[0] > 0 and resumed.optimizer.param_groups[0]["lr"] == 0
    assert [row["epoch"] for row in summary["history"]] == list(range(1, longer.epochs + 1))
    assert any(f"extended from {EPOCHS} to {longer.epochs} epochs" in line for line in lines), lines
    meta = checkpoint.read(os.path.join(tmp_path, "last.npz"))[0]
    assert meta["config"]["epochs"] == longer.epochs and meta["epoch"] == longer.epochs


# ---- a second Ctrl-C -----------------------------------------------------------------------------
def interrupt_twice_after(trainer, steps):
    """Two real SIGINTs right after the optimizer's ``steps``-th step: the second stops the run at once."""
    step, calls = trainer.optimizer.step, [0]

    def counted(*args, **kwargs):
        result = step(*args, **kwargs)
        calls[0] += 1
        if calls[0] == steps:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return result

    trainer.optimizer.step = counted


@pytest.mark.parametrize("steps, saved", [(1, None), (STEPS_PER_EPOCH + 1, "the end of epoch 1")],
                         ids=["nothing-saved", "epoch-1-saved"])
def test_a_second_ctrl_c_stops_at_once_and_says_what_was_saved(tiny_data, tmp_path, steps, saved):
    trainer = make_trainer(tiny_data, tmp_path / "run", prefetch=False)
    interrupt_twice_after(trainer, steps)
    with pytest.raises(KeyboardInterrupt) as raised:
        trainer.run()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    last = tmp_path / "run" / "last.npz"
    if saved is None:
        assert str(raised.value) == "stopped at once; nothing was saved"
        assert not (tmp_path / "run").exists()                            # no folder for a run that saved nothing
    else:
        assert str(raised.value) == (f"stopped at once, without saving; {last} holds the run at {saved}, "
                                     "continue from there with --resume")
        assert checkpoint.read(str(last))[0]["epoch"] == 1


def test_the_log_has_a_line_an_epoch_with_the_time_left(tiny_data, tmp_path):
    lines = []
    Trainer(tiny_config(prefetch=False), tiny_data, str(tmp_path), log=lines.append, progress=False).run()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == EPOCHS, lines
    assert re.fullmatch(r"epoch 1/2: train loss [\d.]+, val loss [\d.]+, val mIoU [\d.]+ \(best\), pixel accuracy "
                        r"[\d.]+, [\d.]+ img/s, \d+ s; about \d+ s left", epochs[0]), epochs[0]
    assert epochs[1].endswith("; done")


def test_the_samples_are_the_first_validation_images_with_the_predictions_validation_made(tiny_data, tmp_path):
    trainer = make_trainer(tiny_data, tmp_path / "run", prefetch=False)
    for name, buffer in trainer.model.named_buffers():   # small variances: predictions that differ image to image
        if name.endswith("running_var"):
            buffer.data[...] = 1e-3
    loader, scale = trainer.val_loader, trainer.config.input_scale
    keep = BATCH + 1                                     # into the second batch
    metrics = train_module.evaluate(trainer.model, loader, input_scale=scale, keep=keep)
    assert trainer.model.training
    assert len(metrics["predictions"]) == keep
    assert "predictions" not in train_module.evaluate(trainer.model, loader, input_scale=scale)
    rows = trainer._samples(metrics["predictions"])
    assert all((rows[i][2] != rows[i + 1][2]).mean() > 0.1 for i in range(keep - 1))
    val = loader.dataset
    trainer.model.eval()
    for index, (image, label, prediction) in enumerate(rows):
        numpy.testing.assert_array_equal(image, val[index][0])
        numpy.testing.assert_array_equal(label, val[index][1])
        x = normalize_chw(image, loader.mean, loader.std)[None]                    # (1, 3, H, W)
        with mt.no_grad():
            alone = mt.predict.segment(trainer.model, mt.tensor(x).to("float64"), scale)
        numpy.testing.assert_array_equal(prediction, alone.numpy()[0])
    trainer.model.train()
