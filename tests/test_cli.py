"""The ``minitorch-seg`` command: end to end on a tiny dataset, Ctrl-C and --resume, and every user
error ending in one sentence on stderr and exit status 2.

Most cases call ``cli.main`` in-process; a few real ``python -m minitorch_seg`` subprocesses prove
the exit statuses, the lack of tracebacks and the SIGINT handling end to end.
"""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading

import numpy
import pytest
from PIL import Image

from minitorch_seg import backend, checkpoint, cli, models
from minitorch_seg.data.labels import LABELS, label_ids_to_train_ids

pytestmark = pytest.mark.cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("make-data", "train", "evaluate", "predict", "doctor")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """For subprocesses: no display, a private cache, unbuffered output, this checkout first on the path."""
    return dict(os.environ, MPLBACKEND="Agg", XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache")),
                PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))


@pytest.fixture(autouse=True)
def _private_cache(env, monkeypatch):
    """In-process commands see the same private cache and no display."""
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    monkeypatch.setenv("MPLBACKEND", "Agg")


def command(*args):
    return [sys.executable, "-m", "minitorch_seg", *map(str, args)]


def run_cli(env, *args, timeout=300):
    return subprocess.run(command(*args), capture_output=True, text=True, env=env, timeout=timeout)


def run_main(capsys, *args):
    """``cli.main`` in-process: (exit status, stdout, stderr); argparse's errors exit through SystemExit."""
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_sentence(err):
    """stderr is one line: ours ends with a period; argparse's is its one-line ``error: argument ...`` form."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("minitorch-seg "), line
    argparse_form = re.search(r": error: (argument |the following arguments)", line)
    assert argparse_form or line.endswith("."), line
    assert not re.search(r"\.\s+[A-Z]", line), f"more than one sentence: {line}"


@pytest.fixture(scope="module")
def tiny(env, tmp_path_factory):
    """make-data and a 1-epoch train, both through real subprocesses: (data root, run folder)."""
    base = tmp_path_factory.mktemp("cli")
    data, run = base / "data", base / "run"
    made = run_cli(env, "make-data", "--out", data, "--train", 4, "--val", 2, "--size", "32x64")
    assert made.returncode == 0, made.stderr
    assert os.path.samefile(made.stdout.strip().splitlines()[-1], data)
    trained = run_cli(env, "train", "--data", data, "--epochs", 1, "--batch-size", 2, "--out", run)
    assert trained.returncode == 0, trained.stderr
    assert "Traceback" not in trained.stderr
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
    assert len(rows) == 1 and rows[0]["epoch"] == "1"
    assert 0 <= float(rows[0]["val_miou"]) <= 1
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(run / "curves.png") as image:
        image.verify()
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("best.npz", "last.npz", "metrics.csv", "curves.png"):   # modes as open() gives, not 0600
        assert (run / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert not [p.name for p in run.iterdir() if p.name.startswith(".tmp-")]


def test_evaluate_prints_strict_json(tiny, capsys):
    data, run = tiny
    status, out, err = run_main(capsys, "evaluate", run, "--data", data, "--json")
    assert status == 0, err
    metrics = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert 0 <= metrics["miou"] <= 1 and 0 <= metrics["pixel_accuracy"] <= 1
    assert len(metrics["iou"]) == 19


def test_predict_writes_three_pngs_of_the_image_size(tiny, tmp_path, capsys):
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
        stem = image_path.stem + ".png"
        train_ids = numpy.asarray(Image.open(out_dir / "trainIds" / stem))
        label_ids = numpy.asarray(Image.open(out_dir / "labelIds" / stem))
        color = Image.open(out_dir / "color" / stem)
        assert train_ids.shape == label_ids.shape == (height, width)
        assert color.size == (width, height) and color.mode == "RGB"
        assert train_ids.max() <= 18
        assert set(numpy.unique(label_ids).tolist()) <= valid_ids
        assert numpy.array_equal(label_ids_to_train_ids(label_ids), train_ids)
    assert len(out.strip().splitlines()) == 6


def test_doctor_mentions_numpy(capsys):
    status, out, err = run_main(capsys, "doctor")
    assert status == 0, err
    assert "numpy" in out


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
    # 4 steps an epoch; the SIGINT comes once the bar shows step 1's loss, so it lands in step 2 (mid-epoch).
    # Six epochs, so that even a slow delivery finds the run still going (these steps take milliseconds).
    process = subprocess.Popen(command("train", "--data", data, "--epochs", EPOCHS, "--batch-size", 1, "--out", run),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stderr, started = bytearray(), threading.Event()

    def read_stderr():
        while chunk := process.stderr.read1(4096):
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
        stdout = process.stdout.read().decode()   # a few lines: they fit the pipe while it runs
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        process.stdout.close()
        process.stderr.close()
    text = stderr.decode(errors="replace")
    assert status == 130, text
    assert "Traceback" not in text
    assert "--resume" in stdout
    meta, state, _ = checkpoint.read(str(run / "last.npz"))
    assert state and 1 <= meta["epoch"] * 4 + meta["batch_in_epoch"] < 4 * EPOCHS   # after a step, before the end

    resumed = run_cli(env, "train", "--resume", "--out", run)   # no --data: the run's own data
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "make-data" not in resumed.stdout
    meta = checkpoint.read(str(run / "last.npz"))[0]
    assert (meta["epoch"], meta["batch_in_epoch"]) == (EPOCHS, 0)
    with open(run / "metrics.csv", newline="") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == [str(e) for e in range(1, EPOCHS + 1)]


# ---- user errors: exit 2, one sentence ------------------------------------------------------------
@pytest.fixture(scope="module")
def broken(tiny, tmp_path_factory):
    """Files and folders the error cases point at."""
    base = tmp_path_factory.mktemp("broken")
    (base / "random.npz").write_bytes(numpy.random.default_rng(0).bytes(4096))
    (base / "truncated.npz").write_bytes((tiny[1] / "last.npz").read_bytes()[:20000])
    (base / "empty_run").mkdir()
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
        "non-numeric size": (["make-data", "--size", "12xfoo", "--out", broken / "d"], ["12xfoo"]),
        "zero epochs": (["train", "--epochs", "0", "--data", data], ["--epochs", "positive"]),
        "negative epochs": (["train", "--epochs=-3", "--data", data], ["--epochs", "positive"]),
        "input scale above 1": (["train", "--input-scale", "2", "--data", data], ["--input-scale", "(0, 1]"]),
        "evaluate missing checkpoint": (["evaluate", broken / "nope.npz", "--data", data], ["does not exist"]),
        "evaluate missing run folder": (["evaluate", broken / "no_run", "--data", data], ["does not exist"]),
        "evaluate run folder without best.npz": (["evaluate", broken / "empty_run", "--data", data], ["best.npz"]),
        "predict missing checkpoint": (["predict", broken / "nope.npz", image, "--out", broken / "p"],
                                       ["does not exist"]),
        "predict missing image": (["predict", run, broken / "nope.png", "--out", broken / "p"], ["nope.png"]),
        "random bytes": (["evaluate", broken / "random.npz", "--data", data], ["not a readable"]),
        "truncated checkpoint": (["predict", broken / "truncated.npz", image, "--out", broken / "p"],
                                 ["not a readable"]),
    }


CASES = ["missing --data", "unknown model", "checkpoint of another model", "resume without last.npz",
         "non-numeric size", "zero epochs", "negative epochs", "input scale above 1", "evaluate missing checkpoint",
         "evaluate missing run folder", "evaluate run folder without best.npz", "predict missing checkpoint",
         "predict missing image", "random bytes", "truncated checkpoint"]


@pytest.mark.parametrize("case", CASES)
def test_user_errors_exit_2_with_one_sentence(tiny, broken, capsys, case):
    argv, fragments = error_cases(tiny, broken)[case]
    status, _, err = run_main(capsys, *argv)
    assert status == 2, err
    assert_one_sentence(err)
    for fragment in fragments:
        assert fragment in err, (fragment, err)


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
