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

This file is the parser and ``main``: what each command does is in ``cli_commands.py``. Around
a command, ``main`` makes its ``--backend`` current and, for the commands that run a model here
(evaluate, predict, export), enters ``parallel.tile_threads()``: BLAS on one thread, conv tiles
over the cores. ``train`` does not: its ``Trainer`` runs in a scope of its own that holds both.
Either way the process's state is as it was when ``main`` returns.
"""
import argparse
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys

from . import __version__, backend, gemm, parallel
from . import cli_commands as commands
from .cli_commands import ADAMW_LR, EXIT_INTERRUPTED, EXIT_USAGE, RESUME_MAY_CHANGE, CommandError

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
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one sentence and status 2, as ours
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


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


@contextlib.contextmanager
def _command_scope(args):
    """The command's ``--backend`` (refused in one sentence if it cannot run here) and, if it runs a
    model here, the host threads; both as they were afterwards."""
    name = getattr(args, "backend", "numpy")
    problem = _cupy_problem() if name == "cupy" else None
    if problem:
        raise CommandError(problem)
    with backend.use_backend(name), (parallel.tile_threads() if args.threads else contextlib.nullcontext()):
        yield


# ---- doctor: the one command about the backend itself ---------------------------------------
def _doctor(args):
    info = backend.blas_info()
    print(f"numpy {info['numpy']}, BLAS {info['blas']}, OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE'] or '(auto-detected)'}")
    print(f"conv products: {gemm.engine()}")
    print(f"cores kept awake between hand-offs: {parallel.kept_awake()}")
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
    subparsers = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", parser_class=_Parser)

    def command(name, help, run, threads=False):
        """A subcommand; ``threads``: it runs a model here, in ``parallel.tile_threads()``."""
        sub = subparsers.add_parser(name, help=help, description=help, epilog=EXAMPLES[name],
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(run=run, threads=threads)
        return sub

    def backend_option(sub):
        sub.add_argument("--backend", default="numpy", choices=["numpy", "cupy"],
                         help="numpy, the CPU, or cupy, an NVIDIA GPU (default numpy)")

    make = command("make-data", "generate the built-in Cityscapes-format subset", commands.make_data)
    make.add_argument("--out", help="where to write it (default: a folder named by the settings in the user's "
                                    "cache, $XDG_CACHE_HOME/minitorch_seg or ~/.cache/minitorch_seg)")
    make.add_argument("--train", type=_positive, default=300, help="training images (default 300)")
    make.add_argument("--val", type=_positive, default=50, help="validation images (default 50)")
    make.add_argument("--size", type=_size, default=(128, 256), help="HxW, at least 32x32 (default 128x256)")
    make.add_argument("--seed", type=int, default=0, help="every image follows from it (default 0)")

    train = command("train", "train a segmentation model", commands.train)   # Trainer: its own threads
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

    evaluate = command("evaluate", "per-class IoU, mIoU and pixel accuracy of a checkpoint", commands.evaluate,
                       threads=True)
    evaluate.add_argument("checkpoint", help="a run folder (its best.npz) or a .npz checkpoint")
    evaluate.add_argument("--data", help="a Cityscapes-format root (default: the built-in subset)")
    evaluate.add_argument("--split", default="val", choices=["train", "val", "test"],
                          help="the split to measure on (default val)")
    backend_option(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON, and nothing else on stdout")

    predict = command("predict", "segment images: trainId, labelId, colour and overlay PNGs and a legend",
                      commands.predict, threads=True)
    predict.add_argument("checkpoint", help="a run folder (its best.npz) or a .npz checkpoint")
    predict.add_argument("images", nargs="+", help="PNG or JPEG images; two with the same file name are refused")
    predict.add_argument("--out", default="predictions", help="the output folder: trainIds/, labelIds/, color/ "
                         "(the palette), overlay/ (the palette over the image), legend.png (default predictions)")
    backend_option(predict)

    grade = command("grade", "run learners' lesson notebooks headless and report each exercise: passed, "
                             "failed (with the smallest failing input) or not attempted", commands.grade)
    grade.add_argument("notebooks", nargs="+", help="lesson notebooks (.ipynb)")
    grade.add_argument("--timeout", type=_positive, default=600, help="seconds per cell (default 600)")

    conv = command("convert", "official PyTorch weights (.pth; needs torch) to a minitorch_seg checkpoint, "
                              "with a table of the keys left unused, mismatched or missing", commands.convert)
    conv.add_argument("checkpoint", help="the official .pth file")
    conv.add_argument("--model", required=True, help="the registry model it holds: swin_t, hrnet_w18, hrnet_w32, "
                                                      "hrnet_w48, ...")
    conv.add_argument("--num-classes", type=_positive, default=19, help="classes of its head (default 19)")
    conv.add_argument("--out", required=True, help="the .npz checkpoint to write")
    conv.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    exp = command("export", "write a checkpoint's model as ONNX (opset 17, dynamic batch and image size; "
                            "needs onnx)", commands.export, threads=True)
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
        with _command_scope(args):
            return args.run(args)
    except user_errors() as error:
        print(f"minitorch-seg {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as interrupt:   # the trainer's says what last.npz holds
        detail = f": {interrupt}" if str(interrupt) else ""
        print(f"minitorch-seg {args.command}: interrupted{detail}.", file=sys.stderr)
        return EXIT_INTERRUPTED
