"""The one array-module shim: every op gets its array module (NumPy, CuPy or "strict") from here.

Three backends share one interface, the NumPy API:

- ``"numpy"``: host arrays, the default.
- ``"cupy"``: device arrays on an NVIDIA GPU. This is the only file that imports CuPy, and it does
  so lazily, the first time a GPU is asked for (``special`` reaches for cupyx's ``erf`` only when
  handed a CuPy array).
- ``"strict"`` (tests only, not a CLI choice): NumPy-backed arrays that behave like CuPy's in the
  one way that matters for correctness without a GPU: they refuse to mix with host arrays and
  refuse implicit conversion to Python numbers (``strict``).

Ops follow their inputs (``xp = get_array_module(x)``); the *current* backend (``set_backend``,
``use_backend``) decides where factories, model initialisation and the data loader put new arrays.
``to_numpy`` and ``to_backend`` are the sanctioned doors between backends.

Next to the shim, one idea each: ``strict`` (the test backend), ``random`` (the seeded
generator), ``special`` (``erf``), ``diagnostics`` (transfer counting, the BLAS, the allocator)
and ``errors`` (``BackendError``). None of them imports this file; their public names are
re-exported here, so ``backend.count_transfers()`` and ``backend.manual_seed(0)`` work too.

>>> import numpy
>>> get_array_module(numpy.zeros(3)) is numpy
True
>>> with use_backend("strict"):
...     a = asarray([1.0, 2.0])
>>> type(a).__name__, float(to_numpy(a).sum())
('StrictArray', 3.0)
"""
import contextlib
import importlib
import shutil
import subprocess

import numpy

from .diagnostics import TransferCounter, blas_info, count_transfers, note_transfer, tune_host_allocator  # noqa: F401
from .errors import BackendError
from .random import (fork_rng, get_rng_state, host_generator, manual_seed, random_uniform, seed_state,  # noqa: F401
                     set_rng_state)
from .special import erf  # noqa: F401
from .strict import StrictArray, strict_module

BACKENDS = ("numpy", "cupy", "strict")
INSTALL_HINT = "pip install 'minitorch-seg[cuda12]' or 'minitorch-seg[cuda13]'"


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
    if type(array) is numpy.ndarray:                    # the common case first (a StrictArray is a subclass)
        return "numpy"
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
        if type(array) is numpy.ndarray:                # the common case, without backend_name's checks
            name = "numpy"
        elif array is None or isinstance(array, (int, float, bool)):
            continue
        else:
            name = backend_name(array)
        if found is None:
            found = name
        elif name != found:
            raise BackendError(f"An op got arrays from two backends ({found} and {name}); "
                               "move them to one with tensor.to(...) first.")
    return numpy if found in (None, "numpy") else module_for(found)


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
        note_transfer("to_numpy")
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
# Two array functions whose NumPy and CuPy spellings differ.
# --------------------------------------------------------------------------------------------
def scatter_add(target, index, values):
    """``target[index] += values`` where repeated indices add up (``numpy.add.at`` / ``cupyx.scatter_add``)."""
    if _cupy is not None and isinstance(target, _cupy.ndarray):
        importlib.import_module("cupyx").scatter_add(target, index, values)
    else:
        numpy.add.at(target, index, values)


def errstate(**kwargs):
    """``numpy.errstate`` on the host; nothing on the GPU, where no floating-point warnings exist."""
    return numpy.errstate(**kwargs)
