"""torch's other switches of gradient recording: ``inference_mode``, ``enable_grad``, ``set_grad_enabled``.

All three set the one switch ``autograd.no_grad`` sets (``autograd.is_grad_enabled()``), per
thread as it is, and work as context managers and as decorators.

Unlike PyTorch: ``inference_mode`` is ``no_grad`` (no graph is recorded); tensors made inside it
are ordinary tensors that may later enter a graph.

>>> import minitorch_seg as mt
>>> x = mt.ones(2, requires_grad=True)
>>> with mt.inference_mode():
...     (x * 2).requires_grad
False
>>> with mt.set_grad_enabled(False):
...     with mt.enable_grad():
...         (x * 2).requires_grad
True
"""
import functools

from . import autograd


class _GradMode:
    """Sets the grad-enabled flag to ``enabled`` inside the block (None: leaves it) and restores it after."""

    def __init__(self, enabled):
        self._enabled = enabled

    def __enter__(self):
        self._previous = autograd.is_grad_enabled()
        if self._enabled is not None:
            autograd._set_grad_enabled(self._enabled)
        return self

    def __exit__(self, *exc):
        autograd._set_grad_enabled(self._previous)

    def __call__(self, func):
        enabled = self._enabled

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with _GradMode(enabled):
                return func(*args, **kwargs)
        return wrapper


class inference_mode(_GradMode):  # noqa: N801 - torch's name
    """``with inference_mode():`` records no graph (``mode=False``: changes nothing)."""

    def __init__(self, mode=True):
        super().__init__(False if mode else None)


class enable_grad(_GradMode):  # noqa: N801 - torch's name
    """``with enable_grad():`` records the graph again, inside ``no_grad``."""

    def __init__(self):
        super().__init__(True)


class set_grad_enabled(_GradMode):  # noqa: N801 - torch's name
    """``set_grad_enabled(mode)`` switches recording on or off at once; a ``with`` block restores it on leaving."""

    def __init__(self, mode):
        super().__init__(bool(mode))
        self._previous = autograd.is_grad_enabled()
        autograd._set_grad_enabled(bool(mode))

    def __enter__(self):
        return self

    def __call__(self, func):               # as a decorator: only inside the function (torch's behaviour)
        autograd._set_grad_enabled(self._previous)
        return super().__call__(func)
