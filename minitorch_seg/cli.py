"""The ``minitorch-seg`` command line: make-data, train, evaluate, predict, grade, doctor.

Every error a user can cause (a missing path, an unknown model, a checkpoint of another model,
``--backend cupy`` without a GPU, a malformed size) ends in one sentence on stderr and exit
status 2, never a traceback. Ctrl-C during training saves ``last.npz`` and exits with 130.
"""
import argparse
import json
import os
import sys

from . import backend, parallel

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
EXAMPLES = {
    "make-data": "examples:\n  minitorch-seg make-data\n  minitorch-seg make-data --out data/synth --train 100 --val 20 --size 64x128",
    "train": "examples:\n  minitorch-seg train\n  minitorch-seg train --model hrnet --epochs 10 --out runs/hrnet\n"
             "  minitorch-seg train --out runs/unet --resume\n  minitorch-seg train --backend cupy\n"
             "  minitorch-seg train --input-scale 1 --class-weights none   # full resolution, plain loss",
    "evaluate": "examples:\n  minitorch-seg evaluate runs/unet\n  minitorch-seg evaluate runs/unet/last.npz --split val --json",
    "predict": "examples:\n  minitorch-seg predict runs/unet/best.npz street.png --out predictions",
    "grade": "examples:\n  minitorch-seg grade lessons/02_cross_entropy.ipynb\n"
             "  minitorch-seg grade submissions/*/*.ipynb\n"
             "exit status: 0 every exercise passed, 1 one failed or was not attempted, 2 a usage error",
    "doctor": "example:\n  minitorch-seg doctor",
}


class CommandError(Exception):
    """A user error: printed as one sentence, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one sentence and status 2, as ours
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _size(text):
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 128x256, got {text!r}") from None
    if height < 8 or width < 8:
        raise argparse.ArgumentTypeError(f"sizes must be at least 8x8, got {text!r}")
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


# ---- commands -----------------------------------------------------------------------------------
def _make_data(args):
    from .data import make_dataset
    root = make_dataset(out=args.out, train=args.train, val=args.val, size=args.size, seed=args.seed, log=print)
    print(root)
    return 0


def _data_root(args):
    if args.data:
        if not os.path.isdir(args.data):
            raise CommandError(f"--data {args.data} is not a folder; expected a Cityscapes-format root "
                               "(leftImg8bit/ and gtFine/), or leave --data out to use the built-in subset.")
        return args.data
    from .data import make_dataset
    return make_dataset(log=print)


def _train(args):
    from . import models
    from .train import TrainConfig, Trainer
    backend.module_for(args.backend)  # one sentence now if CuPy or the GPU is missing
    if args.model is not None and args.model not in models.available():
        raise CommandError(f"Unknown model {args.model!r}; known models: {', '.join(models.available())}.")
    out = args.out or os.path.join("runs", args.model or "unet")
    if args.resume:  # the saved run's own settings, so it continues exactly; only the backend may change
        from .checkpoint import read
        last = os.path.join(out, "last.npz")
        meta = read(last)[0]
        config = TrainConfig.from_saved(meta)
        args.data = args.data or meta.get("data_root")  # the run's own data unless --data says otherwise
        if args.model is not None and args.model != config.model:
            raise CommandError(f"{last} is a checkpoint of model {config.model!r}, not {args.model!r}; "
                               "resume it without --model or train the other model into another --out.")
        config.backend = args.backend
    else:
        config = TrainConfig(model=args.model or "unet", seed=args.seed, backend=args.backend, optimizer=args.optimizer)
        for name in ("epochs", "batch_size", "lr", "class_weights", "input_scale"):
            if getattr(args, name) is not None:
                setattr(config, name, getattr(args, name))
        if args.optimizer == "adamw" and args.lr is None:
            config.lr = 1e-3
    backend.tune_host_allocator()
    summary = Trainer(config, _data_root(args), out).run(resume=args.resume)
    if summary["interrupted"]:
        return EXIT_INTERRUPTED
    print(f"best validation mIoU {summary['best_miou']:.3f}; checkpoints, metrics.csv and curves.png in {out}")
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
    from .data import Cityscapes, DataLoader
    from .data.labels import CLASS_NAMES
    from .train import evaluate, load_model
    backend.set_backend(args.backend)
    model, meta = load_model(_checkpoint_path(args.checkpoint))
    norm = meta.get("normalization", {})
    loader = DataLoader(Cityscapes(_data_root(args), args.split), batch_size=4, **norm)
    metrics = evaluate(model, loader, meta["num_classes"], saved_config(meta)["input_scale"])
    if args.json:  # strict JSON: an absent class's NaN becomes null
        def nan_to_null(v):
            return [nan_to_null(x) for x in v] if isinstance(v, list) else None if v != v else v
        print(json.dumps({key: nan_to_null(value) for key, value in metrics.items()}, allow_nan=False))
        return 0
    for name, iou in zip(CLASS_NAMES, metrics["iou"]):
        print(f"{name:<15} {iou:6.3f}" if iou == iou else f"{name:<15}    n/a")
    print(f"{'mIoU':<15} {metrics['miou']:6.3f}\n{'pixel accuracy':<15} {metrics['pixel_accuracy']:6.3f}")
    return 0


def _predict(args):
    from .predict import predict_files
    from .train import load_model
    backend.set_backend(args.backend)
    for image in args.images:
        if not os.path.isfile(image):
            raise CommandError(f"Image {image} does not exist.")
    model, meta = load_model(_checkpoint_path(args.checkpoint))
    for written in predict_files(model, meta, args.images, args.out):
        print(written)
    return 0


def _grade(args):
    from .grade import grade
    return 0 if grade(args.notebooks, timeout=args.timeout) else 1


def _doctor(args):
    info = backend.blas_info()
    print(f"numpy {info['numpy']}, BLAS {info['blas']}, OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE'] or '(auto-detected)'}")
    reason = backend.cupy_unavailable_reason()
    if reason:
        print(f"cupy: unavailable. {reason}")
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
    parser = _Parser(prog="minitorch-seg", description="Semantic segmentation from scratch in NumPy (and CuPy).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name, help, run):
        sub = commands.add_parser(name, help=help, description=help, epilog=EXAMPLES[name],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(run=run)
        return sub

    make = command("make-data", "generate the built-in Cityscapes-format subset", _make_data)
    make.add_argument("--out", help="where to write it (default: the user's cache folder)")
    make.add_argument("--train", type=_positive, default=300, help="training images (default 300)")
    make.add_argument("--val", type=_positive, default=50, help="validation images (default 50)")
    make.add_argument("--size", type=_size, default=(128, 256), help="HxW (default 128x256)")
    make.add_argument("--seed", type=int, default=0)

    train = command("train", "train a segmentation model", _train)
    train.add_argument("--model", help="unet, hrnet, swin, deeplab or segnet (default unet)")
    train.add_argument("--data", help="a Cityscapes-format root (default: the built-in subset, built on first use)")
    train.add_argument("--epochs", type=_positive)
    train.add_argument("--batch-size", type=_positive)
    train.add_argument("--lr", type=float)
    train.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    train.add_argument("--input-scale", type=_scale, help="train and predict on images resized by this "
                       "(0 < S <= 1; default 0.5: half the data's resolution, predictions upsampled to full)")
    train.add_argument("--class-weights", choices=["none", "enet"],
                       help="weight the loss per class: enet = 1/ln(1.02 + class share) (default enet)")
    train.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    train.add_argument("--out", help="run folder (default runs/MODEL)")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    train.add_argument("--seed", type=int, default=0)

    evaluate = command("evaluate", "per-class IoU, mIoU and pixel accuracy of a checkpoint", _evaluate)
    evaluate.add_argument("checkpoint", help="a run folder (its best.npz) or a .npz checkpoint")
    evaluate.add_argument("--data", help="a Cityscapes-format root (default: the built-in subset)")
    evaluate.add_argument("--split", default="val", choices=["train", "val", "test"])
    evaluate.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")

    predict = command("predict", "segment images: trainId, labelId and colour PNGs", _predict)
    predict.add_argument("checkpoint", help="a run folder (its best.npz) or a .npz checkpoint")
    predict.add_argument("images", nargs="+", help="PNG or JPEG images")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])

    grade = command("grade", "run learners' lesson notebooks headless and report each exercise: passed, "
                             "failed (with the smallest failing input) or not attempted", _grade)
    grade.add_argument("notebooks", nargs="+", help="lesson notebooks (.ipynb)")
    grade.add_argument("--timeout", type=_positive, default=600, help="seconds per cell (default 600)")

    command("doctor", "print the backend situation: NumPy and its BLAS, CuPy, the GPU", _doctor)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .checkpoint import CheckpointError
    from .data import DatasetError
    from .grade import GradeError
    known = (CommandError, GradeError, backend.BackendError, CheckpointError, DatasetError, FileNotFoundError, ValueError, KeyError)
    try:
        with parallel.tile_threads():  # BLAS on one thread, conv tiles over the cores (parallel.py)
            return args.run(args)
    except known as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"minitorch-seg {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"minitorch-seg {args.command}: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
