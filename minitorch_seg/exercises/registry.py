"""The exercise registry: what each exercise is, and ``check``, which grades a candidate.

An exercise is a library function (or, for the lesson-specific ones, a reference function with a
documented signature) that the learner writes again: forward *and* backward. ``check(name,
candidate)`` compares the candidate with the reference on many drawn inputs (float64, rtol 1e-6):

1. the candidate's signature is the reference's exactly (names, order, defaults), because it is
   called as the reference is;
2. its outputs (indices too) and the gradients of every floating argument equal the reference's
   (``testing.check_against``);
3. its gradients agree with central finite differences (``testing.check_gradients``).

On the first failure hypothesis shrinks the drawn input to the smallest that still fails, and
``check`` raises ``ExerciseFailed`` with the report. A candidate that raises
``NotImplementedError`` (the lesson's stub) raises ``NotAttempted``, which says what to write.
Under ``LESSON_FAST=1`` an exercise draws ``fast_examples`` inputs instead of ``max_examples``.

When ``MINITORCH_SEG_GRADE_LOG`` names a file, every check appends one JSON line to it
(``{"exercise", "status", "report"}``): that is how ``minitorch-seg grade`` learns the outcomes.
"""
from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from typing import Callable

from .. import backend as shim
from ..testing import CheckFailed, check_against, check_gradients



class Registry:
    """Named entries that each belong to a ``lesson`` (exercises, predictions), listed in course order."""

    def __init__(self, kind):
        self.kind, self._entries = kind, {}

    def register(self, entry):
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice.")
        self._entries[entry.name] = entry
        return entry

    def names(self, lesson=None):
        """The names in course order (those of one lesson, e.g. "02_cross_entropy", if given)."""
        found = sorted(self._entries.values(), key=lambda e: e.lesson)
        return [e.name for e in found if lesson is None or e.lesson == lesson]

    def get(self, name):
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"no {self.kind} named {name!r}; the {self.kind}s are: "
                             f"{', '.join(self.names())}.") from None

    def __contains__(self, entry):
        return self._entries.get(entry.name) is entry


EXERCISES = Registry("exercise")
register, names, get = EXERCISES.register, EXERCISES.names, EXERCISES.get


class ExerciseFailed(AssertionError):
    """The candidate is wrong; ``str(error)`` is the report, ``error.example`` the smallest failing input."""

    def __init__(self, report, example=None):
        super().__init__(report)
        self.report, self.example = report, example


class NotAttempted(ExerciseFailed):
    """The candidate is still the stub (it raised ``NotImplementedError``)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise. ``inputs`` builds the hypothesis strategy of ``testing.Arguments`` to draw.

    ``task``: one or two sentences saying what to write (the stub's message repeats it).
    ``drawn``: what the inputs cover, for ``describe``. ``gradients``: False for forward-only
    exercises (a metric). ``backends``: each check runs once per backend listed ("strict" refuses
    host arrays, for device-safe code).
    """

    name: str
    lesson: str
    reference: Callable
    inputs: Callable
    task: str
    drawn: str
    gradients: bool = True
    max_examples: int = 100         # inputs a check draws (tiny ones: 100 cost well under a second)
    fast_examples: int = 10         # under LESSON_FAST=1
    gradient_examples: int = 4
    rtol: float = 1e-6
    atol: float = 1e-9
    backends: tuple = ("numpy",)

    @property
    def signature(self):
        return inspect.signature(self.reference)

    def examples(self, max_examples=None):
        if max_examples is not None:
            return max_examples
        return self.fast_examples if os.environ.get("LESSON_FAST") == "1" else self.max_examples


def describe(name):
    """The exercise's signature, what to write, and what the check draws."""
    e = get(name)
    return (f"{e.name}{e.signature}  (lesson {e.lesson})\n{e.task}\nChecked on {e.examples()} drawn inputs: "
            f"{e.drawn}" + ("" if e.gradients else " Forward only."))


def _signature_problem(e, candidate):
    try:
        theirs = inspect.signature(candidate)
    except (TypeError, ValueError):
        return f"{e.name}: the candidate is not a function with a signature."
    def shape(signature):
        return [(p.name, p.kind, p.default) for p in signature.parameters.values()]
    if shape(theirs) != shape(e.signature):
        return (f"{e.name}: your function's signature is {theirs}, but the exercise calls it as the library's "
                f"{e.name}{e.signature}: the same parameters, in the same order, with the same defaults.")
    return None


def _record(name, status, report="", key="exercise"):
    """Append one outcome to the grade log, if any; ``key`` is "prediction" for ``predictions.check_prediction``."""
    path = os.environ.get("MINITORCH_SEG_GRADE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps({key: name, "status": status, "report": report}) + "\n")


def check(name, candidate, max_examples=None, seed=None):
    """Return quietly when ``candidate`` solves exercise ``name``; raise ``ExerciseFailed`` (or ``NotAttempted``) otherwise.

    ``max_examples``: how many inputs to draw (default: the exercise's). ``seed``: draw another
    reproducible set of inputs (default: the fixed set every learner's check uses).
    """
    e = get(name)
    try:
        _check(e, candidate, e.examples(max_examples), seed)
    except NotAttempted as error:
        _record(name, "not attempted", str(error))
        raise
    except ExerciseFailed as error:
        _record(name, "failed", str(error))
        raise
    _record(name, "passed")


def _check(e, candidate, examples, seed=None):
    problem = _signature_problem(e, candidate)
    if problem:
        raise ExerciseFailed(problem)
    for backend in e.backends:
        with shim.use_backend(backend):
            try:
                check_against(candidate, e.reference, e.inputs(), examples, rtol=e.rtol, atol=e.atol,
                              gradients=e.gradients, seed=seed)
                if e.gradients:
                    check_gradients(candidate, e.inputs(), min(examples, e.gradient_examples), directions=3,
                                    seed=seed)
            except NotImplementedError as stub:
                detail = f" ({stub})" if str(stub) else ""
                raise NotAttempted(f"{e.name}: not attempted yet{detail}. {e.task}") from None
            except CheckFailed as failure:
                where = f" on the {backend} backend" if len(e.backends) > 1 else ""
                raise ExerciseFailed(f"{e.name}: wrong{where}: {failure.report}", failure.example) from None


def attempted(function, *args, **kwargs):
    """False while ``function`` is still its exercise stub (calling it raises NotImplementedError), else True.

    A lesson that builds a network from the learner's functions asks this first, with small inputs,
    and uses the library's layers in the meantime.

    >>> def stub(x):
    ...     raise NotImplementedError
    >>> attempted(stub, 1), attempted(abs, -1)
    (False, True)
    """
    try:
        function(*args, **kwargs)
    except NotImplementedError:
        return False
    return True
