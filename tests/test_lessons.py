"""The lessons stay honest: every notebook runs top to bottom, draws, and its exercise really catches a bug.

- Each ``lessons/NN_*.ipynb`` is executed cell by cell in a fresh ``python3`` kernel (pinned to
  this interpreter) with LESSON_FAST=1, which shrinks sizes and step counts only, MPLBACKEND=Agg,
  a temporary working directory and a per-cell timeout. A failing cell fails its test.
- Right after the cell tagged ``planted-wrong`` runs, the gradcheck call named in its metadata is
  run and must raise ``GradcheckError``; right after the following ``solution`` cell, the same
  call must return True.
- Each executed notebook has at least one ``image/png`` output.
- ``lessons/README.md`` maps every heading of the course notes to the lesson(s) that teach it;
  every word of a heading (lower-cased, without punctuation or LaTeX) must appear in each mapped
  notebook that exists. The lessons planned but not yet written are listed here exactly, so a
  new lesson cannot slip in untested and a missing one cannot hide.
- The committed notebooks have no outputs, are exactly what ``lessons/build_notebooks.py``
  builds from ``lessons/src/``, and read FAST in their first cell only.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.lessons

nbformat = pytest.importorskip("nbformat", reason="the lesson tests need nbformat (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
NOTES = LESSONS / "semantic-segmentation-notes.md"
SHARED_NOTES = ROOT.parent / "shared" / "seed" / "semantic-segmentation-notes.md"
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
# Planned in lessons/README.md and not written yet. Writing one of them makes
# test_unwritten_lessons_are_exactly_the_planned_ones fail until it is taken off this list.
UNWRITTEN = set()
CELL_TIMEOUT = 300          # seconds; the whole FAST set takes well under a minute here
FAST_LINE = 'FAST = os.environ.get("LESSON_FAST") == "1"'


# ---- reading the notes and the README ---------------------------------------------------------------
def notes_headings():
    """Every '#'..'####' heading line of the course notes, as written (e.g. '## Evaluation metrics')."""
    return [line.strip() for line in NOTES.read_text().splitlines() if re.match(r"^#{1,4} \S", line)]


def readme_tables():
    """The README's tables as lists of rows, each row a list of cell texts without backticks."""
    tables, current = [], None
    for line in (LESSONS / "README.md").read_text().splitlines():
        if line.startswith("|"):
            cells = [c.strip().replace("`", "") for c in line.strip().strip("|").split("|")]
            if set("".join(cells)) <= set("-: "):
                continue                                   # the |---|---| separator
            if current is None:
                current = []
                tables.append(current)
            current.append(cells)
        else:
            current = None
    return tables


def table_with_header(first_cell):
    for table in readme_tables():
        if table[0][0].lower() == first_cell.lower():
            return table[1:]
    raise AssertionError(f"lessons/README.md has no table whose first column is headed {first_cell!r}.")


def heading_map():
    """{notes heading: [notebook file, ...]} from the README's heading table."""
    return {row[0]: [name.strip() for name in row[1].split(",") if name.strip()]
            for row in table_with_header("Heading of the notes")}


def planned_lessons():
    """The notebook files of the README's lesson table, in order."""
    return [row[1] for row in table_with_header("#")]


def words(text):
    """Lower-case words of ``text`` without LaTeX ($...$ and \\commands) or punctuation."""
    text = re.sub(r"\$[^$]*\$", " ", text)
    text = re.sub(r"\\[a-zA-Z]+", " ", text)
    return re.findall(r"[a-z0-9]+", text.lower())


def notebook_text(path):
    return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)


# ---- the map from the notes to the lessons -------------------------------------------------------------
def test_notes_copy_matches_the_shared_syllabus():
    assert NOTES.exists(), "lessons/semantic-segmentation-notes.md, the copy of the course notes, is missing."
    if not SHARED_NOTES.exists():
        pytest.skip("the shared course notes (../shared/seed) are not beside this checkout")
    assert NOTES.read_text() == SHARED_NOTES.read_text(), (
        "lessons/semantic-segmentation-notes.md differs from ../shared/seed: copy the notes again "
        "and update the heading map in lessons/README.md.")


def test_every_heading_of_the_notes_is_mapped_to_planned_lessons():
    mapped, planned = heading_map(), planned_lessons()
    assert len(planned) == 10 and planned == sorted(planned), planned
    missing = [h for h in notes_headings() if h not in mapped]
    assert not missing, f"headings of the notes with no lesson in lessons/README.md: {missing}"
    stale = [h for h in mapped if h not in notes_headings()]
    assert not stale, f"lessons/README.md maps headings the notes do not have: {stale}"
    for heading, lessons in mapped.items():
        assert lessons, f"{heading!r} is mapped to no lesson"
        unplanned = [name for name in lessons if name not in planned]
        assert not unplanned, f"{heading!r} is mapped to {unplanned}, which the lesson table does not list"


def test_unwritten_lessons_are_exactly_the_planned_ones():
    planned = planned_lessons()
    written = {path.name for path in NOTEBOOKS}
    assert written <= set(planned), f"notebooks not listed in lessons/README.md: {sorted(written - set(planned))}"
    assert set(planned) - written == UNWRITTEN, (
        "the lessons not written yet changed: update UNWRITTEN in tests/test_lessons.py "
        f"(now unwritten: {sorted(set(planned) - written)})")


def _heading_cases():
    if not NOTES.exists() or not (LESSONS / "README.md").exists():
        return []
    return [pytest.param(heading, name, id=f"{name}: {heading}") for heading, names in heading_map().items()
            for name in names if (LESSONS / name).exists()]


@pytest.mark.parametrize("heading, notebook", _heading_cases())
def test_heading_words_appear_in_the_mapped_lesson(heading, notebook):
    text = set(words(notebook_text(LESSONS / notebook)))
    absent = [w for w in words(heading.lstrip("#")) if w not in text]
    assert not absent, f"{notebook} never says {absent} from the notes' heading {heading!r}"


# ---- the committed notebooks ----------------------------------------------------------------------
def _load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", LESSONS / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_lessons_and_each_has_a_source():
    builder = _load_builder()
    assert [p.name for _, p in builder.targets()] == [p.name for p in NOTEBOOKS]
    assert len(NOTEBOOKS) >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_built_from_its_source(path):
    builder = _load_builder()
    built = json.loads(nbformat.writes(builder.build(builder.SOURCES / f"{path.stem}.py")))
    assert json.loads(path.read_text()) == built, f"{path.name} is out of date: run python lessons/build_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {index} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_fast_is_read_in_the_first_cell_only(path):
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "code" and FAST_LINE in cells[0].source.splitlines()
    for index, cell in enumerate(cells[1:], start=1):
        if cell.cell_type == "code":
            assert not re.search(r"\bFAST\b", cell.source), (
                f"{path.name} cell {index} uses FAST: only the first cell may, to choose sizes and step counts")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_solutions_are_collapsed(path):
    cells = nbformat.read(path, as_version=4).cells
    solutions = [c for c in cells if "solution" in c.metadata.get("tags", [])]
    planted = [c for c in cells if "planted-wrong" in c.metadata.get("tags", [])]
    assert planted and len(solutions) >= len(planted)
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") is True for c in solutions)


# ---- executing them -------------------------------------------------------------------------------
@dataclass
class Execution:
    notebook: object
    error: str | None = None
    planted: list = field(default_factory=list)      # (cell index, probe result)
    solutions: list = field(default_factory=list)    # (cell index, probe result)
    seconds: float = 0.0


PROBE = '''def _lesson_probe():
    from minitorch_seg import GradcheckError
    try:
        result = {call}
    except GradcheckError as error:
        return "raised GradcheckError: " + str(error)
    return "returned " + repr(result)
print("LESSON-PROBE", _lesson_probe())
del _lesson_probe'''


def _probe(client, call, index):
    """Run ``call`` (a gradcheck) in the kernel; 'raised GradcheckError: ...', 'returned ...' or 'error: ...'."""
    from nbclient.exceptions import CellExecutionError
    cell = nbformat.v4.new_code_cell(PROBE.format(call=call))
    try:
        client.execute_cell(cell, index)
    except CellExecutionError as error:
        return f"error: {str(error)[-600:]}"
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    return text.split("LESSON-PROBE ", 1)[-1].strip()


@pytest.fixture(scope="module")
def kernel_environment(tmp_path_factory):
    """The environment for the kernels: a ``python3`` kernelspec for this very interpreter, FAST, Agg."""
    pytest.importorskip("nbclient", reason="the lesson tests need nbclient (pip install -e '.[test]')")
    kernelspec = pytest.importorskip(
        "ipykernel.kernelspec", reason="no Jupyter kernel: the lesson tests need ipykernel (pip install -e '.[test]')")
    prefix = tmp_path_factory.mktemp("jupyter")
    kernelspec.install(prefix=str(prefix), kernel_name="python3")      # argv: this sys.executable
    jupyter_path = str(prefix / "share" / "jupyter")
    paths = os.pathsep.join(p for p in (jupyter_path, os.environ.get("JUPYTER_PATH")) if p)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", paths)                            # found before any other python3
        patch.setenv("LESSON_FAST", "1")
        patch.setenv("MPLBACKEND", "Agg")
        patch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
        from jupyter_client.kernelspec import KernelSpecManager
        spec = KernelSpecManager().get_kernel_spec("python3")
        assert spec.argv[0] == sys.executable, spec.argv
        yield dict(os.environ)


_executions = {}


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=lambda p: p.name)
def executed(request, kernel_environment, tmp_path_factory):
    """The notebook run top to bottom in a fresh kernel, with its exercises probed; cached per notebook."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = request.param
    if path in _executions:
        return _executions[path]
    notebook = nbformat.read(path, as_version=4)
    workdir = tmp_path_factory.mktemp(path.stem)
    client = NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT,
                            resources={"metadata": {"path": str(workdir)}})
    run = Execution(notebook)
    start = time.perf_counter()
    call = None
    with client.setup_kernel(env=kernel_environment):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                run.error = f"{path.name}, cell {index}:\n{error}"
                break
            tags = cell.metadata.get("tags", [])
            if "planted-wrong" in tags:
                call = cell.metadata["gradcheck"]
                run.planted.append((index, _probe(client, call, index)))
            elif "solution" in tags and call is not None:
                run.solutions.append((index, _probe(client, call, index)))
                call = None
    run.seconds = time.perf_counter() - start
    _executions[path] = run
    return run


def test_notebook_runs_top_to_bottom(executed):
    assert executed.error is None, executed.error


def test_notebook_draws_at_least_one_image(executed):
    images = [o for c in executed.notebook.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the lesson produced no image/png output"


def test_planted_wrong_backward_fails_gradcheck(executed):
    assert executed.planted, "no planted-wrong exercise was reached"
    for index, result in executed.planted:
        assert result.startswith("raised GradcheckError"), f"cell {index}: the planted wrong backward {result}"


def test_solution_passes_gradcheck(executed):
    assert executed.solutions, "no solution was reached after the planted-wrong exercise"
    for index, result in executed.solutions:
        assert result == "returned True", f"cell {index}: the solution's gradcheck {result}"


def test_fast_lessons_are_quick(executed):
    assert executed.seconds < 90, f"took {executed.seconds:.0f} s in FAST mode; keep each lesson well under a minute"
