"""Short comparative runs (experiment.py): variants x seeds, the verdict rule, the table, the record."""
import json
import math
import os

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import experiment, nn
from minitorch_seg.data import make_dataset
from minitorch_seg.experiment import Comparison, Run

from helpers import assert_one_sentence

pytestmark = pytest.mark.models

SETTINGS = {"steps": 3, "batch_size": 2, "input_scale": 1.0, "log": None}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_dataset(out=tmp_path_factory.mktemp("experiment") / "synth", train=4, val=2, size=(32, 64), seed=0)


def plain():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 19, 1))


def pooled():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Upsample(scale_factor=2), nn.Conv2d(4, 19, 1))


@pytest.fixture(scope="module")
def comparison(tiny):
    return experiment.compare({"plain": plain, "pooled": pooled}, tiny, **SETTINGS)


def test_compare_trains_every_variant_with_every_seed_and_scores_it(comparison):
    assert [(r.name, r.seed) for r in comparison.runs] == [("plain", 0), ("plain", 1), ("pooled", 0), ("pooled", 1)]
    assert comparison.names == ["plain", "pooled"]
    for run in comparison.runs:
        assert 0 <= run.miou <= 1 and 0 <= run.pixel_accuracy <= 1 and run.steps == 3
        assert len(run.iou) == 19 and run.seconds > 0 and math.isfinite(run.train_loss)
        assert run.miou == pytest.approx(numpy.nanmean(run.iou))
    assert comparison.runs[0].parameters == 3 * 4 * 9 + 4 + 4 * 19 + 19
    assert comparison.settings["steps"] == 3 and comparison.settings["seeds"] == [0, 1]
    assert comparison.settings["crop"] == [32, 64]          # the whole image at input_scale 1
    assert comparison.settings["train_images"] == 4 and comparison.settings["val_images"] == 2


def test_the_same_seed_gives_the_same_run_and_the_seed_draws_the_weights(tiny, comparison):
    first_weights = []

    def recording():
        model = plain()
        first_weights.append(model[0].weight.numpy().copy())
        return model

    again = experiment.compare({"plain": recording}, tiny, seeds=(0, 1), **SETTINGS)
    assert again.scores("plain") == comparison.scores("plain")
    assert again.runs[0].train_loss == comparison.runs[0].train_loss
    assert not numpy.array_equal(first_weights[0], first_weights[1])
    experiment.compare({"plain": recording}, tiny, seeds=(1,), **SETTINGS)
    numpy.testing.assert_array_equal(first_weights[2], first_weights[1])


def test_compare_restores_the_global_random_state(tiny):
    mt.manual_seed(123)
    expected = mt.rand(3).numpy()
    mt.manual_seed(123)
    experiment.compare({"plain": plain}, tiny, seeds=(5,), **SETTINGS)
    numpy.testing.assert_array_equal(mt.rand(3).numpy(), expected)


@pytest.mark.parametrize("a, b, expected", [
    ([0.30, 0.32], [0.33, 0.40], "better"),
    ([0.30, 0.32], [0.10, 0.29], "worse"),
    ([0.30, 0.32], [0.31, 0.40], "within the seeds' spread"),
    ([0.30, 0.32], [0.20, 0.40], "within the seeds' spread"),
    ([0.30, 0.32], [0.32, 0.40], "within the seeds' spread"),    # a tie is no evidence
    ([0.30], [0.40], "one seed: no spread to judge by"),
    ([0.30, math.nan], [0.40, 0.41], "not scored in every run"),
])
def test_verdict_calls_a_difference_only_when_every_seed_of_one_is_above_every_seed_of_the_other(a, b, expected):
    assert experiment.verdict(a, b) == expected


def made(scores):
    """A Comparison from {name: [mIoU of seed 0, seed 1]}, with other fields made up."""
    iou = [0.5] + [math.nan] * 18
    return Comparison([Run(name, seed, miou, 0.9, iou, 10.0 + seed, 7, parameters=1000)
                       for name, values in scores.items() for seed, miou in enumerate(values)], {"steps": 7})


def test_the_table_is_made_from_the_runs():
    table = made({"base": [0.301, 0.305], "up": [0.402, 0.410], "down": [0.101, 0.303]}).table()
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["variant", "seed", "0", "seed", "1"] and "verdict vs base" in lines[0]
    assert lines[1].split()[:5] == ["base", "0.301", "0.305", "0.303", "(the"]
    assert lines[2].split()[:5] == ["up", "0.402", "0.410", "0.406", "better"]
    assert lines[3].split()[:4] == ["down", "0.101", "0.303", "0.202"] and "within the seeds' spread" in lines[3]
    assert lines[1].split()[-2:] == ["10", "1,000"] and "after 7 steps" in lines[-1]
    other = made({"base": [0.301, 0.305], "up": [0.202, 0.210]}).table()
    assert other.splitlines()[2].split()[:5] == ["up", "0.202", "0.210", "0.206", "worse"]


def test_plot_draws_a_bar_per_variant_and_a_dot_per_seed():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    ax = made({"base": [0.3, 0.31], "up": [0.4, 0.42]}).plot()
    assert [round(bar.get_height(), 3) for bar in ax.patches] == [0.305, 0.41]
    assert [list(line.get_ydata()) for line in ax.lines] == [[0.3, 0.31], [0.4, 0.42]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["base", "up"]


def test_save_and_load_round_trip(tmp_path, comparison):
    path = tmp_path / "records" / "ablation.json"
    comparison.save(path, note="a test")
    loaded = experiment.load(path)
    assert loaded.table() == comparison.table() and loaded.settings == comparison.settings
    for mine, theirs in zip(comparison.runs, loaded.runs):
        assert (mine.name, mine.seed, mine.miou, mine.steps) == (theirs.name, theirs.seed, theirs.miou, theirs.steps)
        numpy.testing.assert_array_equal(mine.iou, theirs.iou)        # NaN (stored as null) comes back as NaN
    recorded = json.loads(path.read_text())["recorded"]
    assert recorded["machine"]["cpu_count"] == os.cpu_count() and recorded["version"] == mt.__version__
    assert recorded["date"][:4].isdigit() and recorded["note"] == "a test" and loaded.recorded == recorded
    assert os.listdir(path.parent) == ["ablation.json"]               # the atomic write left no temporary file
    means = {row["name"]: row["mean"] for row in json.loads(path.read_text())["summary"]}
    assert means["plain"] == pytest.approx(sum(comparison.scores("plain")) / 2)


def test_a_lessons_record_is_found_beside_the_notebook_and_shown_beside_the_run(tmp_path, monkeypatch, capsys,
                                                                              comparison):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    assert experiment.load_record("no_such_record") is None
    assert experiment.load_record("06_decoders").settings["steps"] > 0      # the checkout's lessons/records
    comparison.save(tmp_path / "records" / "06_decoders.json", note="beside the notebook")
    assert experiment.load_record("06_decoders").table() == comparison.table()   # the notebook's folder first
    figure = experiment.beside_record(comparison, "06_decoders")
    printed = capsys.readouterr().out
    assert "beside the notebook" in printed and comparison.table() in printed and len(figure.axes) == 2
    experiment.beside_record(comparison, "no_such_record")
    assert "No record no_such_record.json" in capsys.readouterr().out


def test_load_refuses_a_file_that_is_no_record(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"runs": []}))
    with pytest.raises(ValueError) as error:
        experiment.load(path)
    assert_one_sentence(error, str(path))


@pytest.mark.parametrize("builders, options, needle", [
    ({}, {}, "at least one variant"),
    ({"plain": plain}, {"steps": 0}, "steps must be at least 1"),
    ({"plain": plain}, {"batch_size": 8}, "fewer than one batch of 8"),
])
def test_compare_says_what_is_wrong_in_one_sentence(tiny, builders, options, needle):
    with pytest.raises(ValueError) as error:
        experiment.compare(builders, tiny, **dict(SETTINGS, **options))
    assert_one_sentence(error, needle)
