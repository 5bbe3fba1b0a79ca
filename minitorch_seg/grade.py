"""Grade learners' lesson notebooks: run each one headless and collect its exercises' outcomes.

``minitorch-seg grade NOTEBOOK...`` runs every notebook top to bottom in a fresh kernel (cells
that raise do not stop it: a wrong answer in one exercise must not hide the next), with
``MINITORCH_SEG_GRADE_LOG`` pointing at a temporary file. Each ``exercises.check`` call appends
its outcome there; the last outcome of an exercise counts. The exercises a notebook should
check are its cells tagged ``exercise-check`` (their metadata names the exercise); one that never
recorded an outcome (its check cell was deleted or never reached) is "not attempted".

The "predict first" questions (``exercises.check_prediction``, cells tagged ``prediction-check``)
are collected the same way and reported after the exercises, but do not change the exit status:
a wrong prediction is part of the lesson, not a failure to do it.

Exit status: 0 when every exercise of every notebook passed, 1 when any failed or was not
attempted, 2 on a usage error (a missing or unreadable notebook, no Jupyter kernel).
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"


class GradeError(Exception):
    """A usage error of the grader: printed as one sentence, exit status 2."""


@dataclass
class Outcome:
    exercise: str                   # the exercise's name, or the prediction's
    status: str
    report: str = ""
    kind: str = "exercise"          # or "prediction"


def expected_exercises(notebook, kind="exercise"):
    """The exercise names of the notebook's check cells, in order, each once.

    ``kind="prediction"``: the names of its prediction check cells instead.
    """
    found = []
    for cell in notebook.cells:
        name = cell.metadata.get(kind)
        if f"{kind}-check" in cell.metadata.get("tags", []) and name and name not in found:
            found.append(name)
    return found


def _read(path):
    try:
        import nbformat
    except ImportError:
        raise GradeError("grade needs Jupyter's nbformat, nbclient and ipykernel: "
                         "pip install 'minitorch-seg[lessons]'.") from None
    path = Path(path)
    if not path.is_file():
        raise GradeError(f"{path} is not a file; expected a lesson notebook (.ipynb).")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:      # nbformat raises several kinds for a file that is not a notebook
        raise GradeError(f"{path} is not a readable Jupyter notebook ({type(error).__name__}).") from None


def _kernel_sockets(folder):
    """The kernel's channels as Unix sockets in ``folder`` where there are such sockets (not on
    Windows): TCP's free ports are picked before the kernel binds them, and two kernels started at
    once (two graders, or a test run's workers) could both be handed the same one."""
    from traitlets.config import Config
    if os.name != "posix":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(folder) / "kernel")}})


def grade_notebook(path, timeout=600, env=None, notebook=None):
    """[Outcome, ...] for one notebook: its exercises in the order of their check cells (then any other
    exercise checked), then its predictions likewise. ``notebook``: the notebook already read from ``path``."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    notebook = _read(path) if notebook is None else notebook
    kernel = notebook.metadata.get("kernelspec", {}).get("name", "python3")
    with tempfile.TemporaryDirectory(prefix="minitorch-seg-grade-") as scratch:
        log = Path(scratch) / "outcomes.jsonl"
        kernel_env = dict(os.environ if env is None else env, MINITORCH_SEG_GRADE_LOG=str(log))
        client = NotebookClient(notebook, kernel_name=kernel, timeout=timeout, allow_errors=True,
                                config=_kernel_sockets(scratch),
                                resources={"metadata": {"path": str(Path(path).resolve().parent)}})
        crashed = None
        try:
            client.execute(env=kernel_env, stderr=subprocess.DEVNULL)   # the kernel's own log lines
        except DeadKernelError as error:
            crashed = f"the kernel died while running the notebook ({error})"
        except Exception as error:        # no such kernel, a cell past the timeout
            if type(error).__name__ == "NoSuchKernel":
                raise GradeError(f"no Jupyter kernel named {kernel!r} for {path}: pip install ipykernel.") from None
            crashed = f"the notebook could not run to the end: {type(error).__name__}: {error}"
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    outcomes = []
    for kind in ("exercise", "prediction"):
        expected = expected_exercises(notebook, kind)
        last = {r[kind]: r for r in records if kind in r}
        for name in expected + [n for n in last if n not in expected]:
            if name in last:
                outcomes.append(Outcome(name, last[name]["status"], last[name]["report"], kind))
            elif crashed:
                outcomes.append(Outcome(name, FAILED, crashed, kind))
            else:
                outcomes.append(Outcome(name, NOT_ATTEMPTED, "its check cell never ran", kind))
    return outcomes


def _indent(text, prefix="      "):
    return "\n".join(prefix + line for line in text.splitlines())


def grade(paths, timeout=600, out=print):
    """Grade every notebook of ``paths``, print the table; True when every exercise passed (predictions aside)."""
    notebooks = [(path, _read(path)) for path in paths]        # every usage error before any work
    counts = {kind: {PASSED: 0, FAILED: 0, NOT_ATTEMPTED: 0} for kind in ("exercise", "prediction")}
    for path, notebook in notebooks:
        outcomes = grade_notebook(path, timeout, notebook=notebook)
        out(f"{path}")
        width = max((len(o.exercise) for o in outcomes), default=0)
        exercises = [o for o in outcomes if o.kind == "exercise"]
        predictions = [o for o in outcomes if o.kind == "prediction"]
        if not exercises:
            out("  (no exercises: no cell is tagged exercise-check)")
        _report(exercises, width, counts["exercise"], out)
        if predictions:
            out("  predictions (reported, not graded):")
            _report(predictions, width, counts["prediction"], out)
    exercises, predictions = counts["exercise"], counts["prediction"]
    out(f"{sum(exercises.values())} exercises in {len(notebooks)} notebook(s): {_tally(exercises)}."
        + (f" {sum(predictions.values())} predictions (not graded): {_tally(predictions)}."
           if any(predictions.values()) else ""))
    return exercises[PASSED] == sum(exercises.values())


def _report(outcomes, width, counts, out):
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
        out(f"  {o.exercise:<{width}}  {o.status}")
        if o.status == FAILED:
            out(_indent(o.report))


def _tally(counts):
    return f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_ATTEMPTED]} not attempted"
