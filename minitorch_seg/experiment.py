"""Short comparative training runs: several model variants x seeds on the same data, scored on validation mIoU.

``compare({name: builder}, root, steps=...)`` trains each variant once per seed for the same number
of optimizer steps with the default job's recipe (``train.py``: SGD with momentum 0.9 and weight
decay, a linear warm-up then the poly schedule, random scale, crop and flip, the cross-entropy with
ENet's class weights, ignoring 255) and scores it with ``train.evaluate`` on the validation split.
A run is defined by its steps, not by a time budget, so it is deterministic: the same seed gives the
same mIoU. The seed is set before the builder is called, so seed s draws the initial weights and
the batches' order and augmentation.

A run of a few minutes is noisy: two seeds of one variant can differ by as much as two variants.
``verdict`` calls a difference only when every seed of one variant scores above every seed of the
other; anything else is "within the seeds' spread". ``Comparison.table()`` prints the scores with
those verdicts (against the first variant), ``plot()`` draws them, ``save(path)`` records them as
JSON with the settings, date and machine, and ``load(path)`` reads a record back, so a lesson can
show a recorded full run beside its own quick one.

>>> verdict([0.30, 0.32], [0.35, 0.36])
'better'
>>> verdict([0.30, 0.32], [0.31, 0.36])
"within the seeds' spread"
"""
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field

from . import __version__, parallel
from . import functional as F
from .backend import use_backend
from .checkpoint import atomic_write_bytes
from .data import Cityscapes, DataLoader, RandomScaleCropFlip
from .random import fork_rng, manual_seed
from .train import (IGNORE_INDEX, FirstImages, TrainConfig, build_class_weights, build_optimizer, build_schedule,
                    evaluate)

__all__ = ["Comparison", "Run", "compare", "load", "recorded_now", "verdict"]

BETTER, WORSE, SPREAD = "better", "worse", "within the seeds' spread"
ONE_SEED, UNSCORED = "one seed: no spread to judge by", "not scored in every run"
FORMAT = "minitorch_seg.experiment/1"


def verdict(a_scores, b_scores):
    """How the scores ``b_scores`` compare with ``a_scores`` (one per seed), in words.

    "better" when every score of b is above every score of a, "worse" when every one is below,
    otherwise "within the seeds' spread": the difference is no larger than chance made it between
    seeds. With fewer than two scores on a side there is no spread to judge by, and it says so;
    a NaN score (a class absent from a run's labels and predictions) is no score either.

    >>> verdict([0.30, 0.32], [0.20, 0.25])
    'worse'
    >>> verdict([0.30], [0.40])
    'one seed: no spread to judge by'
    """
    a, b = [float(s) for s in a_scores], [float(s) for s in b_scores]
    if any(math.isnan(s) for s in a + b):
        return UNSCORED
    if min(len(a), len(b)) < 2:
        return ONE_SEED
    if min(b) > max(a):
        return BETTER
    if max(b) < min(a):
        return WORSE
    return SPREAD


@dataclass
class Run:
    """One variant trained with one seed: its validation scores after ``steps`` steps, and its time."""

    name: str
    seed: int
    miou: float
    pixel_accuracy: float
    iou: list                # per class; NaN for a class neither in the labels nor predicted
    seconds: float           # training and evaluation, on the machine of the record
    steps: int
    parameters: int = 0      # trainable numbers of the model
    train_loss: float = math.nan  # mean training loss over the last tenth of the steps


@dataclass
class Comparison:
    """The runs of ``compare`` (or a record read by ``load``), with the settings they were made with."""

    runs: list
    settings: dict = field(default_factory=dict)
    recorded: dict = field(default_factory=dict)   # date, machine, version, note: filled by save, read by load

    @property
    def names(self):
        """The variants, in the order they were given (the first is the one the others are judged against)."""
        return list(dict.fromkeys(run.name for run in self.runs))

    def scores(self, name):
        """The validation mIoU of each seed of variant ``name``, in seed order."""
        return [run.miou for run in sorted((r for r in self.runs if r.name == name), key=lambda r: r.seed)]

    def seeds(self):
        return sorted({run.seed for run in self.runs})

    def summary(self):
        """One dict per variant: name, scores (per seed), mean, verdict against the first, seconds and parameters."""
        rows, first = [], self.names[0]
        for name in self.names:
            runs = [r for r in self.runs if r.name == name]
            scores = self.scores(name)
            rows.append({"name": name, "scores": scores, "mean": sum(scores) / len(scores),
                         "verdict": "(the baseline)" if name == first else verdict(self.scores(first), scores),
                         "seconds": sum(r.seconds for r in runs) / len(runs), "parameters": runs[0].parameters})
        return rows

    def table(self):
        """The comparison as text: one row per variant, mIoU per seed, mean, verdict against the first, time."""
        seeds, rows = self.seeds(), self.summary()
        width = max(len("variant"), *(len(row["name"]) for row in rows))
        verdict_width = max(len("verdict vs " + self.names[0]), *(len(row["verdict"]) for row in rows))
        header = (f"{'variant':<{width}}  " + "  ".join(f"{'seed ' + str(s):>7}" for s in seeds) +
                  f"  {'mean':>6}  {'verdict vs ' + self.names[0]:<{verdict_width}}  {'s/run':>6}  {'weights':>9}")
        lines = [header]
        for row in rows:
            by_seed = {r.seed: r.miou for r in self.runs if r.name == row["name"]}
            cells = "  ".join(f"{by_seed[s]:7.3f}" if s in by_seed else f"{'-':>7}" for s in seeds)
            lines.append(f"{row['name']:<{width}}  {cells}  {row['mean']:6.3f}  {row['verdict']:<{verdict_width}}  "
                         f"{row['seconds']:6.0f}  {row['parameters']:9,}")
        steps = self.settings.get("steps", self.runs[0].steps)
        lines.append(f"(validation mIoU after {steps} steps; 'better'/'worse' only when every seed of one variant "
                     "scores above every seed of the other)")
        return "\n".join(lines)

    def plot(self, ax=None):
        """A bar per variant (the mean over seeds) and a dot per seed; returns the matplotlib Axes."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots(figsize=(1.6 + 1.7 * len(self.names), 3.4), layout="constrained")
        for x, row in enumerate(self.summary()):
            ax.bar(x, row["mean"], width=0.6, color="C0" if x == 0 else "C1", alpha=0.75)
            ax.plot([x] * len(row["scores"]), row["scores"], "k.", ms=8)
        ax.set_xticks(range(len(self.names)), self.names, rotation=15, ha="right")
        ax.set_ylabel("validation mIoU")
        steps = self.settings.get("steps", self.runs[0].steps)
        ax.set_title(f"{steps} steps per run: bar = mean, dot = one seed ({', '.join(map(str, self.seeds()))})",
                     fontsize=10)
        return ax

    def save(self, path, note=None):
        """Write the record as JSON (atomically): runs, settings, summary, date, machine, package version."""
        self.recorded = recorded_now(note)
        payload = {"format": FORMAT, "recorded": self.recorded, "settings": self.settings,
                   "runs": [_plain(asdict(run)) for run in self.runs], "summary": _plain(self.summary())}
        atomic_write_bytes(path, (json.dumps(payload, indent=1) + "\n").encode())


def recorded_now(note=None):
    """When, where and with what a measurement is made: the date, the machine, the package's version
    and ``note`` (the machine in words, its load), as a record keeps them."""
    recorded = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": {
        "platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count()},
        "version": __version__}
    if note:
        recorded["note"] = note
    return recorded


def load(path):
    """The ``Comparison`` a record written by ``Comparison.save`` holds."""
    with open(path) as stream:
        payload = json.load(stream)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a record of experiment.Comparison.save (format {payload.get('format')!r}).")
    runs = [Run(**dict(row, iou=[math.nan if v is None else v for v in row["iou"]])) for row in payload["runs"]]
    return Comparison(runs, payload.get("settings", {}), payload.get("recorded", {}))


def load_record(name):
    """A lesson's recorded run, ``records/NAME.json``: beside the notebook (the folder Jupyter runs it
    in), else in the ``lessons/records`` of the checkout the package is in; None when neither holds it."""
    for folder in ("records", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lessons",
                                           "records")):
        path = os.path.join(folder, f"{name}.json")
        if os.path.exists(path):
            return load(path)
    return None


def beside_record(comparison, name):
    """Your ``comparison`` beside a lesson's recorded one (``load_record(name)``): the record's date,
    machine, note and table printed, then the two figures side by side; returns the Figure."""
    import matplotlib.pyplot as plt
    recorded = load_record(name)
    if recorded is None:
        print(f"No record {name}.json in records/ beside this notebook or in the checkout's lessons/records.")
        return comparison.plot().figure
    when = recorded.recorded
    print(f"recorded {when['date'][:10]} on {when['machine']['cpu_count']} CPUs ({when['machine']['platform']}); "
          f"{when.get('note') or ''}\n{recorded.table()}")
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), sharey=True, layout="constrained")
    for ax, run, who in zip(axes, (comparison, recorded), ("your run", "recorded")):
        run.plot(ax=ax).set_title(f"{who}, {run.settings['steps']} steps: bar = mean, dot = one seed", fontsize=10)
    return fig


def _plain(value):
    """``value`` with NaN as None, for JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def compare(builders, root, steps, seeds=(0, 1), batch_size=4, lr=0.01, input_scale=0.5, class_weights="enet",
            backend="numpy", max_train_images=None, max_val_images=None, log=print, crop=None,
            weight_decay=1e-4, warmup_steps=None):
    """Train every variant of ``builders`` ({name: zero-argument builder of an nn.Module}) once per seed.

    Each run: ``backend.manual_seed(seed)``, then the builder, then ``steps`` steps of SGD (momentum
    0.9, ``weight_decay``, learning rate ``lr`` with ``warmup_steps`` of linear warm-up, default a
    tenth of the steps, then the poly schedule) on batches of ``batch_size`` from ``root``'s train
    split (random scale in [0.75, 1.25] x ``input_scale``, a ``crop``, default the whole image at
    ``input_scale`` cut to a multiple of 32, and flips), with the cross-entropy weighted by
    ``class_weights`` ("enet" or "none"); then ``train.evaluate`` on the val split at full
    resolution. The models take NCHW images and return 19-class logits of the same size.
    The runs seed a fork of the global generator (``random.fork_rng``), which is left as it was.
    ``log`` gets one line per run (None: silent).
    Returns a ``Comparison``.
    """
    if not builders:
        raise ValueError("compare: give at least one variant ({name: builder}).")
    if steps < 1:
        raise ValueError(f"compare: steps must be at least 1, got {steps}.")
    log = log or (lambda line: None)
    train_set = FirstImages(Cityscapes(root, "train"), max_train_images)
    val_set = FirstImages(Cityscapes(root, "val"), max_val_images)
    if len(train_set) < batch_size:
        raise ValueError(f"compare: the training split has {len(train_set)} images, fewer than one batch of "
                         f"{batch_size}; use a smaller batch_size.")
    if crop is None:
        height, width = train_set.target(0).shape
        crop = tuple(max(32, int(side * input_scale) // 32 * 32) for side in (height, width))
    config = TrainConfig(batch_size=batch_size, lr=lr, weight_decay=weight_decay, crop=tuple(crop),
                         warmup_steps=max(1, steps // 10) if warmup_steps is None else warmup_steps,
                         input_scale=input_scale, class_weights=class_weights, backend=backend)
    weights = build_class_weights(config, train_set)
    settings = {"steps": steps, "seeds": list(seeds), "batch_size": batch_size, "lr": lr, "momentum": 0.9,
                "weight_decay": weight_decay, "warmup_steps": config.warmup_steps,
                "schedule": "linear warm-up, poly 0.9",
                "input_scale": input_scale, "crop": list(crop), "class_weights": class_weights, "backend": backend,
                "train_images": len(train_set), "val_images": len(val_set)}
    runs = []
    with use_backend(config.backend), parallel.tile_threads(), fork_rng():   # the caller's generator is left as it was
        for seed in seeds:
            for name, build in builders.items():
                runs.append(_one_run(name, build, seed, steps, config, train_set, val_set, weights))
                run = runs[-1]
                log(f"{name}, seed {seed}: val mIoU {run.miou:.3f}, pixel accuracy {run.pixel_accuracy:.3f}, "
                    f"train loss {run.train_loss:.3f} ({steps} steps, {run.seconds:.0f} s)")
    order = list(builders)
    runs.sort(key=lambda r: (order.index(r.name), r.seed))
    return Comparison(runs, settings)


def _one_run(name, build, seed, steps, config, train_set, val_set, weights):
    start = time.perf_counter()
    manual_seed(seed)
    model = build()
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = build_optimizer(config, model)
    schedule = build_schedule(config, optimizer, steps)
    scale = config.input_scale
    loader = DataLoader(train_set, config.batch_size, shuffle=True, drop_last=True, seed=seed,
                        transform=RandomScaleCropFlip(config.crop, scale_range=(0.75 * scale, 1.25 * scale)))
    model.train()
    step, epoch, tail = 0, 0, []
    while step < steps:
        loader.set_epoch(epoch)
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels, weight=weights, ignore_index=IGNORE_INDEX)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step > steps - max(1, steps // 10):
                tail.append(loss.item())
            if step == steps:
                break
        epoch += 1
    scores = evaluate(model, DataLoader(val_set, config.batch_size), input_scale=scale, weight=weights)
    return Run(name, int(seed), float(scores["miou"]), float(scores["pixel_accuracy"]),
               [float(v) for v in scores["iou"]], time.perf_counter() - start, steps, int(parameters),
               sum(tail) / len(tail))
