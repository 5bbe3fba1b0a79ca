"""Helpers the test files share: ``host`` (a tensor's values as a NumPy copy) and ``assert_one_sentence``."""
import re

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend as shim


def host(t):
    """A fresh NumPy copy of a Tensor's (or a raw array's) values, from any backend; None stays None."""
    if t is None:
        return None
    return numpy.array(shim.to_numpy(t.data if isinstance(t, mt.Tensor) else t))


def assert_one_sentence(message, *needles):
    """``message`` (text, an exception or pytest's ExceptionInfo) is one sentence that names every needle.

    One sentence: it ends with a full stop, on one line, with no second sentence after it.
    """
    text = str(message.value if isinstance(message, pytest.ExceptionInfo) else message)
    assert text.endswith(".") and "\n" not in text, text
    assert not re.search(r"\.\s+[A-Z]", text), f"more than one sentence: {text}"
    for needle in needles:
        assert needle in text, f"{needle!r} not named in: {text}"
