"""parallel: tiles handed to host threads, and BLAS on one thread inside tile_threads() only."""
import os
import threading
import time

import numpy
import pytest

from minitorch_seg import backend, parallel


def test_each_tile_runs_on_a_pool_thread_and_the_results_come_back_in_tile_order(monkeypatch):
    monkeypatch.setattr(parallel, "host_threads", lambda: 3)
    seen = []

    def work(tile):
        seen.append(threading.current_thread().name)
        return tile * 10
    assert parallel.map_tiles(numpy, work, list(range(7))) == [0, 10, 20, 30, 40, 50, 60]
    assert len(seen) == 7 and all(name.startswith("minitorch-seg-tiles") for name in seen)


def test_one_thread_or_one_tile_runs_in_the_callers_thread(monkeypatch):
    caller = threading.current_thread().name
    for threads, tiles in [(1, [0, 1, 2]), (4, [0])]:
        monkeypatch.setattr(parallel, "host_threads", lambda: threads)
        assert parallel.map_tiles(numpy, lambda tile: threading.current_thread().name, tiles) == [caller] * len(tiles)


def test_a_call_from_inside_a_tile_runs_inline_instead_of_waiting_on_its_own_pool(monkeypatch):
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)

    def outer(tile):
        return parallel.map_tiles(numpy, lambda inner: (tile, inner, threading.current_thread().name), [0, 1])
    for tile, part in enumerate(parallel.map_tiles(numpy, outer, [0, 1])):
        assert [(t, i) for t, i, _ in part] == [(tile, 0), (tile, 1)]
        assert part[0][2] == part[1][2]                                   # both in the outer tile's thread


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="no CPU affinity on this OS, or one core")
@pytest.mark.parametrize("extra", [0, 1], ids=["a thread for each core", "more threads than cores"])
def test_pool_threads_are_pinned_each_to_a_core_of_its_own_when_there_is_one_per_core(extra, monkeypatch):
    """With one pool thread per core, each thread runs on its own core; with more threads than
    cores they stay free (as with fewer: pinned, other processes' pools would crowd the same
    cores). The caller is never pinned."""
    allowed = os.sched_getaffinity(0)
    threads = len(allowed) + extra
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    monkeypatch.setattr(parallel, "_executor", None)                  # a fresh pool: its threads start now
    monkeypatch.setattr(parallel, "_executor_threads", 0)
    together = threading.Barrier(threads, timeout=10)                 # every tile running at once, one per thread

    def work(tile):
        together.wait()
        return threading.current_thread().name, frozenset(os.sched_getaffinity(0))
    names, cores = zip(*parallel.map_tiles(numpy, work, list(range(threads))))
    assert len(set(names)) == threads
    if extra:
        assert set(cores) == {frozenset(allowed)}
    else:
        assert all(len(c) == 1 for c in cores) and frozenset().union(*cores) == allowed
    assert os.sched_getaffinity(0) == allowed


def test_a_refused_pin_leaves_the_pool_working(monkeypatch):
    """Where the OS refuses the affinity call (a sandbox), the threads stay free and the tiles run."""
    def refuse(*args):
        raise PermissionError("sched_setaffinity is not allowed here")
    monkeypatch.setattr(os, "sched_setaffinity", refuse, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)
    monkeypatch.setattr(parallel, "_executor", None)
    monkeypatch.setattr(parallel, "_executor_threads", 0)
    assert parallel.map_tiles(numpy, lambda tile: tile + 1, [1, 2, 3]) == [2, 3, 4]


def blas_threads(threadpoolctl):
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]


def test_tile_threads_puts_blas_on_one_thread_and_gives_its_threads_back():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = threadpoolctl.threadpool_info()
    assert parallel.host_threads() == 1                      # off unless asked for
    with parallel.tile_threads(3):
        assert parallel.host_threads() == 3
        assert set(blas_threads(threadpoolctl)) == {1}
        with parallel.tile_threads(5):                        # nested: changes nothing
            assert parallel.host_threads() == 3
        inside = parallel.map_tiles(backend.strict_module, lambda tile: blas_threads(threadpoolctl), [0, 1, 2])
        assert inside == [[1] * len(inside[0])] * 3           # the pool's threads see one BLAS thread too
    assert parallel.host_threads() == 1
    assert threadpoolctl.threadpool_info() == before


def test_tile_threads_defaults_to_the_blas_thread_count_so_a_user_limit_is_kept():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        with parallel.tile_threads():
            assert parallel.host_threads() == 1


def test_an_error_in_a_tile_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)

    def work(tile):
        raise ValueError(f"tile {tile}")
    with pytest.raises(ValueError, match="tile"):
        parallel.map_tiles(numpy, work, [0, 1])
    assert parallel.map_tiles(numpy, lambda tile: tile, [0, 1]) == [0, 1]  # the pool still works


def test_an_error_stops_the_hand_out_and_reaches_the_caller_once_every_thread_is_done(monkeypatch):
    """Tile 0 raises while tile 1 runs on the other thread: no further tile starts, and when the
    error reaches the caller tile 1 has ended (the arrays a tile writes are the caller's again).
    Six times, as either thread may take either tile."""
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)
    for _ in range(6):
        started, running, lock, both = [], [0], threading.Lock(), threading.Barrier(2, timeout=10)

        def work(tile):
            with lock:
                started.append(tile)
                running[0] += 1
            try:
                if tile < 2:
                    both.wait()                                           # tiles 0 and 1 run at once
                if tile == 0:
                    raise ValueError("tile 0")
                time.sleep(0.02)
            finally:
                with lock:
                    running[0] -= 1
        with pytest.raises(ValueError, match="tile 0"):
            parallel.map_tiles(numpy, work, list(range(40)))
        assert running[0] == 0
        assert sorted(started) == [0, 1]


# ---- the tile planner ---------------------------------------------------------------------------
@pytest.mark.parametrize("counts, item_bytes, tiling", [
    ((11,), 3, parallel.Tiling(10, host_min=2, on_gpu=True)),         # conv-like: rows, at least 2 tiles
    ((11,), 3, parallel.Tiling(60, host_min=2, on_gpu=True)),         # all fits: still 2 on the host
    ((11,), 3, parallel.Tiling(1000, host_min=2, on_gpu=True)),       # too little work for 2: one tile
    ((3, 7), 40, parallel.Tiling(100)),                               # pool-like: images x planes
    ((5,), 1000, parallel.Tiling(10)),                                # an item over the budget: one each
    ((1,), 8, parallel.Tiling(1 << 20, host_min=2)),                   # one item cannot be split
    ((11,), 3, parallel.Tiling(1000, host_min=2, split_bytes=16)),    # stream-like: halves of 16+ bytes
    ((11,), 3, parallel.Tiling(1000, host_min=2, split_bytes=17)),    # but not of less
])
def test_the_tiles_cover_every_item_once_in_order_within_the_budget(counts, item_bytes, tiling):
    tiles = parallel.tiles(numpy, tiling, counts, item_bytes)
    marks = numpy.zeros(counts, dtype=int)
    for tile in tiles:
        assert all(s.stop - s.start == 1 for s in tile[:-1])          # one index of every outer axis
        run = tile[-1].stop - tile[-1].start
        assert run == 1 or run * item_bytes <= tiling.bytes
        marks[tile] += 1
    assert (marks == 1).all()
    assert tiles == sorted(tiles, key=lambda t: tuple(s.start for s in t))
    enough = counts[-1] * item_bytes >= tiling.host_min * (tiling.split_bytes or tiling.bytes // 2)
    assert len(tiles) >= min(tiling.host_min if enough else 1, counts[-1]) * int(numpy.prod(counts[:-1]))
    if not enough:                                                      # runs of the budget's items
        run = max(1, min(counts[-1], tiling.bytes // item_bytes))
        assert len(tiles) == int(numpy.prod(counts[:-1])) * -(-counts[-1] // run)


def test_on_a_gpu_tiles_are_whole_arrays_unless_they_bound_memory(monkeypatch):
    """On CuPy the cache tiles (pool, upsample) give way to one tile; conv's keep bounding its columns."""
    monkeypatch.setattr(parallel, "module_name", lambda xp: "cupy")
    assert parallel.tiles(numpy, parallel.Tiling(100), (3, 7), 40) == [(slice(None), slice(None))]
    assert parallel.tiles(numpy, parallel.Tiling(100, host_min=2, on_gpu=True), (11,), 3) == [
        (slice(0, 11),)]                                                  # 33 bytes: one tile, host_min is host only
    assert len(parallel.tiles(numpy, parallel.Tiling(10, host_min=2, on_gpu=True), (11,), 3)) == 4
