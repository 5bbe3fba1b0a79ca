"""The "predict first" questions are honest: the true value passes, wrong answers fail, a stub is "not attempted".

- every registered prediction's check passes on the value its ``truth`` computes and on the
  answer in ``lessons/solutions/``, fails on each of its plausible wrong answers and on values
  just outside its tolerance (or one off, for shapes and whole numbers), reports "not attempted"
  for ``...`` and None, and refuses an answer of the wrong kind without giving the truth away;
- the lessons ask exactly the registered questions, each in a prediction cell followed by its check;
- ``check_prediction`` prints, never raises for a wrong answer, and records each outcome in the
  grade log; ``minitorch-seg grade`` reports predictions without letting them change its exit status;
- computing a truth leaves the caller's random state and backend as they were.
"""
import doctest
import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

from minitorch_seg import backend, exercises
from minitorch_seg.exercises import predictions

pytestmark = pytest.mark.lessons

ROOT = Path(__file__).resolve().parents[1]
NAMES = predictions.names()


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "lessons" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = _builder()
SOURCES = sorted((ROOT / "lessons" / "src").glob("[0-9][0-9]_*.py"))


def near_misses(p, truth):
    """Answers a little wrong: one side off by one, or just outside the tolerance."""
    if p.kind == "shape":
        return [truth[:i] + (truth[i] + step,) + truth[i + 1:] for i in range(len(truth)) for step in (-1, 1)]
    if p.kind == "integer":
        return [truth - 1, truth + 1]
    if p.kind == "number":
        return [truth - 1.01 * p.tolerance, truth + 1.01 * p.tolerance]
    return [c for c in p.choices if c != truth]


@pytest.mark.parametrize("name", NAMES)
def test_the_true_value_passes(name):
    p, truth = predictions.get(name), predictions.true_value(name)
    verdict = predictions.judge(name, truth)
    assert verdict.status == "passed" and "right" in verdict.report, verdict.report
    if p.kind == "number":          # the tolerance is a band around the truth, both sides
        assert {predictions.judge(name, truth + s * 0.99 * p.tolerance).status for s in (-1, 1)} == {"passed"}
    if p.kind == "choice":
        assert predictions.judge(name, f" {truth.upper()} ").status == "passed"


@pytest.mark.parametrize("name", NAMES)
def test_the_lessons_solution_answer_passes(name):
    p = predictions.get(name)
    answers = BUILDER.solutions_for(ROOT / "lessons" / "src" / f"{p.lesson}.py", key="prediction")
    assert name in answers, f"lessons/solutions/{p.lesson}.py has no answer for {name}"
    namespace = {}
    exec(answers[name], namespace)
    assert predictions.judge(name, namespace["answer"]).status == "passed"


@pytest.mark.parametrize("name", NAMES)
def test_wrong_answers_fail_with_the_truth_and_the_explanation(name):
    p, truth = predictions.get(name), predictions.true_value(name)
    assert len(p.wrong) >= 3, f"{name}: name at least three plausible wrong answers"
    for answer in list(p.wrong) + near_misses(p, truth):
        verdict = predictions.judge(name, answer)
        assert verdict.status == "failed", (answer, verdict.report)
        assert "wrong" in verdict.report and p.explanation in verdict.report, verdict.report


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stub", [..., None], ids=["ellipsis", "None"])
def test_the_stub_is_not_attempted_and_asks_the_question(name, stub):
    verdict = predictions.judge(name, stub)
    assert verdict.status == "not attempted"
    assert "not attempted yet" in verdict.report and predictions.get(name).question in verdict.report


@pytest.mark.parametrize("name", NAMES)
def test_an_answer_of_the_wrong_kind_fails_without_giving_the_truth_away(name):
    p = predictions.get(name)
    for answer in ["no idea", True, (1.5, 2.0), float("nan")]:
        verdict = predictions.judge(name, answer)
        assert verdict.status == "failed" and " is not " in verdict.report, (answer, verdict.report)
        assert "true value" not in verdict.report and p.explanation not in verdict.report


def test_the_lessons_ask_exactly_the_registered_predictions():
    for source in SOURCES:
        cells = BUILDER.parse_cells(source.read_text(), source.name)
        asked = [m["prediction"] for kind, _, m in cells if "prediction" in m.get("tags", ())]
        checked = [m["prediction"] for kind, _, m in cells if "prediction-check" in m.get("tags", ())]
        assert sorted(asked) == sorted(predictions.names(source.stem)) == sorted(checked), source.name
    assert {predictions.get(n).lesson for n in NAMES} <= {s.stem for s in SOURCES}


def test_a_prediction_cell_must_be_the_stub_and_have_its_check(tmp_path):
    source = (ROOT / "lessons" / "src" / "01_autograd.py").read_text()
    copy = tmp_path / "01_autograd.py"                   # the same name: the same solutions file
    copy.write_text(source.replace("answer = ...", 'answer = "d"', 1))
    with pytest.raises(BUILDER.LessonSourceError, match="exactly one line of code, answer = ..."):
        BUILDER.build(copy)
    copy.write_text(source.replace('exercises.check_prediction("gradcheck_flags", answer)', "pass"))
    with pytest.raises(BUILDER.LessonSourceError, match="prediction-check"):
        BUILDER.build(copy)


def test_the_solved_notebook_holds_the_answer_and_the_plain_one_the_stub():
    source = ROOT / "lessons" / "src" / "07_atrous.py"
    cell = {False: None, True: None}
    for solved in cell:
        notebook = BUILDER.build(source, solved=solved)
        cell[solved] = next(c.source for c in notebook.cells if "prediction" in c.metadata.get("tags", []))
    assert cell[False] == "answer = ..." and cell[True].startswith("answer = 15")


def test_check_prediction_prints_records_and_never_raises(tmp_path, monkeypatch, capsys):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("MINITORCH_SEG_GRADE_LOG", str(log))
    truth = predictions.true_value("dilated_receptive_field")
    for answer in (..., truth + 2, truth):
        exercises.check_prediction("dilated_receptive_field", answer)
    printed = capsys.readouterr().out
    assert "not attempted yet" in printed and "wrong: you predicted" in printed and "right." in printed
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["prediction"], r["status"]) for r in records] == [
        ("dilated_receptive_field", "not attempted"), ("dilated_receptive_field", "failed"),
        ("dilated_receptive_field", "passed")]
    assert all("exercise" not in r for r in records)


def test_an_unknown_prediction_names_the_known_ones():
    with pytest.raises(ValueError, match="transposed_conv_shape"):
        exercises.check_prediction("no_such_prediction", 3)


def test_computing_a_truth_leaves_the_random_state_and_the_backend_alone():
    before, name = backend.get_rng_state(), backend.get_backend()
    with backend.use_backend("strict"):
        for prediction in ("swin_reach", "transposed_conv_shape"):      # both draw random weights
            predictions._TRUTHS.pop(prediction, None)
            predictions.true_value(prediction)
        assert backend.get_backend() == "strict"
    assert backend.get_rng_state() == before and backend.get_backend() == name


def test_the_module_examples_run():
    result = doctest.testmod(predictions, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ---- the grader reports predictions, and they do not change its exit status ----------------------------
from test_lessons import kernel_environment  # noqa: E402,F401  the python3 kernel fixture


def test_grade_reports_predictions_but_grades_exercises_only(kernel_environment, tmp_path, capsys):  # noqa: F811
    from minitorch_seg import cli
    cells = [
        ("import minitorch_seg.functional as F\ninterpolate = F.interpolate",
         {"tags": ["exercise"], "exercise": "interpolate"}),
        ('from minitorch_seg import exercises\nexercises.check("interpolate", interpolate)',
         {"tags": ["exercise-check"], "exercise": "interpolate"}),
        ("answer = 17", {"tags": ["prediction"], "prediction": "dilated_receptive_field"}),
        ('exercises.check_prediction("dilated_receptive_field", answer)',
         {"tags": ["prediction-check"], "prediction": "dilated_receptive_field"}),
        ("answer = ...", {"tags": ["prediction"], "prediction": "uniform_loss"}),
        ('exercises.check_prediction("uniform_loss", answer)',
         {"tags": ["prediction-check"], "prediction": "uniform_loss"}),
        ("pass", {"tags": ["prediction-check"], "prediction": "swin_reach"}),          # a check that never ran
    ]
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source, metadata=metadata) for source, metadata in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "mixed.ipynb"
    path.write_text(nbformat.writes(notebook))
    assert cli.main(["grade", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  interpolate              passed" in out and "predictions (reported, not graded):" in out
    assert "dilated_receptive_field  failed" in out and "wrong: you predicted 17" in out
    assert "uniform_loss             not attempted" in out and "swin_reach               not attempted" in out
    assert out.rstrip().endswith("1 exercises in 1 notebook(s): 1 passed, 0 failed, 0 not attempted. "
                                 "3 predictions (not graded): 0 passed, 1 failed, 2 not attempted.")
