"""Record lessons' full measurements and times: ``python lessons/records/record.py 06 07 --note "a 2-core VM"``.

Builds the solved notebook of each lesson NN (every exercise stub replaced by its solution, as
``build_notebooks.py --solved`` does) and executes it top to bottom in a fresh ``python3`` kernel
without LESSON_FAST, so every cell runs with the lesson's full settings: the run a learner makes
once the exercises are done. The kernel gets ``LESSON_RECORDS`` (this folder) and
``LESSON_RECORD_NOTE`` (``--note``: the machine, in words, and whether other work loaded it); the
lesson's measuring cells save their ``experiment.Comparison`` here as ``NN_*.json`` when
LESSON_RECORDS is set. Markdown that quotes a record's numbers names the file, and
``tests/test_lesson_records.py`` checks every quoted number against it.

Each lesson's compute time (kernel start to last cell) goes into ``times.json`` here, with what
a record keeps (``experiment.recorded_now``: date, machine, version, note), the load average when
it ended and the commit; lessons/README.md
quotes it. It takes as long as the lessons' training: minutes to an hour on two CPU cores. Each
code cell's time is printed as it finishes; a failing cell stops the run with its error (exit
status 1) and records no time for that lesson.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from minitorch_seg import experiment
from minitorch_seg.checkpoint import atomic_write_bytes

RECORDS = Path(__file__).resolve().parent
LESSONS = RECORDS.parent


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", LESSONS / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_lesson(builder, source, note, timeout):
    """Execute the solved notebook of ``source`` in full; its seconds, or None when a cell failed."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    notebook = builder.build(source, solved=True)
    env = {key: value for key, value in os.environ.items() if key != "LESSON_FAST"}
    env.update(LESSON_RECORDS=str(RECORDS), LESSON_RECORD_NOTE=note, MPLBACKEND="Agg")
    client = NotebookClient(notebook, kernel_name="python3", timeout=timeout,
                            resources={"metadata": {"path": str(LESSONS)}})
    start = time.perf_counter()
    with client.setup_kernel(env=env):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            began = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                print(f"cell {index} failed:\n{error}", file=sys.stderr)
                return None
            print(f"{source.stem} cell {index}: {time.perf_counter() - began:.0f} s", flush=True)
    return time.perf_counter() - start


def record_time(lesson, seconds, note):
    """Put one lesson's compute time into times.json (read, update, atomic write)."""
    path = RECORDS / "times.json"
    times = json.loads(path.read_text()) if path.exists() else {}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], check=False, cwd=LESSONS,
                            capture_output=True, text=True)
    times[lesson] = {"seconds": round(seconds, 1), **experiment.recorded_now(note),
                     "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
                     "commit": commit.stdout.strip() or None}
    atomic_write_bytes(path, (json.dumps(dict(sorted(times.items())), indent=1) + "\n").encode())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="+", help="the lessons' numbers, e.g. 06 07")
    parser.add_argument("--note", default="", help="the machine, in words (e.g. 'a 2-core x86-64 VM, loaded')")
    parser.add_argument("--timeout", type=int, default=3 * 3600, help="seconds one cell may take (default 3 h)")
    args = parser.parse_args(argv)
    builder = _builder()
    sources = []
    for lesson in args.lessons:
        found = sorted(builder.SOURCES.glob(f"{lesson}_*.py"))
        if len(found) != 1:
            parser.error(f"expected one lesson source lessons/src/{lesson}_*.py, found {len(found)}")
        sources.append((lesson, found[0]))
    for lesson, source in sources:
        seconds = run_lesson(builder, source, args.note, args.timeout)
        if seconds is None:
            return 1
        record_time(lesson, seconds, args.note)
        print(f"{source.stem}: {seconds:.0f} s; records in {RECORDS}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
