"""Numbers quoted in the lessons come from recorded runs: every 3-decimal number of a markdown cell that
names a record file (``lessons/records/*.json``, written by ``lessons/records/record.py``) is in that file.

A number "is in" a record when one of the record's numbers, at any depth of its JSON, rounds to it
at 3 decimals (``f"{value:.3f}"``). Quote means from a Comparison's ``summary`` and per-seed scores
from its ``runs``; a number computed in the prose (a difference, a ratio) is not in the record and
fails, so say such things in words or with fewer decimals.
"""
import json
import re
from pathlib import Path

import pytest

from minitorch_seg import experiment

pytestmark = pytest.mark.lessons

nbformat = pytest.importorskip("nbformat", reason="the lesson tests need nbformat (pip install -e '.[test]')")

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
RECORDS = LESSONS / "records"
CITATION = re.compile(r"\b(?:lessons/)?records/([\w.-]+\.json)\b")
THREE_DECIMALS = re.compile(r"(?<![\d.])-?\d+\.\d{3}(?![\d])")


def record_numbers(payload):
    """Every number in a JSON value, formatted with 3 decimals."""
    if isinstance(payload, bool) or payload is None or isinstance(payload, str):
        return set()
    if isinstance(payload, (int, float)):
        return {f"{payload:.3f}"}
    values = payload.values() if isinstance(payload, dict) else payload
    return set().union(*(record_numbers(v) for v in values)) if values else set()


def unrecorded(text, records=RECORDS):
    """[(number, record files)] for each 3-decimal number of ``text`` none of its cited records holds."""
    cited = sorted(set(CITATION.findall(text)))
    if not cited:
        return []
    missing = [name for name in cited if not (records / name).exists()]
    assert not missing, f"the text cites record files that do not exist in {records}: {missing}"
    numbers = set().union(*(record_numbers(json.loads((records / name).read_text())) for name in cited))
    return [(quoted, cited) for quoted in THREE_DECIMALS.findall(text) if f"{float(quoted):.3f}" not in numbers]


def citing_cells():
    cases = []
    for path in sorted(LESSONS.glob("[0-9][0-9]_*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "markdown" and CITATION.search(cell.source):
                cases.append(pytest.param(cell.source, id=f"{path.name} cell {index}"))
    return cases


@pytest.mark.parametrize("text", citing_cells())
def test_numbers_quoted_from_a_record_are_in_it(text):
    assert not unrecorded(text), f"3-decimal numbers not in the cited records: {unrecorded(text)}"


@pytest.mark.parametrize("path", sorted(RECORDS.glob("[0-9][0-9]_*.json")), ids=lambda p: p.name)
def test_each_record_is_a_comparison_with_its_settings_and_machine(path):
    comparison = experiment.load(path)
    assert comparison.runs and comparison.settings["steps"] >= 1
    assert comparison.recorded["date"] and comparison.recorded["machine"]["cpu_count"] >= 1
    assert comparison.table().count("\n") == len(comparison.names) + 1


def test_the_check_catches_a_number_that_is_not_in_the_record(tmp_path):
    (tmp_path / "07_x.json").write_text(json.dumps({"runs": [{"miou": 0.12345, "iou": [None, 0.5]}], "steps": 3}))
    text = "Recorded (lessons/records/07_x.json): mIoU 0.123, IoU 0.500, 3 steps, but 0.124 and -0.123 are not."
    assert unrecorded(text, tmp_path) == [("0.124", ["07_x.json"]), ("-0.123", ["07_x.json"])]
    assert unrecorded("No citation here: 0.999.", tmp_path) == []
    with pytest.raises(AssertionError, match="do not exist"):
        unrecorded("See records/missing.json: 0.100.", tmp_path)


TIME_ROW = re.compile(r"^\| (\d+) [^|]+\| ([\d,]+) s\b", re.MULTILINE)


def test_the_lessons_readme_quotes_the_recorded_compute_times():
    """Each row of lessons/README.md's table of full runs gives the seconds records/times.json holds (to the second)."""
    times = json.loads((RECORDS / "times.json").read_text())
    section = (LESSONS / "README.md").read_text().split("### The computer's time", 1)[1].split("\n#", 1)[0]
    quoted = {f"{int(lesson):02d}": int(seconds.replace(",", "")) for lesson, seconds in TIME_ROW.findall(section)}
    assert sorted(quoted) == sorted(times), (sorted(quoted), sorted(times))
    wrong = {lesson: (quoted[lesson], entry["seconds"]) for lesson, entry in times.items()
             if abs(quoted[lesson] - entry["seconds"]) >= 1}
    assert not wrong, f"lessons/README.md quotes other seconds than records/times.json: {wrong}"
