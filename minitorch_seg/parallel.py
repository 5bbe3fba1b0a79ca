"""Host threads for tiled kernels: each thread runs whole tiles, copies and single-threaded GEMMs.

Why: on the host, a NumPy im2col copy runs on one core while the GEMM after it uses every core,
and a GEMM as skinny as a 16- or 32-channel conv's keeps BLAS's second thread waiting. Giving
each of our threads whole tiles (the copy *and* its GEMM) with BLAS on one thread keeps every
core busy through both; NumPy releases the GIL in copies and in BLAS calls, so Python threads
run them truly in parallel.

It has to be all or nothing. BLAS's idle worker threads spin for a while after each call, so a
multi-threaded GEMM followed by our threads leaves three busy threads on two cores, and the
U-Net step went from 430 to 650 ms. Hence a mode, switched on around a whole job:

    with parallel.tile_threads():       # BLAS on one thread; conv tiles over BLAS's former count
        trainer.run()

``minitorch-seg`` (train, evaluate, predict), ``Trainer.run`` and the benchmarks run in it. On 2
cores (``benchmarks/README.md``) a 3x3 conv's forward + backward at (4, 64, 128, 256) went from 469
ms to 247-388 ms, at 128 channels from 1469 to 915-1175 ms, and the U-Net step from 423-510 to
403-472 ms (ranges over runs on a noisy machine); the bilinear upsampling's plane tiles use the
threads too. Outside the mode, ``map_tiles`` runs the tiles one after another in the caller's
thread and BLAS uses its own threads, as NumPy always does. On CuPy the GPU parallelises each
kernel, so the tiles run in turn there too.
"""
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from .backend import module_name

_controller = None       # threadpoolctl's view of the loaded BLAS libraries, built on first use
_POOL_NAME = "minitorch-seg-tiles"
_executor, _executor_threads = None, 0
_executor_lock = threading.Lock()
_active_threads = 0      # our threads while tile_threads() is in effect, else 0


def _blas():
    """The threadpoolctl controller of the BLAS libraries, or None where there is none to control."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a dependency, but the kernels work without it
            _controller = False
        else:
            _controller = ThreadpoolController().select(user_api="blas") or False
    return _controller or None


def host_threads():
    """How many threads ``map_tiles`` uses on the host now: 1 outside ``tile_threads()``."""
    return max(1, _active_threads)


@contextlib.contextmanager
def tile_threads(threads=None):
    """Within: BLAS on one thread, and tiled kernels spread over ``threads`` host threads.

    ``threads`` defaults to BLAS's thread count on entry (the cores, unless OPENBLAS_NUM_THREADS
    or a threadpoolctl limit says fewer), so a limit set by the user is kept. Nested uses, one
    thread, or no controllable BLAS: nothing changes.
    """
    global _active_threads
    blas = _blas()
    if threads is None and blas is not None:
        threads = min(lib.num_threads for lib in blas.lib_controllers)
    if blas is None or _active_threads or (threads or 1) < 2:
        yield
        return
    with blas.limit(limits=1, user_api="blas"):
        _active_threads = threads
        try:
            yield
        finally:
            _active_threads = 0


def map_tiles(xp, work, tiles):
    """``[work(tile) for tile in tiles]``, the tiles handed to the host threads as each one frees up.

    Handing out one tile at a time (rather than a fixed share per thread) keeps both cores busy
    when something else, such as the data loader's thread, slows one of them down. The results
    come back in tile order, so a sum of them does not depend on which thread computed which
    tile (the callers split tiles independently of the thread count, for the same reason). A
    call from inside a tile runs inline: a pool thread waiting on its own pool could deadlock.
    """
    global _executor, _executor_threads
    threads = min(host_threads(), len(tiles)) if module_name(xp) != "cupy" else 1
    if threads < 2 or threading.current_thread().name.startswith(_POOL_NAME):
        return [work(tile) for tile in tiles]
    with _executor_lock:
        if _executor_threads < threads:
            if _executor is not None:
                _executor.shutdown(wait=False)
            _executor = ThreadPoolExecutor(threads, thread_name_prefix=_POOL_NAME)
            _executor_threads = threads
        executor = _executor
    return list(executor.map(work, tiles))
