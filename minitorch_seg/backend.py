"""The one array-module shim: every op gets its array module (NumPy, CuPy or "strict") from here.

Three backends share one interface, the NumPy API:

- ``"numpy"``: host arrays, the default.
- ``"cupy"``: device arrays on an NVIDIA GPU. This is the only file that imports CuPy, and it does
  so lazily, the first time a GPU is asked for.
- ``"strict"`` (tests only, not a CLI choice): NumPy-backed arrays that behave like CuPy's in the
  one way that matters for correctness without a GPU: they refuse to mix with host arrays and
  refuse implicit conversion to Python numbers. An op that runs under ``strict`` creates no host
  arrays and forces no device-to-host transfer, so it will run on CuPy too.

Ops follow their inputs (``xp = get_array_module(x)``); the *current* backend (``set_backend``,
``use_backend``) decides where factories, model initialisation and the data loader put new arrays.

>>> import numpy
>>> get_array_module(numpy.zeros(3)) is numpy
True
>>> with use_backend("strict"):
...     a = asarray([1.0, 2.0])
>>> type(a).__name__, float(to_numpy(a).sum())
('StrictArray', 3.0)
"""
from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import types

import numpy

BACKENDS = ("numpy", "cupy", "strict")
INSTALL_HINT = "pip install 'minitorch-seg[cuda12]' or 'minitorch-seg[cuda13]'"


class BackendError(RuntimeError):
    """A backend was asked for that cannot be used here, or two backends were mixed."""


# --------------------------------------------------------------------------------------------
# The strict test backend: NumPy underneath, CuPy's manners on top.
# --------------------------------------------------------------------------------------------
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
        _note_transfer("__array__")
        raise BackendError(_IMPLICIT.format(what="numpy.asarray/__array__"))

    def _refuse(self, *args, what="conversion", **kwargs):
        _note_transfer(what)
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


# --------------------------------------------------------------------------------------------
# CuPy, imported lazily.
# --------------------------------------------------------------------------------------------
_cupy = None
_cupy_error = None


def _import_cupy():
    """Return the cupy module, or raise one sentence saying why it cannot be used here."""
    global _cupy, _cupy_error
    if _cupy is not None:
        return _cupy
    if _cupy_error is None:
        try:
            cupy = importlib.import_module("cupy")
            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("no GPU is visible")
            _cupy = cupy
            return cupy
        except Exception as error:  # ImportError, CUDARuntimeError, missing driver...
            _cupy_error = error
    raise BackendError(cupy_unavailable_reason())


def cupy_unavailable_reason():
    """One sentence: why CuPy cannot be used here and which extra to install (None if it can)."""
    if _cupy is not None:
        return None
    error = _cupy_error
    if error is None:
        try:
            _import_cupy()
            return None
        except BackendError as raised:
            return str(raised)
    hint = INSTALL_HINT
    driver_major = _cuda_driver_major()
    if driver_major is not None:
        extra = "cuda13" if driver_major >= 13 else "cuda12"
        hint = f"pip install 'minitorch-seg[{extra}]' (the visible driver supports CUDA {driver_major})"
    if isinstance(error, ImportError):
        return f"The cupy backend needs CuPy, which is not installed: {hint}."
    return f"The cupy backend needs CuPy and a working NVIDIA GPU, but CuPy failed with: {error}; {hint}."


def _cuda_driver_major():
    """The CUDA major version the visible NVIDIA driver supports, or None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        text = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    marker = "CUDA Version:"
    if marker not in text:
        return None
    try:
        return int(text.split(marker, 1)[1].split()[0].split(".")[0])
    except ValueError:
        return None


def cupy_module():
    """The cupy module (for ``doctor`` and benchmarks); raises BackendError where it cannot work."""
    return _import_cupy()


# --------------------------------------------------------------------------------------------
# Choosing and asking for a backend.
# --------------------------------------------------------------------------------------------
_current = "numpy"


def _check_name(name):
    if name not in BACKENDS:
        raise BackendError(f"Unknown backend {name!r}; expected one of {', '.join(BACKENDS)}.")


def module_for(name):
    """The array module of backend ``name`` ("numpy", "cupy" or "strict")."""
    _check_name(name)
    if name == "numpy":
        return numpy
    if name == "strict":
        return strict_module
    return _import_cupy()


def set_backend(name):
    """Make ``name`` the backend where factories, initialisation and loaders put new arrays."""
    global _current
    module_for(name)  # fail now, not at the first factory call
    _current = name


def get_backend():
    """The name of the current backend."""
    return _current


@contextlib.contextmanager
def use_backend(name):
    """``with use_backend("cupy"): ...`` makes ``name`` current inside the block only."""
    global _current
    previous = _current
    set_backend(name)
    try:
        yield module_for(name)
    finally:
        _current = previous


def current_module():
    """The array module of the current backend."""
    return module_for(_current)


def backend_name(array):
    """The name of the backend an array lives on."""
    if isinstance(array, StrictArray):
        return "strict"
    if isinstance(array, (numpy.ndarray, numpy.generic)):
        return "numpy"
    if type(array).__module__.startswith("cupy") and isinstance(array, _import_cupy().ndarray):
        return "cupy"
    raise BackendError(f"Expected an array of one of the backends {', '.join(BACKENDS)}, got {type(array).__name__}.")


def get_array_module(*arrays):
    """The array module shared by ``arrays`` (None entries and Python scalars are skipped).

    Raises BackendError when arrays from two backends meet in one op.
    """
    found = None
    for array in arrays:
        if array is None or isinstance(array, (int, float, bool)):
            continue
        name = backend_name(array)
        if found is None:
            found = name
        elif name != found:
            raise BackendError(f"An op got arrays from two backends ({found} and {name}); "
                               "move them to one with tensor.to(...) first.")
    return module_for(found or "numpy")


def module_name(xp):
    """The backend name of an array module: "numpy", "strict" or "cupy"."""
    return "numpy" if xp is numpy else "strict" if xp is strict_module else "cupy"


def is_device_module(xp):
    """True for modules whose arrays must not be read on the host implicitly (cupy, strict)."""
    return xp is not numpy


# --------------------------------------------------------------------------------------------
# Moving arrays between backends: the sanctioned doors.
# --------------------------------------------------------------------------------------------
def to_numpy(array):
    """A host NumPy array with the same values (a copy from the GPU; the array itself on NumPy)."""
    if isinstance(array, StrictArray):
        _note_transfer("to_numpy")
        return array.view(numpy.ndarray)
    if isinstance(array, (numpy.ndarray, numpy.generic)):
        return numpy.asarray(array)
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)  # counted by the patched cupy.asnumpy while counting
    return numpy.asarray(array)


def to_backend(array, name=None):
    """``array`` (host, device or Python data) on backend ``name`` (default: the current one)."""
    name = name or _current
    _check_name(name)
    if backend_name_or_none(array) == name:
        return array
    if name == "cupy":
        return _import_cupy().asarray(to_numpy(array))
    host = to_numpy(array)
    return host.view(StrictArray) if name == "strict" else host


def backend_name_or_none(array):
    try:
        return backend_name(array)
    except BackendError:
        return None


def asarray(data, dtype=None, backend=None):
    """Python data or an array of any backend, as an array of ``backend`` (default: current)."""
    host = numpy.asarray(to_numpy(data) if backend_name_or_none(data) else data, dtype=dtype)
    return to_backend(host, backend)


# --------------------------------------------------------------------------------------------
# Counting device-to-host transfers.
# --------------------------------------------------------------------------------------------
class TransferCounter:
    """How many device-to-host transfers happened, in total and by path (``to_numpy``, ``float()``, ...)."""

    def __init__(self):
        self.count, self.paths = 0, {}

    def __repr__(self):
        return f"TransferCounter(count={self.count}, paths={self.paths})"


_counters = []
_CUPY_PATHS = ("get", "item", "tolist", "__float__", "__int__", "__bool__", "__complex__", "__array__")


def _note_transfer(path):
    for counter in _counters:
        counter.count += 1
        counter.paths[path] = counter.paths.get(path, 0) + 1


@contextlib.contextmanager
def count_transfers():
    """Count every device-to-host transfer inside the block: ``with count_transfers() as c: ...; c.count``.

    Counted paths: ``to_numpy`` (and so ``Tensor.numpy()``/``.item()``/``.tolist()``) of device
    arrays; on CuPy also ``cupy.asnumpy``, ``.get()``, ``float()``, ``int()``, ``bool()``,
    ``.item()``, ``.tolist()`` and ``__array__`` of any cupy array; on the strict backend the
    implicit conversions it refuses are counted before they raise. NumPy arrays never count.
    """
    counter = TransferCounter()
    _counters.append(counter)
    restore = _patch_cupy_transfers() if _cupy is not None and len(_counters) == 1 else None
    try:
        yield counter
    finally:
        _counters.remove(counter)
        if restore:
            restore()


def _patch_cupy_transfers():
    """Wrap cupy's transfer methods (cupy.ndarray is a Python subclass, so they can be) while counting."""
    originals = {name: _cupy.ndarray.__dict__.get(name) for name in _CUPY_PATHS}
    original_asnumpy = _cupy.asnumpy

    depth = [0]  # cupy.asnumpy calls .get(), float() calls .item(): count only the outermost call

    def counted(name, method):
        def wrapper(*args, **kwargs):
            if depth[0] == 0:
                _note_transfer(name)
            depth[0] += 1
            try:
                return method(*args, **kwargs)
            finally:
                depth[0] -= 1
        return wrapper

    for name in _CUPY_PATHS:
        setattr(_cupy.ndarray, name, counted(name, getattr(_cupy.ndarray, name)))
    _cupy.asnumpy = counted("cupy.asnumpy", original_asnumpy)

    def restore():
        for name, method in originals.items():
            if method is None:
                delattr(_cupy.ndarray, name)
            else:
                setattr(_cupy.ndarray, name, method)
        _cupy.asnumpy = original_asnumpy
    return restore


# --------------------------------------------------------------------------------------------
# Random numbers: one seeded host generator, so a seed gives the same weights on every backend.
# --------------------------------------------------------------------------------------------
_host_generator = numpy.random.default_rng(0)
_device_generator = None
_seed = 0


def manual_seed(seed):
    """Seed the generator that initialisation, ``rand``/``randn`` and dropout draw from."""
    global _host_generator, _device_generator, _seed
    _seed = int(seed)
    _host_generator = numpy.random.default_rng(_seed)
    _device_generator = None


def host_generator():
    """The seeded NumPy generator (host); initial weights are drawn here, then moved."""
    return _host_generator


def get_rng_state():
    """The generators' state, as plain data for a checkpoint."""
    return {"seed": _seed, "host": _host_generator.bit_generator.state}


def set_rng_state(state):
    global _device_generator
    manual_seed(state["seed"])
    _host_generator.bit_generator.state = state["host"]


def random_uniform(xp, shape, dtype):
    """Uniform [0, 1) numbers made where ``xp`` keeps its arrays (on the GPU with CuPy)."""
    global _device_generator
    if xp is numpy or xp is strict_module:
        values = _host_generator.random(shape, dtype=numpy.float64).astype(dtype, copy=False)
        return to_backend(values, "strict" if xp is strict_module else "numpy")
    if _device_generator is None:
        _device_generator = xp.random.default_rng(_host_generator.integers(2**63))
    return _device_generator.random(shape, dtype=dtype)


# --------------------------------------------------------------------------------------------
# Functions NumPy lacks.
# --------------------------------------------------------------------------------------------
def erf(x):
    """The error function, elementwise, on any backend (SciPy on the host, cupyx on the GPU)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return importlib.import_module("cupyx.scipy.special").erf(x)
    if x.dtype == numpy.float32:
        return _erf_float32(x)
    from scipy.special import erf as scipy_erf  # a NumPy ufunc: StrictArray dispatches it too
    return scipy_erf(x)


# erf(x) ~ x P(x^2) / Q(x^2) on [-4, 4] (erf is +-1 in float32 beyond), Eigen's float32
# coefficients: max error 4.5e-7 against the float64 erf. SciPy's float32 erf goes through a
# scalar float64 routine at ~15 ns per element, which made GELU half of a Swin block's time;
# this runs at ~2.5 ns, in cache-sized chunks (each pass of the polynomial stays in L2).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)
_ERF_CHUNK = 1 << 15


def _erf_float32(x):
    """erf of a float32 host array (NumPy or strict), by the rational approximation above."""
    f32 = numpy.float32
    flat = x.reshape(-1)
    out = (strict_module if isinstance(x, StrictArray) else numpy).empty(flat.shape, dtype=f32)
    for start in range(0, flat.size, _ERF_CHUNK):
        t = numpy.maximum(flat[start:start + _ERF_CHUNK], f32(-4))       # clip to [-4, 4] (numpy.clip's
        numpy.minimum(t, f32(4), out=t)                                      # Python wrapper costs more)
        t2 = t * t
        p = t2 * f32(_ERF_P[0])
        for c in _ERF_P[1:-1]:
            p += f32(c)
            p *= t2
        p += f32(_ERF_P[-1])
        p *= t
        q = t2 * f32(_ERF_Q[0])
        for c in _ERF_Q[1:-1]:
            q += f32(c)
            q *= t2
        q += f32(_ERF_Q[-1])
        numpy.divide(p, q, out=out[start:start + _ERF_CHUNK])
    return out.reshape(x.shape)


def scatter_add(target, index, values):
    """``target[index] += values`` where repeated indices add up (``numpy.add.at`` / ``cupyx.scatter_add``)."""
    if _cupy is not None and isinstance(target, _cupy.ndarray):
        importlib.import_module("cupyx").scatter_add(target, index, values)
    else:
        numpy.add.at(target, index, values)


def errstate(**kwargs):
    """``numpy.errstate`` on the host; nothing on the GPU, where no floating-point warnings exist."""
    return numpy.errstate(**kwargs)


def tune_host_allocator(threshold_bytes=256 * 2**20):
    """Ask glibc to reuse freed big blocks instead of returning them to the kernel.

    A NumPy framework allocates fresh arrays every op. By default glibc serves big blocks with
    mmap and unmaps them on free (and trims the heap top), so every step page-faults the same
    memory in again: touching fresh pages ran at about 0.5 GB/s on our 2-core machine. Raising
    the mmap threshold (glibc's maximum is 32 MiB) and the trim threshold keeps them in the heap.
    Safe to call more than once; returns False where glibc's ``mallopt`` is absent.
    """
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, min(threshold_bytes, 32 * 2**20)) and
                mallopt(m_trim_threshold, threshold_bytes))


def blas_info():
    """The BLAS NumPy uses and the core OpenBLAS runs on (for ``doctor`` and benchmarks)."""
    info = {"numpy": numpy.__version__, "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    try:
        config = numpy.show_config(mode="dicts")
        info["blas"] = config.get("Build Dependencies", {}).get("blas", {}).get("name")
    except Exception:  # noqa: BLE001 - older NumPy without mode="dicts"
        info["blas"] = None
    return info
