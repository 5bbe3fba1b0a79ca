"""Diagnostics: device-to-host transfers counted, the BLAS found, and glibc's allocator tuned.

Nothing here changes a result. ``count_transfers`` shows what an op or a training step moves
from the device to the host (lesson 10; a step should move one number, the loss); ``blas_info``
is one of ``minitorch-seg doctor``'s facts; ``tune_host_allocator`` is what the command line and
the benchmarks call once at the start to stop page faults.

>>> import numpy
>>> with count_transfers() as counter:
...     total = numpy.ones(3).sum()          # host arrays never count
>>> counter
TransferCounter(count=0, paths={})
"""
import contextlib
import os
import sys

import numpy


# ---- counting device-to-host transfers ------------------------------------------------------------
class TransferCounter:
    """How many device-to-host transfers happened, in total and by path (``to_numpy``, ``float()``, ...)."""

    def __init__(self):
        self.count, self.paths = 0, {}

    def __repr__(self):
        return f"TransferCounter(count={self.count}, paths={self.paths})"


_counters = []           # the counters of the ``count_transfers`` blocks open now, innermost last
_CUPY_PATHS = ("get", "item", "tolist", "__float__", "__int__", "__bool__", "__complex__", "__array__")


def note_transfer(path):
    """Count one transfer along ``path`` in every open ``count_transfers`` block (the shim's doors call it)."""
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
    cupy = sys.modules.get("cupy")      # imported by the shim the first time a GPU was asked for
    restore = _patch_cupy_transfers(cupy) if cupy is not None and len(_counters) == 1 else None
    try:
        yield counter
    finally:
        _counters.remove(counter)
        if restore:
            restore()


def _patch_cupy_transfers(cupy):
    """Wrap cupy's transfer methods (cupy.ndarray is a Python subclass, so they can be) while counting."""
    originals = {name: cupy.ndarray.__dict__.get(name) for name in _CUPY_PATHS}
    original_asnumpy = cupy.asnumpy

    depth = [0]  # cupy.asnumpy calls .get(), float() calls .item(): count only the outermost call

    def counted(name, method):
        def wrapper(*args, **kwargs):
            if depth[0] == 0:
                note_transfer(name)
            depth[0] += 1
            try:
                return method(*args, **kwargs)
            finally:
                depth[0] -= 1
        return wrapper

    for name in _CUPY_PATHS:
        setattr(cupy.ndarray, name, counted(name, getattr(cupy.ndarray, name)))
    cupy.asnumpy = counted("cupy.asnumpy", original_asnumpy)

    def restore():
        for name, method in originals.items():
            if method is None:
                delattr(cupy.ndarray, name)
            else:
                setattr(cupy.ndarray, name, method)
        cupy.asnumpy = original_asnumpy
    return restore


# ---- the host: BLAS and the allocator ------------------------------------------------------------
def blas_info():
    """The BLAS NumPy uses and the core OpenBLAS runs on (for ``doctor`` and benchmarks)."""
    info = {"numpy": numpy.__version__, "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    try:
        config = numpy.show_config(mode="dicts")
        info["blas"] = config.get("Build Dependencies", {}).get("blas", {}).get("name")
    except Exception:  # noqa: BLE001 - older NumPy without mode="dicts"
        info["blas"] = None
    return info


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
