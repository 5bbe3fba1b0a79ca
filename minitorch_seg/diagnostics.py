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
import ctypes
import ctypes.util
import os
import sys
import threading

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


def tune_host_allocator(threshold_bytes=512 * 2**20, huge_pages=True):
    """Ask glibc to reuse freed big blocks instead of returning them to the kernel, in huge pages.

    A NumPy framework allocates fresh arrays every op. By default glibc serves big blocks with
    mmap and unmaps them on free (and trims the heap top), so every step page-faults the same
    memory in again: touching fresh pages ran at about 0.5 GB/s on our 2-core machine. Raising
    the mmap threshold (glibc's maximum is 32 MiB) and the trim threshold keeps them in the heap.

    ``huge_pages``: on Linux, called from the main thread with a threshold of 64 MiB or more, the
    main heap's next ``threshold_bytes // 2`` are reserved at once and marked for transparent huge
    pages (``_huge_page_heap``), so the arrays the main thread makes from them later fault in 2 MiB
    pages, not 4 KiB ones: fewer faults and TLB misses per pass over an array. NumPy marks each
    array of 4 MiB or more itself; this covers the smaller ones (the U-Net's deeper levels, and the
    blocks glibc hands out again) too, but not the tile threads' own allocations, which glibc
    serves from arenas of their own: in the U-Net step 216 MiB of 273 in huge pages instead of 136.
    It pays where touching memory again is slow: on the 2-core Xeon VM, while it ran slowly, memory
    left alone for a few hundred ms took ~5 us a 4 KiB page to touch again, and the step was 18 ms
    shorter (the two settings' processes in turn, 10 pairs, 9 shorter; about 420 ms) and 9 ms at
    the training job's size (8 of 10; about 260 ms). On the same VM running quickly, no difference
    (8 pairs, median -0.9 ms of 285). Reserving touches a page or two per 30 MiB (malloc's headers),
    which then stay small pages; RSS grows as arrays use the rest. Safe to call more than once (the
    heap is marked once); returns False where glibc's ``mallopt`` is absent.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    threshold = min(threshold_bytes, _INT_MAX)                         # mallopt takes a C int
    tuned = bool(mallopt(m_mmap_threshold, min(threshold, _MMAP_MAX)) and mallopt(m_trim_threshold, threshold))
    if (tuned and huge_pages and not _HEAP_MARKED and threshold >= 2 * _MMAP_MAX
            and threading.current_thread() is threading.main_thread()):
        marked = _huge_page_heap(libc, threshold // 2)
        if marked:
            _HEAP_MARKED.append(marked)
    return tuned


_INT_MAX = 2**31 - 1
_MMAP_MAX = 32 * 2**20                   # glibc's largest mmap threshold
_HUGE_PAGE = 2 * 2**20                   # x86-64's transparent huge page
_MADV_HUGEPAGE = 14
_HEAP_MARKED = []                        # the bytes marked, once a process


def _huge_page_heap(libc, nbytes):
    """Grow the main heap by about ``nbytes`` in blocks under the mmap threshold (so glibc takes
    them from the heap: the caller set that threshold to 32 MiB), mark the whole 2 MiB pages inside
    them ``MADV_HUGEPAGE``, and free them: they stay in the heap (the trim threshold, twice
    ``nbytes``, is above them), untouched, for later arrays. Returns the bytes marked; 0 where the
    kernel has no transparent huge pages or refuses the advice.

    Only pages not yet touched can become huge ones, so this runs before the arrays do. The
    blocks lie side by side (malloc's header between): they are marked as one run where they do.
    Each header's page is touched, so the 2 MiB around it stay small pages: blocks as large as
    the threshold allows keep those few.
    """
    if not sys.platform.startswith("linux") or not _transparent_huge_pages():
        return 0
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    block = _MMAP_MAX - _HUGE_PAGE
    starts = [libc.malloc(block) for _ in range(max(1, nbytes // block))]
    marked = 0
    try:
        for start, stop in _runs(sorted(s for s in starts if s), block):
            first, last = -(-start // _HUGE_PAGE) * _HUGE_PAGE, stop // _HUGE_PAGE * _HUGE_PAGE
            if last > first and libc.madvise(first, last - first, _MADV_HUGEPAGE) == 0:
                marked += last - first
    finally:
        for start in starts:
            libc.free(start)
    return marked


def _runs(starts, size, gap=64):
    """[(start, stop), ...]: blocks of ``size`` bytes at sorted ``starts``, merged where less than
    ``gap`` bytes (malloc's header) lie between one's end and the next one's start."""
    runs = []
    for start in starts:
        if runs and 0 <= start - runs[-1][1] < gap:
            runs[-1][1] = start + size
        else:
            runs.append([start, start + size])
    return [tuple(run) for run in runs]


def _transparent_huge_pages():
    """Whether the kernel gives transparent huge pages to a region that asks (mode "always" or "madvise")."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as mode:
            return "[never]" not in mode.read()
    except OSError:
        return False
