"""The lessons stay honest: every notebook runs top to bottom, draws, and its exercises are graded.

- Each ``lessons/NN_*.ipynb`` is executed cell by cell in a fresh ``python3`` kernel (pinned to
  this interpreter) with LESSON_FAST=1, which shrinks sizes, step counts and the exercises' draws
  only, MPLBACKEND=Agg, a temporary working directory and a per-cell timeout. A failing cell
  fails its test: with the stubs untouched, every check cell (exercise or prediction) must report
  "not attempted" (in the grade log ``exercises.check`` and ``check_prediction`` write), never crash.
- The solved notebooks (``build_notebooks.build(source, solved=True)``: each stub and each
  prediction replaced by its cell of ``lessons/solutions/``) are graded by ``minitorch-seg grade``,
  which must exit 0 and list every exercise and prediction as passed.
- Each executed notebook has at least one ``image/png`` output.
- ``lessons/README.md`` maps every heading of the course notes to the lesson(s) that teach it;
  every word of a heading (lower-cased, without punctuation or LaTeX) must appear in each mapped
  notebook that exists. The lessons planned but not yet written are listed here exactly, so a
  new lesson cannot slip in untested and a missing one cannot hide.
- The committed notebooks have no outputs, hold no solution, name exactly their lesson's
  registered exercises, call no private name of the library, are exactly what
  ``lessons/build_notebooks.py`` builds from ``lessons/src/``, and read FAST in their first cell only.
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
    assert len(planned) == 11 and planned == sorted(planned), planned
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
            assert not re.search(r"\bFAST\b|\bos\.environ\b|\bgetenv\b", cell.source), (
                f"{path.name} cell {index} uses FAST or reads the environment: only the first cell may, "
                "to choose sizes, step counts, the data and the backend")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_holds_its_exercises_and_no_solution(path):
    from minitorch_seg import exercises
    builder = _load_builder()
    notebook = nbformat.read(path, as_version=4)
    stubs = [c.metadata["exercise"] for c in notebook.cells if "exercise" in c.metadata.get("tags", [])]
    assert sorted(stubs) == sorted(exercises.names(path.stem)), (
        f"{path.name}'s exercise cells {stubs} are not the exercises registered for it {exercises.names(path.stem)}")
    text = notebook_text(path)
    for name, solution in builder.solutions_for(builder.SOURCES / f"{path.stem}.py").items():
        body = [line for line in solution.splitlines() if line.strip() and not line.lstrip().startswith(("#", "def ",
                "class ", "@", "return ", '"""')) and len(line.strip()) > 30]
        leaked = [line for line in body if line.strip() in text]
        assert len(leaked) < max(2, len(body) // 3), f"{path.name} holds the solution of {name}: {leaked[:3]}"


PRIVATE = re.compile(r"\b(?:mt|F|nn|minitorch_seg)(?:\.\w+)*\._[a-z]\w*|from minitorch_seg[\w.]* import [^\n]*\b_[a-z]\w*")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_calls_only_public_names(path):
    used = PRIVATE.findall(notebook_text(path))
    assert not used, f"{path.name} uses private names of the library: {used}"


# ---- executing them -------------------------------------------------------------------------------
@dataclass
class Execution:
    notebook: object
    error: str | None = None
    outcomes: dict = field(default_factory=dict)     # exercise -> the status its check recorded
    predictions: dict = field(default_factory=dict)  # prediction -> the status its check recorded
    seconds: float = 0.0


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
    """The notebook, stubs untouched, run top to bottom in a fresh kernel; cached per notebook."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from minitorch_seg import grade

    path = request.param
    if path in _executions:
        return _executions[path]
    notebook = nbformat.read(path, as_version=4)
    workdir = tmp_path_factory.mktemp(path.stem)
    log = workdir / "grade-log.jsonl"
    # Unix sockets, not TCP ports, as the grader's kernels (``grade._kernel_sockets``): a clean clone's
    # CI run once failed four tests here on "Address already in use", two workers' kernels handed one port.
    sockets = grade._kernel_sockets(tmp_path_factory.mktemp(f"{path.stem}-kernel"))
    client = NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT, config=sockets,
                            resources={"metadata": {"path": str(workdir)}})
    run = Execution(notebook)
    start = time.perf_counter()
    with client.setup_kernel(env=dict(kernel_environment, MINITORCH_SEG_GRADE_LOG=str(log))):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                run.error = f"{path.name}, cell {index}:\n{error}"
                break
    run.seconds = time.perf_counter() - start
    if log.exists():
        records = [json.loads(line) for line in log.read_text().splitlines()]
        run.outcomes = {r["exercise"]: r["status"] for r in records if "exercise" in r}
        run.predictions = {r["prediction"]: r["status"] for r in records if "prediction" in r}
    _executions[path] = run
    return run


def test_notebook_runs_top_to_bottom(executed):
    assert executed.error is None, executed.error


def test_notebook_draws_at_least_one_image(executed):
    images = [o for c in executed.notebook.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the lesson produced no image/png output"


def test_stub_checks_report_not_attempted(executed):
    from minitorch_seg.grade import expected_exercises
    expected = expected_exercises(executed.notebook)
    assert expected, "the lesson has no exercise-check cell"
    assert executed.outcomes == {name: "not attempted" for name in expected}, executed.outcomes
    for cell in executed.notebook.cells:
        if "exercise-check" in cell.metadata.get("tags", []):
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert "not attempted yet" in text and "Write" in text, f"check of {cell.metadata['exercise']}: {text!r}"
    predictions = expected_exercises(executed.notebook, kind="prediction")
    assert executed.predictions == {name: "not attempted" for name in predictions}, executed.predictions
    for cell in executed.notebook.cells:
        if "prediction-check" in cell.metadata.get("tags", []):
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert "not attempted yet" in text and "answer = ..." in text, f"check of {cell.metadata['prediction']}: {text!r}"


def test_fast_lessons_are_quick(executed):
    assert executed.seconds < 90, f"took {executed.seconds:.0f} s in FAST mode; keep each lesson well under a minute"


# ---- the solved notebooks, graded -----------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solved_notebook_grades_every_exercise_passed(path, kernel_environment, tmp_path, capsys):
    from minitorch_seg import cli
    builder = _load_builder()
    solved = tmp_path / path.name
    solved.write_text(nbformat.writes(builder.build(builder.SOURCES / f"{path.stem}.py", solved=True)))
    status = cli.main(["grade", str(solved)])
    out = capsys.readouterr().out
    assert status == 0, out
    from minitorch_seg.grade import expected_exercises
    notebook = nbformat.read(solved, as_version=4)
    expected = expected_exercises(notebook) + expected_exercises(notebook, kind="prediction")
    assert [line.split()[0] for line in out.splitlines() if line.endswith("  passed")] == expected, out


def _tiny_notebook(path, body):
    """A notebook with one exercise: ``body`` is the candidate interpolate's code."""
    check = ('from minitorch_seg import exercises\ntry:\n    exercises.check("interpolate", interpolate)\n'
             'except exercises.NotAttempted as todo:\n    print(todo)')
    cells = [nbformat.v4.new_code_cell(body, metadata={"tags": ["exercise"], "exercise": "interpolate"}),
             nbformat.v4.new_code_cell(check, metadata={"tags": ["exercise-check"], "exercise": "interpolate"}),
             nbformat.v4.new_code_cell("print('the cells after a failed check still run')")]
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path.write_text(nbformat.writes(notebook))
    return path


STUB = "def interpolate(input, size=None, scale_factor=None, mode='nearest', align_corners=None):\n    raise NotImplementedError"
WRONG = ("import minitorch_seg.functional as F\n"
         "def interpolate(input, size=None, scale_factor=None, mode='nearest', align_corners=None):\n"
         "    return F.interpolate(input, size, scale_factor, mode, align_corners) * 1.5")


def test_grade_exits_1_and_says_what_failed_or_was_not_attempted(kernel_environment, tmp_path, capsys):
    from minitorch_seg import cli
    stub, wrong = _tiny_notebook(tmp_path / "stub.ipynb", STUB), _tiny_notebook(tmp_path / "wrong.ipynb", WRONG)
    assert cli.main(["grade", str(stub), str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "interpolate  not attempted" in out and "interpolate  failed" in out
    assert "smallest failing input" in out and "input = float64 tensor (1, 1, 1, 1)" in out
    assert "1 failed, 1 not attempted" in out


@pytest.mark.parametrize("make", [lambda d: d / "missing.ipynb", lambda d: d, lambda d: (d / "x.ipynb", (d / "x.ipynb").write_text("{not json"))[0]],
                         ids=["missing", "a folder", "not a notebook"])
def test_grade_usage_errors_exit_2_in_one_sentence(make, tmp_path, capsys):
    from minitorch_seg import cli
    assert cli.main(["grade", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minitorch-seg grade: error: ") and err.count("\n") == 1, err
