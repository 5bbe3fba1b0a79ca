"""Factories with torch's names and signatures: tensor as_tensor from_numpy zeros ones empty full
zeros_like ones_like full_like rand randn rand_like randn_like randint randperm arange.

New tensors go to ``device`` when one is given ("cpu" = NumPy, "cuda" = CuPy, or a backend name),
else to the current backend (``backend.set_backend``), which plays torch's default device.
``rand``, ``randn``, ``randint`` and ``randperm`` draw on the host, from ``generator`` or from the
global generator ``manual_seed`` seeds, and then move, so a seed gives the same numbers on every
backend.

>>> import minitorch_seg as mt
>>> mt.zeros(2, 3).shape, mt.zeros((2, 3)).dtype
((2, 3), dtype('float32'))
>>> mt.arange(4).tolist(), mt.arange(0.0, 1.0, 0.5).dtype
([0, 1, 2, 3], dtype('float32'))
>>> mt.ones(2, device="cpu").device
device(type='cpu')
"""
import numpy

from . import backend, devices, dtypes
from .generator import host_rng
from .tensor import Tensor, _array_from_python


def _shape(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def _float_dtype(dtype):
    return dtypes.get_default_dtype() if dtype is None else dtypes.resolve(dtype)


def _backend(device):
    """The backend name for ``device`` (None: the current backend)."""
    return backend.get_backend() if device is None else devices.backend_of(device)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new leaf tensor from Python data, a NumPy array or another tensor's data (always copied)."""
    if isinstance(data, Tensor):
        data = data.data
    if backend.backend_name_or_none(data) is not None:
        array = backend.to_backend(data, _backend(device)).astype(dtypes.resolve(dtype) if dtype else data.dtype,
                                                                  copy=True)
    else:
        array = backend.to_backend(_array_from_python(data, dtypes.resolve(dtype) if dtype else None),
                                   _backend(device))
    return Tensor(array, requires_grad=requires_grad)


def from_numpy(ndarray):
    """A tensor on the NumPy backend ("cpu") that shares memory with ``ndarray``: a write to one shows in the other."""
    if type(ndarray) is not numpy.ndarray:
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(ndarray).__name__}.")
    dtypes.resolve(ndarray.dtype)     # one clear error for dtypes the library does not know
    return Tensor(ndarray)


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, sharing memory where it can (a tensor or a NumPy array already of that dtype and device).

    A tensor comes back itself when nothing changes; a NumPy array stays on "cpu" unless
    ``device`` says otherwise (as torch's); Python data goes to the current backend.
    """
    if isinstance(data, Tensor):
        kwargs = {} if device is None else {"device": device}
        return data.to(dtype=dtype, **kwargs) if dtype is not None or device is not None else data
    if isinstance(data, numpy.ndarray):
        array = data if dtype is None else data.astype(dtypes.resolve(dtype), copy=False)
        dtypes.resolve(array.dtype)
        return Tensor(array if device is None else backend.to_backend(array, devices.backend_of(device)))
    if backend.backend_name_or_none(data) is not None:   # a device array
        array = data if dtype is None else data.astype(dtypes.resolve(dtype), copy=False)
        return Tensor(array if device is None else backend.to_backend(array, devices.backend_of(device)))
    return tensor(data, dtype=dtype, device=device)


def _filled(value, size, dtype, device, requires_grad):
    xp = backend.module_for(_backend(device))
    return Tensor(xp.full(_shape(size), value, dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _filled(0, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _filled(1, size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """Unlike PyTorch: filled with zeros (never uninitialised memory)."""
    return _filled(0, size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """``fill_value`` everywhere; the dtype follows the value as in torch (bool, int64, else the default float)."""
    if dtype is None and isinstance(fill_value, (bool, int)):
        dtype = dtypes.bool if isinstance(fill_value, bool) else dtypes.int64
    return _filled(fill_value, (size,) if isinstance(size, int) else size, dtype, device, requires_grad)


def _like(input, value, dtype, device, requires_grad):
    name = input.backend if device is None else devices.backend_of(device)
    xp = backend.module_for(name)
    array = xp.full(input.shape, value, dtype=dtypes.resolve(dtype) if dtype else input.dtype)
    return Tensor(array, requires_grad=requires_grad)


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    return _like(input, 0, dtype, device, requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    return _like(input, 1, dtype, device, requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return _like(input, fill_value, dtype, device, requires_grad)


def _drawn(values, dtype, device, requires_grad):
    return Tensor(backend.to_backend(values.astype(dtype), _backend(device)), requires_grad=requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1), drawn on the host from ``generator`` (or the seeded global generator)."""
    return _drawn(host_rng(generator).random(_shape(size)), _float_dtype(dtype), device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal, drawn on the host from ``generator`` (or the seeded global generator)."""
    return _drawn(host_rng(generator).standard_normal(_shape(size)), _float_dtype(dtype), device, requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False):
    return rand(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False):
    return randn(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def randint(low=0, high=None, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers uniform on [low, high): ``randint(high, size)`` or ``randint(low, high, size)``, int64 by default."""
    if size is None:                      # randint(high, size): torch's overload
        low, high, size = 0, low, high
    if high is None or size is None:
        raise TypeError("randint needs high and size: randint(high, size) or randint(low, high, size).")
    values = host_rng(generator).integers(low, high, size=tuple(size))
    return _drawn(values, dtypes.resolve(dtype) if dtype else dtypes.int64, device, requires_grad)


def randperm(n, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of 0..n-1, int64 by default."""
    values = host_rng(generator).permutation(n)
    return _drawn(values, dtypes.resolve(dtype) if dtype else dtypes.int64, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Like torch: integers give int64, any float argument gives the default float dtype."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        floats = any(isinstance(v, float) for v in (start, end, step))
        dtype = dtypes.get_default_dtype() if floats else dtypes.int64
    xp = backend.module_for(_backend(device))
    return Tensor(xp.arange(start, end, step, dtype=dtypes.resolve(dtype)), requires_grad=requires_grad)
