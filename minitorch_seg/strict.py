"""The strict test backend: NumPy arrays underneath, CuPy's manners on top.

A ``StrictArray`` behaves like a CuPy array in the two ways that matter for correctness without a
GPU: it refuses to mix with host (NumPy) arrays, and it refuses implicit conversion to the host
(``float()``, ``bool()``, ``.item()``, ``numpy.asarray`` ...). An op that runs under ``"strict"``
therefore creates no host arrays and forces no device-to-host transfer, so it will run on CuPy
too. ``strict_module`` is NumPy's namespace with every result turned into a strict array: what
``get_array_module`` hands an op whose inputs are strict. Tests only; not a command-line choice.

>>> import numpy
>>> a = strict_module.asarray([1.0, 2.0])
>>> type(a).__name__, type(a.sum()).__name__          # a reduction stays on the "device"
('StrictArray', 'StrictArray')
>>> float(a.sum())                                   # doctest: +ELLIPSIS
Traceback (most recent call last):
...
minitorch_seg.errors.BackendError: strict backend: float() would copy a device array to the host implicitly; ...
"""
import types

import numpy

from .diagnostics import note_transfer
from .errors import BackendError


class StrictArray(numpy.ndarray):
    """A NumPy array that, like a CuPy array, will not mix with host arrays or leave implicitly."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host_operands(inputs, f"numpy.{ufunc.__name__}")
        if out is not None:
            _refuse_host_operands(out, f"numpy.{ufunc.__name__}(out=...)")
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __getitem__(self, index):
        # Indexing one element gives a 0-d array (as on CuPy), never a host scalar.
        return _wrap(super().__getitem__(_unwrap(index)))

    def __setitem__(self, index, value):
        # CuPy writes a 0-d device array into one element on the device; NumPy would call
        # float(value) on it, which the strict array refuses, so hand NumPy plain arrays.
        super().__setitem__(_unwrap(index), _unwrap(value))

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host_operands((args, kwargs), f"numpy.{func.__name__}")
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    def __array__(self, *args, **kwargs):
        note_transfer("__array__")
        raise BackendError(_IMPLICIT.format(what="numpy.asarray/__array__"))

    def _refuse(self, *args, what="conversion", **kwargs):
        note_transfer(what)
        raise BackendError(_IMPLICIT.format(what=what))

    __float__ = lambda self: self._refuse(what="float()")  # noqa: E731
    __int__ = lambda self: self._refuse(what="int()")  # noqa: E731
    __index__ = lambda self: self._refuse(what="operator.index()")  # noqa: E731
    __bool__ = lambda self: self._refuse(what="bool()")  # noqa: E731
    __complex__ = lambda self: self._refuse(what="complex()")  # noqa: E731
    item = lambda self, *a: self._refuse(what=".item()")  # noqa: E731
    tolist = lambda self: self._refuse(what=".tolist()")  # noqa: E731


_IMPLICIT = ("strict backend: {what} would copy a device array to the host implicitly; "
             "use minitorch_seg.backend.to_numpy(array) where a host copy is really meant")


def _refuse_host_operands(obj, where):
    if type(obj) is numpy.ndarray or (isinstance(obj, numpy.ndarray) and not isinstance(obj, StrictArray)):
        raise BackendError(f"strict backend: {where} got a host numpy array mixed with device arrays; "
                           "create arrays with the op's array module (xp = get_array_module(x))")
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _refuse_host_operands(item, where)
    elif isinstance(obj, dict):
        for item in obj.values():
            _refuse_host_operands(item, where)


def _unwrap(obj):
    if isinstance(obj, StrictArray):
        return obj.view(numpy.ndarray)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


def _wrap(obj):
    # NumPy scalars become 0-d arrays, as CuPy's reductions return 0-d device arrays.
    if isinstance(obj, numpy.ndarray) and not isinstance(obj, StrictArray):
        return obj.view(StrictArray)
    if isinstance(obj, numpy.generic):
        return numpy.asarray(obj).view(StrictArray)
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


class _StrictNamespace(types.SimpleNamespace):
    """NumPy's namespace, with every function's array results turned into StrictArrays.

    Creation functions (``zeros``, ``asarray``, ...) make strict arrays; ``asarray`` of a host
    ndarray is refused, because inside an op that is a host array sneaking in (the shim's
    ``to_backend`` is the one sanctioned door).
    """

    def __init__(self, module, name):
        super().__init__()
        self._module, self.__name__ = module, name

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if isinstance(value, types.ModuleType):
            value = _StrictNamespace(value, f"{self.__name__}.{name}")
        elif callable(value) and not isinstance(value, type) and not isinstance(value, numpy.ufunc):
            value = _strict_function(value, f"{self.__name__}.{name}")
        setattr(self, name, value)  # cache: the next lookup is a plain attribute
        return value


def _strict_function(func, qualname):
    def strict(*args, **kwargs):
        _refuse_host_operands((args, kwargs), qualname)
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))
    strict.__name__ = strict.__qualname__ = qualname
    return strict


strict_module = _StrictNamespace(numpy, "strict")
