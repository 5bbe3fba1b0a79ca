"""Predict first: the learner writes down a number, a shape or a choice, then a check says whether it was right.

A prediction is a question a lesson asks *before* the cells that answer it: the output shape of a
strided transposed convolution, a receptive field, a FLOP ratio, an mIoU, which input gradcheck
flags. The learner writes ``answer = ...`` in one cell; the next cell calls
``check_prediction(name, answer)``, which prints one of

- "not attempted yet" and the question, while the answer is still the stub ``...`` (or None);
- "right", with the true value;
- "wrong", with the true value and a short explanation of where the usual mistake comes from;
- for an answer of the wrong kind (a float in a shape, a letter that is not a choice), the form an
  answer must take, the truth kept back.

It never raises for a wrong answer: a wrong prediction is part of the lesson, and Run All goes on.
The true value is never written down: ``Prediction.truth`` computes it from the library the first
time it is needed (on the NumPy backend, with gradients on, from a fixed seed, the caller's
random state left as it was), and it is cached.

Like ``exercises.check``, each check appends one JSON line to the file ``MINITORCH_SEG_GRADE_LOG``
names, ``{"prediction", "status", "report"}`` with status passed, failed or not attempted, which
``minitorch-seg grade`` reports beside the exercises.

>>> p = Prediction("two_plus_two", "00_demo", "2 + 2?", lambda: 2 + 2, "Count.", kind="integer")
>>> judge_with(p, ...).status, judge_with(p, 4).status, judge_with(p, 5).status
('not attempted', 'passed', 'failed')
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable

from .. import backend
from ..grad_mode import enable_grad
from .registry import Registry, _record

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
KINDS = ("shape", "integer", "number", "choice")
PREDICTIONS = Registry("prediction")
_TRUTHS: dict[str, object] = {}


@dataclass(frozen=True)
class Prediction:
    """One "predict first" question.

    ``question``: what to predict, in one or two sentences (the "not attempted" message repeats it).
    ``truth``: a function of no arguments computing the true value from the library.
    ``explanation``: shown after a wrong answer. ``kind``: "shape" (a tuple of ints, exact),
    "integer" (exact), "number" (right within ``tolerance``, absolute) or "choice" (one of
    ``choices``, a string, case and spaces ignored). ``wrong``: plausible wrong answers, the
    mistakes the explanation is about; the tests check that each is rejected.
    """

    name: str
    lesson: str
    question: str
    truth: Callable[[], object]
    explanation: str
    kind: str
    tolerance: float = 0.0
    choices: tuple = ()
    wrong: tuple = field(default=())

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"prediction {self.name!r}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}.")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"prediction {self.name!r}: a choice needs its choices.")


@dataclass(frozen=True)
class Verdict:
    """What a check found: ``status`` (passed, failed, not attempted) and the ``report`` it prints."""

    status: str
    report: str


register, names, get = PREDICTIONS.register, PREDICTIONS.names, PREDICTIONS.get


def true_value(name):
    """The true answer of prediction ``name``, computed from the library once, then cached."""
    if name not in _TRUTHS:
        _TRUTHS[name] = _compute(get(name))
    return _TRUTHS[name]


def _compute(prediction):
    state = backend.get_rng_state()
    try:
        backend.manual_seed(0)
        with backend.use_backend("numpy"), enable_grad():
            return prediction.truth()
    finally:
        backend.set_rng_state(state)


def _form(p):
    return {"shape": "a tuple of integers, e.g. (1, 3, 8, 8)", "integer": "a whole number", "number": "a number",
            "choice": "one of " + ", ".join(repr(c) for c in p.choices)}[p.kind]


def _normalise(p, answer):
    """The answer in the truth's form, or None when it is not of the prediction's kind."""
    if isinstance(answer, bool):
        return None
    if p.kind == "shape":
        if not isinstance(answer, (tuple, list)) or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                                            for v in answer):
            return None
        return tuple(int(v) for v in answer)
    if p.kind == "integer":
        if isinstance(answer, numbers.Integral):
            return int(answer)
        return int(answer) if isinstance(answer, numbers.Real) and float(answer).is_integer() else None
    if p.kind == "number":
        return float(answer) if isinstance(answer, numbers.Real) and math.isfinite(answer) else None
    if isinstance(answer, str) and answer.strip().lower() in [c.lower() for c in p.choices]:
        return answer.strip().lower()
    return None


def _show(value):
    return f"{value:.3g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def judge_with(prediction, answer):
    """The ``Verdict`` on ``answer`` to ``prediction`` (nothing printed or recorded)."""
    p = prediction
    if answer is ... or answer is None:
        within = f", right within ±{p.tolerance:g}" if p.kind == "number" else ""
        return Verdict(NOT_ATTEMPTED, f"{p.name}: not attempted yet. {p.question} In the cell above, replace the "
                                      f"... of `answer = ...` with your prediction ({_form(p)}{within}) before "
                                      "you run the cells that show it, then run this cell again.")
    given = _normalise(p, answer)
    if given is None:
        return Verdict(FAILED, f"{p.name}: your answer {answer!r} is not {_form(p)}.")
    truth = true_value(p.name) if p in PREDICTIONS else _compute(p)     # cached when registered
    if p.kind == "number":
        right = abs(given - truth) <= p.tolerance
    else:
        right = given == (truth.lower() if p.kind == "choice" else truth)
    if right:
        return Verdict(PASSED, f"{p.name}: right. The true value is {_show(truth)}.")
    return Verdict(FAILED, f"{p.name}: wrong: you predicted {_show(given)}, the true value is {_show(truth)}. "
                           f"{p.explanation}")


def judge(name, answer):
    """The ``Verdict`` on ``answer`` to the registered prediction ``name`` (nothing printed or recorded)."""
    return judge_with(get(name), answer)


def check_prediction(name, answer):
    """Print whether ``answer`` is right for prediction ``name``, and record the outcome in the grade log.

    Never raises for a wrong or missing answer (only for an unknown ``name``): see the module docstring.
    """
    verdict = judge(name, answer)
    _record(name, verdict.status, "" if verdict.status == PASSED else verdict.report, key="prediction")
    print(verdict.report)
