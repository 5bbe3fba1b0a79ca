"""The training job behind ``minitorch-seg train``: data, model, schedule, validation, checkpoints.

A run folder holds ``last.npz`` (written every epoch, and on Ctrl-C mid-epoch), ``best.npz`` (the
best validation mIoU so far), ``metrics.csv`` (one row per epoch) and ``curves.png``. Every file
is written atomically, so a crash never leaves a half-written one. ``resume=True`` continues from
``last.npz`` exactly where it stopped: weights, optimizer and scheduler state, the position in the
epoch, and the random generator; the data order and augmentation are functions of (seed, epoch,
index), so the resumed run sees the very batches the uninterrupted run would have seen.

The defaults are the README's main job, chosen to learn as much as it can in under 5 minutes on
2 CPU cores: the U-Net sees the data at half resolution (``input_scale=0.5``: 64x128 for the
built-in 128x256 scenes; its logits are resized back for the metrics, so mIoU is measured at
full resolution), which runs each epoch about 2x faster and let 24 epochs fit, and the loss weighs
rare classes up (ENet's weights, ``data/balance.py``). Measured on the built-in data (seed 0):
8 epochs at full resolution reached val mIoU 0.178, 14 epochs with class weights 0.221, and 28
half-resolution epochs with class weights 0.330 in about the same time.
"""
import csv
import io
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field

from . import backend, checkpoint, models, optim, parallel
from . import functional as F
from .autograd import no_grad
from .creation import tensor
from .data import Cityscapes, DataLoader, RandomScaleCropFlip, balance
from .metrics import ConfusionMatrix
from .predict import segment

NUM_CLASSES = 19
IGNORE_INDEX = 255


@dataclass
class TrainConfig:
    """Everything that defines a run; saved in every checkpoint."""

    model: str = "unet"
    model_options: dict = field(default_factory=dict)
    epochs: int = 24
    batch_size: int = 8
    lr: float = 0.05
    optimizer: str = "sgd"
    weight_decay: float = 1e-4
    warmup_steps: int = 40
    crop: tuple = (64, 128)    # the training crop, in the model's pixels (after input_scale)
    input_scale: float = 0.5   # the model sees images resized by this, in training and evaluation
    class_weights: str = "enet"  # or "none"; "enet" weighs class k by 1/ln(1.02 + its pixel share), data/balance.py
    seed: int = 0
    backend: str = "numpy"
    prefetch: bool = True
    max_train_images: int = 0  # 0: all of them (a smaller number makes quick runs for tests)
    max_val_images: int = 0
    dtype: str = "float32"     # float64 for exact-resume tests

    @classmethod
    def from_saved(cls, meta):
        """The config a checkpoint's meta saved; options it predates take the values runs had before them."""
        return cls(**checkpoint.saved_config(meta))


def build_optimizer(config, model):
    if config.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"Unknown optimizer {config.optimizer!r}; expected 'sgd' or 'adamw'.")


def build_schedule(config, optimizer, total_steps):
    """A linear warm-up, then the poly schedule (power 0.9) of DeepLab and HRNet down to 0."""
    warmup = min(config.warmup_steps, max(total_steps - 1, 1))
    return optim.lr_scheduler.SequentialLR(optimizer, [
        optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup),
        optim.lr_scheduler.PolynomialLR(optimizer, total_iters=max(total_steps - warmup, 1), power=0.9),
    ], milestones=[warmup])


def build_class_weights(config, train_set):
    """The loss's class weights (a tensor), or None for "none"; "enet" counts the training labels' pixels."""
    if config.class_weights == "none":
        return None
    if config.class_weights == "enet":
        counts = balance.pixel_counts(train_set, NUM_CLASSES)
        return tensor(balance.enet_weights(counts), dtype=config.dtype)
    raise ValueError(f"Unknown class_weights {config.class_weights!r}; expected 'none' or 'enet'.")


class _Subset:
    def __init__(self, dataset, count):
        self.dataset, self.count = dataset, min(count, len(dataset)) if count else len(dataset)

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return self.dataset[index]

    def target(self, index):
        return self.dataset.target(index)


@no_grad()
def evaluate(model, loader, num_classes=NUM_CLASSES, input_scale=1.0):
    """Validation metrics (mIoU, pixel accuracy, per-class IoU) of ``model`` over ``loader``."""
    was_training = model.training
    model.eval()
    confusion = ConfusionMatrix(num_classes, IGNORE_INDEX)
    dtype = next(iter(model.parameters())).dtype  # the loader makes float32; a float64 model needs float64 input
    for images, labels in loader:
        if images.dtype != dtype:
            images = images.to(dtype)
        confusion.update(segment(model, images, input_scale), labels)  # at the labels' full resolution
    model.train(was_training)
    return confusion.compute()


class Trainer:
    """One run: ``Trainer(config, data_root, out_dir).run(resume=False)``."""

    def __init__(self, config, data_root, out_dir, log=print, progress=True):
        self.config, self.out_dir, self.log, self.progress = config, out_dir, log, progress
        self.data_root = os.path.abspath(data_root)  # saved, so `train --resume` finds the run's own data
        if not 0 < config.input_scale <= 1:
            raise ValueError(f"input_scale must be in (0, 1], got {config.input_scale}.")
        backend.set_backend(config.backend)
        backend.manual_seed(config.seed)
        self.stop_requested = False
        train_set = _Subset(Cityscapes(data_root, "train"), config.max_train_images)
        val_set = _Subset(Cityscapes(data_root, "val"), config.max_val_images)
        self.train_loader = DataLoader(train_set, config.batch_size, shuffle=True, drop_last=True, seed=config.seed,
                                       transform=RandomScaleCropFlip(tuple(config.crop), scale_range=(
                                           0.75 * config.input_scale, 1.25 * config.input_scale)),
                                       prefetch=config.prefetch)
        self.val_loader = DataLoader(val_set, config.batch_size, prefetch=config.prefetch)
        if len(self.train_loader) == 0:
            raise ValueError(f"The training split has {len(train_set)} images, fewer than one batch of {config.batch_size}.")
        self.model = models.build(config.model, num_classes=NUM_CLASSES, **config.model_options).to(config.dtype)
        self.optimizer = build_optimizer(config, self.model)
        self.class_weights = build_class_weights(config, train_set)
        self.total_steps = config.epochs * len(self.train_loader)
        self.schedule = build_schedule(config, self.optimizer, self.total_steps)
        self.epoch, self.batch_in_epoch, self.best_miou, self.history = 0, 0, -1.0, []
        self.loss_sum, self.loss_count = 0.0, 0  # this epoch's so far: checkpointed, so a resumed epoch's mean is whole

    # ---- checkpoints ------------------------------------------------------------------------
    def _save(self, name):
        checkpoint.save(os.path.join(self.out_dir, name), self.model, self.optimizer, self.schedule,
                        config=asdict(self.config), model_name=self.config.model,
                        model_options=self.config.model_options, num_classes=NUM_CLASSES,
                        normalization={"mean": list(self.train_loader.mean), "std": list(self.train_loader.std)},
                        epoch=self.epoch, batch_in_epoch=self.batch_in_epoch, best_miou=self.best_miou,
                        history=self.history, loss_sum=self.loss_sum, loss_count=self.loss_count,
                        data_root=self.data_root, class_weight_values=None if self.class_weights is None
                        else backend.to_numpy(self.class_weights.data).tolist())

    def _restore(self, path):
        meta, state, optimizer_arrays = checkpoint.read(path)
        if meta.get("model_name") != self.config.model:
            raise checkpoint.CheckpointError(f"Checkpoint {path} is from model {meta.get('model_name')!r}, not "
                                             f"{self.config.model!r}; pass --model {meta.get('model_name')} or another --out.")
        self.model.load_state_dict(state)
        checkpoint.restore_optimizer(self.optimizer, meta, optimizer_arrays)
        self.schedule.load_state_dict(meta["scheduler"])
        backend.set_rng_state(meta["rng"])
        self.epoch, self.batch_in_epoch = meta["epoch"], meta["batch_in_epoch"]
        self.best_miou, self.history = meta["best_miou"], meta["history"]
        self.loss_sum, self.loss_count = meta.get("loss_sum", 0.0), meta.get("loss_count", 0)
        if meta.get("class_weight_values") is not None:  # the run's own weights, even if --data changed since
            self.class_weights = tensor(meta["class_weight_values"], dtype=self.config.dtype)

    # ---- the loop ---------------------------------------------------------------------------
    def run(self, resume=False):
        """Train to the last epoch; returns {"best_miou", "history", "interrupted"}.

        The first Ctrl-C (SIGINT) asks the loop to stop after the step in progress, so the
        checkpoint it saves is consistent (never half an optimizer update); a second one aborts.
        """
        os.makedirs(self.out_dir, exist_ok=True)
        last = os.path.join(self.out_dir, "last.npz")
        if resume:
            if not os.path.exists(last):
                raise checkpoint.CheckpointError(f"Nothing to resume: {last} does not exist.")
            self._restore(last)
            self.log(f"resumed from {last} at epoch {self.epoch + 1}, batch {self.batch_in_epoch}")
        with _graceful_interrupt(self), parallel.tile_threads():  # conv tiles over the cores (parallel.py)
            while self.epoch < self.config.epochs and not self.stop_requested:
                self._train_epoch()
                if not self.stop_requested:
                    self._end_epoch()
        if self.stop_requested:
            self._save("last.npz")
            self.log(f"interrupted: saved {last} at epoch {self.epoch + 1}, batch {self.batch_in_epoch}; "
                     "continue with --resume")
        return {"best_miou": self.best_miou, "history": self.history, "interrupted": self.stop_requested}

    def _train_epoch(self):
        self.model.train()
        loader = self.train_loader
        loader.set_epoch(self.epoch, start_batch=self.batch_in_epoch)
        bar = _progress(loader, total=len(loader), initial=self.batch_in_epoch, enabled=self.progress,
                        desc=f"epoch {self.epoch + 1}/{self.config.epochs}")
        start, seen = time.perf_counter(), 0
        for images, labels in bar:
            if self.stop_requested:
                break
            if images.dtype != self.config.dtype:
                images = images.to(self.config.dtype)
            loss = F.cross_entropy(self.model(images), labels, weight=self.class_weights, ignore_index=IGNORE_INDEX)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            self.batch_in_epoch += 1
            seen += images.shape[0]
            value = loss.item()  # the one transfer per step: the progress bar's loss
            self.loss_sum, self.loss_count = self.loss_sum + value, self.loss_count + 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{value:.3f}", img_s=f"{seen / (time.perf_counter() - start):.1f}",
                                data_wait=f"{loader.wait_seconds:.1f}s")
        self.train_loss = self.loss_sum / max(self.loss_count, 1)
        self.images_per_second = seen / max(time.perf_counter() - start, 1e-9)

    def _end_epoch(self):
        metrics = evaluate(self.model, self.val_loader, input_scale=self.config.input_scale)
        self.epoch, self.batch_in_epoch, self.loss_sum, self.loss_count = self.epoch + 1, 0, 0.0, 0
        row = {"epoch": self.epoch, "train_loss": self.train_loss, "val_miou": metrics["miou"],
               "val_pixel_accuracy": metrics["pixel_accuracy"], "lr": self.optimizer.param_groups[0]["lr"],
               "images_per_second": self.images_per_second}
        self.history.append(row)
        improved = metrics["miou"] > self.best_miou
        if improved:
            self.best_miou = metrics["miou"]
        self._save("last.npz")
        if improved:
            self._save("best.npz")
        write_metrics_csv(os.path.join(self.out_dir, "metrics.csv"), self.history)
        plot_curves(os.path.join(self.out_dir, "curves.png"), self.history)
        self.log(f"epoch {self.epoch}: loss {self.train_loss:.3f}, val mIoU {metrics['miou']:.3f}, "
                 f"pixel accuracy {metrics['pixel_accuracy']:.3f}, {self.images_per_second:.1f} img/s"
                 + (" (best)" if improved else ""))


class _graceful_interrupt:  # noqa: N801 - a context manager used like a function
    """While training, SIGINT sets ``trainer.stop_requested``; a second SIGINT raises KeyboardInterrupt."""

    def __init__(self, trainer):
        self.trainer, self.previous = trainer, None

    def _handle(self, signum, frame):
        if self.trainer.stop_requested:
            raise KeyboardInterrupt
        self.trainer.stop_requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _progress(iterable, total, initial, enabled, desc):
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)


def write_metrics_csv(path, history):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    checkpoint.atomic_write_bytes(path, text.getvalue().encode())


def plot_curves(path, history):
    """Training loss and validation mIoU per epoch, side by side, as a PNG.

    Drawn on a bare ``Figure``, without pyplot: no global backend switch (``matplotlib.use("Agg")``
    here turned off a notebook's inline plots after training) and no figure left open.
    """
    from matplotlib.figure import Figure
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(8, 3))
    left, right = figure.subplots(1, 2)
    left.plot(epochs, [row["train_loss"] for row in history], marker="o")
    left.set(xlabel="epoch", ylabel="training loss", title="loss")
    right.plot(epochs, [row["val_miou"] for row in history], marker="o", color="tab:green")
    right.set(xlabel="epoch", ylabel="validation mIoU", title="mIoU", ylim=(0, max(0.1, math.ceil(
        max(row["val_miou"] for row in history) * 10) / 10)))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    checkpoint.atomic_write_bytes(path, buffer.getvalue())


def load_model(path, backend_name=None):
    """(model in eval mode, checkpoint meta) from a checkpoint file, on ``backend_name`` (default: current)."""
    meta, state, _ = checkpoint.read(path)
    with backend.use_backend(backend_name or backend.get_backend()):
        model = models.build(meta["model_name"], num_classes=meta["num_classes"], **meta.get("model_options", {}))
        model.load_state_dict(state)
    return model.eval(), meta


