"""The ``minitorch-seg`` command line: make-data, train, evaluate, predict, grade, convert, export, doctor.

It behaves like the tools users know: ``minitorch-seg`` alone lists the commands, ``--version``
prints the version, every ``--help`` shows each option's default and examples. Results go to
stdout (evaluate's table or ``--json``, the files predict wrote, make-data's folder, train's
final line); news and progress go to stderr, so ``evaluate --json > metrics.json`` is JSON.

Every error a user can cause (a missing or unwritable path, an unknown model, a checkpoint of
another model, ``--backend cupy`` without a GPU, a malformed size, a full disk) ends in one
sentence on stderr and exit status 2, never a traceback. Only the project's own error types are
caught (``user_errors()``), raised where the mistake is found; anything else is a bug and shows its
traceback. Ctrl-C during training saves ``last.npz`` and exits with 130; a second Ctrl-C stops at
once and says what ``last.npz`` holds, if anything.

``train`` refuses a run folder that already holds a run unless ``--resume`` (continue it) or
``--overwrite`` (start it over) says what to do with it. Numbered folders for every run
(Lightning's ``version_N``) would lose nothing either, but the run would no longer be where the
learner asked for it: ``runs/unet`` is what ``evaluate``, ``predict`` and the README name, and a
run is continued by naming its folder, as with ``--resume``. Refusing keeps the folder where it
was typed and costs a forgotten ``--out`` one sentence, not a finished run.
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys

from . import __version__, backend, parallel

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
EXAMPLES = {
    "make-data": "examples:\n  minitorch-seg make-data\n  minitorch-seg make-data --out data/synth --train 100 --val 20 --size 64x128",
    "train": "examples:\n  minitorch-seg train\n  minitorch-seg train --model hrnet --epochs 10 --out runs/hrnet\n"
             "  minitorch-seg train --out runs/unet --resume              # continue where it stopped\n"
             "  minitorch-seg train --out runs/unet --resume --epochs 40  # train a finished run longer\n"
             "  minitorch-seg train --out runs/unet --overwrite           # start that run over\n"
             "  minitorch-seg train --backend cupy\n"
             "  minitorch-seg train --input-scale 1 --class-weights none   # full resolution, plain loss",
    "evaluate": "examples:\n  minitorch-seg evaluate runs/unet\n  minitorch-seg evaluate runs/unet/last.npz --split val --json",
    "predict": "examples:\n  minitorch-seg predict runs/unet street.png\n"
               "  minitorch-seg predict runs/unet/best.npz frankfurt/*.png --out predictions/frankfurt",
    "grade": "examples:\n  minitorch-seg grade lessons/02_cross_entropy.ipynb\n"
             "  minitorch-seg grade submissions/*/*.ipynb\n"
             "exit status: 0 every exercise passed, 1 one failed or was not attempted, 2 a usage error",
    "convert": "examples:\n  minitorch-seg convert hrnetv2_w18_cityscapes.pth --model hrnet_w18 --out hrnet_w18.npz\n"
               "  minitorch-seg convert swin_tiny_patch4_window7_224.pth --model swin_t --out swin_t.npz",
    "export": "examples:\n  minitorch-seg export runs/unet --out unet.onnx\n"
              "  minitorch-seg export runs/hrnet/best.npz --out hrnet.onnx --size 512x1024",
    "doctor": "example:\n  minitorch-seg doctor",
}
RESUME_MAY_CHANGE = "--epochs, --data and --backend"
ADAMW_LR = 1e-3


class CommandError(Exception):
    """A user error: printed as one sentence, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one sentence and status 2, as ours
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _news(line):
    """Progress and news: stderr, so stdout holds only a command's results."""
    print(line, file=sys.stderr, flush=True)


def _size(text):
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 128x256, got {text!r}") from None
    if height < 32 or width < 32:
        raise argparse.ArgumentTypeError(f"sizes must be at least 32x32, got {text!r}")
    return height, width


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _scale(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a scale in (0, 1], got {value}")
    return value


# ---- the backend --------------------------------------------------------------------------------
def _cupy_installed():
    return importlib.util.find_spec("cupy") is not None


def _gpus_listed():
    """True if the NVIDIA driver lists a GPU (``nvidia-smi -L``)."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.startswith("GPU ") for line in listing.splitlines())


def _cupy_problem():
    """One sentence on why ``--backend cupy`` cannot run here, or None: with CuPy installed, no GPU is said so."""
    reason = backend.cupy_unavailable_reason()
    if reason is None or not _cupy_installed():
        return reason   # None, or CuPy is missing: the sentence names the extra to install
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        return f"CuPy is installed but no GPU is visible (CUDA_VISIBLE_DEVICES={hidden!r} hides them all); " \
               "unset it, or use --backend numpy."
    if not _gpus_listed():
        return "CuPy is installed but no NVIDIA GPU was found (nvidia-smi lists none); use --backend numpy, the CPU."
    return reason


def _require_backend(name):
    problem = _cupy_problem() if name == "cupy" else None
    if problem:
        raise CommandError(problem)
    backend.set_backend(name)


# ---- commands -----------------------------------------------------------------------------------
def _make_data(args):
    from .data import make_dataset
    print(make_dataset(out=args.out, train=args.train, val=args.val, size=args.size, seed=args.seed, log=_news))
    return 0


def _data_root(args):
    if args.data:
        if not os.path.isdir(args.data):
            raise CommandError(f"--data {args.data} is not a folder; expected a Cityscapes-format root "
                               "(leftImg8bit/ and gtFine/), or leave --data out to use the built-in subset.")
        return args.data
    from .data import make_dataset
    return make_dataset(log=_news)


# The options a resumed run takes from its checkpoint: (option, TrainConfig field).
SAVED_OPTIONS = (("--batch-size", "batch_size"), ("--lr", "lr"), ("--optimizer", "optimizer"),
                 ("--input-scale", "input_scale"), ("--class-weights", "class_weights"), ("--seed", "seed"))


def _resumed_config(out, args):
    """The saved run's config, with a new --epochs; any other setting given must be the run's own."""
    from . import checkpoint, runs
    from .progress import count
    from .train import TrainConfig, check_training_meta
    last = os.path.join(out, runs.LAST)
    meta = checkpoint.read_meta(last)
    check_training_meta(meta, last)
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


def _train(args):
    from . import models, runs
    from .outputs import check_writable
    from .train import Trainer
    _require_backend(args.backend)
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
    trainer = Trainer(config, _data_root(args), out, log=_news)   # the data and the model: the start can fail here
    if args.overwrite and runs.holds_run(out):
        runs.clear(out)
        _news(f"--overwrite: removed the files of the previous run in {out}")
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


def _evaluate(args):
    from .checkpoint import saved_config
    from .creation import tensor
    from .data import Cityscapes, DataLoader
    from .data.labels import CLASS_NAMES
    from .train import evaluate, load_model
    _require_backend(args.backend)
    model, meta = load_model(_checkpoint_path(args.checkpoint))
    norm = meta.get("normalization", {})
    loader = DataLoader(Cityscapes(_data_root(args), args.split), batch_size=4, **norm)
    batches = loader
    if sys.stderr.isatty():
        from tqdm import tqdm
        batches = tqdm(loader, desc=f"evaluating on {args.split}", unit="batch", leave=False, file=sys.stderr)
    weights = meta.get("class_weight_values")   # the run's: the loss is then the val_loss of its metrics.csv
    metrics = evaluate(model, batches, meta["num_classes"], saved_config(meta)["input_scale"],
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


def _predict(args):
    from .outputs import check_writable
    from .predict import FOLDERS, output_names, predict_files
    from .train import load_model
    _require_backend(args.backend)
    for image in args.images:
        if not os.path.isfile(image):
            raise CommandError(f"Image {image} does not exist.")
    output_names(args.images)                              # two inputs for one output name: refused now
    check_writable(args.out, "--out", subfolders=FOLDERS)  # before the model is loaded
    model, meta = load_model(_checkpoint_path(args.checkpoint))
    for written in predict_files(model, meta, args.images, args.out):
        print(written)
    return 0


def _grade(args):
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


def _convert(args):
    from . import convert
    _new_file(args.out, args.overwrite)
    try:
        conversion = convert.convert_checkpoint(args.checkpoint, args.model, args.num_classes)
    except convert.ConvertError as error:
        raise CommandError(str(error)) from None
    print(convert.format_table(conversion.table), file=sys.stderr)
    print(convert.save_converted(args.out, conversion, args.model, args.num_classes))
    return 0


def _export(args):
    from . import export
    from .creation import zeros
    from .train import load_model
    _new_file(args.out, args.overwrite)
    model, _ = load_model(_checkpoint_path(args.checkpoint))
    height, width = args.size
    try:
        export.to_onnx(model, zeros(1, 3, height, width), args.out)
    except export.ExportError as error:
        raise CommandError(str(error)) from None
    print(args.out)
    return 0


def _doctor(args):
    info = backend.blas_info()
    print(f"numpy {info['numpy']}, BLAS {info['blas']}, OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE'] or '(auto-detected)'}")
    problem = _cupy_problem()
    if problem:
        print(f"cupy: unavailable. {problem}")
        return 0
    cupy = backend.cupy_module()
    device = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(device.id)
    free, total = device.mem_info
    print(f"cupy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
          f"driver {cupy.cuda.runtime.driverGetVersion()}")
    print(f"GPU {props['name'].decode()}: {total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free)")
    return 0


# ---- the parser ---------------------------------------------------------------------------------
def build_parser():
    from .train import TrainConfig
    defaults = TrainConfig()
    parser = _Parser(prog="minitorch-seg", description="Semantic segmentation from scratch in NumPy (and CuPy).",
                     epilog="Run minitorch-seg COMMAND --help for a command's options and examples.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", parser_class=_Parser)

    def command(name, help, run):
        sub = commands.add_parser(name, help=help, description=help, epilog=EXAMPLES[name],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(run=run)
        return sub

    def backend_option(sub):
        sub.add_argument("--backend", default="numpy", choices=["numpy", "cupy"],
                         help="numpy, the CPU, or cupy, an NVIDIA GPU (default numpy)")

    make = command("make-data", "generate the built-in Cityscapes-format subset", _make_data)
    make.add_argument("--out", help="where to write it (default: a folder named by the settings in the user's "
                                    "cache, $XDG_CACHE_HOME/minitorch_seg or ~/.cache/minitorch_seg)")
    make.add_argument("--train", type=_positive, default=300, help="training images (default 300)")
    make.add_argument("--val", type=_positive, default=50, help="validation images (default 50)")
    make.add_argument("--size", type=_size, default=(128, 256), help="HxW, at least 32x32 (default 128x256)")
    make.add_argument("--seed", type=int, default=0, help="every image follows from it (default 0)")

    train = command("train", "train a segmentation model", _train)
    train.add_argument("--model", help="unet, hrnet, swin, deeplab or segnet (default unet)")
    train.add_argument("--data", help="a Cityscapes-format root (default: the built-in subset, built on first "
                                      "use; with --resume, the run's own data)")
    train.add_argument("--epochs", type=_positive, help=f"epochs to train (default {defaults.epochs}); with "
                       "--resume, the run's new total: the poly schedule is recomputed for it and continued "
                       "from the step the run reached")
    train.add_argument("--batch-size", type=_positive, help=f"images a step (default {defaults.batch_size})")
    train.add_argument("--lr", type=float, help=f"the peak learning rate (default {defaults.lr} with sgd, "
                                                f"{ADAMW_LR} with adamw)")
    train.add_argument("--optimizer", choices=["sgd", "adamw"],
                       help=f"sgd (momentum 0.9) or adamw (default {defaults.optimizer})")
    train.add_argument("--input-scale", type=_scale, help="train and predict on images resized by this "
                       f"(0 < S <= 1; default {defaults.input_scale}: half the data's resolution, predictions "
                       "upsampled to full)")
    train.add_argument("--class-weights", choices=["none", "enet"], help="weigh the loss per class: enet = "
                       f"1/ln(1.02 + class share) (default {defaults.class_weights})")
    backend_option(train)
    train.add_argument("--out", help="the run folder (default runs/MODEL)")
    again = train.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in OUT from its last.npz, with "
                       f"its own settings (only {RESUME_MAY_CHANGE} may change)")
    again.add_argument("--overwrite", action="store_true",
                       help="start over in an OUT that holds a run, removing that run's files once training starts")
    train.add_argument("--seed", type=int, help=f"initial weights, data order, augmentation (default {defaults.seed})")

    evaluate = command("evaluate", "per-class IoU, mIoU and pixel accuracy of a checkpoint", _evaluate)
    evaluate.add_argument("checkpoint", help="a run folder (its best.npz) or a .npz checkpoint")
    evaluate.add_argument("--data", help="a Cityscapes-format root (default: the built-in subset)")
    evaluate.add_argument("--split", default="val", choices=["train", "val", "test"],
                          help="the split to measure on (default val)")
    backend_option(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON, and nothing else on stdout")

    predict = command("predict", "segment images: trainId, labelId, colour and overlay PNGs and a legend", _predict)
    predict.add_argument("checkpoint", help="a run folder (its best.npz) or a .npz checkpoint")
    predict.add_argument("images", nargs="+", help="PNG or JPEG images; two with the same file name are refused")
    predict.add_argument("--out", default="predictions", help="the output folder: trainIds/, labelIds/, color/ "
                         "(the palette), overlay/ (the palette over the image), legend.png (default predictions)")
    backend_option(predict)

    grade = command("grade", "run learners' lesson notebooks headless and report each exercise: passed, "
                             "failed (with the smallest failing input) or not attempted", _grade)
    grade.add_argument("notebooks", nargs="+", help="lesson notebooks (.ipynb)")
    grade.add_argument("--timeout", type=_positive, default=600, help="seconds per cell (default 600)")

    conv = command("convert", "official PyTorch weights (.pth; needs torch) to a minitorch_seg checkpoint, "
                              "with a table of the keys left unused, mismatched or missing", _convert)
    conv.add_argument("checkpoint", help="the official .pth file")
    conv.add_argument("--model", required=True, help="the registry model it holds: swin_t, hrnet_w18, hrnet_w32, "
                                                      "hrnet_w48, ...")
    conv.add_argument("--num-classes", type=_positive, default=19, help="classes of its head (default 19)")
    conv.add_argument("--out", required=True, help="the .npz checkpoint to write")
    conv.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    exp = command("export", "write a checkpoint's model as ONNX (opset 17, dynamic batch and image size; "
                            "needs onnx)", _export)
    exp.add_argument("checkpoint", help="a run folder (its best.npz) or a .npz checkpoint")
    exp.add_argument("--format", default="onnx", choices=["onnx"], help="the format (default onnx)")
    exp.add_argument("--out", required=True, help="the .onnx file to write")
    exp.add_argument("--size", type=_size, default=(128, 256), help="HxW of the example input that traces "
                     "the graph; other sizes run too (default 128x256)")
    exp.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    command("doctor", "print the backend situation: NumPy and its BLAS, CuPy, the GPU", _doctor)
    return parser


def user_errors():
    """The error types a user can cause, each raised with one sentence where the mistake is found."""
    from .checkpoint import CheckpointError
    from .data import DatasetError
    from .grade import GradeError
    from .outputs import OutputError
    from .predict import ImageError
    from .train import TrainingError
    return CommandError, CheckpointError, DatasetError, GradeError, ImageError, OutputError, TrainingError


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:   # `minitorch-seg` alone: the commands, as pip and docker do
        parser.print_help()
        return 0
    try:
        with parallel.tile_threads():  # BLAS on one thread, conv tiles over the cores (parallel.py)
            return args.run(args)
    except user_errors() as error:
        print(f"minitorch-seg {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as interrupt:   # the trainer's says what last.npz holds
        detail = f": {interrupt}" if str(interrupt) else ""
        print(f"minitorch-seg {args.command}: interrupted{detail}.", file=sys.stderr)
        return EXIT_INTERRUPTED
