"""The host allocator's tuning (``diagnostics.tune_host_allocator``): freed blocks kept, in huge pages.

It changes the process for good, so each check runs in a fresh interpreter of its own.
"""
import json
import subprocess
import sys
import textwrap

import pytest

from minitorch_seg import diagnostics

# Tunes the allocator as ``sys.argv[1]`` says, then touches 64 MiB in arrays of 1 MiB (below NumPy's
# own 4 MiB huge-page threshold) and reports what the kernel shows: RSS and huge pages before and
# after, and the bytes of the VMAs advised for huge pages.
_PROBE = textwrap.dedent("""
    import json, re, sys, threading
    import numpy
    from minitorch_seg import diagnostics

    def rollup():
        text = open("/proc/self/smaps_rollup").read()
        return {key: int(re.search(key + r":\\s+(\\d+) kB", text).group(1)) << 10 for key in ("Rss", "AnonHugePages")}

    def advised_bytes():
        total, size = 0, 0
        for line in open("/proc/self/smaps"):
            fields = line.split()
            if re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", fields[0]):
                start, stop = (int(end, 16) for end in fields[0].split("-"))
                size = stop - start
            elif fields[0] == "VmFlags:" and "hg" in fields[1:]:
                total += size
        return total

    mode, start = sys.argv[1], rollup()
    marks = []
    if mode == "thread-then-main":          # a tile thread's arena is not the main heap: it marks nothing
        thread = threading.Thread(target=diagnostics.tune_host_allocator)
        thread.start(), thread.join()
        marks.append(list(diagnostics._HEAP_MARKED))
    tuned = {"huge": lambda: diagnostics.tune_host_allocator(),
             "plain": lambda: diagnostics.tune_host_allocator(huge_pages=False),
             "small": lambda: diagnostics.tune_host_allocator(32 << 20),
             "thread-then-main": lambda: diagnostics.tune_host_allocator()}[mode]()
    marks.append(list(diagnostics._HEAP_MARKED))
    tuned = tuned and diagnostics.tune_host_allocator(huge_pages=mode != "plain")   # a second call adds nothing
    reserved = rollup()
    arrays = [numpy.ones(1 << 18, numpy.float32) for _ in range(64)]       # 64 arrays of 1 MiB, touched
    end = rollup()
    print(json.dumps({"tuned": tuned, "marks": marks, "marked": diagnostics._HEAP_MARKED, "advised": advised_bytes(),
                      "reserve_rss": reserved["Rss"] - start["Rss"],
                      "huge_gained": end["AnonHugePages"] - reserved["AnonHugePages"]}))
""")


def _probe(mode):
    output = subprocess.run([sys.executable, "-c", _PROBE, mode], check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def _thp_mode():
    """The kernel's transparent huge page mode ("always", "madvise", "never"), or None off Linux."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as modes:
            return modes.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return None


needs_thp = pytest.mark.skipif(_thp_mode() not in ("always", "madvise"),
                               reason="needs Linux with transparent huge pages ('always' or 'madvise')")


@needs_thp
def test_the_heap_is_reserved_untouched_and_later_small_arrays_get_huge_pages():
    huge, plain = _probe("huge"), _probe("plain")
    assert huge["tuned"] and plain["tuned"]
    (marked,) = huge["marked"]                                    # once a process, a second call adds nothing
    assert marked >= 200 << 20                                    # most of the 256 MiB asked for
    assert huge["advised"] >= marked                              # the kernel holds the advice on those VMAs
    assert huge["reserve_rss"] < 16 << 20                         # reserving touched (almost) nothing
    assert plain["marked"] == [] and plain["reserve_rss"] < 16 << 20
    assert huge["huge_gained"] >= 32 << 20                        # the 1 MiB arrays landed in huge pages
    if _thp_mode() == "madvise":                                  # and only because of the reservation
        assert plain["advised"] == 0 and plain["huge_gained"] <= 4 << 20


@needs_thp
def test_no_reservation_below_the_mmap_threshold_or_from_another_thread():
    """Blocks of a threshold under 64 MiB would be served by mmap and unmapped with their advice, and
    another thread's blocks come from its own arena: neither marks (nor uses up) the once a process."""
    small = _probe("small")
    assert small["tuned"] and small["marks"] == [[]]              # the 32 MiB call marked nothing
    assert small["marked"] and small["marked"][0] >= 200 << 20    # and a default call after it still did
    both = _probe("thread-then-main")
    assert both["marks"][0] == []                                 # the thread's call marked nothing
    (marked,) = both["marked"]                                    # the main thread's call still did
    assert marked >= 200 << 20 and both["advised"] >= marked


def test_a_threshold_past_a_c_int_is_clamped_not_wrapped(monkeypatch):
    calls = []

    class Libc:
        def mallopt(self, option, value):
            calls.append((option, value))
            return 1
    monkeypatch.setattr(diagnostics.ctypes, "CDLL", lambda name: Libc())
    assert diagnostics.tune_host_allocator(4 << 30, huge_pages=False)
    assert calls == [(-3, 32 << 20), (-1, 2**31 - 1)]


def test_runs_merge_blocks_that_lie_side_by_side():
    mib = 1 << 20
    starts = [0, mib + 16, 2 * mib + 32, 10 * mib, 11 * mib + 100]    # a 16-byte header between the first three
    assert diagnostics._runs(starts, mib) == [(0, 3 * mib + 32), (10 * mib, 11 * mib), (11 * mib + 100, 12 * mib + 100)]
    assert diagnostics._runs([], mib) == []
