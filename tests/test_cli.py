"""The ``minitorch-seg`` command: end to end on a tiny dataset, Ctrl-C and --resume, and every user
error ending in one sentence on stderr and exit status 2.

Most cases call ``cli.main`` in-process; a few real ``python -m minitorch_seg`` subprocesses prove
the exit statuses, the lack of tracebacks, what goes to stdout and stderr, and the SIGINT handling
end to end (with stderr a terminal, a pseudo-terminal, so the progress bars are drawn).
More in test_cli_runs.py (run folders), test_cli_output.py (unwritable output, a full disk) and
test_cli_conventions.py (help, version, tracebacks of bugs).
"""
import csv
import fcntl
import json
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import termios
import threading

import numpy
import pytest
from cli_helpers import assert_one_sentence, command, run_cli, run_main, subprocess_env
from PIL import Image

import minitorch_seg as mt
from minitorch_seg import backend, checkpoint, gemm, models
from minitorch_seg.data import GENERATOR_VERSION, default_dataset_root
from minitorch_seg.data.labels import LABELS, TRAIN_ID_PALETTE, label_ids_to_train_ids

pytestmark = pytest.mark.cli

COMMANDS = ("make-data", "train", "evaluate", "predict", "doctor")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return subprocess_env(tmp_path_factory.mktemp("cache"))


@pytest.fixture(autouse=True)
def _private_cache(env, monkeypatch):
    """In-process commands see the same private cache and no display."""
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def tiny(env, tmp_path_factory):
    """make-data and a 1-epoch train, both through real subprocesses: (data root, run folder)."""
    base = tmp_path_factory.mktemp("cli")
    data, run = base / "data", base / "run"
    made = run_cli(env, "make-data", "--out", data, "--train", 4, "--val", 2, "--size", "32x64")
    assert made.returncode == 0, made.stderr
    assert os.path.samefile(made.stdout.strip(), data)        # stdout: the folder, and nothing else
    assert "drawing 4 train and 2 val images" in made.stderr
    trained = run_cli(env, "train", "--data", data, "--epochs", 1, "--batch-size", 2, "--out", run)
    assert trained.returncode == 0, trained.stderr
    assert "Traceback" not in trained.stderr
    # stderr is a pipe here: plain lines, no bars (tqdm's carriage returns), one line an epoch with the time left
    assert "\r" not in trained.stderr and "it/s" not in trained.stderr, trained.stderr
    assert re.search(r"^epoch 1/1: train loss [\d.]+, val loss [\d.]+, val mIoU [\d.]+ \(best\), .* img/s, .*; done$",
                     trained.stderr, re.MULTILINE), trained.stderr
    result = rf"best validation mIoU [\d.]+; checkpoints, metrics, curves and samples in {re.escape(str(run))}\n"
    assert re.fullmatch(result, trained.stdout), trained.stdout          # stdout: the result alone
    return data, run


def val_image(data):
    return next((data / "leftImg8bit" / "val").rglob("*_leftImg8bit.png"))


# ---- end to end ---------------------------------------------------------------------------------
def test_make_data_and_train_write_a_complete_run_folder(tiny):
    data, run = tiny
    assert len(list((data / "leftImg8bit" / "train").rglob("*.png"))) == 4
    assert len(list((data / "leftImg8bit" / "val").rglob("*.png"))) == 2
    for name in ("best.npz", "last.npz"):
        meta = checkpoint.read(str(run / name))[0]
        assert meta["model_name"] == "unet" and meta["epoch"] == 1 and meta["batch_in_epoch"] == 0
    with open(run / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 1 and rows[0]["epoch"] == "1" and rows[0]["step"] == "2"
    assert 0 <= float(rows[0]["val_miou"]) <= 1 and float(rows[0]["val_loss"]) > 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    record = json.loads(lines[0], parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert len(lines) == 1 and record["epoch"] == 1 and record["val_miou"] == float(rows[0]["val_miou"])
    assert len(record["val_iou"]) == 19 and "time" in record
    for name in ("curves.png", "samples/epoch_001.png", "samples/legend.png"):
        with Image.open(run / name) as image:
            image.verify()
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("best.npz", "last.npz", "metrics.csv", "metrics.jsonl", "curves.png"):   # modes as open() gives
        assert (run / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert sorted(p.name for p in run.iterdir()) == ["best.npz", "curves.png", "last.npz", "metrics.csv",
                                                      "metrics.jsonl", "samples"]


def test_evaluate_prints_strict_json_that_matches_the_runs_own_validation(tiny, capsys):
    data, run = tiny
    status, out, err = run_main(capsys, "evaluate", run, "--data", data, "--json")
    assert status == 0, err
    metrics = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert 0 <= metrics["miou"] <= 1 and 0 <= metrics["pixel_accuracy"] <= 1
    assert len(metrics["iou"]) == 19
    with open(run / "metrics.csv", newline="") as file:
        row = next(csv.DictReader(file))
    # One batch of the same 2 images, the run's class weights: training's validation, computed again.
    assert metrics["miou"] == pytest.approx(float(row["val_miou"]), rel=1e-6)
    assert metrics["loss"] == pytest.approx(float(row["val_loss"]), rel=1e-5)


def test_evaluate_json_is_only_json_on_stdout_when_the_built_in_data_is_found(tiny, env):
    """Without --data, evaluate finds the built-in subset; make-data's news goes to stderr."""
    data, run = tiny
    default = default_dataset_root()   # under this module's private cache; "made" from the tiny data
    if not default.exists():
        shutil.copytree(data, default)
        (default / "synthetic.json").write_text(json.dumps({   # what make_dataset records (generate._params)
            "generator_version": GENERATOR_VERSION, "seed": 0, "size": [128, 256], "train": 300, "val": 50}))
    result = run_cli(env, "evaluate", run, "--json")
    assert result.returncode == 0, result.stderr
    assert "is already made" in result.stderr
    assert json.loads(result.stdout)["iou"]


def test_predict_writes_four_pngs_of_the_image_size_and_a_legend(tiny, tmp_path, capsys):
    data, run = tiny
    odd = tmp_path / "odd.png"   # a size that is no multiple of 32
    Image.fromarray(numpy.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=numpy.uint8)).save(odd)
    out_dir = tmp_path / "predictions"
    status, out, err = run_main(capsys, "predict", run / "best.npz", val_image(data), odd, "--out", out_dir)
    assert status == 0, err
    valid_ids = {label.id for label in LABELS if 0 <= label.train_id <= 18}
    for image_path in (val_image(data), odd):
        with Image.open(image_path) as image:
            width, height = image.size
            rgb = numpy.asarray(image.convert("RGB"))
        stem = image_path.stem + ".png"
        train_ids = numpy.asarray(Image.open(out_dir / "trainIds" / stem))
        label_ids = numpy.asarray(Image.open(out_dir / "labelIds" / stem))
        color = Image.open(out_dir / "color" / stem)
        overlay = Image.open(out_dir / "overlay" / stem)
        assert train_ids.shape == label_ids.shape == (height, width)
        assert color.size == overlay.size == (width, height) and color.mode == overlay.mode == "RGB"
        assert train_ids.max() <= 18
        assert set(numpy.unique(label_ids).tolist()) <= valid_ids
        assert numpy.array_equal(label_ids_to_train_ids(label_ids), train_ids)
        palette = TRAIN_ID_PALETTE[train_ids]
        assert numpy.array_equal(numpy.asarray(color), palette)   # the palette alone, as Cityscapes' _color.png
        blend = (0.5 * palette + 0.5 * rgb).astype(numpy.uint8)
        assert numpy.array_equal(numpy.asarray(overlay), blend)
    with Image.open(out_dir / "legend.png") as legend:
        legend_pixels = {tuple(p) for p in numpy.asarray(legend.convert("RGB")).reshape(-1, 3).tolist()}
    assert {tuple(c) for c in TRAIN_ID_PALETTE.tolist()} <= legend_pixels     # every class's colour is in it
    written = out.strip().splitlines()
    assert len(written) == 9 and written[-1] == str(out_dir / "legend.png") and err == ""


def test_doctor_mentions_numpy_and_the_engine_of_the_conv_products(capsys, monkeypatch):
    for enabled, engine in [(True, "MKL" if gemm.is_available() else "NumPy's BLAS"), (False, "NumPy's BLAS")]:
        monkeypatch.setattr(gemm, "enabled", enabled)
        status, out, err = run_main(capsys, "doctor")
        assert status == 0, err
        assert "numpy" in out and f"conv products: {engine}" in out, out
        assert "cores kept awake between hand-offs: " in out, out


@pytest.mark.parametrize("name", COMMANDS)
def test_help_exits_0_with_an_example(capsys, name):
    status, out, err = run_main(capsys, name, "--help")
    assert status == 0
    assert "example" in out and re.search(rf"^\s+minitorch-seg {name}\b", out, re.MULTILINE), out


def test_help_of_the_command_exits_0(capsys):
    status, out, _ = run_main(capsys, "--help")
    assert status == 0 and all(name in out for name in COMMANDS)


# ---- Ctrl-C and --resume ------------------------------------------------------------------------
def test_ctrl_c_saves_last_npz_exits_130_and_resume_completes(tiny, env, tmp_path):
    data, _ = tiny
    EPOCHS = 6  # noqa: N806 - a constant of this test
    run = tmp_path / "run"
    # stderr is a terminal (a pseudo-terminal of 120 columns): the bars are drawn, the run's with its ETA.
    # 4 steps an epoch; the SIGINT comes once the bar shows step 1's loss, so it lands in step 2 (mid-epoch).
    # Six epochs, so that even a slow delivery finds the run still going (these steps take milliseconds).
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(command("train", "--data", data, "--epochs", EPOCHS, "--batch-size", 1, "--out", run),
                               stdout=subprocess.PIPE, stderr=terminal, env=env)
    os.close(terminal)
    stderr, started = bytearray(), threading.Event()

    def read_stderr():
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:   # EIO: the process closed the terminal
                break
            if not chunk:
                break
            stderr.extend(chunk)
            if b"loss=" in stderr:  # the progress bar after the first step: the SIGINT handler is installed
                started.set()
        started.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert started.wait(120), "no progress output"
        assert process.poll() is None, stderr.decode(errors="replace")
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=120)
        stdout = process.stdout.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        os.close(controller)
        process.stdout.close()
    text = stderr.decode(errors="replace")
    assert status == 130, text
    assert "Traceback" not in text
    assert re.search(r"run: .*\d+/24 \[\d\d:\d\d<\d\d:\d\d", text), text   # the whole run's bar, with its time left
    assert "Ctrl-C again stops at once" in text and "continue with --resume" in text
    assert stdout == ""                                                    # no result: nothing on stdout
    meta, state, _ = checkpoint.read(str(run / "last.npz"))
    assert state and 1 <= meta["epoch"] * 4 + meta["batch_in_epoch"] < 4 * EPOCHS   # after a step, before the end

    resumed = run_cli(env, "train", "--resume", "--out", run)   # no --data: the run's own data
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr and "make-data" not in resumed.stderr
    meta = checkpoint.read(str(run / "last.npz"))[0]
    assert (meta["epoch"], meta["batch_in_epoch"]) == (EPOCHS, 0)
    with open(run / "metrics.csv", newline="") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == [str(e) for e in range(1, EPOCHS + 1)]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"epoch_{e:03d}.png" for e in range(1, 7)] + [
        "legend.png"]


# ---- user errors: exit 2, one sentence ------------------------------------------------------------
@pytest.fixture(scope="module")
def broken(tiny, tmp_path_factory):
    """Files and folders the error cases point at."""
    data, run = tiny
    base = tmp_path_factory.mktemp("broken")
    (base / "random.npz").write_bytes(numpy.random.default_rng(0).bytes(4096))
    (base / "truncated.npz").write_bytes((run / "last.npz").read_bytes()[:20000])
    (base / "empty_run").mkdir()
    (base / "not_an_image.png").write_bytes(b"no PNG")
    (base / "a_file").write_text("not a folder")
    for folder in ("a", "b"):
        (base / folder).mkdir()
        shutil.copy(val_image(data), base / folder / "street.png")
    model = mt.nn.Linear(3, 2)
    (base / "weights_only").mkdir()
    checkpoint.save(str(base / "weights_only" / "last.npz"), model, model_name="unet", num_classes=19)
    checkpoint.save(str(base / "unknown_model.npz"), model, model_name="resnet", num_classes=19)
    checkpoint.save(str(base / "other_weights.npz"), model, model_name="unet", num_classes=19)
    return base


def error_cases(tiny, broken):
    """(argv, fragments the message must contain)."""
    data, run = tiny
    image = val_image(data)
    return {
        "missing --data": (["train", "--data", broken / "nowhere", "--out", broken / "r1"], ["is not a folder"]),
        "unknown model": (["train", "--model", "resnet", "--data", data, "--out", broken / "r2"],
                          ["'resnet'", *models.available()]),
        "checkpoint of another model": (["train", "--resume", "--model", "hrnet", "--out", run], ["'unet'", "'hrnet'"]),
        "resume without last.npz": (["train", "--resume", "--out", broken / "empty_run"], ["does not exist"]),
        "resume weights without training state": (["train", "--resume", "--out", broken / "weights_only"],
                                                  ["no training state", "scheduler"]),
        "train into a run folder": (["train", "--data", data, "--out", run],
                                    [f"{run} already holds a run (unet, 1 of 1 epochs done, best val mIoU", "--resume",
                                     "--overwrite"]),
        "resume and overwrite": (["train", "--resume", "--overwrite", "--out", run], ["not allowed with"]),
        "resume with another batch size": (["train", "--resume", "--epochs", 2, "--batch-size", 4, "--out", run],
                                           ["--batch-size 4 (the run's is 2)", "--epochs, --data and --backend"]),
        "resume with other settings": (["train", "--resume", "--lr", 0.1, "--seed", 3, "--out", run],
                                       ["--lr 0.1 (the run's is 0.05) and --seed 3 (the run's is 0)"]),
        "resume a finished run": (["train", "--resume", "--out", run],
                                  ["is finished (1 of 1 epochs)", "larger --epochs"]),
        "resume with no more epochs": (["train", "--resume", "--epochs", 1, "--out", run],
                                       ["--epochs 1 would train nothing", "1 epoch already"]),
        "batch larger than the data": (["train", "--data", data, "--batch-size", 16, "--out", broken / "r3"],
                                       ["4 images", "fewer than one batch of 16"]),
        "non-numeric size": (["make-data", "--size", "12xfoo", "--out", broken / "d"], ["12xfoo"]),
        "size below 32": (["make-data", "--size", "16x64", "--out", broken / "d"], ["at least 32x32"]),
        "zero epochs": (["train", "--epochs", "0", "--data", data], ["--epochs", "positive"]),
        "negative epochs": (["train", "--epochs=-3", "--data", data], ["--epochs", "positive"]),
        "input scale above 1": (["train", "--input-scale", "2", "--data", data], ["--input-scale", "(0, 1]"]),
        "evaluate missing checkpoint": (["evaluate", broken / "nope.npz", "--data", data], ["does not exist"]),
        "evaluate missing run folder": (["evaluate", broken / "no_run", "--data", data], ["does not exist"]),
        "evaluate run folder without best.npz": (["evaluate", broken / "empty_run", "--data", data], ["best.npz"]),
        "evaluate a checkpoint of no known model": (["evaluate", broken / "unknown_model.npz", "--data", data],
                                                    ["names no known model", "'resnet'"]),
        "evaluate weights of another model": (["evaluate", broken / "other_weights.npz", "--data", data],
                                              ["does not fit model 'unet'", "2 in the file are not the model's"]),
        "predict missing checkpoint": (["predict", broken / "nope.npz", image, "--out", broken / "p"],
                                       ["does not exist"]),
        "predict missing image": (["predict", run, broken / "nope.png", "--out", broken / "p"], ["nope.png"]),
        "predict unreadable image": (["predict", run, broken / "not_an_image.png", "--out", broken / "p"],
                                     ["Cannot read image", "not_an_image.png"]),
        "predict two images of one name": (["predict", run, broken / "a" / "street.png", broken / "b" / "street.png",
                                            "--out", broken / "p"], ["street.png", "would both be written"]),
        "predict into a file": (["predict", run, image, "--out", broken / "a_file"], ["a_file is a file"]),
        "random bytes": (["evaluate", broken / "random.npz", "--data", data], ["not a readable"]),
        "truncated checkpoint": (["predict", broken / "truncated.npz", image, "--out", broken / "p"],
                                 ["not a readable"]),
    }


CASES = ["missing --data", "unknown model", "checkpoint of another model", "resume without last.npz",
         "resume weights without training state", "train into a run folder", "resume and overwrite",
         "resume with another batch size", "resume with other settings", "resume a finished run",
         "resume with no more epochs", "batch larger than the data", "non-numeric size", "size below 32",
         "zero epochs", "negative epochs", "input scale above 1", "evaluate missing checkpoint",
         "evaluate missing run folder", "evaluate run folder without best.npz",
         "evaluate a checkpoint of no known model", "evaluate weights of another model", "predict missing checkpoint",
         "predict missing image", "predict unreadable image", "predict two images of one name", "predict into a file",
         "random bytes", "truncated checkpoint"]


@pytest.mark.parametrize("case", CASES)
def test_user_errors_exit_2_with_one_sentence(tiny, broken, capsys, case):
    argv, fragments = error_cases(tiny, broken)[case]
    before = sorted(os.listdir(tiny[1]))
    status, _, err = run_main(capsys, *argv)
    assert status == 2, err
    assert_one_sentence(err)
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert sorted(os.listdir(tiny[1])) == before                       # the run is left as it was
    assert not (broken / "p").exists() and not any((broken / f"r{i}").exists() for i in (1, 2, 3))


def test_cupy_backend_without_cupy_names_both_extras(tiny, capsys):
    if backend.cupy_unavailable_reason() is None:
        pytest.skip("CuPy works here")
    status, _, err = run_main(capsys, "train", "--backend", "cupy", "--data", tiny[0])
    assert status == 2
    assert_one_sentence(err)
    if backend._cuda_driver_major() is None:     # with a driver, the one extra that fits it is named
        assert "minitorch-seg[cuda12]" in err and "minitorch-seg[cuda13]" in err, err
    else:
        assert re.search(r"minitorch-seg\[cuda1[23]\]", err), err


@pytest.mark.parametrize("case", ["missing --data", "non-numeric size", "truncated checkpoint"])
def test_user_errors_end_to_end(tiny, broken, env, case):
    argv, fragments = error_cases(tiny, broken)[case]
    result = run_cli(env, *argv)
    assert result.returncode == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert all(fragment in result.stderr for fragment in fragments)
