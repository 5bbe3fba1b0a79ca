"""A run folder: what ``minitorch-seg train`` writes into it, and how a run already there is told apart.

After every epoch a run folder holds:

- ``last.npz``: the newest checkpoint (also written on Ctrl-C, mid-epoch); ``--resume`` reads it;
- ``best.npz``: the checkpoint of the epoch with the best validation mIoU so far;
- ``metrics.csv``: one row per epoch (the scalar columns), for a spreadsheet or pandas;
- ``metrics.jsonl``: the same rows as JSON lines, with the per-class validation IoU (``val_iou``,
  null for a class absent from both the labels and the predictions) and the time each epoch ended;
- ``curves.png``: training and validation loss and validation mIoU, the best epoch marked;
- ``samples/epoch_NNN.png``: a few validation images after epoch NNN, image | ground truth |
  prediction in the Cityscapes palette, so the model can be seen improving; ``samples/legend.png``
  names the palette's colours.

Each file is written whole (temporary file + rename, ``checkpoint.atomic_write_bytes``) and the
logs are rewritten from the run's history, which every checkpoint holds: a resumed run's logs are
those of an uninterrupted one. ``best.npz`` is written before ``last.npz``, so a write that fails
between them never leaves a ``last.npz`` that promises a better ``best.npz`` than the one on disk.
"""
import csv
import io
import json
import math
import os
import time

from PIL import Image

from . import checkpoint
from .outputs import writing

LAST, BEST = "last.npz", "best.npz"
METRICS_CSV, METRICS_JSONL, CURVES, SAMPLES = "metrics.csv", "metrics.jsonl", "curves.png", "samples"
RUN_FILES = (LAST, BEST, METRICS_CSV, METRICS_JSONL, CURVES)
LEGEND = "legend.png"

# zlib's level for the PNGs a run writes after each epoch, and ``minitorch-seg predict``'s
# (``write_png``; Pillow's default is 6). On a 2-core Zen 5 EPYC the default job's sample mosaic
# (four 128x256 images, labels, predictions) took 25 ms to encode at 6 and 14 at 1, for a file a
# sixth larger (287 KB); curves.png, drawn and saved, 66 against 52 ms. At 16 epochs in about 70 s,
# the two saved some 0.4 s of the job. The pixels are the same at any level.
PNG_LEVEL = 1


def holds_run(folder):
    """True if ``folder`` holds any file a training run writes."""
    return any(os.path.lexists(os.path.join(folder, name)) for name in RUN_FILES + (SAMPLES,))


def describe(folder):
    """A few words on the run in ``folder``: "unet, 16 of 16 epochs done, best val mIoU 0.296"."""
    for name in (LAST, BEST):
        try:
            meta = checkpoint.read_meta(os.path.join(folder, name))
        except checkpoint.CheckpointError:
            continue
        epochs = checkpoint.saved_config(meta).get("epochs", "?")
        words = f"{meta.get('model_name', 'a model')}, {meta.get('epoch', '?')} of {epochs} epochs done"
        best = meta.get("best_miou")
        return words + (f", best val mIoU {best:.3f}" if isinstance(best, (int, float)) and best >= 0 else "")
    return "its files " + ", ".join(n for n in RUN_FILES + (SAMPLES,) if os.path.lexists(os.path.join(folder, n)))


def clear(folder):
    """Remove the files a run wrote into ``folder`` (``--overwrite``); anything else there stays."""
    samples = os.path.join(folder, SAMPLES)
    with writing(folder, "nothing of the new run was written yet"):
        for name in RUN_FILES:
            if os.path.lexists(os.path.join(folder, name)):
                os.unlink(os.path.join(folder, name))
        if os.path.isdir(samples):
            for name in os.listdir(samples):
                if name == LEGEND or name.startswith("epoch_") and name.endswith(".png"):
                    os.unlink(os.path.join(samples, name))
            if not os.listdir(samples):
                os.rmdir(samples)


# ---- the logs -----------------------------------------------------------------------------------
def _strict(value):
    """JSON without NaN: a NaN (an IoU with no pixels of its class) becomes null."""
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def write_logs(folder, history, model_name, advice):
    """Rewrite metrics.csv, metrics.jsonl and curves.png from ``history`` (the rows so far)."""
    scalar_keys = []
    for row in history:   # the union in order: rows of runs that predate a column lack it
        scalar_keys += [k for k, v in row.items() if k not in scalar_keys and not isinstance(v, (list, dict))]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=scalar_keys, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    lines = "".join(json.dumps(_strict(row), allow_nan=False) + "\n" for row in history)
    for name, payload in ((METRICS_CSV, text.getvalue().encode()), (METRICS_JSONL, lines.encode())):
        path = os.path.join(folder, name)
        with writing(path, advice):
            checkpoint.atomic_write_bytes(path, payload)
    from .viz import training_curves
    _write_figure(os.path.join(folder, CURVES), training_curves(history, model_name), advice)


def _write_figure(path, figure, advice):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, pil_kwargs={"compress_level": PNG_LEVEL})
    with writing(path, advice):
        checkpoint.atomic_write_bytes(path, buffer.getvalue())


def write_png(path, array, advice="", mode=None):
    """Write a uint8 array as a PNG, atomically; an OSError becomes one sentence (``outputs.writing``)."""
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG", compress_level=PNG_LEVEL)
    with writing(path, advice):
        checkpoint.atomic_write_bytes(path, buffer.getvalue())


def write_samples(folder, epoch, rows, advice):
    """``samples/epoch_NNN.png`` from [(image, label, prediction), ...], and the legend once."""
    from .viz import palette_legend, segmentation_mosaic
    samples = os.path.join(folder, SAMPLES)
    legend = os.path.join(samples, LEGEND)
    if not os.path.exists(legend):
        write_png(legend, palette_legend(), advice)
    write_png(os.path.join(samples, f"epoch_{epoch:03d}.png"), segmentation_mosaic(rows), advice)


def now():
    """The time for a log row: ISO 8601, local time with its UTC offset, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
