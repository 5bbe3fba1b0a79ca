"""parallel: tiles handed to host threads, and BLAS on one thread inside tile_threads() only."""
import threading

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
