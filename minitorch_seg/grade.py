"""Grade learners' lesson notebooks: run each one headless and collect its exercises' outcomes.

``minitorch-seg grade NOTEBOOK...`` runs every notebook top to bottom in a fresh kernel (cells
that raise do not stop it: a wrong answer in one exercise must not hide the next), with
``MINITORCH_SEG_GRADE_LOG`` pointing at a temporary file. Each ``exercises.check`` call appends
its outcome there; the last outcome of an exercise counts. The exercises a notebook should
check are its cells tagged ``exercise-check`` (their metadata names the exercise); one that never
recorded an outcome (its check cell was deleted or never reached) is "not attempted".

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
    exercise: str
    status: str
    report: str = ""


def expected_exercises(notebook):
    """The exercise names of the notebook's check cells, in order, each once."""
    found = []
    for cell in notebook.cells:
        name = cell.metadata.get("exercise")
        if "exercise-check" in cell.metadata.get("tags", []) and name and name not in found:
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


def grade_notebook(path, timeout=600, env=None):
    """[Outcome, ...] for one notebook, in the order of its check cells (then any other exercise checked)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    notebook = _read(path)
    expected = expected_exercises(notebook)
    kernel = notebook.metadata.get("kernelspec", {}).get("name", "python3")
    with tempfile.TemporaryDirectory(prefix="minitorch-seg-grade-") as scratch:
        log = Path(scratch) / "outcomes.jsonl"
        kernel_env = dict(os.environ if env is None else env, MINITORCH_SEG_GRADE_LOG=str(log))
        client = NotebookClient(notebook, kernel_name=kernel, timeout=timeout, allow_errors=True,
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
    last = {r["exercise"]: r for r in records}
    outcomes = []
    for name in expected + [n for n in last if n not in expected]:
        if name in last:
            outcomes.append(Outcome(name, last[name]["status"], last[name]["report"]))
        elif crashed:
            outcomes.append(Outcome(name, FAILED, crashed))
        else:
            outcomes.append(Outcome(name, NOT_ATTEMPTED, "its check cell never ran"))
    return outcomes


def _indent(text, prefix="      "):
    return "\n".join(prefix + line for line in text.splitlines())


def grade(paths, timeout=600, out=print):
    """Grade every notebook of ``paths``, print the table; True when every exercise passed."""
    notebooks = [(path, _read(path)) for path in paths]        # every usage error before any work
    all_passed, counts = True, {PASSED: 0, FAILED: 0, NOT_ATTEMPTED: 0}
    for path, notebook in notebooks:
        outcomes = grade_notebook(path, timeout)
        out(f"{path}")
        if not outcomes:
            out("  (no exercises: no cell is tagged exercise-check)")
        width = max((len(o.exercise) for o in outcomes), default=0)
        for o in outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
            all_passed &= o.status == PASSED
            out(f"  {o.exercise:<{width}}  {o.status}")
            if o.status == FAILED:
                out(_indent(o.report))
    total = sum(counts.values())
    out(f"{total} exercises in {len(notebooks)} notebook(s): {counts[PASSED]} passed, {counts[FAILED]} failed, "
        f"{counts[NOT_ATTEMPTED]} not attempted.")
    return all_passed
