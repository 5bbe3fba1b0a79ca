"""Helpers the test files share: ``host`` (a tensor's values as a NumPy copy), ``assert_one_sentence`` and
the ``basic_index`` strategy (indices for getitem and setitem)."""
import re

import numpy
import pytest
from hypothesis import strategies as st

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


@st.composite
def basic_index(draw, shape, allow_negative_steps=True):
    """Ints, slices (negative steps too), None and at most one Ellipsis, for ``shape``."""
    steps = [-2, -1, 1, 2] if allow_negative_steps else [1, 2]
    items = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-n, n))
            stop = draw(st.none() | st.integers(-n, n))
            items.append(slice(start, stop, draw(st.sampled_from(steps))))
        else:
            items.append(slice(None))
    if items and draw(st.booleans()):                 # replace a run of trailing dims with ...
        cut = draw(st.integers(0, len(items) - 1))
        items = items[:cut] + [Ellipsis]
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    return tuple(items)
