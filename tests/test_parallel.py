"""parallel.map_tiles: how tiles are split over host threads, and BLAS's threads given back."""
import threading

import numpy
import pytest

from minitorch_seg import backend, parallel


def test_tiles_are_interleaved_over_the_threads_and_each_part_runs_in_its_own_thread(monkeypatch):
    monkeypatch.setattr(parallel, "host_threads", lambda: 3)
    seen = []

    def work(part):
        seen.append(threading.current_thread().name)
        return part
    parts = parallel.map_tiles(numpy, work, list(range(7)))
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    assert len(seen) == 3 and all(name.startswith("minitorch-seg-tiles") for name in seen)


def test_one_thread_or_fewer_tiles_than_two_runs_in_the_callers_thread(monkeypatch):
    caller = threading.current_thread().name
    for threads, tiles in [(1, [0, 1, 2]), (4, [0])]:
        monkeypatch.setattr(parallel, "host_threads", lambda: threads)
        assert parallel.map_tiles(numpy, lambda part: (part, threading.current_thread().name), tiles) == \
            [(tiles, caller)]


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
        inside = parallel.map_tiles(backend.strict_module, lambda part: blas_threads(threadpoolctl), [0, 1, 2])
        assert inside == [[1] * len(inside[0])] * 3           # the workers see one BLAS thread too
    assert parallel.host_threads() == 1
    assert threadpoolctl.threadpool_info() == before


def test_tile_threads_defaults_to_the_blas_thread_count_so_a_user_limit_is_kept():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        with parallel.tile_threads():
            assert parallel.host_threads() == 1


def test_an_error_in_a_part_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)

    def work(part):
        raise ValueError(f"tile {part}")
    with pytest.raises(ValueError, match="tile"):
        parallel.map_tiles(numpy, work, [0, 1])
    assert parallel.map_tiles(numpy, lambda part: part, [0, 1]) == [[0], [1]]  # the pool still works
