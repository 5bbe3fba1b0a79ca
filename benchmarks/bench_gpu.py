"""GPU benchmark: ours on CuPy against PyTorch CUDA, strict FP32 on both sides.

    python benchmarks/bench_gpu.py ops  --out RESULTS_DIR
    python benchmarks/bench_gpu.py step --out RESULTS_DIR

Every timing synchronises the device before and after. TF32 is off in PyTorch (cuDNN and matmul).
Each case runs at the benchmark size and at a "large" size (4x the channels, 4x the pixels) where
Python dispatch no longer dominates. For each side, one extra run under ``torch.profiler``
(CUPTI sees CuPy's kernels too) counts the kernels launched and sums their time: the GPU-busy
fraction is kernel time over wall time. Results are written as they come, as JSON and a markdown
table, so a stage cut short by its time limit still leaves what it measured.
"""
import argparse
import json
import os
import sys
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))


def setup():
    import torch
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    import minitorch_seg as mt
    mt.set_backend("cupy")
    return torch, mt, mt.backend.cupy_module()


def timed(fn, sync, repeats):
    fn()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return float(numpy.median(times)) * 1e3


def kernel_profile(torch, fn, sync):
    """(kernels launched, GPU-busy fraction) of one call of fn, seen by CUPTI."""
    from torch.profiler import ProfilerActivity, profile
    sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        fn()
        sync()
        wall = time.perf_counter() - start
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    busy = sum(e.device_time for e in kernels) / 1e6  # microseconds -> seconds
    return len(kernels), busy / wall if wall else float("nan")


def measure_pair(torch, cupy, ours, theirs, repeats):
    sync_ours = cupy.cuda.Device().synchronize
    sync_theirs = torch.cuda.synchronize
    result = {"ours_ms": timed(ours, sync_ours, repeats), "torch_ms": timed(theirs, sync_theirs, repeats)}
    result["ratio"] = result["ours_ms"] / result["torch_ms"]
    for side, fn, sync in (("ours", ours, sync_ours), ("torch", theirs, sync_theirs)):
        try:
            result[f"{side}_kernels"], result[f"{side}_busy"] = kernel_profile(torch, fn, sync)
        except Exception as error:  # noqa: BLE001 - a profiler problem must not lose the timings
            result[f"{side}_profile_error"] = str(error)
    return result


def op_cases(torch, mt, scale):
    """(name, ours, theirs) forward+backward closures; ``scale`` 1 or 4 (channels x4, pixels x4)."""
    from minitorch_seg import functional as F
    rng = numpy.random.default_rng(0)
    side = 2 if scale == 4 else 1

    def pair(*arrays):
        return ([mt.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays],
                [torch.tensor(a, device="cuda", requires_grad=a.dtype.kind == "f") for a in arrays])

    def randn(*shape):
        return rng.standard_normal(shape).astype(numpy.float32)

    def fwd_bwd(ours_fn, torch_fn, ours_in, torch_in):
        def ours():
            y = ours_fn(*ours_in)
            y.backward(mt.ones(*y.shape).data)

        def theirs():
            y = torch_fn(*torch_in)
            y.backward(torch.ones_like(y))
        return ours, theirs

    h, w = 128 * side, 256 * side
    for channels in (16 * scale, 64 * scale):
        o, t = pair(randn(4, channels, h, w), randn(channels, channels, 3, 3) * 0.05)
        yield (f"conv2d {channels}ch {h}x{w}",) + fwd_bwd(lambda x, k: F.conv2d(x, k, padding=1),
                                                        lambda x, k: torch.nn.functional.conv2d(x, k, padding=1), o, t)
    labels = rng.integers(0, 19, (4, h, w))
    labels[rng.random(labels.shape) < 0.1] = 255
    o, t = pair(randn(4, 19, h, w), labels)
    yield (f"cross_entropy {h}x{w}",) + fwd_bwd(lambda x, y: F.cross_entropy(x, y, ignore_index=255), lambda x, y: torch.nn.functional.cross_entropy(x, y, ignore_index=255), o, t)
    o, t = pair(randn(4, 16 * scale, h, w), numpy.ones(16 * scale, numpy.float32), numpy.zeros(16 * scale, numpy.float32))
    stats_o, stats_t = [mt.zeros(16 * scale), mt.ones(16 * scale)], [torch.zeros(16 * scale, device="cuda"), torch.ones(16 * scale, device="cuda")]
    yield (f"batch_norm {16 * scale}ch",) + fwd_bwd(lambda x, a, b: F.batch_norm(x, *stats_o, a, b, training=True),
                                                 lambda x, a, b: torch.nn.functional.batch_norm(x, *stats_t, a, b, training=True), o, t)


def step_cases(torch, mt, scale):
    """Training steps: the benchmark U-Net (and the Swin model at scale 1)."""
    sys.path.insert(0, HERE)
    from torch_unet import TorchUNet

    from minitorch_seg import functional as F
    from minitorch_seg import models, optim
    side = 2 if scale == 4 else 1
    rng = numpy.random.default_rng(0)
    images = rng.standard_normal((4, 3, 128 * side, 256 * side)).astype(numpy.float32)
    labels = rng.integers(0, 19, (4, 128 * side, 256 * side))
    mt.manual_seed(0)
    model = models.build("unet", width=16 * scale)
    twin = TorchUNet(width=16 * scale).cuda()
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    x, y = mt.tensor(images), mt.tensor(labels)
    xt, yt = torch.tensor(images, device="cuda"), torch.tensor(labels, device="cuda")
    opt, opt_t = optim.SGD(model.parameters(), lr=0.01, momentum=0.9), torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)

    def ours():
        opt.zero_grad()
        F.cross_entropy(model(x), y, ignore_index=255).backward()
        opt.step()

    def theirs():
        opt_t.zero_grad()
        torch.nn.functional.cross_entropy(twin(xt), yt, ignore_index=255).backward()
        opt_t.step()
    yield f"unet step width {16 * scale} {images.shape[2]}x{images.shape[3]}", ours, theirs


def write(out, stage, results):
    from minitorch_seg.checkpoint import atomic_write_bytes
    atomic_write_bytes(os.path.join(out, f"{stage}.json"), json.dumps(results, indent=2).encode())
    lines = [f"| {stage} | ours ms | torch ms | ratio | kernels ours/torch | busy ours/torch |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['ours_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f} | "
                     f"{r.get('ours_kernels', '?')}/{r.get('torch_kernels', '?')} | "
                     f"{r.get('ours_busy', float('nan')):.2f}/{r.get('torch_busy', float('nan')):.2f} |")
    atomic_write_bytes(os.path.join(out, f"{stage}.md"), ("\n".join(lines) + "\n").encode())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["ops", "step"])
    parser.add_argument("--out", default=os.path.join(HERE, "results", "gpu"))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch, mt, cupy = setup()
    cases = op_cases if args.stage == "ops" else step_cases
    results = {}
    for scale in (1, 4):
        for name, ours, theirs in cases(torch, mt, scale):
            results[name] = measure_pair(torch, cupy, ours, theirs, args.repeats)
            print(f"{name}: ours {results[name]['ours_ms']:.2f} ms, torch {results[name]['torch_ms']:.2f} ms, "
                  f"ratio {results[name]['ratio']:.2f}", flush=True)
            write(args.out, args.stage, results)


if __name__ == "__main__":
    main()
