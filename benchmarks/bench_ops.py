"""Forward + backward of each spatial op: ours against PyTorch CPU, interleaved, medians and ratios.

    python benchmarks/bench_ops.py [--rounds 5] [--only conv] [--winograd] [--json results/ops.json]

Each case runs ours, PyTorch with its default threads and PyTorch with one thread in turn, round
after round (so a burst of load hits all three alike), and reports medians. The parent runs the
cases twice in child processes: once with OpenBLAS choosing its own core and once pinned with
OPENBLAS_CORETYPE=Haswell (it must be set before NumPy is imported). ``--winograd`` adds, after each
3x3 conv case, the same case with our conv2d through Winograd F(2x2, 3x3) (``functional/winograd.py``).
"""
import argparse
import json
import os
import subprocess
import sys
import time

# OpenBLAS's and PyTorch's worker threads spin for a while after each call; on 2 cores, timing one
# side while the other's threads still spin slowed it 5-10x. A short pause lets them go to sleep.
SETTLE = 0.3
TARGETS = {"conv2d 16ch": 3.0, "conv2d 32ch": 2.0, "conv2d 64ch": 1.5, "conv2d 128ch": 1.5,
           "conv_transpose2d k2s2": 1.5, "cross_entropy": 2.0, "max_pool2d+max_unpool2d": 1.0,
           "bilinear x2": 1.0, "batch_norm": 1.5}


def with_winograd(fn):
    """``fn`` with every 3x3 stride-1 conv2d through Winograd F(2x2, 3x3) while it runs."""
    from minitorch_seg.functional import conv

    def switched():
        conv.WINOGRAD_MIN_CHANNELS = 1
        try:
            return fn()
        finally:
            conv.WINOGRAD_MIN_CHANNELS = None
    return switched


def cases(winograd=False):
    """(name, flops or None, build) where build() returns (ours, theirs): two fwd+bwd closures."""
    import numpy
    import torch

    import minitorch_seg as mt
    from minitorch_seg import functional as F
    rng = numpy.random.default_rng(0)

    def pair(*arrays):
        ours = [mt.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        theirs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        return ours, theirs

    def randn(*shape):
        return rng.standard_normal(shape).astype(numpy.float32)

    def fwd_bwd(ours_fn, torch_fn, ours_in, torch_in):
        def ours():
            y = ours_fn(*ours_in)
            y = y[0] if isinstance(y, tuple) else y
            y.backward(mt.ones(*y.shape).data)
            for t in ours_in:
                t.grad = None

        def theirs():
            y = torch_fn(*torch_in)
            y = y[0] if isinstance(y, tuple) else y
            y.backward(torch.ones_like(y))
            for t in torch_in:
                t.grad = None
        return ours, theirs

    def conv(channels):
        x, w = randn(4, channels, 128, 256), randn(channels, channels, 3, 3) * 0.1
        o, t = pair(x, w)
        return fwd_bwd(lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), o, t)

    for channels in (16, 32, 64, 128):
        yield f"conv2d {channels}ch", 3 * 2 * 4 * channels * channels * 9 * 128 * 256, lambda c=channels: conv(c)
        if winograd:  # the same flops counted as direct, so the GFLOP/s compare as speed
            def conv_winograd(c=channels):
                ours, theirs = conv(c)
                return with_winograd(ours), theirs
            yield f"conv2d {channels}ch winograd", 3 * 2 * 4 * channels * channels * 9 * 128 * 256, conv_winograd

    def conv_transpose():
        o, t = pair(randn(4, 128, 16, 32), randn(128, 64, 2, 2))
        return fwd_bwd(lambda x, w: F.conv_transpose2d(x, w, stride=2),
                       lambda x, w: torch.nn.functional.conv_transpose2d(x, w, stride=2), o, t)
    yield "conv_transpose2d k2s2", 3 * 2 * 4 * 128 * 64 * 4 * 16 * 32, conv_transpose

    def cross_entropy():
        labels = rng.integers(0, 19, (4, 128, 256))
        labels[rng.random(labels.shape) < 0.1] = 255
        o, t = pair(randn(4, 19, 128, 256), labels)
        return fwd_bwd(lambda x, y: F.cross_entropy(x, y, ignore_index=255), lambda x, y: torch.nn.functional.cross_entropy(x, y, ignore_index=255), o, t)
    yield "cross_entropy", None, cross_entropy

    def pool_unpool():
        o, t = pair(randn(4, 64, 128, 256))

        def ours(x):
            y, indices = F.max_pool2d(x, 2, return_indices=True)
            return F.max_unpool2d(y, indices, 2)

        def theirs(x):
            y, indices = torch.nn.functional.max_pool2d(x, 2, return_indices=True)
            return torch.nn.functional.max_unpool2d(y, indices, 2)
        return fwd_bwd(ours, theirs, o, t)
    yield "max_pool2d+max_unpool2d", None, pool_unpool

    def bilinear():
        o, t = pair(randn(4, 64, 64, 128))
        return fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
                       lambda x: torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), o, t)
    yield "bilinear x2", None, bilinear

    def batch_norm():
        o, t = pair(randn(4, 16, 128, 256), numpy.ones(16, numpy.float32), numpy.zeros(16, numpy.float32))
        ours_stats = [mt.zeros(16), mt.ones(16)]
        torch_stats = [torch.zeros(16), torch.ones(16)]
        return fwd_bwd(lambda x, w, b: F.batch_norm(x, *ours_stats, w, b, training=True),
                       lambda x, w, b: torch.nn.functional.batch_norm(x, *torch_stats, w, b, training=True), o, t)
    yield "batch_norm", None, batch_norm


def measure(rounds, only, winograd=False):
    import numpy
    import torch

    from minitorch_seg import backend
    backend.tune_host_allocator()  # as the CLI does (it helps PyTorch in this process too)
    default_threads = torch.get_num_threads()
    results = {}
    for name, flops, build in cases(winograd):
        if only and only not in name:
            continue
        ours, theirs = build()
        ours(), theirs()  # warm-up
        times = {"ours": [], "torch": [], "torch_1thread": []}
        for _ in range(rounds):
            for key, fn, threads in (("ours", ours, None), ("torch", theirs, default_threads), ("torch_1thread", theirs, 1)):
                if threads:
                    torch.set_num_threads(threads)
                time.sleep(SETTLE)
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
        torch.set_num_threads(default_threads)
        ms = {k: float(numpy.median(v)) * 1e3 for k, v in times.items()}
        results[name] = {"ms": ms, "ratio": ms["ours"] / ms["torch"], "ratio_1thread": ms["ours"] / ms["torch_1thread"],
                         "gflops_ours": flops / ms["ours"] / 1e6 if flops else None,
                         "gflops_torch": flops / ms["torch"] / 1e6 if flops else None, "target": TARGETS.get(name)}
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", help="run the cases whose name contains this")
    parser.add_argument("--winograd", action="store_true", help="add each 3x3 conv case through Winograd F(2x2, 3x3)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.child:
        from minitorch_seg import parallel
        with parallel.tile_threads():  # as the CLI runs, the whole process: BLAS on one thread, conv tiles over the cores
            print(json.dumps(measure(args.rounds, args.only, args.winograd)))
        return
    command = [sys.executable, os.path.abspath(__file__), "--child", "--rounds", str(args.rounds)] + (["--only", args.only] if args.only else [])
    command += ["--winograd"] if args.winograd else []
    auto = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    runs = {}
    for label, env in (("auto core", auto), ("pinned Haswell", dict(auto, OPENBLAS_CORETYPE="Haswell"))):
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        runs[label] = json.loads(output.strip().splitlines()[-1])
    print(f"{'op (fwd+bwd)':<26}{'ours ms':>9}{'torch ms':>10}{'torch 1t':>10}{'ratio':>7}{'vs 1t':>7}{'target':>8}"
          f"{'GFLOP/s':>9}{'pinned':>8}")
    for name, r in runs["auto core"].items():
        pinned = runs["pinned Haswell"][name]["ratio"]
        gflops = f"{r['gflops_ours']:.0f}/{r['gflops_torch']:.0f}" if r["gflops_ours"] else "-"
        print(f"{name:<26}{r['ms']['ours']:>9.1f}{r['ms']['torch']:>10.1f}{r['ms']['torch_1thread']:>10.1f}"
              f"{r['ratio']:>7.2f}{r['ratio_1thread']:>7.2f}{'<= ' + str(r['target']) if r['target'] else '':>8}"
              f"{gflops:>9}{pinned:>8.2f}")
    if args.json:
        from minitorch_seg.checkpoint import atomic_write_bytes
        atomic_write_bytes(args.json, json.dumps(runs, indent=2).encode())


if __name__ == "__main__":
    main()
