"""The training job behind ``minitorch-seg train``: data, model, schedule, validation, checkpoints.

A run folder holds ``last.npz`` (written every epoch, and on Ctrl-C mid-epoch), ``best.npz`` (the
best validation mIoU so far), ``metrics.csv`` and ``metrics.jsonl`` (one row per epoch),
``curves.png`` and ``samples/`` (a few validation predictions after each epoch); ``runs.py``
describes each. Every file is written atomically, so a crash never leaves a half-written one,
and a write that fails (a full disk) raises ``outputs.OutputError`` with the files already there
intact. The folder is made when the first file is written, so a run that fails to start leaves
none. ``resume=True`` continues from ``last.npz`` exactly where it stopped: weights, optimizer and
scheduler state, the position in the epoch, and the random generator; the data order and
augmentation are functions of (seed, epoch, index), so the resumed run sees the very batches the
uninterrupted run would have seen (on CuPy, dropout's masks come from a GPU generator that cannot
be saved, ``random.py``: a resumed run draws other ones there).

A ``Trainer`` leaves the caller's state as it found it: it builds and trains in its own scope,
the config's backend, the run's own generator (seeded with ``config.seed``) and ``parallel.py``'s threads.

A run resumed with another number of epochs (``minitorch-seg train --resume --epochs N``) is
extended (or shortened): the schedule is recomputed for the new total and continued from the step
the run reached, that is the learning rate at step t becomes what a run planned for N epochs
would have had at step t, ``lr * (1 - (t - w) / (T - w)) ** 0.9`` for T steps in all and w
warm-up steps. A finished run (its learning rate down to 0) so starts again at the rate of that
plan, ``lr * (2/3) ** 0.9`` for 1 epoch extended to 3, and decays to 0 at the new end.

The defaults are the README's main job, chosen to take a few minutes on 2 CPU cores and still
score well above the position prior: the U-Net sees the data at half resolution
(``input_scale=0.5``: 64x128 for the built-in 128x256 scenes; its logits are resized back for the
metrics, so mIoU is measured at full resolution), which runs each epoch about 2x faster, the loss
weighs rare classes up (ENet's weights, ``data/balance.py``), and SGD at lr 0.05 warms up for 40
steps and decays over 16 epochs. Measured on the built-in data (seed 0, val mIoU after the last
epoch, 2026-12-02): 14 epochs reached 0.282 (0.273 at lr 0.1), 16 epochs 0.296; 24 epochs
reached 0.341 on 2026-11-24 but took half as long again. The position prior scores 0.115;
``benchmarks/README.md`` has the seeds and the time beside PyTorch's.
"""
import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields

from . import backend, checkpoint, models, optim, parallel, runs
from . import functional as F
from .checkpoint import check_training_meta, load_model  # noqa: F401 - public here too, as before
from .creation import tensor
from .data import Cityscapes, DataLoader, InMemory, RandomScaleCropFlip, balance
from .data.labels import IGNORE_INDEX, NUM_CLASSES
from .evaluation import evaluate
from .interrupt import graceful_interrupt
from .outputs import writing
from .progress import Progress, count, duration

SAMPLE_IMAGES = 4   # validation images drawn into samples/ after every epoch
KEEP_DECODED_BYTES = 256 << 20   # each split's images kept decoded after their first epoch (``data/memory.py``)


class TrainingError(ValueError):
    """A training setting that does not fit the data, such as a batch larger than the training split."""


@dataclass
class TrainConfig:
    """Everything that defines a run; saved in every checkpoint."""

    model: str = "unet"
    model_options: dict = field(default_factory=dict)
    epochs: int = 16
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
    def from_saved(cls, meta, path="the checkpoint"):
        """The config a checkpoint's meta saved; options it predates take the values runs had before them."""
        saved = checkpoint.saved_config(meta)
        unknown = sorted(set(saved) - {f.name for f in fields(cls)})
        if unknown:
            raise checkpoint.CheckpointError(f"{path} was saved with options this version does not know "
                                             f"({', '.join(unknown)}); resume it with the version that made it.")
        return cls(**saved)


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


class FirstImages:
    """The first ``count`` images of ``dataset`` (all of them for 0 or None): quick runs on less data."""

    def __init__(self, dataset, count):
        self.dataset, self.count = dataset, min(count, len(dataset)) if count else len(dataset)

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return self.dataset[index]

    def target(self, index):
        return self.dataset.target(index)


class Trainer:
    """One run: ``Trainer(config, data_root, out_dir).run(resume=False)``.

    ``log``: called with each line of news (one per epoch, resuming, interrupting); ``print`` by
    default. ``progress``: tqdm bars (True), plain lines only (False), or bars when stderr is a
    terminal (None, the default); see ``progress.py``.
    """

    def __init__(self, config, data_root, out_dir, log=print, progress=None):
        self.config, self.out_dir, self.log, self.bars = config, out_dir, log, progress
        self.data_root = os.path.abspath(data_root)  # saved, so `train --resume` finds the run's own data
        if not 0 < config.input_scale <= 1:
            raise ValueError(f"input_scale must be in (0, 1], got {config.input_scale}.")
        self._rng_state = backend.seed_state(config.seed)
        with self._scope():
            self._build(config, data_root)

    @contextlib.contextmanager
    def _scope(self):
        """The run's backend, its random generator and the host threads inside; the caller's after."""
        with backend.use_backend(self.config.backend), backend.fork_rng(), parallel.tile_threads():
            backend.set_rng_state(self._rng_state)
            try:
                yield
            finally:
                self._rng_state = backend.get_rng_state()

    def _build(self, config, data_root):
        """The data, the model (its weights drawn from the run's generator), the optimizer and the schedule."""
        self.stop_requested = False
        train_set = InMemory(FirstImages(Cityscapes(data_root, "train"), config.max_train_images), KEEP_DECODED_BYTES)
        val_set = InMemory(FirstImages(Cityscapes(data_root, "val"), config.max_val_images), KEEP_DECODED_BYTES)
        self.train_loader = DataLoader(train_set, config.batch_size, shuffle=True, drop_last=True, seed=config.seed,
                                       transform=RandomScaleCropFlip(tuple(config.crop), scale_range=(
                                           0.75 * config.input_scale, 1.25 * config.input_scale)),
                                       prefetch=config.prefetch, backend=config.backend)
        self.val_loader = DataLoader(val_set, config.batch_size, prefetch=config.prefetch, backend=config.backend)
        if len(self.train_loader) == 0:
            raise TrainingError(f"The training split has {len(train_set)} images, fewer than one batch of "
                                f"{config.batch_size}; use a smaller batch size.")
        self.model = models.build(config.model, num_classes=NUM_CLASSES, **config.model_options).to(config.dtype)
        self.optimizer = build_optimizer(config, self.model)
        self.class_weights = build_class_weights(config, train_set)
        self.total_steps = config.epochs * len(self.train_loader)
        self.schedule = build_schedule(config, self.optimizer, self.total_steps)
        self.epoch, self.batch_in_epoch, self.best_miou, self.history = 0, 0, -1.0, []
        self.loss_sum, self.loss_count = 0.0, 0  # this epoch's so far: checkpointed, so a resumed epoch's mean is whole
        self.saved_at = None   # (epoch, batch_in_epoch) of the last.npz on disk, for the message of a second Ctrl-C
        self.progress = None

    # ---- checkpoints ------------------------------------------------------------------------
    def _advice(self):
        """What to do after a failed write, for its one sentence."""
        then = "continue with --resume" if self.saved_at is not None else "train again"
        return f"the files already in {self.out_dir} are whole, so make room or fix permissions, then {then}"

    def _save(self, name):
        path = os.path.join(self.out_dir, name)
        config = asdict(self.config)
        model_name, model_options = config.pop("model"), config.pop("model_options")  # the model's keys hold them
        with writing(path, self._advice()):
            checkpoint.save(path, self.model, self.optimizer, self.schedule, config=config,
                            model_name=model_name, model_options=model_options, num_classes=NUM_CLASSES,
                            normalization={"mean": list(self.train_loader.mean), "std": list(self.train_loader.std)},
                            epoch=self.epoch, batch_in_epoch=self.batch_in_epoch, best_miou=self.best_miou,
                            history=self.history, loss_sum=self.loss_sum, loss_count=self.loss_count,
                            data_root=self.data_root, class_weight_values=None if self.class_weights is None
                            else backend.to_numpy(self.class_weights.data).tolist())
        if name == runs.LAST:
            self.saved_at = (self.epoch, self.batch_in_epoch)

    def _restore(self, path):
        """The run in ``path`` taken up: weights, optimizer, schedule, position, generator (in ``run``'s scope)."""
        meta, state, optimizer_arrays = checkpoint.read(path)
        check_training_meta(meta, path)
        if meta.get("model_name") != self.config.model:
            raise checkpoint.CheckpointError(f"Checkpoint {path} is from model {meta.get('model_name')!r}, not "
                                             f"{self.config.model!r}; pass --model {meta.get('model_name')} or another --out.")
        self.model.load_state_dict(state)
        checkpoint.restore_optimizer(self.optimizer, meta, optimizer_arrays)
        backend.set_rng_state(meta["rng"])
        self.epoch, self.batch_in_epoch = meta["epoch"], meta["batch_in_epoch"]
        self.best_miou, self.history = meta["best_miou"], meta["history"]
        self.loss_sum, self.loss_count = meta.get("loss_sum", 0.0), meta.get("loss_count", 0)
        self.saved_at = (self.epoch, self.batch_in_epoch)
        if meta.get("class_weight_values") is not None:  # the run's own weights, even if --data changed since
            self.class_weights = tensor(meta["class_weight_values"], dtype=self.config.dtype)
        saved_epochs = checkpoint.saved_config(meta).get("epochs", self.config.epochs)
        if saved_epochs == self.config.epochs:
            self.schedule.load_state_dict(meta["scheduler"])
            return
        # Another number of epochs: the schedule built for the new total, at the step the run reached.
        step = self.epoch * len(self.train_loader) + self.batch_in_epoch
        for _ in range(step):
            self.schedule.step()
        self.log(f"{'extended' if self.config.epochs > saved_epochs else 'shortened'} from {saved_epochs} to "
                 f"{self.config.epochs} epochs: the schedule is recomputed for {self.total_steps} steps and "
                 f"continues from step {step} at lr {self.optimizer.param_groups[0]['lr']:.4g}")

    # ---- the loop ---------------------------------------------------------------------------
    def run(self, resume=False):
        """Train to the last epoch; returns {"best_miou", "history", "interrupted"}.

        The first Ctrl-C (SIGINT) asks the loop to stop after the step in progress, so the
        checkpoint it saves is consistent (never half an optimizer update); a second one stops at
        once, raising KeyboardInterrupt whose message says what ``last.npz`` holds, if anything.
        """
        with self._scope():
            return self._run(resume)

    def _run(self, resume):
        last = os.path.join(self.out_dir, runs.LAST)
        if resume:
            if not os.path.exists(last):
                raise checkpoint.CheckpointError(f"Nothing to resume: {last} does not exist.")
            self._restore(last)
            self.log(f"resumed from {last} at {_position(self.epoch, self.batch_in_epoch)}")
        steps = len(self.train_loader)
        done = self.epoch * steps + self.batch_in_epoch
        self.progress = Progress(self.bars, self.log, self.config.epochs * steps, done)
        self.progress.log(f"{self.config.model}: {count(len(self.train_loader.dataset), 'training image')}, "
                          f"{count(steps, 'step')} an epoch, {count(self.config.epochs, 'epoch')}; "
                          f"{count(len(self.val_loader.dataset), 'validation image')}; run folder {self.out_dir}")
        try:
            with graceful_interrupt(self):
                while self.epoch < self.config.epochs and not self.stop_requested:
                    self._train_epoch()
                    if not self.stop_requested:
                        self._end_epoch()
                if self.stop_requested:
                    self.progress.log(f"Ctrl-C: saving {last} (Ctrl-C again stops at once, without saving)")
                    self._save(runs.LAST)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(self._abort_message()) from None
        finally:
            self.progress.close()
        if self.stop_requested:
            self.log(f"interrupted: saved {last} at {_position(self.epoch, self.batch_in_epoch)}; "
                     "continue with --resume")
        return {"best_miou": self.best_miou, "history": self.history, "interrupted": self.stop_requested}

    def _abort_message(self):
        last = os.path.join(self.out_dir, runs.LAST)
        if self.saved_at is None:
            return "stopped at once; nothing was saved"
        return f"stopped at once, without saving; {last} holds the run at {_position(*self.saved_at)}, " \
               "continue from there with --resume"

    def _train_epoch(self):
        self.model.train()
        loader = self.train_loader
        loader.set_epoch(self.epoch, start_batch=self.batch_in_epoch)
        self.epoch_started, seen = time.perf_counter(), 0
        batches = self.progress.train(loader, self.batch_in_epoch, f"epoch {self.epoch + 1}/{self.config.epochs}")
        for images, labels in batches:
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
            self.progress.step(loss=f"{value:.3f}", img_s=f"{seen / (time.perf_counter() - self.epoch_started):.1f}",
                               data_wait=f"{loader.wait_seconds:.1f}s")
        self.progress.end_epoch()
        self.train_loss = self.loss_sum / max(self.loss_count, 1)
        self.images_per_second = seen / max(time.perf_counter() - self.epoch_started, 1e-9)

    def _end_epoch(self):
        metrics = evaluate(self.model, self.progress.validate(self.val_loader), input_scale=self.config.input_scale,
                           weight=self.class_weights, keep=SAMPLE_IMAGES)
        self.epoch, self.batch_in_epoch, self.loss_sum, self.loss_count = self.epoch + 1, 0, 0.0, 0
        row = {"epoch": self.epoch, "step": self.epoch * len(self.train_loader), "train_loss": self.train_loss,
               "val_loss": metrics["loss"], "val_miou": metrics["miou"],
               "val_pixel_accuracy": metrics["pixel_accuracy"],
               "lr": self.optimizer.param_groups[0]["lr"], "images_per_second": self.images_per_second,
               "seconds": time.perf_counter() - self.epoch_started, "time": runs.now(),
               "val_iou": [None if math.isnan(v) else v for v in metrics["iou"]]}
        self.history.append(row)
        improved = metrics["miou"] > self.best_miou
        if improved:
            self.best_miou = metrics["miou"]
            self._save(runs.BEST)   # before last.npz: see runs.py
        self._save(runs.LAST)
        runs.write_logs(self.out_dir, self.history, self.config.model, self._advice())
        runs.write_samples(self.out_dir, self.epoch, self._samples(metrics["predictions"]), self._advice())
        self.progress.log(f"epoch {self.epoch}/{self.config.epochs}: train loss {self.train_loss:.3f}, val loss "
                          f"{metrics['loss']:.3f}, val mIoU {metrics['miou']:.3f}{' (best)' if improved else ''}, "
                          f"pixel accuracy {metrics['pixel_accuracy']:.3f}, {self.images_per_second:.1f} img/s, "
                          f"{duration(row['seconds'])}; {self.progress.time_left()}")

    def _samples(self, predictions):
        """[(image, label, prediction)] for the first few validation images, with the predictions the
        validation pass just made (``evaluate``'s ``keep``): drawing them runs no model. Running
        the model again on the four took 45 ms an epoch in the default job on a 2-core EPYC."""
        dataset = self.val_loader.dataset
        return [(*dataset[index], prediction) for index, prediction in enumerate(predictions)]


def _position(epoch, batch_in_epoch):
    """Where a run stands, in words: "the end of epoch 3", "batch 5 of epoch 4"."""
    return f"the end of epoch {epoch}" if batch_in_epoch == 0 else f"batch {batch_in_epoch} of epoch {epoch + 1}"
