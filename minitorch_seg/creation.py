"""Factories with torch's names: tensor zeros ones zeros_like ones_like full rand randn arange empty.

New tensors go to the current backend (``backend.set_backend``). ``rand`` and ``randn`` draw on
the host from the generator ``manual_seed`` seeds and then move, so a seed gives the same numbers
on every backend.

>>> import minitorch_seg as mt
>>> mt.zeros(2, 3).shape, mt.zeros((2, 3)).dtype
((2, 3), dtype('float32'))
>>> mt.arange(4).tolist(), mt.arange(0.0, 1.0, 0.5).dtype
([0, 1, 2, 3], dtype('float32'))
"""
from . import backend, dtypes
from .tensor import Tensor, _array_from_python


def _shape(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def _float_dtype(dtype):
    return dtypes.get_default_dtype() if dtype is None else dtypes.resolve(dtype)


def tensor(data, dtype=None, requires_grad=False):
    """A new leaf tensor from Python data, a NumPy array or another tensor's data (copied)."""
    if isinstance(data, Tensor):
        data = data.data
    if backend.backend_name_or_none(data) is not None:
        array = backend.to_backend(data).astype(dtypes.resolve(dtype) if dtype else data.dtype, copy=True)
    else:
        array = _array_from_python(data, dtypes.resolve(dtype) if dtype else None)
    return Tensor(array, requires_grad=requires_grad)


def _filled(value, size, dtype, requires_grad):
    xp = backend.current_module()
    return Tensor(xp.full(_shape(size), value, dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def zeros(*size, dtype=None, requires_grad=False):
    return _filled(0, size, dtype, requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    return _filled(1, size, dtype, requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    return _filled(0, size, dtype, requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    return _filled(fill_value, (size,) if isinstance(size, int) else size, dtype, requires_grad)


def _like(input, value, dtype, requires_grad):
    xp = backend.get_array_module(input.data)
    array = xp.full(input.shape, value, dtype=dtypes.resolve(dtype) if dtype else input.dtype)
    return Tensor(array, requires_grad=requires_grad)


def zeros_like(input, dtype=None, requires_grad=False):
    return _like(input, 0, dtype, requires_grad)


def ones_like(input, dtype=None, requires_grad=False):
    return _like(input, 1, dtype, requires_grad)


def rand(*size, dtype=None, requires_grad=False):
    """Uniform on [0, 1), drawn on the host from the seeded generator."""
    values = backend.host_generator().random(_shape(size))
    return Tensor(backend.to_backend(values.astype(_float_dtype(dtype))), requires_grad=requires_grad)


def randn(*size, dtype=None, requires_grad=False):
    """Standard normal, drawn on the host from the seeded generator."""
    values = backend.host_generator().standard_normal(_shape(size))
    return Tensor(backend.to_backend(values.astype(_float_dtype(dtype))), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Like torch: integers give int64, any float argument gives the default float dtype."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        floats = any(isinstance(v, float) for v in (start, end, step))
        dtype = dtypes.get_default_dtype() if floats else dtypes.int64
    xp = backend.current_module()
    return Tensor(xp.arange(start, end, step, dtype=dtypes.resolve(dtype)), requires_grad=requires_grad)
