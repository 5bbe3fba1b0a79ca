"""What each ``minitorch-seg`` command does, given its parsed arguments; ``cli.py`` parses them.

Each function takes the ``argparse`` namespace and returns the exit status; a mistake the user
can fix raises ``CommandError`` (or one of the project's error types, ``cli.user_errors``) with
one sentence, and ``cli.main`` prints it. By the time a command runs, ``cli.main`` has checked
its ``--backend`` and made it current, and entered the host-thread mode for the commands that
run a model here (``train``'s ``Trainer`` enters its own).
"""
import json
import os
import sys

from . import backend

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
RESUME_MAY_CHANGE = "--epochs, --data and --backend"
ADAMW_LR = 1e-3


class CommandError(Exception):
    """A user error: printed as one sentence, exit status 2."""


def news(line):
    """Progress and news: stderr, so stdout holds only a command's results."""
    print(line, file=sys.stderr, flush=True)


def make_data(args):
    from .data import make_dataset
    print(make_dataset(out=args.out, train=args.train, val=args.val, size=args.size, seed=args.seed, log=news))
    return 0


def _data_root(args):
    if args.data:
        if not os.path.isdir(args.data):
            raise CommandError(f"--data {args.data} is not a folder; expected a Cityscapes-format root "
                               "(leftImg8bit/ and gtFine/), or leave --data out to use the built-in subset.")
        return args.data
    from .data import make_dataset
    return make_dataset(log=news)


# The options a resumed run takes from its checkpoint: (option, TrainConfig field).
SAVED_OPTIONS = (("--batch-size", "batch_size"), ("--lr", "lr"), ("--optimizer", "optimizer"),
                 ("--input-scale", "input_scale"), ("--class-weights", "class_weights"), ("--seed", "seed"))


def _resumed_config(out, args):
    """The saved run's config, with a new --epochs; any other setting given must be the run's own."""
    from . import checkpoint, runs
    from .progress import count
    from .train import TrainConfig
    last = os.path.join(out, runs.LAST)
    meta = checkpoint.read_meta(last)
    checkpoint.check_training_meta(meta, last)
    config = TrainConfig.from_saved(meta, last)
    if args.model is not None and args.model != config.model:
        raise CommandError(f"{last} is a checkpoint of model {config.model!r}, not {args.model!r}; "
                           "resume it without --model or train the other model into another --out.")
    changed = [f"{option} {getattr(args, name)} (the run's is {getattr(config, name)})"
               for option, name in SAVED_OPTIONS
               if getattr(args, name) is not None and getattr(args, name) != getattr(config, name)]
    if changed:
        raise CommandError(f"{' and '.join(changed)} would change the run in {out}, which --resume continues as "
                           f"it was; leave {'them' if len(changed) > 1 else 'it'} out (only {RESUME_MAY_CHANGE} "
                           "may change), or train a new run into another --out.")
    if args.epochs is not None:
        if args.epochs <= meta["epoch"]:
            raise CommandError(f"--epochs {args.epochs} would train nothing: the run in {out} has trained "
                               f"{count(meta['epoch'], 'epoch')} already; give a larger total to train it longer.")
        config.epochs = args.epochs
    elif meta["epoch"] >= config.epochs:
        raise CommandError(f"The run in {out} is finished ({meta['epoch']} of {config.epochs} epochs); resume it "
                           f"with a larger --epochs to train it longer, or see how it does with minitorch-seg "
                           f"evaluate {out}.")
    config.backend = args.backend
    if args.data is None:   # the run's own data unless --data says otherwise
        args.data = meta.get("data_root")
        if args.data and not os.path.isdir(args.data):
            raise CommandError(f"The data the run in {out} was trained on, {args.data}, is gone; pass --data "
                               "with a Cityscapes-format root to continue on.")
    return config


def _new_config(args):
    from .train import TrainConfig
    config = TrainConfig(model=args.model or "unet", backend=args.backend)
    for name in ("epochs", "batch_size", "lr", "optimizer", "class_weights", "input_scale", "seed"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    if config.optimizer == "adamw" and args.lr is None:
        config.lr = ADAMW_LR
    return config


def train(args):
    from . import models, runs
    from .outputs import check_writable
    from .train import Trainer
    if args.model is not None and args.model not in models.available():
        raise CommandError(f"Unknown model {args.model!r}; known models: {', '.join(models.available())}.")
    out = args.out or os.path.join("runs", args.model or "unet")
    check_writable(out, "--out", subfolders=(runs.SAMPLES,))   # before any work, and nothing made yet
    if args.resume:
        config = _resumed_config(out, args)
    elif runs.holds_run(out) and not args.overwrite:
        raise CommandError(f"{out} already holds a run ({runs.describe(out)}); continue it with --resume, "
                           "start it over with --overwrite, or choose another --out.")
    else:
        config = _new_config(args)
    backend.tune_host_allocator()
    trainer = Trainer(config, _data_root(args), out, log=news)   # the data and the model: the start can fail here
    if args.overwrite and runs.holds_run(out):
        runs.clear(out)
        news(f"--overwrite: removed the files of the previous run in {out}")
    summary = trainer.run(resume=args.resume)
    if summary["interrupted"]:
        return EXIT_INTERRUPTED
    print(f"best validation mIoU {summary['best_miou']:.3f}; checkpoints, metrics, curves and samples in {out}")
    return 0


def _checkpoint_path(path):
    if os.path.isdir(path):
        best = os.path.join(path, "best.npz")
        if not os.path.exists(best):
            raise CommandError(f"{path} holds no best.npz; pass a checkpoint file or a run folder of minitorch-seg train.")
        return best
    if not os.path.exists(path):
        raise CommandError(f"{path} does not exist; expected a run folder or a .npz checkpoint.")
    return path


def evaluate(args):
    from .checkpoint import load_model, saved_config
    from .creation import tensor
    from .data import Cityscapes, DataLoader
    from .data.labels import CLASS_NAMES
    from .evaluation import evaluate as validation_metrics
    model, meta = load_model(_checkpoint_path(args.checkpoint))
    norm = meta.get("normalization", {})
    loader = DataLoader(Cityscapes(_data_root(args), args.split), batch_size=4, **norm)
    batches = loader
    if sys.stderr.isatty():
        from tqdm import tqdm
        batches = tqdm(loader, desc=f"evaluating on {args.split}", unit="batch", leave=False, file=sys.stderr)
    weights = meta.get("class_weight_values")   # the run's: the loss is then the val_loss of its metrics.csv
    metrics = validation_metrics(model, batches, meta["num_classes"], saved_config(meta)["input_scale"],
                                 weight=None if weights is None else tensor(weights, dtype=next(iter(model.parameters())).dtype))
    if args.json:  # strict JSON: an absent class's NaN becomes null
        def nan_to_null(v):
            return [nan_to_null(x) for x in v] if isinstance(v, list) else None if v != v else v
        print(json.dumps({key: nan_to_null(value) for key, value in metrics.items()}, allow_nan=False))
        return 0
    for name, iou in zip(CLASS_NAMES, metrics["iou"]):
        print(f"{name:<15} {iou:6.3f}" if iou == iou else f"{name:<15}    n/a")
    print(f"{'mIoU':<15} {metrics['miou']:6.3f}\n{'pixel accuracy':<15} {metrics['pixel_accuracy']:6.3f}")
    print(f"{'loss':<15} {metrics['loss']:6.3f}")
    return 0


def predict(args):
    from .outputs import check_writable
    from .predict import FOLDERS, output_names, predict_files
    from .checkpoint import load_model
    for image in args.images:
        if not os.path.isfile(image):
            raise CommandError(f"Image {image} does not exist.")
    output_names(args.images)                              # two inputs for one output name: refused now
    check_writable(args.out, "--out", subfolders=FOLDERS)  # before the model is loaded
    model, meta = load_model(_checkpoint_path(args.checkpoint))
    for written in predict_files(model, meta, args.images, args.out):
        print(written)
    return 0


def grade(args):
    from .grade import grade
    return 0 if grade(args.notebooks, timeout=args.timeout) else 1


def _new_file(path, overwrite):
    """Refuse to replace an existing ``--out`` file unless ``--overwrite``; check its folder is writable."""
    from .outputs import check_writable
    if os.path.isdir(path):
        raise CommandError(f"--out {path} is a folder; expected a file name.")
    if os.path.exists(path) and not overwrite:
        raise CommandError(f"--out {path} exists; pass --overwrite to replace it, or choose another name.")
    check_writable(os.path.dirname(os.path.abspath(path)))


def convert(args):
    from . import convert
    _new_file(args.out, args.overwrite)
    try:
        conversion = convert.convert_checkpoint(args.checkpoint, args.model, args.num_classes)
    except convert.ConvertError as error:
        raise CommandError(str(error)) from None
    print(convert.format_table(conversion.table), file=sys.stderr)
    print(convert.save_converted(args.out, conversion, args.model, args.num_classes))
    return 0


def export(args):
    from . import export
    from .creation import zeros
    from .checkpoint import load_model
    _new_file(args.out, args.overwrite)
    model, _ = load_model(_checkpoint_path(args.checkpoint))
    height, width = args.size
    try:
        export.to_onnx(model, zeros(1, 3, height, width), args.out)
    except export.ExportError as error:
        raise CommandError(str(error)) from None
    print(args.out)
    return 0
