"""Host matrix products through Intel MKL where it is installed: ``gemm.matmul(a, b)`` is ``a @ b``.

NumPy's ``matmul`` runs OpenBLAS. At the convolutions' shapes (16-128 output channels, a few
hundred columns, one product per output row) OpenBLAS reached 74-131 GFLOP/s on one core of the
AVX-512 Xeon where MKL's batched ``cblas_sgemm`` reached 122-163, and with MEC's, the shifted
sum's and im2col's products through MKL the U-Net step took 22 ms less (259 against 280 ms, two
versions taking turns in one process; ``benchmarks/results/2026-12-03-xeon-mkl.md``). So the conv
kernels call ``matmul`` here, and it hands the product to MKL when:

- MKL is installed (``pip install "minitorch-seg[mkl]"``: the ``mkl`` wheel, Linux x86-64 only)
  and ``enabled`` (by default on Intel CPUs only: on a 2-core AMD EPYC of the Zen 5 family,
  MKL made the U-Net step 99 ms slower, 377 against 281 ms, the two taking turns in one process,
  40 rounds; ``benchmarks/results/2026-12-03-zen5.md``);
- PyTorch was not loaded in the process before it: its CPU wheel carries an MKL of its own
  (``_TORCH_AFTER``);
- both operands are host float32 or float64 arrays of one dtype, at most 3-D (a batch of
  matrices, or one matrix shared by the batch), each matrix with one axis of unit stride and
  the batch a constant stride apart: any view NumPy makes by slicing, transposing or
  ``as_strided`` (MEC's overlapping rows included) without negative strides.

The r products of a batch go to MKL in one call: ``cblas_sgemm_batch_strided`` (each operand's
matrices a constant stride apart, a stride of 0 for one matrix shared by the batch), or, where the
result's matrices interleave (MEC writing y's rows), the group call ``cblas_sgemm_batch``, which
takes every matrix's address in an array; MKL's strided call refuses C matrices closer than one
matrix apart. The strided call builds no arrays: at the training job's size it took 8.6-9.0 ms
off the U-Net step (of about 150; the two calls switched every other step, 30 rounds).

Everything else, and any product on CuPy, goes to the array module's own ``matmul``: the results
are the same products, summed in another order (float32 results differ in the last bits). On the
host, in the tile threads, NumPy's OpenBLAS gets such a product cut into the parts its
small-matrix kernels take, where it has them (``small_products``).

MKL runs sequentially: the tiles' own threads (``parallel.map_tiles``) are the parallelism, and the
call lets go of the GIL. ``MINITORCH_SEG_MKL=0`` in the environment turns it off, as does
``gemm.enabled = False``. Loading it sets MKL's process-wide state (32-bit sizes, one thread, its
error handler): another user of the same ``libmkl_rt`` in the process (a NumPy or SciPy built on
MKL) would run on one thread too.

>>> import numpy
>>> a, b = numpy.ones((2, 3), numpy.float32), numpy.ones((4, 3, 5), numpy.float32)
>>> matmul(a, b).shape                    # one matrix times a batch, as numpy.matmul
(4, 2, 5)
"""
import ctypes
import importlib.metadata
import os
import sys
import threading
import warnings

import numpy

from . import small_products
from .backend import get_array_module

_ROW_MAJOR, _NO_TRANS, _TRANS, _SEQUENTIAL, _LP64 = 101, 111, 112, 1, 0
_INT_MAX = 2**31 - 1                      # MKL's LP64 interface: 32-bit sizes and strides
_lock, _library = threading.Lock(), None  # None: not looked for yet; False: not there
_rejected = threading.local()              # MKL rejected an argument of this thread's last product


@ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int)
def _REJECTED(routine, position, length):   # noqa: N802 - MKL's xerbla: it computes nothing after calling it
    _rejected.value = True


def _intel():
    try:
        with open("/proc/cpuinfo") as info:
            return any(line.startswith("vendor_id") and "GenuineIntel" in line for line in info)
    except OSError:
        return False


enabled = os.environ.get("MINITORCH_SEG_MKL", "1") != "0" and _intel()


# PyTorch's CPU wheels link an MKL of their own and export its symbols. With two MKLs in one process
# the dynamic loader binds each one's calls into the other's (found here: PyTorch then ran on one
# thread, and its linalg.inv changed in the last bits; elsewhere such mixes have crashed). So MKL is
# not loaded where torch already is, and the first product after torch came in afterwards warns.
_TORCH_AFTER = ("torch was imported after minitorch_seg loaded MKL for its convolutions: the two MKLs share "
                "their symbols, so torch runs on one thread and may round some results differently (or fail); "
                "import torch first (minitorch_seg then leaves MKL alone), or set MINITORCH_SEG_MKL=0.")
_warned = []


def _torch_loaded():
    """Whether PyTorch is imported here (not a ``sys.modules["torch"] = None`` stand-in, as tests make)."""
    return sys.modules.get("torch") is not None


def _load():
    """MKL's runtime library from the ``mkl`` distribution, set to run sequentially, or False; False
    too where PyTorch is loaded (above)."""
    if _torch_loaded():
        return False
    try:
        files = importlib.metadata.distribution("mkl").files or []
    except importlib.metadata.PackageNotFoundError:
        return False
    for path in files:
        if path.name.startswith("libmkl_rt.so"):
            try:
                library = ctypes.CDLL(str(path.locate()))
                if library.MKL_Set_Interface_Layer(_LP64) != _LP64:     # 32-bit sizes, whatever the environment
                    return False                                    # says (MKL_INTERFACE_LAYER=ILP64)
                library.MKL_Set_Threading_Layer(_SEQUENTIAL)   # before its first product
                library.mkl_set_xerbla(_REJECTED)               # a rejected argument: noted, not printed
            except (OSError, AttributeError):
                return False
            for name in ("cblas_sgemm_batch", "cblas_dgemm_batch"):      # every argument an array or a count
                function = getattr(library, name)
                function.restype = None
                function.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 13 + [ctypes.c_int, ctypes.c_void_p]
            for name, scalar in (("cblas_sgemm_batch_strided", ctypes.c_float),
                                 ("cblas_dgemm_batch_strided", ctypes.c_double)):   # the same, each matrix
                function = getattr(library, name)                                   # a constant stride on
                function.restype = None
                integer, pointer = ctypes.c_int, ctypes.c_void_p
                function.argtypes = ([integer] * 6 + [scalar, pointer, integer, integer, pointer, integer, integer,
                                                      scalar, pointer, integer, integer, integer])
            return library
    return False


def torch_arrived(stacklevel=2):
    """Warn, once, if torch is loaded now and MKL was loaded here before it: each product does this,
    and so do the package's own ``import torch`` (export, convert), where it happens."""
    if _library and not _warned and _torch_loaded():
        with _lock:
            if _warned:
                return
            _warned.append(True)
        warnings.warn(_TORCH_AFTER, RuntimeWarning, stacklevel=stacklevel + 1)


def library():
    """The loaded MKL runtime (a ``ctypes.CDLL``), loading it on first use; None where it is not
    installed, or PyTorch was loaded first."""
    global _library
    if _library is None:
        with _lock:
            if _library is None:
                _library = _load()
    return _library or None


def owns(path):
    """Whether the shared library at ``path`` is the MKL loaded here (``parallel.tile_threads`` leaves it out)."""
    return bool(_library) and path is not None and os.path.realpath(path) == os.path.realpath(_library._name)


def active():
    """Whether MKL runs the host products now: ``enabled``, installed and loaded."""
    return enabled and is_available()


def engine():
    """Which library runs the conv kernels' products now, in words (``minitorch-seg doctor``)."""
    if active():
        version = importlib.metadata.version("mkl")
        beside = "; torch was imported after it, see the warning" if _torch_loaded() else ""
        return f"MKL {version} (sequential; MINITORCH_SEG_MKL=0 turns it off{beside})"
    if not _installed():
        reason = "not installed"
    elif not enabled:
        reason = "off" + ("" if _intel() else ": not an Intel CPU")
    else:
        reason = "not loaded: PyTorch is loaded in this process" if _torch_loaded() else "failed to load"
    small = ("; products cut for OpenBLAS's small-matrix kernels, MINITORCH_SEG_SMALL_PRODUCTS=0 turns it off"
             if small_products.enabled and small_products.available() else "")
    return f"NumPy's BLAS (MKL {reason}{small})"


def _installed():
    try:
        return importlib.metadata.distribution("mkl") is not None
    except importlib.metadata.PackageNotFoundError:
        return False


def is_available():
    """Whether MKL is installed and loads (as ``torch.backends.mkl.is_available()``)."""
    return library() is not None


def _matrix(x):
    """(transpose flag, leading dimension, batch stride) of the matrices of x (..., rows, cols), in
    elements, as row-major BLAS reads them; None where BLAS cannot read them in place."""
    item, (rows, cols) = x.itemsize, x.shape[-2:]
    strides = x.strides if x.ndim == 3 else (0,) + x.strides
    if any(s < 0 or s % item for s in strides):
        return None
    batch, across, along = (s // item for s in strides)
    if along == 1 or cols == 1:                      # element (i, j) at i*ld + j
        ld = across if rows > 1 else cols
        if ld >= cols:
            return _NO_TRANS, ld, batch
    if across == 1 or rows == 1:                     # element (i, j) at j*ld + i: the transpose, row-major
        ld = along if cols > 1 else rows
        if ld >= rows:
            return _TRANS, ld, batch
    return None


def matmul(a, b, out=None, accumulate=False):
    """``a @ b`` into ``out`` (or a new array), through MKL where it takes them (module docstring),
    else through the array module's ``matmul``. a (M, K) or (R, M, K); b (K, N) or (R, K, N); axes
    of size 1 before those (one sample's tile) are no obstacle. With ``accumulate``, ``out += a @ b``
    (MKL's beta = 1: no temporary)."""
    if accumulate and out is None:
        raise ValueError("gemm.matmul: accumulate=True adds into out, which is missing.")
    plan = _cached_plan(a, b, out) if enabled else None
    if plan is None:                       # NumPy's (or CuPy's) matmul, in small parts where that pays
        if accumulate:
            out += _array_matmul(a, b)
            return out
        return _array_matmul(a, b, out)
    if plan.via_copy or (out is not None and (numpy.may_share_memory(out, a) or numpy.may_share_memory(out, b))):
        # out's matrices overlap, have no unit stride, or lie in a's or b's memory (which MKL would read
        # after writing it): through a new array, as NumPy does
        if accumulate:
            out += matmul(a, b)
        else:
            out[...] = matmul(a, b)
        return out
    result = out if out is not None else numpy.empty(plan.shape, a.dtype)
    torch_arrived(stacklevel=3)
    _rejected.value = False
    plan.run(_address(a), _address(b), _address(result), accumulate)
    if _rejected.value:                        # a layout _plan let through and MKL did not take: a bug here
        raise RuntimeError(f"gemm.matmul: MKL rejected the product of {a.shape} by {b.shape} (strides "
                           f"{a.strides}, {b.strides}); set minitorch_seg.gemm.enabled = False to go on without it.")
    return result


def _array_matmul(a, b, out=None):
    """The array module's ``matmul``, through OpenBLAS's small-matrix kernels where they take the product
    cut in parts (``small_products``)."""
    result = small_products.matmul(a, b, out)
    return get_array_module(a, b).matmul(a, b, out=out) if result is None else result


# Plans by the operands' layouts (shapes, strides, dtypes; out's writeability), so that the conv tiles'
# products (about 210 a U-Net step) skip the checks: inside a tile, after MKL has filled the caches, the
# Python of a product ran about 4x slower than alone, 65 us of CPU a product, 14 ms a step (on the two
# threads of the 2-core Xeon); with the plans made once, 35 us and 7.5 ms.
_PLANS, _PLANS_MAX = {}, 512


def _cached_plan(a, b, out):
    """``_plan`` of these layouts, made once (the cache is emptied when full); None for arrays that are
    not plain host arrays."""
    if not (type(a) is type(b) is numpy.ndarray and (out is None or type(out) is numpy.ndarray)):
        return None
    key = (a.shape, a.strides, a.dtype, b.shape, b.strides, b.dtype,
           None if out is None else (out.shape, out.strides, out.dtype, out.flags.writeable))
    plan = _PLANS.get(key, False)
    if plan is False:
        plan = _plan(*(x if x is None else _without_unit_axes(x) for x in (a, b, out)))
        if plan is not None and out is None:           # numpy.matmul's shape, the unit axes too
            plan.shape = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + plan.shape[-2:]
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


class _Product:
    """How MKL runs the product of one set of layouts: ``run`` with the three arrays' addresses."""

    def __init__(self, dtype, sizes, a, b, c, shape, via_copy=False):
        (self.m, self.k, self.n, self.r), self.a, self.b, self.c = sizes, a, b, c
        self.shape, self.via_copy, single = shape, via_copy, dtype == numpy.float32
        if via_copy:
            return
        m, n, r = self.m, self.n, self.r
        if r == 1:                                      # one product: strides never used (nor checked by _plan)
            self.a, self.b, self.c = a[:2] + (0,), b[:2] + (0,), c[:2] + (c[1] * m,)
        self.strided = self.c[2] >= self.c[1] * m       # C's matrices apart: the strided call, no arrays to build
        if self.strided:
            self.call = _library.cblas_sgemm_batch_strided if single else _library.cblas_dgemm_batch_strided
            return
        # interleaved (y's rows): the group call takes each matrix's address from an array, and every
        # size as a pointer into another (``_fields``), kept here with the plan
        self.call = _library.cblas_sgemm_batch if single else _library.cblas_dgemm_batch
        item = numpy.dtype(dtype).itemsize
        self.offsets = numpy.arange(r, dtype=numpy.uint64) * numpy.array(
            [self.a[2] * item, self.b[2] * item, self.c[2] * item], dtype=numpy.uint64)[:, None]   # (3, R)
        self.sizes, self.pointers = _fields(numpy.int32, self.a[0], self.b[0], m, n, self.k, self.a[1],
                                            self.b[1], self.c[1], r)
        self.scalars = [_fields(dtype, 1, beta) for beta in (0, 1)]

    def run(self, a, b, c, accumulate):
        (ta, lda, sa), (tb, ldb, sb), (_, ldc, sc) = self.a, self.b, self.c
        if self.strided:                                # the i-th product at i * stride
            self.call(_ROW_MAJOR, ta, tb, self.m, self.n, self.k, 1.0, a, lda, sa, b, ldb, sb,
                      float(accumulate), c, ldc, sc, self.r)
            return
        starts = self.offsets + numpy.array([a, b, c], dtype=numpy.uint64)[:, None]          # (3, R) addresses
        first, row = _address(starts), self.r * 8
        p_ta, p_tb, p_m, p_n, p_k, p_lda, p_ldb, p_ldc, p_r = self.pointers
        _, (p_alpha, p_beta) = self.scalars[int(accumulate)]
        self.call(_ROW_MAJOR, p_ta, p_tb, p_m, p_n, p_k, p_alpha, first, p_lda, first + row, p_ldb,
                  p_beta, first + 2 * row, p_ldc, 1, p_r)                   # one group of r products


def _address(x):
    """Where x's first element is in memory (``x.ctypes.data``, without building its ctypes object)."""
    return x.__array_interface__["data"][0]


def _fields(dtype, *values):
    """An array of ``values`` and the address of each: MKL's batched call takes every argument of a
    group of products as a pointer into such an array (which the caller keeps alive across the call)."""
    array = numpy.array(values, dtype=dtype)
    start = _address(array)
    return array, [start + i * array.itemsize for i in range(len(values))]


def _without_unit_axes(x):
    """x without the axes of size 1 before its last three (a view), or x itself if there are other axes."""
    return x.reshape(x.shape[-3:]) if x.ndim > 3 and all(size == 1 for size in x.shape[:-3]) else x


def _plan(a, b, out):
    """How MKL runs a @ b into out (a ``_Product``; its ``via_copy`` where MKL cannot write out in place),
    or None where the array module's matmul is to run it. a, b and out without their unit axes."""
    if not (a.dtype == b.dtype and a.dtype in (numpy.float32, numpy.float64)
            and 2 <= a.ndim <= 3 and 2 <= b.ndim <= 3 and a.shape[-1] == b.shape[-2]):
        return None
    (m, k), n = a.shape[-2:], b.shape[-1]
    r = max(x.shape[0] if x.ndim == 3 else 1 for x in (a, b))
    if any(x.ndim == 3 and x.shape[0] != r for x in (a, b)) or min(m, k, n) < 1:
        return None                                                    # numpy's broadcasting, or an empty product
    if out is not None and (out.shape != ((r, m, n) if 3 in (a.ndim, b.ndim) else (m, n)) or out.dtype != a.dtype
                            or not out.flags.writeable):
        return None                                                    # numpy's error, then
    ma, mb = _matrix(a), _matrix(b)
    if ma is None or mb is None or max(m, k, n, r, ma[1], mb[1], (r - 1) * ma[2], (r - 1) * mb[2]) > _INT_MAX \
            or library() is None:
        return None                                     # MKL's 32-bit sizes, and offsets i * stride within them
    if out is None and r * m * n > _INT_MAX:
        return None
    shape = (r, m, n) if 3 in (a.ndim, b.ndim) else (m, n)            # the result's, without unit axes
    mc = _writable(out, m, n, r) if out is not None else (_NO_TRANS, n, m * n)
    return _Product(a.dtype, (m, k, n, r), ma, mb, mc, shape, via_copy=mc is None)


def _writable(out, m, n, r):
    """out's ``_matrix`` where MKL can write its r matrices (m, n) in place: row-major, none overlapping
    another (one after the other, or rows interleaved as y's rows are); else None. (Whether out lies
    in a's or b's memory, which MKL would read after writing it, depends on where the arrays are, and
    ``matmul`` asks that on each call.)"""
    layout = _matrix(out)
    if layout is None or layout[0] != _NO_TRANS or max(r * layout[2], layout[1] * m) > _INT_MAX:
        return None
    _, ld, step = layout
    apart = r == 1 or step >= ld * (m - 1) + n or (n <= step and (r - 1) * step + n <= ld)
    return layout if apart else None
