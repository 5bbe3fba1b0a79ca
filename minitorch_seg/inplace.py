"""In-place tensor methods with torch's semantics: add_ sub_ mul_ div_ clamp_ zero_ fill_ copy_, ``+=`` and ``x[i] = v``.

Two cases, as in torch:

- Outside the graph (under ``no_grad``, or when neither the tensor nor the other operand requires
  grad) the array itself is changed and the tensor is returned: ``p -= lr * p.grad`` under
  ``no_grad`` updates the parameter, and every view of the array sees the change.
- Inside the graph (grad enabled and something requires grad) a leaf that requires grad refuses,
  with torch's sentence; any other tensor computes the op out of place, recorded in the graph,
  and takes the result over (its array and its graph node): ``loss += term`` works as in torch.

Unlike PyTorch: an in-place op recorded in the graph gives the tensor a new array, so another
tensor that shared its memory (a view, a ``detach()``) does not see that change; nothing is ever
"modified by an inplace operation" under a saved tensor, so torch's version-counter error never
occurs. ``zero_``/``fill_`` inside the graph make the tensor a constant (no longer requiring grad).

>>> import minitorch_seg as mt
>>> w = mt.tensor([1.0, 2.0], requires_grad=True)
>>> with mt.no_grad():
...     w -= 0.5
>>> w
tensor([0.5000, 1.5000], requires_grad=True)
>>> w.add_(1)
Traceback (most recent call last):
...
RuntimeError: a leaf Variable that requires grad is being used in an in-place operation.
"""
import numpy

from . import autograd, backend

LEAF_ERROR = "a leaf Variable that requires grad is being used in an in-place operation."


def _tensor_type():
    from .tensor import Tensor
    return Tensor


def _functional():
    from . import functional
    return functional


def _data(value):
    return value.data if isinstance(value, _tensor_type()) else value


def _in_graph(self, *others):
    """True when the op must be recorded (and then refuse on a leaf that requires grad)."""
    if not autograd.is_grad_enabled():
        return False
    wanted = self.requires_grad or any(isinstance(o, _tensor_type()) and o.requires_grad for o in others)
    if wanted and self.requires_grad and self._ctx is None:
        raise RuntimeError(LEAF_ERROR)
    return wanted


def _check_shape(name, self, *others):
    shapes = [self.shape] + [tuple(getattr(o, "shape", ())) for o in others]
    try:
        broadcast = numpy.broadcast_shapes(*shapes)
    except ValueError:
        broadcast = None
    if broadcast != self.shape:
        raise RuntimeError(f"{name}: the other operand's shape {shapes[1]} does not broadcast to this tensor's "
                           f"shape {self.shape}, which an in-place op keeps.")


def _adopt(self, result):
    """Make ``self`` the (graph-recorded) ``result``: its array, dtype kept, and its graph node."""
    if result.dtype != self.dtype:
        result = _functional().cast(result, self.dtype)
    self.data, self._ctx, self._output_index = result.data, result._ctx, result._output_index
    self.requires_grad = result.requires_grad
    return self


def _ufunc(name, self, ufunc_name, other):
    """``self.data = ufunc(self.data, other)`` in place, with NumPy's same-kind casting (torch refuses int += float too)."""
    _check_shape(name, self, other)
    xp = backend.get_array_module(self.data, _data(other))
    try:
        getattr(xp, ufunc_name)(self.data, _data(other), out=self.data)
    except TypeError as error:   # NumPy's UFuncTypeError: a float result into an int tensor
        if "cast" not in str(error):
            raise
        raise RuntimeError(f"{name}: the result cannot be stored in place in a {self.dtype} tensor "
                           "(a floating result into an integer tensor); cast the tensor first.") from None
    return self


def _scaled(other, alpha):
    if alpha == 1:
        return other
    return other * alpha


def add_(self, other, alpha=1):
    """self += alpha * other, in place (torch's ``add_``)."""
    other = _scaled(other, alpha)
    if _in_graph(self, other):
        return _adopt(self, _functional().add(self, other))
    return _ufunc("add_", self, "add", other)


def sub_(self, other, alpha=1):
    """self -= alpha * other, in place."""
    other = _scaled(other, alpha)
    if _in_graph(self, other):
        return _adopt(self, _functional().sub(self, other))
    return _ufunc("sub_", self, "subtract", other)


def mul_(self, other):
    """self *= other, in place."""
    if _in_graph(self, other):
        return _adopt(self, _functional().mul(self, other))
    return _ufunc("mul_", self, "multiply", other)


def div_(self, other):
    """self /= other, in place (an integer tensor refuses, as in torch: the quotient is a float)."""
    if _in_graph(self, other):
        return _adopt(self, _functional().div(self, other))
    return _ufunc("div_", self, "true_divide", other)


def clamp_(self, min=None, max=None):  # noqa: A002 - torch's names
    """self = clamp(self, min, max), in place."""
    if _in_graph(self, min, max):
        return _adopt(self, _functional().clamp(self, min, max))
    if min is None and max is None:
        raise RuntimeError("clamp_: at least one of 'min' or 'max' must not be None.")
    if min is not None:
        _ufunc("clamp_", self, "maximum", min)
    if max is not None:
        _ufunc("clamp_", self, "minimum", max)
    return self


def fill_(self, value):
    """Every element set to ``value``, in place."""
    value = _data(value)
    if _in_graph(self):
        xp = backend.get_array_module(self.data)
        return _adopt(self, _tensor_type()(xp.full(self.shape, value, dtype=self.dtype)))
    self.data[...] = value
    return self


def zero_(self):
    """Every element set to 0, in place."""
    return fill_(self, 0)


def copy_(self, src, non_blocking=False):
    """Copy ``src`` (a tensor or array of any backend, broadcast to this shape, cast to this dtype) into self.

    Inside the graph the copy is differentiable in ``src``, as in torch.
    """
    F = _functional()
    if _in_graph(self, src):
        if not isinstance(src, _tensor_type()):
            src = _tensor_type()(src)
        if src.backend != self.backend:
            src = src.to(self.backend)
        _check_shape("copy_", self, src)
        moved = F.expand(src, self.shape) if src.shape != self.shape else src
        return _adopt(self, F.clone(moved))          # a writable array of its own, not a broadcast view
    source = _data(src)
    self.data[...] = backend.to_backend(source, self.backend) if backend.backend_name_or_none(source) else source
    return self


def setitem(self, index, value):
    """``self[index] = value``: ``value`` (a tensor, array or number) broadcast to ``self[index]`` and cast to self's dtype.

    Outside the graph the array is written (views see it); inside, the write is recorded
    (``functional.indexing.SetItem``): the gradient reaches ``value`` through the written elements
    and the rest of self through the others.
    """
    from .functional.indexing import _steps, _write, setitem as recorded
    if _in_graph(self, value):
        if not isinstance(value, _tensor_type()):      # a number or an array of either backend, never via the host
            array = value if backend.backend_name_or_none(value) else numpy.asarray(value, dtype=numpy.dtype(self.dtype))
            value = _tensor_type()(backend.to_backend(array, self.backend))
        elif value.backend != self.backend:
            value = value.to(self.backend)
        return _adopt(self, recorded(self, index, value))
    value = _data(value)
    if backend.backend_name_or_none(value):
        value = backend.to_backend(value, self.backend)
    _write(self.data, _steps(index), value)
    return self
