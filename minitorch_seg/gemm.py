"""Host matrix products through Intel MKL where it is installed: ``gemm.matmul(a, b)`` is ``a @ b``.

NumPy's ``matmul`` runs OpenBLAS. At the convolutions' shapes (16-128 output channels, a few
hundred columns, one product per output row) OpenBLAS reached 74-131 GFLOP/s on one core of the
AVX-512 Xeon where MKL's batched ``cblas_sgemm`` reached 122-163, and with MEC's, the shifted
sum's and im2col's products through MKL the U-Net step took 22 ms less (259 against 280 ms, two
versions taking turns in one process; ``benchmarks/results/2026-12-03-xeon-mkl.md``). So the conv
kernels call ``matmul`` here, and it hands the product to MKL when:

- MKL is installed (``pip install "minitorch-seg[mkl]"``: the ``mkl`` wheel, Linux x86-64 only)
  and ``enabled`` (by default on Intel CPUs; it is unmeasured on AMD's, where OpenBLAS stays);
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
are the same products, summed in another order (float32 results differ in the last bits). MKL
runs sequentially: the tiles' own threads (``parallel.map_tiles``) are the parallelism, and the
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


def takes(xp, dtype):
    """Whether MKL runs the products of ``xp``'s arrays of ``dtype`` now: NumPy's float32 and float64,
    where it is ``active`` (asked in that order, so that no other product loads MKL). The conv
    kernels' dispatch rules ask, where the fastest algorithm depends on it."""
    return xp is numpy and numpy.dtype(dtype) in (numpy.float32, numpy.float64) and active()


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
    return f"NumPy's BLAS (MKL {reason})"


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
    arrays = {type(a), type(b), type(out)} <= {numpy.ndarray, type(None)}     # host arrays, no subclass
    squeezed = [x if x is None else _without_unit_axes(x) for x in (a, b, out)] if arrays else None
    plan = _plan(*squeezed) if arrays else None
    if plan is None:
        if accumulate:
            out += get_array_module(a, b).matmul(a, b)
            return out
        return get_array_module(a, b).matmul(a, b, out=out)
    (m, k, n, r), (ta, lda, sa), (tb, ldb, sb), (tc, ldc, sc) = plan
    if tc is None:                             # out's matrices overlap, or have no unit stride: via a new array
        if accumulate:
            out += matmul(a, b)
        else:
            out[...] = matmul(a, b)
        return out
    shape = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (m, n)     # numpy.matmul's
    a, b = squeezed[:2]
    result = squeezed[2] if out is not None else numpy.empty((r, m, n), a.dtype)
    torch_arrived(stacklevel=3)
    _rejected.value = False
    if r == 1:                                      # one product: strides never used (nor checked by _plan)
        sa, sb, sc = 0, 0, ldc * m
    if sc >= ldc * m:                               # C's matrices apart: the strided call, no arrays to build
        product = _library.cblas_sgemm_batch_strided if a.dtype == numpy.float32 else _library.cblas_dgemm_batch_strided
        product(_ROW_MAJOR, ta, tb, m, n, k, 1.0, _address(a), lda, sa, _address(b), ldb, sb,
                float(accumulate), _address(result), ldc, sc, r)              # the i-th product at i * stride
    else:                                           # interleaved (y's rows): the group call takes each address
        steps = numpy.arange(r, dtype=numpy.uint64)
        starts = [_address(x) + steps * numpy.uint64(stride * a.itemsize)
                  for x, stride in ((a, sa), (b, sb), (result, sc))]
        sizes, pointers = _fields(numpy.int32, ta, tb, m, n, k, lda, ldb, ldc, r)
        p_ta, p_tb, p_m, p_n, p_k, p_lda, p_ldb, p_ldc, p_r = pointers
        scalars, (p_alpha, p_beta) = _fields(a.dtype, 1, int(accumulate))
        product = _library.cblas_sgemm_batch if a.dtype == numpy.float32 else _library.cblas_dgemm_batch
        product(_ROW_MAJOR, p_ta, p_tb, p_m, p_n, p_k, p_alpha, _address(starts[0]), p_lda, _address(starts[1]), p_ldb,
                p_beta, _address(starts[2]), p_ldc, 1, p_r)                   # one group of r products
    if _rejected.value:                        # a layout _plan let through and MKL did not take: a bug here
        raise RuntimeError(f"gemm.matmul: MKL rejected the product of {a.shape} by {b.shape} (strides "
                           f"{a.strides}, {b.strides}); set minitorch_seg.gemm.enabled = False to go on without it.")
    return out if out is not None else result.reshape(shape)


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
    """((M, K, N, R), a's, b's and the result's ``_matrix`` (``_writable``'s (None,) * 3 where MKL cannot
    write out in place)), or None where the array module's matmul is to run the product."""
    if not (enabled and a.dtype == b.dtype and a.dtype in (numpy.float32, numpy.float64)
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
    return (m, k, n, r), ma, mb, (_writable(out, a, b, m, n, r) if out is not None else (_NO_TRANS, n, m * n))


def _writable(out, a, b, m, n, r):
    """out's ``_matrix`` where MKL can write its r matrices (m, n) in place: row-major, none overlapping
    another (one after the other, or rows interleaved as y's rows are), and not in a's or b's memory,
    which MKL would read after writing it (NumPy copies there); else (None,) * 3."""
    layout = _matrix(out)
    if (layout is None or layout[0] != _NO_TRANS or max(r * layout[2], layout[1] * m) > _INT_MAX
            or numpy.may_share_memory(out, a) or numpy.may_share_memory(out, b)):
        return None, None, None
    _, ld, step = layout
    apart = r == 1 or step >= ld * (m - 1) + n or (n <= step and (r - 1) * step + n <= ld)
    return layout if apart else (None, None, None)
