"""What the command-line tests share: running ``minitorch-seg`` in-process and as a subprocess,
checking that an error is one sentence, and making a tiny dataset and run."""
import os
import re
import subprocess
import sys

from minitorch_seg import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env(cache):
    """For subprocesses: no display, a private cache, unbuffered output, this checkout first on the path."""
    return dict(os.environ, MPLBACKEND="Agg", XDG_CACHE_HOME=str(cache), PYTHONUNBUFFERED="1",
                PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))


def command(*args):
    return [sys.executable, "-m", "minitorch_seg", *map(str, args)]


def run_cli(env, *args, timeout=300):
    return subprocess.run(command(*args), capture_output=True, text=True, env=env, timeout=timeout)


def run_main(capsys, *args):
    """``cli.main`` in-process: (exit status, stdout, stderr); argparse's exits come through SystemExit."""
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


def last_line(err):
    """The last line of stderr: a command's error comes after whatever news it printed."""
    return err.strip().splitlines()[-1]


def tiny_data(base):
    """A 4 + 2 image dataset of 32x64 scenes under ``base``, made in-process."""
    from minitorch_seg.data import make_dataset
    return make_dataset(out=base / "data", train=4, val=2, size=(32, 64), seed=0)


def tiny_train(capsys, data, out, *extra):
    """A 1-epoch run in-process (batches of 2: 2 steps): (status, stdout, stderr)."""
    return run_main(capsys, "train", "--data", data, "--epochs", 1, "--batch-size", 2, "--out", out, *extra)
