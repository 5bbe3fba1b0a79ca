"""Build the lesson notebooks from their Python sources: ``python lessons/build_notebooks.py [--check]``.

Each lesson is written as a plain Python file, ``lessons/src/NN_topic.py``, in the "percent"
cell format that VS Code, Spyder and jupytext also read, and this script turns it into
``lessons/NN_topic.ipynb``, without outputs and with stable cell ids, so that a change to a
lesson is a readable diff of a ``.py`` file and the notebook is always its exact image.

The cell format:

    # %% [markdown]                   a markdown cell: the comment lines below it, "# " removed
    # %%                              a code cell: the lines below it
    # %% {"tags": ["solution"]}       either kind may end with its cell metadata, as JSON
    # %matplotlib inline              in a code cell, a commented line magic becomes the magic

Cells tagged ``solution`` (code or markdown) are collapsed when the notebook opens
(``jupyter.source_hidden``).

The exercise pattern, checked here so a broken lesson does not build:

- a code cell tagged ``planted-wrong`` holds the learner's template, with a deliberately wrong
  backward, and its metadata ``"gradcheck"`` names the call that checks it
  (e.g. ``gradcheck(MySoftplus.apply, (mt.randn(7, requires_grad=True),))``);
- the next cell tagged ``exercise-check`` runs that very call (its lines may be wrapped) inside
  ``try/except GradcheckError``;
- a later code cell tagged ``solution`` redefines the same Function correctly, and the cell after
  it runs the call again, which must now pass (the derivation before it, a markdown cell, may be
  tagged ``solution`` too, and is collapsed with it).

The test suite (``tests/test_lessons.py``) executes every notebook, checks that each planted
backward really fails its gradcheck and each solution passes, and that the committed notebooks
are what this script builds (``--check`` does the last part alone: exit status 1 on a difference).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

LESSONS = Path(__file__).resolve().parent
SOURCES = LESSONS / "src"
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


def _check_exercises(cells, name):
    tags = [set(metadata.get("tags", ())) for _, _, metadata in cells]
    planted = [i for i, t in enumerate(tags) if "planted-wrong" in t]
    if not planted:
        raise LessonSourceError(f"{name}: no cell tagged planted-wrong: every lesson has a gradcheck exercise.")
    def runs(j, call):   # the cell's code contains the call, however its lines are wrapped
        return "".join(call.split()) in "".join(cells[j][1].split())

    for i in planted:
        call = cells[i][2].get("gradcheck")
        if not call:
            raise LessonSourceError(f"{name}: planted-wrong cell {i} has no 'gradcheck' call in its metadata.")
        check = next((j for j in range(i + 1, len(cells)) if "exercise-check" in tags[j]), None)
        solution = next((j for j in range(i + 1, len(cells)) if "solution" in tags[j] and cells[j][0] == "code"), None)
        if check is None or not runs(check, call) or "GradcheckError" not in cells[check][1]:
            raise LessonSourceError(f"{name}: planted-wrong cell {i} needs a later exercise-check cell running "
                                    f"{call} inside try/except GradcheckError.")
        if solution is None or solution + 1 >= len(cells) or not runs(solution + 1, call):
            raise LessonSourceError(f"{name}: planted-wrong cell {i} needs a later solution cell followed by a "
                                    f"cell that runs {call} again.")


def build(source):
    """The notebook (a ``nbformat`` node) that the lesson source file ``source`` describes."""
    source = Path(source)
    cells = parse_cells(source.read_text(), source.name)
    if not cells or cells[0][0] != "code" or 'FAST = os.environ.get("LESSON_FAST") == "1"' not in cells[0][1]:
        raise LessonSourceError(f"{source.name}: the first cell must be code that reads "
                                'FAST = os.environ.get("LESSON_FAST") == "1".')
    _check_exercises(cells, source.name)
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": dict(KERNELSPEC),
                                                  "language_info": {"name": "python"}})
    for index, (kind, text, metadata) in enumerate(cells):
        metadata = dict(metadata)
        if "solution" in metadata.get("tags", ()):
            metadata["jupyter"] = {"source_hidden": True}
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = make(text, metadata=metadata)
        cell["id"] = f"cell-{index:02d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def targets():
    """(source, notebook path) for every lesson source, in lesson order."""
    return [(source, LESSONS / f"{source.stem}.ipynb") for source in sorted(SOURCES.glob("[0-9][0-9]_*.py"))]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
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
