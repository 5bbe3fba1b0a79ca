"""Record a lesson's full measurements: ``python lessons/records/record.py 06 --note "a 2-core x86-64 VM"``.

Builds the solved notebook of lesson NN (every exercise stub replaced by its solution, as
``build_notebooks.py --solved`` does) and executes it top to bottom in a fresh ``python3`` kernel
without LESSON_FAST, so every cell runs with the lesson's full settings. The kernel gets
``LESSON_RECORDS`` (this folder) and ``LESSON_RECORD_NOTE`` (``--note``: the machine, in words,
and whether other work loaded it); the lesson's measuring cells save their ``experiment.Comparison``
here as ``NN_*.json`` when LESSON_RECORDS is set, and its first cell may shorten the sections that
record nothing. Markdown that quotes a record's numbers names the file, and
``tests/test_lesson_records.py`` checks every quoted number against it.

It takes as long as the lesson's training: minutes to an hour on two CPU cores. Each code cell's
time is printed as it finishes; a failing cell stops the run with its error (exit status 1).
"""
import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

RECORDS = Path(__file__).resolve().parent
LESSONS = RECORDS.parent


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", LESSONS / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lesson", help="the lesson's number, e.g. 06")
    parser.add_argument("--note", default="", help="the machine, in words (e.g. 'a 2-core x86-64 VM, loaded')")
    parser.add_argument("--timeout", type=int, default=3 * 3600, help="seconds one cell may take (default 3 h)")
    args = parser.parse_args(argv)
    builder = _builder()
    sources = sorted(builder.SOURCES.glob(f"{args.lesson}_*.py"))
    if len(sources) != 1:
        parser.error(f"expected one lesson source lessons/src/{args.lesson}_*.py, found {len(sources)}")
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    notebook = builder.build(sources[0], solved=True)
    env = {key: value for key, value in os.environ.items() if key != "LESSON_FAST"}
    env.update(LESSON_RECORDS=str(RECORDS), LESSON_RECORD_NOTE=args.note, MPLBACKEND="Agg")
    client = NotebookClient(notebook, kernel_name="python3", timeout=args.timeout,
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
                return 1
            print(f"cell {index}: {time.perf_counter() - began:.0f} s", flush=True)
    print(f"{sources[0].stem}: {time.perf_counter() - start:.0f} s; records in {RECORDS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
