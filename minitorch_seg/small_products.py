"""OpenBLAS's small-matrix kernels: a product cut into the parts they take (``matmul``).

OpenBLAS multiplies two matrices the classic way: it first copies ("packs") panels of both into
buffers laid out for its inner kernel, then runs that kernel over the buffers. With its AVX-512
kernels (the core it names ``SkylakeX``, which it runs on AVX-512 Xeons and on Zen 4 and Zen 5
EPYCs) it has a second way, for small products: kernels that read the operands where they lie,
with nothing packed. ``cblas_sgemm`` takes it where (``sgemm_small_kernel_permit_skylakex.c``)

- M*N*K <= 100^3 (``PRODUCT``), the product's multiply-adds, and
- where B is read transposed (row-major ``a @ b.T``, a weight gradient's product): M*N <= 1200
  (``TRANSPOSED_CELLS``) and K >= 32 (``TRANSPOSED_MIN_DEPTH``).

(A row-major call runs as the column-major product of the transposes, B^T A^T: row-major B
transposed is the column-major A transposed, the permit's "TN" case.)

Most of the conv kernels' per-row products are a little over that size: the input gradient of
a 32 -> 16-channel conv at 128x256 (MEC's, one output row a product) multiplies (32, 144) by
(144, 256), 1.18 million multiply-adds. Its halves, (16, 144) by (144, 256), are under it. On
one core of a 2-core Zen 4 EPYC (2026-12-04), batches of 8 products as the tiles run them, the
two ways taking turns, GFLOP/s in up to three series (the VM ran at different speeds;
``benchmarks/results/2026-12-04-zen4-small-products.md``):

    (M, K, N)            whole      in parts
    (32, 144, 256)       76-82      2 of (16, 144, 256)      95-107
    (64, 288, 128)       82-86      4 of (16, 288, 128)      88-98
    (64, 384, 130)       85-93      4 of (16, 384, 130)      93-110
    (144, 256, 16)^T     55-71      2 of (72, 256, 16)^T     73-101
    (144, 256, 32)^T     66-78      4 of (36, 256, 32)^T     79-103

(^T: B read transposed.) So ``matmul`` cuts a product's M and N axes into equal parts that the
small kernels take: views of the operands and of the result, no copy, and each result value still
one dot product over all of K; NumPy's matmul then loops over the parts. Of the cuts with the
fewest parts it takes the one with the widest N part (the longest rows of the result), but for a
transposed B the tallest M part; measured, the other orders were as fast or slower.

The same bits. The packed kernels add each dot product in runs along K of at most 448 terms
(OpenBLAS's SGEMM_Q for these cores, ``DEPTH``; ``runs``), each run into the result in turn; the
small NN kernel adds all of its K in one run, in the same order. So up to 448 the parts give
bitwise the whole product's values. Beyond it one run would round more ((128, 1152) by (1152,
128), float32 against float64: 1.1e-6 of the largest value against 4.9e-7), so the product goes
run by run, as the packed kernels go: each run's product in parts, added into the result in
order. That gives their bits again (checked for K from 449 to 4608), at the price of one add of
the result for each run after the first: (64, 576) by (576, 128), 94 -> 110 GFLOP/s. With B
transposed the small kernel runs all of K at once and rounds less than the packed one (1.0e-7
to 2.3e-7 of the largest value against 4.1e-7 to 5.8e-7, K from 128 to 2048): other bits,
closer to float64's.

A product with B transposed and few result cells can be too deep for any cut: a 1x1 conv head's
weight gradient, 19 classes by 16 channels over a sample's 32768 pixels, has 10 million multiply-
adds in 304 cells. The packed kernels ran it at 31 GFLOP/s. So where one run along K has no cut,
``depth_runs`` takes K in the fewest near-equal runs that cuts take, added in order, none under
``SHALLOWEST_RUN`` deep: (19, 32768) by (32768, 16) in 10 runs, 74 GFLOP/s; (64, 8192) by (8192,
32), the U-Net's first upsampling's weight gradient, in 3 runs of 8 parts, 65 -> 76; (32, 8192)
by (8192, 64) 44 -> 71. Runs of 512 or 682 were as fast or slower than the packed kernels on
(256, 1024) by (1024, 128) and (256, 2048) by (2048, 128) (0.8-1.1x): the line is at 1024.

(All of this on one thread, as the tiles run BLAS: with two, OpenBLAS splits a whole product
between them in its own way, and its bits change with the thread count.)

Where no cut applies it returns None and the product runs whole: the parts would be over
``MOST_PARTS``, or thinner than ``THINNEST`` rows or columns, or the product is not float32 on
OpenBLAS's AVX-512 kernels (other cores have no small kernels: packed, smaller products only
run slower; ``OPENBLAS_CORETYPE=Haswell`` is one). And only inside ``parallel.tile_threads()``,
where BLAS runs on one thread and the tiles on the host threads: outside it OpenBLAS runs
products of this size on all its threads, and the small kernels run on one.
"""
import functools
import itertools
import os

import numpy

PRODUCT, TRANSPOSED_CELLS, TRANSPOSED_MIN_DEPTH = 100 ** 3, 1200, 32     # OpenBLAS's permit, above
MOST_PARTS, THINNEST, MOST_RUNS, SHALLOWEST_RUN = 32, 16, 64, 1024
DEPTH, UNROLL = 448, 16                   # the packed kernels' runs along K (``runs``; module docstring)
CORES = ("SkylakeX",)                     # OpenBLAS's cores with the small kernels that were measured here

enabled = os.environ.get("MINITORCH_SEG_SMALL_PRODUCTS", "1") != "0"
_found = []                               # [whether NumPy's BLAS is OpenBLAS on one of CORES], once looked up
_parallel = []                            # [the parallel module], once imported


def available():
    """Whether NumPy's BLAS is an OpenBLAS running one of ``CORES`` (looked up once, by threadpoolctl)."""
    if not _found:
        _found.append(_openblas_core() in CORES)
    return _found[0]


def _blas_on_one_thread():
    """Inside ``parallel.tile_threads()``: BLAS on one thread, the tiles on the host threads. (Looked up
    here, once: parallel imports gemm, which imports this module.)"""
    if not _parallel:
        from . import parallel
        _parallel.append(parallel)
    return _parallel[0].host_threads() > 1


def _openblas_core():
    """The core NumPy's OpenBLAS runs (its ``openblas_get_corename``), or None where NumPy's BLAS is another."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a dependency
        return None
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    cores = {info.get("architecture") for info in blas}
    if len(cores) != 1 or any(info.get("internal_api") != "openblas" for info in blas):
        return None                       # another BLAS, or OpenBLASes on different cores
    return cores.pop()


@functools.lru_cache(maxsize=1024)
def parts(m, k, n, transposed):
    """(M parts, N parts) that cut an (m, k) by (k, n) product into ones the small kernels take, the
    fewest such; (1, 1) where it is small already; None where no cut pays (module docstring).
    ``transposed``: B read transposed.

    >>> parts(32, 144, 256, False), parts(144, 256, 16, True), parts(128, 1152, 512, False)
    ((2, 1), (2, 1), None)
    """
    def small(rows, cols):
        if transposed and (rows * cols > TRANSPOSED_CELLS or k < TRANSPOSED_MIN_DEPTH):
            return False
        return rows * cols * k <= PRODUCT
    if small(m, n):
        return 1, 1
    cuts = [(p * q, -(m // p if transposed else n // q), (p, q))
            for p in _divisors(m) if p == 1 or m // p >= THINNEST
            for q in _divisors(n) if q == 1 or n // q >= THINNEST
            if p * q <= MOST_PARTS and small(m // p, n // q)]
    return min(cuts)[2] if cuts else None


def runs(k):
    """The packed kernels' runs along K, [(start, stop), ...]: OpenBLAS's level-3 driver takes ``DEPTH`` at
    a time while twice that is left, then what is left in one run, or in two if over ``DEPTH``, the
    first half rounded up to a multiple of ``UNROLL``.

    >>> runs(448), runs(576), runs(1152)
    ([(0, 448)], [(0, 288), (288, 576)], [(0, 448), (448, 800), (800, 1152)])
    """
    spans, start = [], 0
    while start < k:
        size = k - start
        if size >= 2 * DEPTH:
            size = DEPTH
        elif size > DEPTH:
            size = -(-(size // 2) // UNROLL) * UNROLL
        spans.append((start, start + size))
        start += size
    return spans


@functools.lru_cache(maxsize=1024)
def plan(m, k, n, transposed):
    """The product as the small kernels run it: [(start, stop, cut), ...], a run along K and its cut
    (``parts``) each, their sums added in order; None where it runs whole (the product is small
    already, or a run has no cut). B as it lies: the packed kernels' own runs (``runs``), so the
    sums are theirs, bit for bit; B transposed: all of K, or the fewest runs that cuts take
    (``depth_runs``).

    >>> plan(64, 576, 128, False), plan(144, 256, 16, True), plan(16, 144, 256, False)
    ([(0, 288, (4, 1)), (288, 576, (4, 1))], [(0, 256, (2, 1))], None)
    """
    spans = depth_runs(m, k, n) if transposed else runs(k)
    if spans is None or parts(m, k, n, transposed) == (1, 1):
        return None
    steps = [(start, stop, parts(m, stop - start, n, transposed)) for start, stop in spans]
    return None if any(cut is None for _, _, cut in steps) else steps


def depth_runs(m, k, n):
    """With B read transposed, the runs along K, [(start, stop), ...]: all of K where a cut takes it
    (``parts``), else the fewest near-equal runs, at most ``MOST_RUNS``, that cuts take; None where none.

    >>> depth_runs(144, 256, 16), depth_runs(19, 32768, 16)[:2], depth_runs(1152, 512, 128)
    ([(0, 256)], [(0, 3276), (3276, 6553)], None)
    """
    for count in range(1, MOST_RUNS + 1):
        longest = -(-k // count)
        if count > 1 and k // count < SHALLOWEST_RUN:
            return None
        if parts(m, longest, n, True) is not None:
            return list(itertools.pairwise(i * k // count for i in range(count + 1)))
    return None


def _divisors(size):
    """The divisors of size, ascending."""
    low = [d for d in range(1, int(size ** 0.5) + 1) if size % d == 0]
    return sorted(set(low + [size // d for d in low]))


def matmul(a, b, out=None):
    """``numpy.matmul(a, b, out=out)`` in parts the small kernels take, and the result; None, having
    computed nothing, where the product is better run whole (``plan``). a (..., M, K), b (..., K, N)
    host arrays, out (..., M, N) or None; their matrices as NumPy's matmul hands them to BLAS."""
    if not (enabled and type(a) is type(b) is numpy.ndarray and a.dtype == b.dtype == numpy.float32
            and a.ndim >= 2 and b.ndim >= 2 and _blas_on_one_thread() and available()):
        return None
    (m, k), n, item = a.shape[-2:], b.shape[-1], a.itemsize
    a_rows, b_rows = a.strides[-1] == item or k == 1, b.strides[-1] == item or n == 1
    if b.shape[-2] != k or not (a_rows and (b_rows or b.strides[-2] == item)):
        return None                         # numpy's error; a read transposed, or a layout NumPy copies first
    steps = plan(m, k, n, not b_rows)
    if steps is None:
        return None
    try:
        shape = _batch(a.shape[:-2], b.shape[:-2]) + (m, n)
    except ValueError:
        return None                         # numpy's error
    if out is None:
        out = numpy.empty(shape, dtype=a.dtype)
    elif not (type(out) is numpy.ndarray and out.shape == shape and out.dtype == a.dtype and out.flags.writeable
              and out.strides[-1] == item and not numpy.may_share_memory(out, a)
              and not numpy.may_share_memory(out, b)):
        return None                         # as numpy.matmul takes it (an error, a copy, a tuple)
    (start, stop, cut), *rest = steps
    _cut(a[..., start:stop], b[..., start:stop, :], out, cut)
    partial = numpy.empty(shape, dtype=a.dtype) if rest else None
    for start, stop, cut in rest:                      # the packed kernels' order: run by run into out
        out += _cut(a[..., start:stop], b[..., start:stop, :], partial, cut)
    return out


def _batch(first, second):
    """``numpy.broadcast_shapes(first, second)``, without its 4 us in the usual cases: one matrix shared
    by a batch, or two batches alike."""
    if not first or first == second:
        return second
    return first if not second else numpy.broadcast_shapes(first, second)


def _cut(a, b, out, cut):
    """out = a @ b in cut = (p, q) parts: M in p, N in q; views of all three, one NumPy matmul over the parts."""
    (p, q), (m, k), n = cut, a.shape[-2:], b.shape[-1]
    a_parts = a.reshape(a.shape[:-2] + (p, 1, m // p, k))                             # (..., p, 1, M/p, K)
    b_parts = b.reshape(b.shape[:-2] + (1, k, q, n // q)).swapaxes(-3, -2)             # (..., 1, q, K, N/q)
    out_parts = out.reshape(out.shape[:-2] + (p, m // p, q, n // q)).swapaxes(-3, -2)  # (..., p, q, M/p, N/q)
    numpy.matmul(a_parts, b_parts, out=out_parts)
    return out
