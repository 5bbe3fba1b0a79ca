"""The grader is honest: right answers pass, plausible wrong answers fail, stubs are "not attempted".

- (d) every exercise's reference (the library's own function) passes its own check;
- every solution in ``lessons/solutions/`` passes (run here directly; the solved notebooks are
  graded end to end in ``tests/test_lessons.py``);
- (c) every exercise has at least three plausible wrong answers in ``tests/mutants/`` (mutants of
  its solution), and ``exercises.check`` rejects each with ``ExerciseFailed``, not ``NotAttempted``;
- a stub is reported "not attempted" with what to write, a wrong signature is refused, and the
  grade log records each outcome.
"""
import importlib
import importlib.util
import json
import os
from pathlib import Path

import pytest

from minitorch_seg import exercises

pytestmark = pytest.mark.lessons

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "lessons" / "solutions"
PRELUDE = ("import numpy\nimport minitorch_seg as mt\nimport minitorch_seg.functional as F\n"
           "from minitorch_seg import Function, nn\n")
MINIMUM_MUTANTS = 3


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "lessons" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution_sources():
    """{exercise: solution cell source} over every lesson's solutions file."""
    builder, found = _builder(), {}
    for source in sorted(SOLUTIONS.glob("[0-9][0-9]_*.py")):
        found.update(builder.solutions_for(source))
    return found


def mutants():
    """{exercise: [(description, [(old, new), ...]), ...]} over every module of tests/mutants."""
    found = {}
    for path in sorted((ROOT / "tests" / "mutants").glob("m[0-9][0-9]_*.py")):
        module = importlib.import_module(f"mutants.{path.stem}")
        for name, cases in module.MUTANTS.items():
            found.setdefault(name, []).extend(cases)
    return found


def compile_candidate(name, source):
    """The function ``name`` that ``source`` (a solution cell, or a mutant of one) defines."""
    namespace = {}
    exec(compile(PRELUDE + source, f"<solution of {name}>", "exec"), namespace)
    return namespace[name]


SOLUTION_SOURCES = solution_sources()
MUTANTS = mutants()


@pytest.mark.parametrize("name", exercises.names())
def test_the_library_function_passes_its_exercise(name):
    exercises.check(name, exercises.get(name).reference)


@pytest.mark.parametrize("name", exercises.names())
def test_every_exercise_has_a_solution_that_passes(name):
    assert name in SOLUTION_SOURCES, f"lessons/solutions/ has no cell for exercise {name!r}"
    for seed in SEEDS:
        exercises.check(name, compile_candidate(name, SOLUTION_SOURCES[name]), seed=seed)


@pytest.mark.parametrize("name", exercises.names())
def test_every_exercise_has_enough_wrong_answers(name):
    assert len(MUTANTS.get(name, [])) >= MINIMUM_MUTANTS, (
        f"tests/mutants/ has {len(MUTANTS.get(name, []))} wrong answers for {name!r}; at least {MINIMUM_MUTANTS}")


def test_mutants_name_registered_exercises():
    assert set(MUTANTS) <= set(exercises.names()), set(MUTANTS) - set(exercises.names())


def _mutant_cases():
    return [pytest.param(name, what, edits, id=f"{name}: {what}")
            for name, cases in sorted(MUTANTS.items()) for what, edits in cases]


SEEDS = (None, 1, 2)     # None: the draws every learner gets; 1, 2: others, so no rejection rests on luck


@pytest.mark.parametrize("name, what, edits", _mutant_cases())
def test_a_plausible_wrong_answer_is_rejected_whatever_the_draws(name, what, edits):
    source = SOLUTION_SOURCES[name]
    for old, new in edits:
        assert source.count(old) == 1, f"the mutant '{what}' expects {old!r} once in the solution of {name}"
        source = source.replace(old, new)
    candidate = compile_candidate(name, source)
    for seed in SEEDS:
        with pytest.raises(exercises.ExerciseFailed) as failure:
            exercises.check(name, candidate, seed=seed)
        assert not isinstance(failure.value, exercises.NotAttempted), str(failure.value)
        assert "smallest failing input" in str(failure.value), (seed, str(failure.value))


# ---- the API around the checks ------------------------------------------------------------------------
def _stub(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    raise NotImplementedError


def test_a_stub_is_not_attempted_and_says_what_to_write():
    with pytest.raises(exercises.NotAttempted) as todo:
        exercises.check("interpolate", _stub)
    assert "not attempted" in str(todo.value) and "nearest" in str(todo.value)
    assert isinstance(todo.value, AssertionError)


def test_a_different_signature_is_refused_in_one_sentence():
    def interpolate(input, scale_factor, mode="nearest"):
        return input
    with pytest.raises(exercises.ExerciseFailed, match="signature") as failure:
        exercises.check("interpolate", interpolate)
    assert str(failure.value).count(".") >= 1 and "\n" not in str(failure.value)


def test_an_unknown_exercise_names_the_known_ones():
    with pytest.raises(ValueError, match="cross_entropy"):
        exercises.check("no_such_exercise", _stub)


def test_the_failure_keeps_the_smallest_input_to_rerun(monkeypatch):
    import minitorch_seg.functional as F

    def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
        out = F.interpolate(input, size, scale_factor, mode, align_corners)
        return out * 2 if input.shape[-1] > 2 else out
    with pytest.raises(exercises.ExerciseFailed) as failure:
        exercises.check("interpolate", interpolate)
    example = failure.value.example
    assert example.args[0].shape[-1] == 3        # shrunk to the smallest width that fails
    assert "input = float64 tensor" in str(failure.value)


def test_every_check_is_recorded_in_the_grade_log(tmp_path, monkeypatch):
    import minitorch_seg.functional as F
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("MINITORCH_SEG_GRADE_LOG", str(log))
    exercises.check("interpolate", F.interpolate)
    with pytest.raises(exercises.NotAttempted):
        exercises.check("interpolate", _stub)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["exercise"], r["status"]) for r in records] == [("interpolate", "passed"),
                                                                ("interpolate", "not attempted")]


def test_lesson_fast_draws_fewer_examples(monkeypatch):
    e = exercises.get("conv2d")
    monkeypatch.setenv("LESSON_FAST", "1")
    assert e.examples() == e.fast_examples < e.max_examples
    monkeypatch.delenv("LESSON_FAST")
    assert e.examples() == e.max_examples and e.examples(3) == 3
    assert os.environ.get("LESSON_FAST") is None


DRAWS = """
import hashlib, importlib, pkgutil, sys
import minitorch_seg
import minitorch_seg.functional as F
from minitorch_seg import exercises
if sys.argv[1] == "import-everything":      # as pytest --doctest-modules does: every module's constants
    for module in pkgutil.walk_packages(minitorch_seg.__path__, "minitorch_seg."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
seen = []
def add(input, other):
    seen.append((input.shape, other.shape, float(input.data.ravel()[0])))
    return F.add(input, other)
exercises.check("add", add)
print(hashlib.sha256(repr(seen).encode()).hexdigest())
"""


def test_a_check_draws_the_same_inputs_whatever_the_process_imported():
    """Hypothesis mixes constants found in loaded local modules into its draws; a check switches
    that off, so a notebook, the grader and the test suite grade the same inputs."""
    import subprocess
    import sys

    def draws(mode):
        return subprocess.run([sys.executable, "-c", DRAWS, mode], capture_output=True, text=True, check=True,
                              cwd=ROOT).stdout
    assert draws("import-everything") == draws("import-little")
