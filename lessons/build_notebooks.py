"""Build the lesson notebooks from their Python sources: ``python lessons/build_notebooks.py [--check | --solved DIR]``.

Each lesson is written as a plain Python file, ``lessons/src/NN_topic.py``, in the "percent"
cell format that VS Code, Spyder and jupytext also read, and this script turns it into
``lessons/NN_topic.ipynb``, without outputs and with stable cell ids, so that a change to a
lesson is a readable diff of a ``.py`` file and the notebook is always its exact image.

The cell format:

    # %% [markdown]                   a markdown cell: the comment lines below it, "# " removed
    # %%                              a code cell: the lines below it
    # %% {"tags": ["exercise"], ...}  either kind may end with its cell metadata, as JSON
    # %matplotlib inline              in a code cell, a commented line magic becomes the magic

The exercise pattern, checked here so a broken lesson does not build (2 to 4 exercises a lesson):

- a code cell tagged ``exercise``, whose metadata ``"exercise"`` names a ``minitorch_seg.exercises``
  exercise, is the learner's stub: the function to write, with exactly the library function's
  signature, raising ``NotImplementedError`` until it is written;
- a later code cell tagged ``exercise-check`` with the same ``"exercise"`` calls
  ``exercises.check("NAME", ...)``: it prints "not attempted" for the stub and the smallest
  failing input for a wrong answer;
- the solution is **not** in the notebook (Run All must never overwrite the learner's code): it is
  the cell of ``lessons/solutions/NN_topic.py`` (same cell format) whose metadata names the same
  exercise. ``--solved DIR`` writes the notebooks with every stub replaced by its solution, which
  is what a learner who solved everything has (the tests grade those).

The "predict first" pattern, checked the same way (any number a lesson):

- a code cell tagged ``prediction``, whose metadata ``"prediction"`` names one of the lesson's
  ``exercises.predictions`` questions (``tests/test_predictions.py`` checks the names), holds one
  line of code, ``answer = ...``, for the learner to fill in before running what follows;
- a later code cell tagged ``prediction-check`` with the same ``"prediction"`` calls
  ``exercises.check_prediction("NAME", answer)``: "not attempted", "right" or "wrong" and why;
- the answer is the cell of ``lessons/solutions/NN_topic.py`` whose metadata names the same
  prediction, and ``--solved`` puts it in.

The test suite (``tests/test_lessons.py``) executes every notebook, grades the stubs (all "not
attempted") and the solved notebooks (all "passed"), and checks that the committed notebooks are
what this script builds (``--check`` does the last part alone: exit status 1 on a difference).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

LESSONS = Path(__file__).resolve().parent
SOURCES = LESSONS / "src"
SOLUTIONS = LESSONS / "solutions"
MARKER = re.compile(r"^# %%(?P<markdown> \[markdown\])?(?: (?P<metadata>\{.*\}))?\s*$")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


class LessonSourceError(ValueError):
    """A lesson source does not follow the cell format or the exercise pattern."""


def _strip_blank_ends(lines):
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def parse_cells(text, name="<source>"):
    """[(kind, source, metadata), ...] from the text of a lesson source; lines before the first marker are skipped."""
    cells, current = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        match = MARKER.match(line)
        if match:
            metadata = json.loads(match["metadata"]) if match["metadata"] else {}
            current = ("markdown" if match["markdown"] else "code", [], metadata, number)
            cells.append(current)
        elif line.startswith("# %%"):
            raise LessonSourceError(f"{name}:{number}: a cell marker with unreadable metadata: {line!r}")
        elif current is not None:
            current[1].append(line)
    built = []
    for kind, lines, metadata, number in cells:
        lines = _strip_blank_ends(lines)
        if kind == "markdown":
            for offset, line in enumerate(lines):
                if line.strip() and not line.startswith("#"):
                    raise LessonSourceError(f"{name}:{number + offset}: a markdown line must be a comment: {line!r}")
            lines = [line[2:] if line.startswith("# ") else line[1:] for line in lines]
        else:
            lines = [line[2:] if re.match(r"^# %[a-z]", line) else line for line in lines]
        if not lines:
            raise LessonSourceError(f"{name}:{number}: an empty cell.")
        built.append((kind, "\n".join(lines), metadata))
    return built


def _exercise(cell, tag, key="exercise"):
    kind, _, metadata = cell
    return metadata.get(key) if kind == "code" and tag in metadata.get("tags", ()) else None


def solutions_for(source, key="exercise"):
    """{exercise name: solution code} from ``lessons/solutions/`` for a lesson source (empty if none).

    ``key="prediction"``: {prediction name: the answer's cell} instead.
    """
    path = SOLUTIONS / Path(source).name
    if not path.exists():
        return {}
    return {metadata[key]: text for kind, text, metadata in parse_cells(path.read_text(), path.name)
            if kind == "code" and key in metadata}


def _check_exercises(cells, name, solutions):
    stubs = [(i, _exercise(c, "exercise")) for i, c in enumerate(cells) if _exercise(c, "exercise")]
    if not 2 <= len(stubs) <= 4:
        raise LessonSourceError(f"{name}: {len(stubs)} cells tagged exercise; every lesson has 2 to 4.")
    if any("solution" in metadata.get("tags", ()) for _, _, metadata in cells):
        raise LessonSourceError(f"{name}: a cell is tagged solution; solutions live in lessons/solutions/, "
                                "so that Run All never replaces the learner's code.")
    for i, exercise in stubs:
        if "NotImplementedError" not in cells[i][1]:
            raise LessonSourceError(f"{name}: the stub of {exercise} (cell {i}) must raise NotImplementedError.")
        check = next((j for j in range(i + 1, len(cells)) if _exercise(cells[j], "exercise-check") == exercise), None)
        if check is None or f'exercises.check("{exercise}"' not in cells[check][1]:
            raise LessonSourceError(f"{name}: the stub of {exercise} (cell {i}) needs a later cell tagged "
                                    f'exercise-check, with "exercise": "{exercise}", that calls '
                                    f'exercises.check("{exercise}", ...).')
        if exercise not in solutions:
            raise LessonSourceError(f"{name}: lessons/solutions/{name} has no cell for {exercise}.")


def _check_predictions(cells, name, answers):
    for i, cell in enumerate(cells):
        prediction = _exercise(cell, "prediction", "prediction")
        if not prediction:
            continue
        code = [line for line in cell[1].splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if code != ["answer = ..."]:
            raise LessonSourceError(f"{name}: the prediction cell of {prediction} (cell {i}) must hold exactly one "
                                    "line of code, answer = ... (comments aside).")
        check = next((j for j in range(i + 1, len(cells))
                      if _exercise(cells[j], "prediction-check", "prediction") == prediction), None)
        if check is None or f'exercises.check_prediction("{prediction}", answer)' not in cells[check][1]:
            raise LessonSourceError(f"{name}: the prediction cell of {prediction} (cell {i}) needs a later cell "
                                    f'tagged prediction-check, with "prediction": "{prediction}", that calls '
                                    f'exercises.check_prediction("{prediction}", answer).')
        if prediction not in answers:
            raise LessonSourceError(f"{name}: lessons/solutions/{name} has no answer for {prediction}.")


def build(source, solved=False):
    """The notebook (a ``nbformat`` node) that the lesson source file ``source`` describes.

    ``solved``: each exercise stub replaced by its solution, and each prediction by its answer, from
    ``lessons/solutions/``.
    """
    source = Path(source)
    cells = parse_cells(source.read_text(), source.name)
    if not cells or cells[0][0] != "code" or 'FAST = os.environ.get("LESSON_FAST") == "1"' not in cells[0][1]:
        raise LessonSourceError(f"{source.name}: the first cell must be code that reads "
                                'FAST = os.environ.get("LESSON_FAST") == "1".')
    solutions = solutions_for(source)
    _check_exercises(cells, source.name, solutions)
    answers = solutions_for(source, key="prediction")
    _check_predictions(cells, source.name, answers)
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": dict(KERNELSPEC),
                                                  "language_info": {"name": "python"}})
    for index, (kind, text, metadata) in enumerate(cells):
        if solved and _exercise((kind, text, metadata), "exercise"):
            text = solutions[metadata["exercise"]]
        if solved and _exercise((kind, text, metadata), "prediction", "prediction"):
            text = answers[metadata["prediction"]]
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = make(text, metadata=dict(metadata))
        cell["id"] = f"cell-{index:02d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def targets():
    """(source, notebook path) for every lesson source, in lesson order."""
    return [(source, LESSONS / f"{source.stem}.ipynb") for source in sorted(SOURCES.glob("[0-9][0-9]_*.py"))]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--solved"] and len(argv) == 2:
        out = Path(argv[1])
        out.mkdir(parents=True, exist_ok=True)
        for source, path in targets():
            (out / path.name).write_text(nbformat.writes(build(source, solved=True)))
            print(f"wrote {out / path.name}")
        return 0
    check = "--check" in argv
    stale = []
    for source, path in targets():
        text = nbformat.writes(build(source))
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(LESSONS.parent)}")
    if stale:
        print(f"out of date (run python lessons/build_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
