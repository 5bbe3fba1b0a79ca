"""parallel: tiles handed to host threads, and BLAS on one thread inside tile_threads() only."""
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref

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
    monkeypatch.setattr(parallel, "_crew_now", None)                  # a fresh crew: its threads start now
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
    monkeypatch.setattr(parallel, "_crew_now", None)
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


def test_a_blas_library_loaded_after_an_earlier_mode_is_put_on_one_thread_too():
    # SciPy's own OpenBLAS, which special.erf imports, loaded after the first tile_threads(): a
    # controller kept from then did not see it, and it ran at its default thread count in the mode
    pytest.importorskip("threadpoolctl")
    pytest.importorskip("scipy")
    script = textwrap.dedent("""
        import threadpoolctl
        from minitorch_seg import parallel
        def blas():
            return {(lib["filepath"], lib["num_threads"]) for lib in threadpoolctl.threadpool_info()
                    if lib["user_api"] == "blas"}
        with parallel.tile_threads(2):
            pass
        before = {path for path, _ in blas()}
        import scipy.linalg
        if {path for path, _ in blas()} == before:
            print("no new library")
        else:
            with parallel.tile_threads(2):
                print(sorted({threads for _, threads in blas()}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    if out == "no new library":
        pytest.skip("SciPy brought no BLAS library of its own here")
    assert out == "[1]"


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
    crew = parallel._crew(2)
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
                other = 1 - int(threading.current_thread().name.rsplit("-", 1)[1])
                deadline = time.monotonic() + 10                          # until the other thread has
                while crew._active[other] and time.monotonic() < deadline:   # recorded the error, left
                    time.sleep(0.001)
            finally:
                with lock:
                    running[0] -= 1
        with pytest.raises(ValueError, match="tile 0"):
            parallel.map_tiles(numpy, work, list(range(40)))
        assert running[0] == 0
        assert sorted(started) == [0, 1]


def test_the_crew_keeps_nothing_of_a_call_once_it_returns(monkeypatch):
    """The tiles' arrays go as soon as the caller lets them go (holding them to the next call cost
    the U-Net step 29 MiB of peak memory)."""
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)
    array = numpy.ones(10)
    gone = weakref.finalize(array, lambda: None)
    assert parallel.map_tiles(numpy, lambda tile, held=array: tile, [0, 1]) == [0, 1]
    del array
    assert not gone.alive


def test_a_call_from_another_thread_while_the_crew_is_busy_runs_inline(monkeypatch):
    """The crew serves one caller at a time; a second caller (a data loader's thread, say) runs its
    tiles itself rather than waiting, and both get their results."""
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)
    inside, release = threading.Event(), threading.Event()

    def first(tile):
        inside.set()
        assert release.wait(10)
        return threading.current_thread().name
    outcome = {}
    caller = threading.Thread(target=lambda: outcome.setdefault("first", parallel.map_tiles(numpy, first, [0, 1])))
    caller.start()
    assert inside.wait(10)
    second = parallel.map_tiles(numpy, lambda tile: threading.current_thread().name, [0, 1])
    release.set()
    caller.join(10)
    assert second == [threading.current_thread().name] * 2
    assert all(name.startswith("minitorch-seg-tiles") for name in outcome["first"])


class Interrupting:
    """A lock that raises KeyboardInterrupt once, as a second Ctrl-C would: before a ``release``, or
    before or after an ``acquire`` (``when``), after ``wait()`` on a barrier if one is given."""

    def __init__(self, lock, when, barrier=None):
        self.lock, self.when, self.barrier, self.raised = lock, when, barrier, False

    def _interrupt(self, moment):
        if moment == self.when and not self.raised:
            self.raised = True
            if self.barrier is not None:
                self.barrier.wait()
            raise KeyboardInterrupt

    def acquire(self):
        self._interrupt("before acquire")
        result = self.lock.acquire()
        self._interrupt("after acquire")
        return result

    def release(self):
        self._interrupt("before release")
        self.lock.release()

    def locked(self):
        return self.lock.locked()


def crew_threads():
    return {t for t in threading.enumerate() if t.name.startswith("minitorch-seg-tiles")}


@pytest.mark.parametrize("where", ["while waiting", "once done", "between releases"])
def test_an_interrupt_stops_the_hand_out_and_raises_once_no_tile_runs_then_a_new_crew_serves(monkeypatch, where):
    """A second Ctrl-C in the crew's call, wherever it strikes (while the caller waits, just after
    the last thread let it go, or while it lets the threads go): no further tile starts, the
    KeyboardInterrupt reaches the caller only when no tile runs, the crew's threads exit, and the
    next call gets a new crew."""
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)
    monkeypatch.setattr(parallel, "_crew_now", None)
    before = crew_threads()
    crew = parallel._crew(2)
    mine = crew_threads() - before
    lock, started, running = threading.Lock(), [], [0]
    both = threading.Barrier(3, timeout=10) if where == "while waiting" else None
    if where == "between releases":
        crew._go[1] = Interrupting(crew._go[1], "before release")
    else:
        crew._done = Interrupting(crew._done, "before acquire" if both else "after acquire", both)

    def work(tile):
        with lock:
            started.append(tile)
            running[0] += 1
        try:
            if both is not None and tile < 2:
                both.wait()                                           # tiles 0 and 1 run at once
                deadline = time.monotonic() + 10                      # until the interrupt has stopped
                while not crew._closed and time.monotonic() < deadline:   # the hand-out
                    time.sleep(0.001)
        finally:
            with lock:
                running[0] -= 1
    outcome = []

    def call():                                 # in a thread of its own, so that a hang fails the test
        try:
            parallel.map_tiles(numpy, work, list(range(40 if both else 2)))
        except KeyboardInterrupt:
            outcome.append(running[0])
    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(20)
    assert not caller.is_alive() and outcome == [0]               # raised, and no tile was running then
    if both is not None:
        assert sorted(started) == [0, 1]
    for thread in mine:
        thread.join(10)
        assert not thread.is_alive()
    assert parallel.map_tiles(numpy, lambda tile: tile, [0, 1]) == [0, 1]
    assert parallel._crew_now is not crew


def test_a_call_for_more_threads_makes_a_larger_crew_and_the_old_one_ends(monkeypatch):
    monkeypatch.setattr(parallel, "_crew_now", None)
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)
    before = set(threading.enumerate())
    assert parallel.map_tiles(numpy, lambda tile: tile, [0, 1]) == [0, 1]
    old = set(threading.enumerate()) - before                           # the first crew's threads
    assert len(old) == 2
    monkeypatch.setattr(parallel, "host_threads", lambda: 3)
    together = threading.Barrier(3, timeout=10)                       # the three tiles at once

    def work(tile):
        together.wait()
        return threading.current_thread().name
    assert len(set(parallel.map_tiles(numpy, work, [0, 1, 2]))) == 3 and parallel._crew_now.size == 3
    for thread in old:
        thread.join(10)
        assert not thread.is_alive()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this OS")
def test_a_forked_child_makes_a_crew_of_its_own(monkeypatch):
    """The crew's threads do not exist in a forked child: its tiled calls start a new crew instead of
    waiting forever on the parent's."""
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)
    parallel.map_tiles(numpy, lambda tile: tile, [0, 1])                  # the parent's crew exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                                           # the child
        try:
            names = parallel.map_tiles(numpy, lambda tile: threading.current_thread().name, [0, 1])
            os.write(write, b"ok" if all(n.startswith("minitorch-seg-tiles") for n in names) else b"no")
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 20
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's tiles never ran")
        time.sleep(0.01)
    assert os.read(read, 2) == b"ok"


@pytest.mark.parametrize("threads", [1, 3])
def test_add_into_adds_in_runs_of_the_first_axis_into_a_view_or_a_number(monkeypatch, threads):
    monkeypatch.setattr(parallel, "STREAM_TILES", parallel.STREAM_TILES._replace(bytes=16))
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    whole = numpy.arange(30.0).reshape(5, 6)
    a, b = whole[:, 1:4], numpy.full((5, 3), 0.5)                        # a strided view
    expected = whole.copy()
    expected[:, 1:4] += 0.5
    assert parallel.add_into(a, b) is a
    numpy.testing.assert_array_equal(whole, expected)
    assert parallel.add_into(numpy.array(2.0), numpy.array(1.0)) == 3.0


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
