"""``minitorch-seg`` behaves like the tools users know: the commands when run alone, --version,
defaults in every --help, a traceback for a bug (only user errors are one sentence), and a plain
"no GPU" when CuPy is installed on a machine without one."""
import argparse
import subprocess
import sys
import textwrap

import pytest
from cli_helpers import REPO, assert_one_sentence, run_main, subprocess_env

import minitorch_seg
from minitorch_seg import backend, checkpoint, cli, models

pytestmark = pytest.mark.cli

COMMANDS = ("make-data", "train", "evaluate", "predict", "grade", "doctor")


def test_the_command_alone_lists_the_commands(capsys):
    status, out, err = run_main(capsys)
    assert status == 0 and err == ""
    for name in COMMANDS:
        assert f"    {name} " in out or f"    {name}\n" in out, out


def test_version(capsys):
    status, out, _ = run_main(capsys, "--version")
    assert status == 0 and out == f"minitorch-seg {minitorch_seg.__version__}\n"


def subcommands():
    parser = cli.build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_says_its_default(name, capsys):
    flags = (argparse._HelpAction, argparse._StoreTrueAction, argparse._VersionAction)
    options = [a for a in subcommands()[name]._actions if a.option_strings and not isinstance(a, flags)]
    for action in options:
        assert "default" in (action.help or ""), f"{name} {action.option_strings[0]}: {action.help!r}"
    status, out, _ = run_main(capsys, name, "--help")
    assert status == 0 and out.count("default") >= len(options)


def test_only_the_projects_own_errors_are_caught():
    caught = set(cli.user_errors())
    assert not caught & {Exception, ValueError, KeyError, FileNotFoundError, OSError, RuntimeError, TypeError}
    assert all(error.__module__.startswith("minitorch_seg") for error in caught)


@pytest.fixture
def small_checkpoint(tmp_path):
    model = models.build("unet", num_classes=19, width=4, depth=2)
    path = tmp_path / "small.npz"
    checkpoint.save(str(path), model, model_name="unet", model_options={"width": 4, "depth": 2}, num_classes=19)
    image = tmp_path / "street.png"
    from PIL import Image
    Image.new("RGB", (40, 24), (90, 90, 90)).save(image)
    return path, image


@pytest.mark.parametrize("bug", [KeyError("num_classes"), ValueError("bad shape"), FileNotFoundError(2, "gone"),
                                 RuntimeError("internal"), TypeError("wrong call")], ids=lambda e: type(e).__name__)
def test_a_bug_is_not_dressed_as_a_user_error(small_checkpoint, tmp_path, monkeypatch, bug):
    path, image = small_checkpoint

    def buggy(*args, **kwargs):
        raise bug
        yield

    monkeypatch.setattr("minitorch_seg.predict.predict_files", buggy)
    with pytest.raises(type(bug)):
        cli.main(["predict", str(path), str(image), "--out", str(tmp_path / "p")])


def test_a_bug_shows_its_traceback_end_to_end(small_checkpoint, tmp_path):
    path, image = small_checkpoint
    script = textwrap.dedent(f"""
        import sys
        import minitorch_seg.predict
        def buggy(*args, **kwargs):
            raise KeyError("a key the code forgot")
            yield
        minitorch_seg.predict.predict_files = buggy
        from minitorch_seg.cli import main
        sys.exit(main(["predict", {str(path)!r}, {str(image)!r}, "--out", {str(tmp_path / "p")!r}]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=subprocess_env(tmp_path / "cache"), cwd=REPO, timeout=120)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "KeyError: 'a key the code forgot'" in result.stderr
    assert "error:" not in result.stderr


@pytest.fixture
def cupy_installed_without_a_gpu(monkeypatch):
    """CuPy installed on a machine whose NVIDIA driver lists no GPU (or that has no driver at all)."""
    monkeypatch.setattr(backend, "cupy_unavailable_reason", lambda: (
        "The cupy backend needs CuPy and a working NVIDIA GPU, but CuPy failed with: cudaErrorNoDevice; "
        f"{backend.INSTALL_HINT}."))
    monkeypatch.setattr(cli, "_cupy_installed", lambda: True)
    monkeypatch.setattr(cli, "_gpus_listed", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_cupy_installed_but_no_gpu_says_so_not_pip_install(cupy_installed_without_a_gpu, capsys):
    for argv in (["train", "--backend", "cupy"], ["evaluate", "runs/unet", "--backend", "cupy"]):
        status, _, err = run_main(capsys, *argv)
        assert status == 2
        assert_one_sentence(err)
        assert "CuPy is installed but no NVIDIA GPU was found" in err and "pip install" not in err, err
    status, out, _ = run_main(capsys, "doctor")
    assert status == 0 and "CuPy is installed but no NVIDIA GPU was found" in out and "pip install" not in out


def test_cupy_installed_with_every_gpu_hidden_names_the_variable(cupy_installed_without_a_gpu, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    status, _, err = run_main(capsys, "train", "--backend", "cupy")
    assert status == 2
    assert_one_sentence(err)
    assert "no GPU is visible (CUDA_VISIBLE_DEVICES='' hides them all)" in err and "pip install" not in err


def test_cupy_not_installed_still_names_the_extra_to_install(monkeypatch, capsys):
    monkeypatch.setattr(backend, "cupy_unavailable_reason", lambda: (
        f"The cupy backend needs CuPy, which is not installed: {backend.INSTALL_HINT}."))
    monkeypatch.setattr(cli, "_cupy_installed", lambda: False)
    status, _, err = run_main(capsys, "train", "--backend", "cupy")
    assert status == 2 and "pip install 'minitorch-seg[cuda12]'" in err
