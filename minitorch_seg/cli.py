"""The ``minitorch-seg`` command line.

Every error a user can cause ends in one sentence on stderr and exit status 2, never a traceback.
"""
import argparse
import sys

from . import backend

EXIT_USAGE = 2


class CommandError(Exception):
    """A user error: printed as one sentence, exit status 2."""


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


def _train(args):
    backend.set_backend(args.backend)
    from . import demo
    print("minitorch-seg train: the segmentation models and the Cityscapes-format data are not built yet; "
          "running the toy per-pixel demo instead.")
    demo.run(steps=args.steps, seed=args.seed)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="minitorch-seg", description="Semantic segmentation from scratch in NumPy.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  minitorch-seg train --steps 150 --seed 0")
    train.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    train.add_argument("--steps", type=int, default=150)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_train)

    doctor = commands.add_parser("doctor", help="print the backend situation (NumPy/BLAS, CuPy, GPU)",
                                 epilog="example:\n  minitorch-seg doctor")
    doctor.set_defaults(run=_doctor)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, backend.BackendError, FileNotFoundError, ValueError) as error:
        print(f"minitorch-seg {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"minitorch-seg {args.command}: interrupted.", file=sys.stderr)
        return 130
