"""Run folders of ``minitorch-seg train``: a run is never replaced without --overwrite, --resume
--epochs extends it, a failed start leaves no folder, and what the folder holds (metrics.jsonl,
curves.png, samples/) says what the run did."""
import csv
import json
import os
import signal
import shutil

import numpy
import pytest
from cli_helpers import run_main, tiny_data, tiny_train
from PIL import Image

from minitorch_seg import checkpoint, cli, runs
from minitorch_seg.data import Cityscapes
from minitorch_seg.data.labels import TRAIN_ID_PALETTE, train_ids_to_colors
from minitorch_seg.viz import segmentation_mosaic, training_curves

pytestmark = pytest.mark.cli


@pytest.fixture(autouse=True)
def _no_display(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """A finished 1-epoch run, trained in-process; tests copy it before changing it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main(["train", "--data", str(data), "--epochs", "1", "--batch-size", "2", "--out", str(run)]) == 0
    return run


def copy_of(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def read_rows(run):
    with open(run / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_overwrite_starts_over_and_removes_only_the_runs_files(finished, data, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    (run / "samples" / "epoch_002.png").write_bytes((run / "samples" / "epoch_001.png").read_bytes())
    (run / "notes.txt").write_text("mine")                               # not the run's: it stays
    old_last = (run / "last.npz").read_bytes()
    status, out, err = tiny_train(capsys, data, run, "--overwrite", "--seed", 1)
    assert status == 0, err
    assert "--overwrite: removed the files of the previous run" in err
    assert (run / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "legend.png"]
    assert (run / "last.npz").read_bytes() != old_last
    assert checkpoint.read_meta(str(run / "last.npz"))["config"]["seed"] == 1
    assert [row["epoch"] for row in read_rows(run)] == ["1"]


def test_overwrite_whose_start_fails_leaves_the_old_run_as_it_was(finished, data, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    status, _, err = tiny_train(capsys, data, run, "--overwrite", "--batch-size", 16)   # after tiny_train's 2
    assert status == 2 and "fewer than one batch of 16" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_resume_with_more_epochs_trains_them(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    status, out, err = run_main(capsys, "train", "--resume", "--epochs", 2, "--out", run)
    assert status == 0, err
    assert "extended from 1 to 2 epochs: the schedule is recomputed for 4 steps and continues from step 2" in err
    assert [row["epoch"] for row in read_rows(run)] == ["1", "2"]
    assert float(read_rows(run)[1]["lr"]) == 0                           # the new end of the schedule
    meta = checkpoint.read_meta(str(run / "last.npz"))
    assert (meta["epoch"], meta["config"]["epochs"]) == (2, 2)
    assert (run / "samples" / "epoch_002.png").is_file()


@pytest.mark.parametrize("problem", ["batch larger than the data", "no data there"])
def test_a_failed_start_leaves_no_run_folder(data, tmp_path, capsys, problem):
    out = tmp_path / "new" / "run"
    (tmp_path / "empty").mkdir()
    extra = ("--batch-size", 16) if problem == "batch larger than the data" else ("--data", tmp_path / "empty")
    status, _, err = run_main(capsys, "train", "--data", data, "--epochs", 1, "--out", out, *extra)
    assert status == 2, err
    assert not (tmp_path / "new").exists()


def test_metrics_jsonl_is_strict_json_with_the_csvs_rows(finished):
    rows = read_rows(finished)
    records = [json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
               for line in (finished / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == len(rows) == 1
    for key, value in rows[0].items():
        assert str(records[0][key]) == value or float(value) == pytest.approx(records[0][key], rel=1e-12), key
    ious = records[0]["val_iou"]
    assert len(ious) == 19 and all(v is None or 0 <= v <= 1 for v in ious)
    assert None in ious   # the tiny data lacks classes: their IoU is null, not NaN
    assert numpy.nanmean([numpy.nan if v is None else v for v in ious]) == pytest.approx(records[0]["val_miou"])


def test_the_samples_show_image_truth_and_prediction_in_the_palette(finished, data):
    val = Cityscapes(data, "val")
    with Image.open(finished / "samples" / "epoch_001.png") as picture:
        mosaic = numpy.asarray(picture.convert("RGB"))
    height, width = val[0][0].shape[:2]
    header, gap = 16, 2
    assert mosaic.shape == (header + len(val) * (height + gap), 3 * width + 2 * gap, 3)
    palette = {tuple(c) for c in TRAIN_ID_PALETTE.tolist()}
    for row in range(len(val)):
        image, label = val[row]
        top = header + row * (height + gap)
        panels = [mosaic[top:top + height, c * (width + gap):c * (width + gap) + width] for c in range(3)]
        assert numpy.array_equal(panels[0], image)
        assert numpy.array_equal(panels[1], train_ids_to_colors(label))
        assert {tuple(p) for p in panels[2].reshape(-1, 3).tolist()} <= palette   # a class in every pixel


def test_segmentation_mosaic_pads_rows_of_other_sizes_with_white():
    def sample(height, width, predicted):
        return (numpy.zeros((height, width, 3), numpy.uint8), numpy.zeros((height, width), numpy.int64),
                numpy.full((height, width), predicted, numpy.int64))

    small, large = sample(8, 10, 1), sample(12, 16, 0)
    mosaic = segmentation_mosaic([small, large], gap=2)
    assert mosaic.shape == (16 + 2 * (12 + 2), 3 * 16 + 2 * 2, 3)
    assert (mosaic[16 + 8:16 + 12, :10] == 255).all()                    # below the small image
    assert numpy.array_equal(mosaic[16, 2 * 18:2 * 18 + 10], numpy.broadcast_to(TRAIN_ID_PALETTE[1], (10, 3)))


def test_training_curves_name_the_model_show_the_validation_loss_and_mark_the_best_epoch():
    history = [{"epoch": 1, "train_loss": 2.0, "val_loss": 2.2, "val_miou": 0.10},
               {"epoch": 2, "train_loss": 1.5, "val_loss": 1.6, "val_miou": 0.30},
               {"epoch": 3, "train_loss": 1.2, "val_loss": 1.7, "val_miou": 0.30}]   # a tie: the first is best.npz's
    figure = training_curves(history, "hrnet")
    assert figure._suptitle.get_text() == "hrnet: best validation mIoU 0.300 at epoch 2"
    loss_ax, miou_ax = figure.axes
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    assert list(lines["validation"].get_ydata()) == [2.2, 1.6, 1.7]
    star = [line for line in miou_ax.get_lines() if line.get_label().startswith("best")]
    assert len(star) == 1 and list(star[0].get_xdata()) == [2] and list(star[0].get_ydata()) == [0.30]
    for ax in (loss_ax, miou_ax):   # the dashed line at the best epoch, on both plots
        assert any(list(line.get_xdata()) == [2, 2] for line in ax.get_lines())


def test_training_curves_of_a_run_that_predates_the_validation_loss():
    figure = training_curves([{"epoch": 1, "train_loss": 2.0, "val_miou": 0.1}], "unet")
    assert [line.get_label() for line in figure.axes[0].get_lines() if not line.get_label().startswith("_")] == [
        "training"]


def test_describe_and_holds_run(finished, tmp_path):
    assert runs.holds_run(finished) and not runs.holds_run(tmp_path)
    best = checkpoint.read_meta(str(finished / "best.npz"))["best_miou"]
    assert runs.describe(finished) == f"unet, 1 of 1 epochs done, best val mIoU {best:.3f}"


def test_a_second_ctrl_c_exits_130_saying_nothing_was_saved(data, tmp_path, capsys, monkeypatch):
    from minitorch_seg.train import Trainer

    def two_ctrl_cs(self):   # both arrive before the first step: the second stops the run at once
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Trainer, "_train_epoch", two_ctrl_cs)
    status, out, err = tiny_train(capsys, data, tmp_path / "run")
    assert status == 130 and out == ""
    assert err.strip().splitlines()[-1] == "minitorch-seg train: interrupted: stopped at once; nothing was saved."
    assert not (tmp_path / "run").exists()


def test_resume_when_the_runs_data_is_gone_asks_for_data(tmp_path, capsys):
    data = tiny_data(tmp_path)
    status, _, err = tiny_train(capsys, data, tmp_path / "run")
    assert status == 0, err
    shutil.rmtree(data)
    status, _, err = run_main(capsys, "train", "--resume", "--epochs", 2, "--out", tmp_path / "run")
    assert status == 2
    assert err.strip() == (f"minitorch-seg train: error: The data the run in {tmp_path / 'run'} was trained on, "
                           f"{data}, is gone; pass --data with a Cityscapes-format root to continue on.")
