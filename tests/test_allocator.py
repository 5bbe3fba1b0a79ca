"""The host allocator's tuning (``diagnostics.tune_host_allocator``): freed blocks kept, in huge pages.

It changes the process for good, so each check runs in a fresh interpreter of its own.
"""
import json
import subprocess
import sys
import textwrap

import pytest

from minitorch_seg import diagnostics

# Touches 64 MiB in arrays of 1 MiB (below NumPy's own 4 MiB huge-page threshold) after tuning, and
# reports what the kernel shows: RSS and huge pages before and after, and the VMAs marked for them.
_PROBE = textwrap.dedent("""
    import json, re, sys
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

    start = rollup()
    tuned = diagnostics.tune_host_allocator(huge_pages=sys.argv[1] == "1")
    again = diagnostics.tune_host_allocator(huge_pages=sys.argv[1] == "1")
    reserved = rollup()
    arrays = [numpy.ones(1 << 18, numpy.float32) for _ in range(64)]       # 64 arrays of 1 MiB, touched
    end = rollup()
    print(json.dumps({"tuned": tuned and again, "marked": diagnostics._HEAP_MARKED, "advised": advised_bytes(),
                      "reserve_rss": reserved["Rss"] - start["Rss"],
                      "huge_gained": end["AnonHugePages"] - reserved["AnonHugePages"]}))
""")


def _probe(huge_pages):
    output = subprocess.run([sys.executable, "-c", _PROBE, "1" if huge_pages else "0"], check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output)


def _huge_pages_here():
    return sys.platform.startswith("linux") and diagnostics._transparent_huge_pages()


@pytest.mark.skipif(not _huge_pages_here(), reason="needs Linux with transparent huge pages ('always' or 'madvise')")
def test_the_heap_is_reserved_untouched_and_later_small_arrays_get_huge_pages():
    probe = _probe(huge_pages=True)
    assert probe["tuned"]
    (marked,) = probe["marked"]                                   # once a process, a second call adds nothing
    assert marked >= 200 << 20                                    # most of the 256 MiB asked for
    assert probe["advised"] >= marked                             # the kernel holds the advice on those VMAs
    assert probe["reserve_rss"] < 16 << 20                        # reserving touched (almost) nothing
    assert probe["huge_gained"] >= 32 << 20                       # the 1 MiB arrays landed in huge pages


@pytest.mark.skipif(not _huge_pages_here(), reason="needs Linux with transparent huge pages ('always' or 'madvise')")
def test_without_huge_pages_nothing_is_reserved():
    probe = _probe(huge_pages=False)
    assert probe["tuned"] and probe["marked"] == []
    assert probe["reserve_rss"] < 16 << 20


def test_runs_merge_blocks_that_lie_side_by_side():
    mib = 1 << 20
    starts = [0, mib + 16, 2 * mib + 32, 10 * mib, 11 * mib + 100]    # a 16-byte header between the first three
    assert diagnostics._runs(starts, mib) == [(0, 3 * mib + 32), (10 * mib, 11 * mib), (11 * mib + 100, 12 * mib + 100)]
    assert diagnostics._runs([], mib) == []
