"""Tiles: how the kernels cut their work (``tiles``), and the host threads that run them.

A kernel that goes through its work in tiles of a few MiB keeps its buffers in the cache and
never builds a whole big temporary (conv's kh*kw-fold im2col columns). ``tiles`` plans them, one
planner for every kernel; each kernel's ``Tiling`` below says how large and why, as measured.

Then the threads. On the host, a NumPy im2col copy runs on one core while the GEMM after it uses
every core, and a GEMM as skinny as a 16- or 32-channel conv's keeps BLAS's second thread
waiting. Giving each of our threads whole tiles (the copy *and* its GEMM) with BLAS on one thread
keeps every core busy through both; NumPy releases the GIL in copies and in BLAS calls, so Python
threads run them truly in parallel.

It has to be all or nothing. BLAS's idle worker threads spin for a while after each call, so a
multi-threaded GEMM followed by our threads leaves three busy threads on two cores, and the
U-Net step went from 430 to 650 ms. Hence a mode, switched on around a whole job:

    with parallel.tile_threads():       # BLAS on one thread; conv tiles over BLAS's former count
        metrics = evaluate(model, loader)

A ``Trainer`` runs in it (its scope, with its backend and generator), as do ``minitorch-seg``'s
evaluate, predict and export (``cli.main`` enters it once for them) and the benchmarks. On 2
cores (``benchmarks/README.md``) a 3x3 conv's forward + backward at (4, 64, 128, 256) went from 469
ms to 247-388 ms, at 128 channels from 1469 to 915-1175 ms, and the U-Net step from 423-510 to
403-472 ms (ranges over runs on a noisy machine); the bilinear upsampling's plane tiles use the
threads too. Later the passes bound by memory went on them as well (batch norm's channels,
ReLU's runs of values, max pool's planes): run by the caller alone, they left the second core
idle, and even split in just two halves each took 13-34 ms off the step
(``benchmarks/results/2026-12-02-host-passes.md``). Where the pool has a thread for each core, the
threads are pinned, each to a core of its own (``_pin``), so that a tile finds in that core's cache
what the tile before it left there; on Linux an idle-priority process then keeps each of those
cores awake between hand-offs (``awake.py``). Outside the mode, ``map_tiles`` runs the tiles one after
another in the caller's thread and BLAS uses its own threads, as NumPy always does. On CuPy the
GPU parallelises each kernel, so the tiles run in turn there too.

>>> import numpy
>>> [(n.start, c.start, c.stop) for n, c in tiles(numpy, Tiling(bytes=100), (2, 5), item_bytes=40)]
[(0, 0, 2), (0, 2, 4), (0, 4, 5), (1, 0, 2), (1, 2, 4), (1, 4, 5)]
>>> tiles(numpy, Tiling(bytes=60, host_min=2), (7,), item_bytes=10)      # 7 rows: at least 2 tiles
[(slice(0, 4, None),), (slice(4, 7, None),)]
>>> tiles(numpy, Tiling(bytes=1000, host_min=2), (7,), item_bytes=10)    # but not under 500 bytes each
[(slice(0, 7, None),)]
>>> map_tiles(numpy, lambda tile: tile * 10, [0, 1, 2])
[0, 10, 20]
"""
import contextlib
import itertools
import os
import threading
import time
from typing import NamedTuple

from . import awake, gemm
from .backend import get_array_module, module_name


# ---- planning the tiles -------------------------------------------------------------------------
class Tiling(NamedTuple):
    """How one kernel cuts its work: tiles of about ``bytes``; on the host at least ``host_min`` of
    them where each still holds ``split_bytes`` or more (0: half of ``bytes``); on CuPy whole
    arrays, unless ``on_gpu`` (tiles that bound memory rather than fit a cache)."""

    bytes: int
    host_min: int = 1
    on_gpu: bool = False
    split_bytes: int = 0


# conv: each tile's im2col columns, of a few output rows. Large enough for a GEMM near BLAS's peak,
# small enough that the whole kh*kw-fold column buffer (75 MB for a 16-channel conv at 128x256) is
# never built, on a GPU either. Measured on the U-Net step (2 cores): 1 MiB tiles were slower than
# 4 MiB, 16 MiB too. At least two tiles on the host, so that the small maps of the deep levels keep
# two cores busy too (427-431 ms with 2, 447-494 ms with 4); not below half a tile each, where
# handing a tile to a second thread costs more than it gives (a 2x2, stride-2 transposed conv of
# 4x128x16x32, forward and backward: 5.2 ms in one tile, 5.9 ms in two). On a 2-core AVX-512 Xeon
# (2 MiB L2; the correlation's tiles each one sample's rows), 8, 16 and 32 MiB tiles were within
# noise of 4 MiB on the step (benchmarks/results/2026-12-02-xeon-shared-columns.md). A constant,
# not the thread count: where the tiles split decides how the weight gradient's partial sums are
# added, so the same run gives the same bits on any number of threads.
CONV_TILES = Tiling(1 << 22, host_min=2, on_gpu=True)

# the transposed conv whose copies tile the output (``conv._stamp_disjoint``, the U-Net's 2x2, stride-2
# upsampling): as CONV_TILES, but two tiles from 1 MiB of columns, not 4. Its tiles write disjoint
# rows, each a GEMM and kw strided copies, and the deepest one (4x128x16x32 -> 64 channels, 2 MiB)
# ran in one tile on the caller's thread. On a 2-core Zen 4 EPYC (2026-12-04), the two taking turns,
# 30 rounds: its forward 1.77 -> 1.11 ms in two tiles (forward + backward 3.76 -> 3.10); at the
# training job's size 128 -> 64 at 8x8x16 and 64 -> 32 at 8x16x32, forward + backward, 0.22 and
# 0.40 ms faster (of 2.2, 2.3); the others, already in tiles, level. (CONV_TILES' measurement
# above, 5.2 ms in one tile against 5.9 in two, was of 2026-12-02, through a ThreadPoolExecutor.)
STAMP_TILES = Tiling(1 << 22, host_min=2, on_gpu=True, split_bytes=1 << 19)
# conv's shifted sum (``conv._correlate_shifted``): each tile's GEMM output Z, kh*kw planes of a few
# output rows of one sample. Measured on the 2-core AVX-512 Xeon, six U-Net forward shapes together:
# 48.0 ms in 2 MiB tiles, 38.9 in 4, 36.7 in 8, 34.3 in 16, 35.6 in 32.
SHIFTED_TILES = Tiling(1 << 24, host_min=2, on_gpu=True)

# max pool: a few input planes, so that the kh*kw passes over a tile hit the cache (CPU time of a
# 2x2 pool of 4x64x128x256 float32 with switches: 15 ms in tiles of 0.5 MiB, 30 ms in whole-array
# passes); two or more only from arrays of 4 MiB. A tile makes some 26 short NumPy calls, and two
# threads making short calls wait on each other for the GIL: on the 2-core Xeon the U-Net's three
# pools forward took 7.3 ms in 0.5 MiB tiles on two threads, 5.3 on one, and 5.2 in 2 MiB tiles (one
# tile below 4 MiB), which took 6.1 ms off the step (``bench_ab.py``, 30 rounds).
POOL_TILES = Tiling(1 << 21, host_min=2, split_bytes=1 << 21)

# passes bound by memory over large activations (batch norm's channels, ReLU's runs of values):
# tiles of at most 4 MiB, at least two from arrays of 4 MiB (the U-Net's two largest levels), one
# tile below. Measured on the U-Net step (2 cores, interleaved in one process, medians of 16-24 paired
# differences): batch norm took 26-29 ms less in 4 MiB tiles than in whole arrays, 8-30 ms less
# in 2 MiB, 7-14 ms more or less in 0.5-1 MiB (each tile's handful of calls costs too); ReLU
# 20-34 ms less in 4 MiB runs. Alone, on the AVX-512 Xeon, ReLU's forward and backward of 1-2 MiB
# took 0.2 ms longer in two halves than whole: its two passes are shorter than the hand-out.
STREAM_TILES = Tiling(1 << 22, host_min=2)

# batch norm's channels: as STREAM_TILES, but in two halves down to arrays of 1 MiB. Its five
# passes a tile pay for the hand-out once its sums let go of the GIL (``norm.row_dots``): halves
# of 0.5 MiB or more took 4-6.5 ms off the step (24-30 rounds on the AVX-512 Xeon); 0.25 MiB, no more.
NORM_TILES = Tiling(1 << 22, host_min=2, split_bytes=1 << 19)

# upsample: a few planes of input and output, so that the transposed copies and the GEMMs'
# intermediate stay in the L2 cache (CPU time of a x2 bilinear forward + backward of 4x64x64x128
# float32 with one BLAS thread: 40 ms in tiles, 70 ms in whole-array passes).
UPSAMPLE_TILES = Tiling(1 << 21)


def tiles(xp, tiling, counts, item_bytes):
    """Index tuples covering the leading axes ``counts`` of an array in tiles of about ``tiling.bytes``.

    The last axis is cut into runs of whole items of ``item_bytes`` each (an output row's
    columns, a plane); each tile takes one index of every axis before it. On CuPy one tile holds
    everything unless ``tiling.on_gpu``: a GPU wants few large kernels, not many small ones.
    """
    on_gpu = module_name(xp) == "cupy"
    if on_gpu and not tiling.on_gpu:
        return [tuple(slice(None) for _ in counts)]
    *outer, count = counts
    fewest = 1 if on_gpu else tiling.host_min
    if count * item_bytes < fewest * (tiling.split_bytes or tiling.bytes // 2):   # too little each: one thread
        fewest = 1
    run = max(1, min(-(-count // fewest), tiling.bytes // max(item_bytes, 1)))
    runs = [slice(start, min(start + run, count)) for start in range(0, count, run)]
    singles = [[slice(i, i + 1) for i in range(n)] for n in outer]
    return [index + (last,) for index in itertools.product(*singles) for last in runs]


# ---- running them on host threads ---------------------------------------------------------------
_POOL_NAME = "minitorch-seg-tiles"
_active_threads = 0      # our threads while tile_threads() is in effect, else 0


def _blas():
    """The threadpoolctl controller of the BLAS libraries loaded now, or None where there is none to
    control. Looked up at each call (1-4 ms, once per ``tile_threads()``), not kept: a library
    loaded since the last use of the mode (SciPy's own OpenBLAS, which ``special.erf`` imports) is
    put on one thread at the next. One first loaded inside the mode keeps its default till then."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a dependency, but the kernels work without it
        return None
    return ThreadpoolController().select(user_api="blas") or None


def host_threads():
    """How many threads ``map_tiles`` uses on the host now: 1 outside ``tile_threads()``."""
    return max(1, _active_threads)


def default_threads(blas=None):
    """The threads ``tile_threads()`` would use here: NumPy's BLAS's thread count now (not ``gemm``'s
    MKL, which always runs on one thread); None where no BLAS can be controlled. ``blas``: a
    controller just looked up (``_blas``), to save looking again."""
    blas = blas or _blas()
    counts = [lib.num_threads for lib in blas.lib_controllers if not gemm.owns(lib.filepath)] if blas else []
    return min(counts) if counts else None


def kept_awake():
    """What ``tile_threads()`` would do about idle cores here, in words (``minitorch-seg doctor``)."""
    threads = default_threads()
    if (threads or 1) < 2:
        return "no tile threads here (one BLAS thread, or no controllable BLAS)"
    return awake.describe(_pinned_cores(threads))


@contextlib.contextmanager
def tile_threads(threads=None):
    """Within: BLAS on one thread, and tiled kernels spread over ``threads`` host threads.

    ``threads`` defaults to BLAS's thread count on entry (the cores, unless OPENBLAS_NUM_THREADS
    or a threadpoolctl limit says fewer), so a limit set by the user is kept. Nested uses, one
    thread, or no controllable BLAS: nothing changes.
    """
    global _active_threads
    blas = None if _active_threads else _blas()
    if threads is None and blas is not None:
        threads = default_threads(blas)
    if blas is None or (threads or 1) < 2:
        yield
        return
    with blas.limit(limits=1, user_api="blas"), awake.cores_kept_awake(_pinned_cores(threads)):
        _active_threads = threads
        try:
            yield
        finally:
            _active_threads = 0


def map_runs(xp, work, size, item_bytes):
    """``work(run)`` for the contiguous runs (slices) that cover ``range(size)``, ``STREAM_TILES``
    each, on the host threads: an elementwise pass over flat arrays, a run at a time."""
    map_tiles(xp, lambda tile: work(tile[0]), tiles(xp, STREAM_TILES, (size,), item_bytes))


def map_leading(xp, work, array):
    """``work(tile)`` for runs of ``array``'s first axis (``STREAM_TILES`` each; a 0-d array is one
    tile, ``(...,)``) on the host threads: an elementwise pass over arrays of any strides."""
    runs = tiles(xp, STREAM_TILES, array.shape[:1], array[:1].nbytes) if array.ndim else [(Ellipsis,)]
    map_tiles(xp, work, runs)


def add_into(a, b):
    """a += b (one shape), in runs of the first axis on the host threads: where a tensor's gradients
    meet (the U-Net's skips: 1.7 -> 1.35 ms a step)."""
    xp = get_array_module(a)
    map_leading(xp, lambda tile: xp.add(a[tile], b[tile], out=a[tile]), a)
    return a


def map_tiles(xp, work, tiles):
    """``[work(tile) for tile in tiles]``, the tiles handed to the host threads as each one frees up.

    Handing out one tile at a time (rather than a fixed share per thread) keeps both cores busy
    when something else, such as the data loader's thread, slows one of them down. Each thread
    takes the next tile until none is left, and the caller waits once for all of them (``_Crew``).
    The results come back in tile order, so a sum of them does not depend on which thread
    computed which tile (the callers split tiles independently of the thread count, for the same
    reason). A tile that raises stops the hand-out, and the error reaches the caller once every
    thread is done. A call from inside a tile runs inline (a pool thread waiting on its own pool
    could deadlock), as does a call from another thread while the crew is busy.
    """
    threads = min(host_threads(), len(tiles)) if module_name(xp) != "cupy" else 1
    if threads < 2 or threading.current_thread().name.startswith(_POOL_NAME):
        return [work(tile) for tile in tiles]
    results, order, errors = [None] * len(tiles), iter(range(len(tiles))), []

    def take_tiles():
        for i in order:                                # next() on a shared iterator: one thread at a time
            if errors:
                return
            try:
                results[i] = work(tiles[i])
            except BaseException as error:     # noqa: B036 - handed to the caller below
                errors.append(error)
                return
    awake.beat()
    if not _crew(threads).run(take_tiles, threads, stop=lambda: errors.append(None)):
        return [work(tile) for tile in tiles]          # the crew is serving another thread's call
    error = next((e for e in errors if e is not None), None)
    if error is not None:
        raise error
    return results


def summed(parts):
    """The tiles' results (``map_tiles``' list) added up in tile order, into the first of them: arrays
    the tiles made and nothing else holds, such as the conv weight gradient's partial products. The
    same sums as ``sum(parts)``, bit for bit, without a new array for each part: at 8 partial
    products of 1152x128, 144 against 174 us; 0 to 0.19 ms less a conv at the training job's 16x32
    and 8x16 maps, forward + backward, in two series of 30 rounds on a 2-core Zen 4 EPYC.

    >>> import numpy
    >>> parts = [numpy.ones(2), numpy.ones(2)]
    >>> summed(parts).tolist(), parts[0] is summed(parts[:1])
    ([2.0, 2.0], True)
    """
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total


class _Crew:
    """Host threads that run one job together: ``run(job, k)`` starts ``job()`` on k of them and
    returns once all k have finished.

    Each thread waits on a lock of its own; the caller releases k of them and waits on its own
    lock, which the last thread to finish releases. It replaced a ``ThreadPoolExecutor``, whose
    futures, work queue and conditions took the GIL between and around the tiles: on the 2-core
    Xeon, ``map_tiles`` of two tiles of about 60 microseconds of NumPy each took 225 us through the
    executor and 155 through the crew (one after the other in the caller: 116), and the U-Net
    step 8 ms less (``benchmarks/results/2026-12-03-xeon-crew.md``). Two empty tiles still cost
    about 80 us either way: waking a thread that sleeps on the other core of this VM takes some
    50 us (on one core, a lock handed between two threads takes 5). One caller at a time: ``run``
    returns False, having started nothing, while another thread's job is running.
    """

    def __init__(self, threads):
        self.size, self._job, self._left, self._closed = threads, None, 0, False
        self._active = [False] * threads                               # thread k is inside a job
        self._go = [threading.Lock() for _ in range(threads)]          # held: thread k waits on it
        self._done, self._count, self._busy = threading.Lock(), threading.Lock(), threading.Lock()
        for lock in self._go + [self._done]:
            lock.acquire()
        numbers = itertools.count()
        try:
            for k in range(threads):
                threading.Thread(target=self._serve, args=(k, numbers), name=f"{_POOL_NAME}-{k}",
                                 daemon=True).start()
        except BaseException:                          # interrupted: the threads started so far end
            self._closed = True
            for lock in self._go:
                lock.release()
            raise

    def _serve(self, k, numbers):
        _pin(numbers, self.size)
        while True:
            self._go[k].acquire()
            if self._closed:
                return
            self._active[k] = True
            try:
                self._job()
            finally:
                self._active[k] = False
                with self._count:
                    self._left -= 1
                    last = self._left == 0
                if last:
                    self._done.release()

    def run(self, job, threads, stop):
        """job() on ``threads`` threads at once, then return True; False if busy or retired.

        An interrupt (a second Ctrl-C) anywhere in here retires the crew (``_retire``): ``stop()``
        asks the job to take no further tile, the call waits for the tiles running to end, so that
        none still writes the caller's arrays, and raises; the next call makes a new crew.
        """
        if not self._busy.acquire(blocking=False):
            return False
        try:
            if self._closed:
                return False
            self._job, self._left = job, threads
            for lock in self._go[:threads]:
                lock.release()
            self._done.acquire()
            self._job = None                           # what the job holds (its tiles' arrays) can go
            return True
        except BaseException:
            self._retire(stop)
            raise
        finally:
            self._busy.release()

    def _retire(self, stop):
        """After an interrupt, wherever it struck: no new crew call reaches this one, no further tile
        starts, the running ones end, and every thread exits (``_crew`` makes a new crew)."""
        stop()
        self._closed = True
        while any(self._active):                       # a tile running now ends; the job takes no more
            time.sleep(0.0005)
        for lock in self._go:                          # threads waiting for a job wake, see _closed, exit
            if lock.locked():
                lock.release()

    def close(self):
        """Let the threads end, once any job running now has finished (a larger crew replaces this one)."""
        with self._busy:
            self._closed = True
            for lock in self._go:
                lock.release()


_crew_now = None
_crew_lock = threading.Lock()


def _crew(threads):
    """The crew of at least ``threads`` threads, pinned (``_pin``), made or remade as needed."""
    global _crew_now
    with _crew_lock:
        if _crew_now is None or _crew_now.size < threads or _crew_now._closed:
            if _crew_now is not None and not _crew_now._closed:
                _crew_now.close()
            _crew_now = _Crew(threads)
        return _crew_now


def _forget_crew():
    """In a forked child the crew's threads do not exist: the next call makes a new crew."""
    global _crew_now, _crew_lock
    _crew_now, _crew_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_crew)


def _pinned_cores(threads):
    """The cores a pool of ``threads`` threads pins its threads to (``_pin``): all this process may
    use, where there is one for each thread; else none."""
    try:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    except OSError:
        return []
    return cores if len(cores) == threads else []


def _pin(numbers, threads):
    """Each pool thread, as it starts, on a core of its own, where the pool has one thread for each
    core this process may use: the k-th thread started on the k-th core. A thread that moves to
    another core finds that core's cache cold; on the 2-core Xeon, threads left to move took 14-18
    ms more per U-Net step than pinned ones (``benchmarks/results/2026-12-03-xeon-pinned.md``).
    With fewer threads than cores they stay free: pinned, every process's threads would crowd onto
    the same first cores. Only our threads are pinned, never the caller's (threads it starts would
    inherit the pin). Where the OS has no affinity call (macOS, Windows) or refuses it (a sandbox),
    they stay free too: an error here would break the pool, and every tiled op with it."""
    cores = _pinned_cores(threads)
    if cores and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cores[next(numbers)]})
        except OSError:
            pass
