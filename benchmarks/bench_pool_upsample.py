"""Pooling and upsampling forward + backward, minitorch_seg (NumPy) against torch on the CPU.

Two cases, each forward + backward of one step, float32:

- ``pool``: y, switches = max_pool2d(x, 2, return_indices=True); z = max_unpool2d(y, switches, 2);
  z.backward(g), x (4, 64, 128, 256): SegNet's encoder/decoder pair at a Cityscapes crop.
- ``upsample``: y = interpolate(x, scale_factor=2, mode="bilinear", align_corners=False);
  y.backward(g), x (4, 64, 64, 128): a decoder's x2 bilinear upsampling.

Ours and torch's run in two worker processes, in alternating blocks (interleaved, so drifts in
clock, load and caches hit both alike), with a pause between blocks so that one library's
spinning threads (OpenBLAS, OpenMP) do not take the cores from the other's next run. Medians
and their ratio are printed for two clocks, clearly labelled:

- ``wall``: time.perf_counter(), each library at its default threads (NumPy's elementwise work is
  single-threaded, its OpenBLAS GEMMs (the upsampling) are not), then torch with one thread:
  what a user waits for on an idle machine. On a machine shared with other jobs it is noisy, and
  OpenBLAS's threads suffer most: each threaded GEMM waits for a core (we saw 10x).
- ``cpu``: time.process_time(), the CPU seconds of each worker, with one thread on both sides
  (fresh workers with OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)): it barely moves when
  other programs share the machine, so it is the stable ratio.

Ours includes the engine's copy of dL/dx into the leaf's ``x.grad`` (torch hands its buffer
over); in a network x is a layer's output, not a leaf, and that copy does not happen.

    python benchmarks/bench_pool_upsample.py [--repeats 30] [--case pool upsample]

Timings live here and in reports, never in the tests. Measured 2026-11-24 on the 2-core AMD EPYC
(AVX-512) VM, numpy 2.4.6 + OpenBLAS 0.3.31, torch 2.13.0+cpu, three runs of 30 while other jobs
kept the load average between 1.3 and 3.8 (ranges over the runs):

    pool      wall, default threads     ours 49-54 ms   torch 2 threads 53-124 ms   ratio 0.43-0.93
              wall, torch 1 thread      ours 49-52 ms   torch 92-95 ms              ratio 0.52-0.55
              cpu, one thread each      ours 46-49 ms   torch 91-94 ms              ratio 0.51-0.52
    upsample  wall, default threads     ours 28-54 ms   torch 2 threads 26-45 ms    ratio 0.75-1.20
              wall, torch 1 thread      ours 26-35 ms   torch 42-59 ms              ratio 0.52-0.61
              cpu, one thread each      ours 37-38 ms   torch 56-58 ms              ratio 0.65-0.67

Torch's two threads gain most on a quiet machine (the lowest torch times above came at the
lowest load), so there the default-threads ratios are the upper ends or above. At load 4-9 the
upsampling's threaded OpenBLAS GEMMs fell apart (ours 137-1258 ms against torch's 70-229 ms),
while with OPENBLAS_NUM_THREADS=1 ours took 69-90 ms (ratio 0.57-0.79): on a shared machine,
run NumPy's BLAS with one thread.
"""
import argparse
import multiprocessing
import os
import time

import numpy

SHAPES = {"pool": (4, 64, 128, 256), "upsample": (4, 64, 64, 128)}


def _data(case, seed=0):
    rng = numpy.random.default_rng(seed)
    shape = SHAPES[case]
    out_shape = shape if case == "pool" else shape[:2] + (2 * shape[2], 2 * shape[3])
    return rng.standard_normal(shape).astype(numpy.float32), rng.standard_normal(out_shape).astype(numpy.float32)


def _ours_step(case):
    import minitorch_seg as mt
    from minitorch_seg import functional as F
    x_host, g_host = _data(case)
    x, g = mt.Tensor(x_host, requires_grad=True), mt.Tensor(g_host)

    def pool():
        x.grad = None
        y, switches = F.max_pool2d(x, 2, return_indices=True)
        F.max_unpool2d(y, switches, 2).backward(g)

    def upsample():
        x.grad = None
        F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).backward(g)

    step = pool if case == "pool" else upsample
    step()
    assert x.grad.dtype == numpy.float32, "float32 was upcast"
    return step


def _torch_step(case):
    import torch
    import torch.nn.functional as F
    x_host, g_host = _data(case)
    x, g = torch.from_numpy(x_host).requires_grad_(True), torch.from_numpy(g_host)

    def pool():
        x.grad = None
        y, switches = F.max_pool2d(x, 2, return_indices=True)
        F.max_unpool2d(y, switches, 2).backward(g)

    def upsample():
        x.grad = None
        F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).backward(g)

    return pool if case == "pool" else upsample


def _worker(which, connection):
    """Build one side's steps, then answer ("run", case, block, threads, clock) with that many timings."""
    steps = {case: (_ours_step if which == "ours" else _torch_step)(case) for case in SHAPES}
    while True:
        message = connection.recv()
        if message is None:
            return
        _, case, block, threads, clock = message
        clock = time.process_time if clock == "cpu" else time.perf_counter
        if which == "torch" and threads:
            import torch
            torch.set_num_threads(threads)
        for _ in range(2):                                  # warm-up: caches, allocator, thread pools
            steps[case]()
        times = []
        for _ in range(block):
            start = clock()
            steps[case]()
            times.append(clock() - start)
        connection.send(times)


def _start_workers():
    context = multiprocessing.get_context("spawn")
    workers, processes = {}, []
    for name in ("ours", "torch"):
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(name, child), daemon=True)
        process.start()
        workers[name], processes = parent, processes + [process]
    return workers, processes


def _stop_workers(workers, processes):
    for connection in workers.values():
        connection.send(None)
    for process in processes:
        process.join()


def compare(workers, case, repeats, threads, clock="wall", block=5, pause=0.3):
    """Medians (ms) of ``repeats`` timed runs per side, in alternating blocks of ``block``."""
    times = {name: [] for name in workers}
    for _ in range(max(1, repeats // block)):
        for name, connection in workers.items():
            time.sleep(pause)
            connection.send(("run", case, block, threads, clock))
            times[name] += connection.recv()
    return {name: numpy.median(t) * 1e3 for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--case", nargs="+", choices=sorted(SHAPES), default=["pool", "upsample"])
    args = parser.parse_args()
    import torch
    print(f"numpy {numpy.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeats} runs in alternating blocks")
    titles = {"pool": f"max_pool2d(2, return_indices) + max_unpool2d, fwd + bwd, {SHAPES['pool']} float32",
              "upsample": f"bilinear x2 (align_corners=False), fwd + bwd, {SHAPES['upsample']} float32"}
    lines = {case: [] for case in args.case}
    workers, processes = _start_workers()                     # default threads everywhere
    for case in args.case:
        for threads in (torch.get_num_threads(), 1):
            medians = compare(workers, case, args.repeats, threads)
            lines[case].append((f"wall, ours default threads, torch {threads} thread{'s' if threads > 1 else ''}",
                                medians))
    _stop_workers(workers, processes)
    os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")    # read by fresh workers at import
    workers, processes = _start_workers()
    for case in args.case:
        lines[case].append(("cpu,  one thread each", compare(workers, case, args.repeats, 1, clock="cpu")))
    _stop_workers(workers, processes)
    for case in args.case:
        print(titles[case])
        for label, medians in lines[case]:
            print(f"  {label:<45} minitorch_seg {medians['ours']:7.2f} ms   torch {medians['torch']:7.2f} ms"
                  f"   ratio {medians['ours'] / medians['torch']:4.2f}")


if __name__ == "__main__":
    main()
