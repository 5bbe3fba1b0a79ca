"""Output that cannot be written: checked before any work, and a write that fails mid-run (a full
disk) is one sentence, exit status 2, with the previous files whole.

Real conditions, not mocks: read-only folders are folders of mode 0555, and a full disk is
``RLIMIT_FSIZE`` (with SIGXFSZ ignored, a write past the limit fails with EFBIG, "File too
large"). Each set of cases runs in one subprocess that calls ``cli.main`` once per case. Root
writes into read-only folders anyway, so when the tests run as root the read-only cases run as
a process bound by file permissions: the user 'nobody' where that user can run this Python, else
root without the two capabilities that bypass permission checks (CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH, dropped from the bounding set before exec).
"""
import ctypes
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest
from cli_helpers import REPO, assert_one_sentence, run_main, subprocess_env, tiny_data, tiny_train

from minitorch_seg import checkpoint

pytestmark = pytest.mark.cli

DRIVER = textwrap.dedent("""
    import contextlib, io, json, os, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past RLIMIT_FSIZE then raises OSError (EFBIG)
    from minitorch_seg import cli
    import minitorch_seg.viz                        # matplotlib loaded (its font cache made) before any limit
    results = []
    for case in json.loads(sys.argv[1]):
        os.chdir(case["cwd"])
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (case.get("fsize", hard), hard))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main(case["argv"])
            except SystemExit as exit:
                status = exit.code
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        results.append({"status": status, "stdout": out.getvalue(), "stderr": err.getvalue()})
    print(json.dumps(results))
""")


def drive(cases, env, preexec_fn=None):
    """Run ``cases`` ({"argv", "cwd", "fsize"?}) in one subprocess; their (status, stdout, stderr)."""
    cases = [{**case, "argv": [str(a) for a in case["argv"]], "cwd": str(case["cwd"])} for case in cases]
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases)], capture_output=True, text=True,
                          env=env, preexec_fn=preexec_fn, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    return [(r["status"], r["stdout"], r["stderr"]) for r in json.loads(done.stdout.splitlines()[-1])]


@pytest.fixture(autouse=True)
def _no_display(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


# ---- who is bound by file permissions ----------------------------------------------------------
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def _become_nobody():
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)


def _drop_permission_capabilities():
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _bound_by_permissions(preexec_fn, read_only, env):
    """True if a Python run under ``preexec_fn`` imports minitorch_seg and cannot write into ``read_only``."""
    probe = "import sys, minitorch_seg\ntry:\n    open(sys.argv[1] + '/probe', 'w')\nexcept PermissionError:\n" \
            "    sys.exit(0)\nsys.exit(1)"
    try:
        return subprocess.run([sys.executable, "-c", probe, read_only], env=env, preexec_fn=preexec_fn, cwd="/",
                              capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError):   # exec refused (a Python 'nobody' may not run), setuid refused
        return False


@pytest.fixture(scope="module")
def unprivileged(tmp_path_factory):
    """(preexec_fn, a world-readable scratch folder): a subprocess that file permissions bind, or a skip."""
    scratch = tempfile.mkdtemp(prefix="minitorch-seg-readonly-")   # outside pytest's 0700 folders, for 'nobody'
    os.chmod(scratch, 0o755)
    read_only = os.path.join(scratch, "probe")
    os.mkdir(read_only, 0o555)
    env = subprocess_env(tmp_path_factory.mktemp("cache"))
    try:
        if os.geteuid() != 0:
            yield None, scratch
            return
        for preexec_fn in (_become_nobody, _drop_permission_capabilities):
            if _bound_by_permissions(preexec_fn, read_only, env):
                yield preexec_fn, scratch
                return
        pytest.skip("the tests run as root, which writes into read-only folders, and neither becoming 'nobody' "
                    "(it needs CAP_SETUID and a Python that 'nobody' may run) nor dropping CAP_DAC_OVERRIDE "
                    "(it needs CAP_SETPCAP) works here")
    finally:
        for folder, _, _ in os.walk(scratch):
            os.chmod(folder, 0o755)
        shutil.rmtree(scratch)


def test_unwritable_output_is_refused_before_any_work(unprivileged, tmp_path_factory):
    preexec_fn, scratch = unprivileged
    base = os.path.join(scratch, "case")
    shutil.copytree(tiny_data(tmp_path_factory.mktemp("readonly")), os.path.join(base, "data"))
    image = next(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(base, "data", "leftImg8bit", "val"))
                 for f in fs)
    locked, empty_locked, out = (os.path.join(base, name) for name in ("locked", "empty_locked", "out"))
    os.makedirs(os.path.join(out, "color"))
    for folder in (locked, empty_locked):
        os.mkdir(folder)
    for folder, _, files in os.walk(base):   # all readable, for 'nobody' too
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    for folder in (locked, empty_locked, os.path.join(out, "color")):
        os.chmod(folder, 0o555)
    data = os.path.join(base, "data")
    train = ["train", "--data", data, "--epochs", 1, "--batch-size", 2]   # would train, were it not refused
    cases = {   # argv, the folder named as not writable
        "train --out under a read-only folder": ([*train, "--out", f"{locked}/run"],
                                                 f"--out {locked}/run cannot be made: {locked} is not writable"),
        "train into a read-only existing --out": ([*train, "--out", empty_locked],
                                                  f"--out {empty_locked} is not writable"),
        "train with the default --out in a read-only folder": (train,
                                                               f"--out runs/unet cannot be made: {locked} is not"),
        "predict --out under a read-only folder": (["predict", f"{base}/nowhere.npz", image, "--out", f"{locked}/p"],
                                                   f"--out {locked}/p cannot be made: {locked} is not writable"),
        "predict into a read-only existing --out": (["predict", f"{base}/nowhere.npz", image, "--out",
                                                     empty_locked], f"--out {empty_locked} is not writable"),
        "predict with a read-only color/": (["predict", f"{base}/nowhere.npz", image, "--out", out],
                                            f"--out {out}/color is not writable"),
        "make-data --out under a read-only folder": (["make-data", "--out", f"{locked}/data", "--train", 1, "--val",
                                                      1, "--size", "32x32"], f"make-data: {locked} is not writable"),
    }
    runs = [{"argv": argv, "cwd": locked if "default" in name else base} for name, (argv, _) in cases.items()]
    env = subprocess_env(os.path.join(scratch, "cache"))
    env["MPLCONFIGDIR"] = os.path.join(scratch, "matplotlib")
    for (name, (_, expected)), (status, stdout, stderr) in zip(cases.items(), drive(runs, env, preexec_fn)):
        assert status == 2, (name, stderr)
        assert_one_sentence(stderr)
        assert expected in stderr and "(permission denied or a read-only file system)" in stderr, (name, stderr)
        assert stdout == "", name
    for folder in (locked, empty_locked, os.path.join(out, "color")):
        assert os.listdir(folder) == []                                  # nothing was made, not even a folder
    assert sorted(os.listdir(out)) == ["color"]


def test_a_full_disk_mid_run_is_one_sentence_and_keeps_the_files_there(tmp_path, capsys):
    data = tiny_data(tmp_path)
    run = tmp_path / "run"
    status, _, err = tiny_train(capsys, data, run)
    assert status == 0, err
    kept = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    image = next((data / "leftImg8bit" / "val").rglob("*.png"))
    limit = (run / "last.npz").stat().st_size // 2     # the logs and pictures fit, a checkpoint does not
    cases = [
        {"argv": ["train", "--resume", "--epochs", 2, "--out", run], "cwd": tmp_path, "fsize": limit},
        {"argv": ["make-data", "--out", tmp_path / "new_data", "--train", 2, "--val", 1, "--size", "32x64"],
         "cwd": tmp_path, "fsize": 1000},                                 # an image is larger
        {"argv": ["predict", run, image, "--out", tmp_path / "p"], "cwd": tmp_path, "fsize": 50},
    ]
    env = subprocess_env(tmp_path / "cache")
    (train, make, predict) = drive(cases, env)

    status, _, err = train   # epoch 2 trained, then its checkpoint does not fit
    assert status == 2, err
    assert_one_sentence(err.strip().splitlines()[-1])
    assert f"Cannot write {run}/" in err and ".npz (File too large); the files already in" in err, err
    assert "then continue with --resume." in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == kept   # epoch 1's, byte for byte
    assert not [p for p in run.rglob(".tmp-*")]
    status, _, err = tiny_train(capsys, data, run, "--resume", "--epochs", 2)   # room again: the run goes on
    assert status == 0, err
    assert checkpoint.read_meta(str(run / "last.npz"))["epoch"] == 2

    status, stdout, err = make
    assert status == 2 and stdout == "", err
    assert_one_sentence(err.strip().splitlines()[-1])
    assert f"make-data: cannot write {tmp_path / 'new_data'} (File too large); nothing was kept" in err
    assert not (tmp_path / "new_data").exists() and not list(tmp_path.glob(".new_data.tmp-*"))

    status, stdout, err = predict
    assert status == 2 and stdout == "", err
    assert_one_sentence(err)
    assert f"Cannot write {tmp_path / 'p' / 'trainIds' / image.name} (File too large)." in err
    assert not [p for p in (tmp_path / "p").rglob("*") if p.is_file()]


def test_predict_into_an_existing_file_is_refused_before_loading_the_model(tmp_path, capsys):
    image = tmp_path / "street.png"
    image.write_bytes(b"")                        # never read: the --out check comes first
    (tmp_path / "predictions").write_text("a file")
    status, _, err = run_main(capsys, "predict", tmp_path / "nowhere.npz", image, "--out", tmp_path / "predictions")
    assert status == 2
    assert_one_sentence(err)
    assert f"--out {tmp_path / 'predictions'} is a file; expected a folder to write into." in err
