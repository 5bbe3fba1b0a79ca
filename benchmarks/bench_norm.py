"""BatchNorm2d forward + backward in training, minitorch_seg (NumPy) against torch on the CPU.

The shape is a U-Net's first stage at Cityscapes half resolution: (4, 16, 128, 256) float32.
Ours and torch's run in two worker processes, in alternating blocks (interleaved, so drifts in
clock, load and caches hit both alike); the medians and their ratio are printed, first with
torch's default thread count, then with torch.set_num_threads(1).

Why two processes and blocks: after a call, NumPy's OpenBLAS threads and torch's OpenMP threads
spin a while waiting for more work; in one process, or with runs alternating one by one, each
library's spinning threads take the cores from the other's next run (we saw 10x slowdowns on
two cores). A pause between blocks lets the spinning stop; a warm-up opens each block.

NumPy's BLAS (our two reductions use it) keeps its own threads: run with
OPENBLAS_NUM_THREADS=1 for a one-thread ours to set against torch's one thread.
Ours includes the engine's copy of dL/dx into the leaf's ``x.grad`` (torch hands its buffer
over); in a network the input is a conv's output, not a leaf, and that copy does not happen.

    python benchmarks/bench_norm.py [--repeats 40] [--shape 4 16 128 256]

Measured here (numpy 2.4.6, torch 2.13.0+cpu, 2 CPUs shared with other jobs' test runs, load
average 0.8 to 4, so the spread is wide; timings live here and in reports, never in the tests):
- quietest run (load 0.77), default threads: ours 4.1 ms, torch 6.3 ms, ratio 0.65;
- OPENBLAS_NUM_THREADS=1 against torch.set_num_threads(1), five runs: ratio 0.59 to 0.81
  (ours 4.4 to 5.9 ms, torch 5.9 to 9.9 ms);
- the least disturbed runs (minima) under load: ours 4.3 ms on one BLAS thread, torch 3.1 ms on
  two threads (1.39x), 9.3 ms on one (0.46x).
Under load both libraries' medians with two threads swing by 5-10x (a thread that loses its
core stalls the others); the one-thread pair is the steady comparison.
"""
import argparse
import multiprocessing
import os
import time

import numpy


def _ours_step(shape, seed):
    import minitorch_seg as mt
    from minitorch_seg import nn
    x_host, g_host = _data(shape, seed)
    bn = nn.BatchNorm2d(shape[1])
    x, g = mt.Tensor(x_host, requires_grad=True), mt.Tensor(g_host)

    def step():
        x.grad = None
        bn(x).backward(g)

    step()
    assert x.grad.dtype == numpy.float32 and bn.running_var.dtype == numpy.float32, "float32 was upcast"
    return step


def _torch_step(shape, seed):
    import torch
    x_host, g_host = _data(shape, seed)
    bn = torch.nn.BatchNorm2d(shape[1])
    x, g = torch.from_numpy(x_host).requires_grad_(True), torch.from_numpy(g_host)

    def step():
        x.grad = None
        bn(x).backward(g)

    return step


def _data(shape, seed):
    rng = numpy.random.default_rng(seed)
    return ((rng.standard_normal(shape) * 2 + 0.5).astype(numpy.float32),
            rng.standard_normal(shape).astype(numpy.float32))


def _worker(which, shape, connection):
    """Build one side's step, then answer ("run", block, threads) with that many timings."""
    step = (_ours_step if which == "ours" else _torch_step)(shape, 0)
    while True:
        message = connection.recv()
        if message is None:
            return
        _, block, threads = message
        if which == "torch" and threads:
            import torch
            torch.set_num_threads(threads)
        for _ in range(2):
            step()
        times = []
        for _ in range(block):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        connection.send(times)


def compare(workers, repeats, threads, block=5, pause=0.3):
    """(median, min) in ms of ``repeats`` timed runs per side, in alternating blocks of ``block``.

    The minimum is the run least disturbed by other jobs on a shared machine.
    """
    times = {name: [] for name in workers}
    for _ in range(max(1, repeats // block)):
        for name, connection in workers.items():
            time.sleep(pause)                      # let the other side's spinning threads go to sleep
            connection.send(("run", block, threads))
            times[name] += connection.recv()
    return {name: (numpy.median(t) * 1e3, numpy.min(t) * 1e3) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--shape", type=int, nargs=4, default=(4, 16, 128, 256))
    args = parser.parse_args()
    shape = tuple(args.shape)
    import torch
    context = multiprocessing.get_context("spawn")
    workers, processes = {}, []
    for name in ("ours", "torch"):
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(name, shape, child), daemon=True)
        process.start()
        workers[name], processes = parent, processes + [process]
    print(f"BatchNorm2d training forward + backward, {shape} float32, medians of {args.repeats} runs in alternating blocks")
    print(f"numpy {numpy.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, load average {os.getloadavg()[0]:.2f}")
    for threads in (torch.get_num_threads(), 1):
        (ours, ours_min), (theirs, theirs_min) = compare(workers, args.repeats, threads).values()
        print(f"  torch threads {threads}: minitorch_seg {ours:6.2f} ms (min {ours_min:5.2f})   "
              f"torch {theirs:6.2f} ms (min {theirs_min:5.2f})   ratio {ours / theirs:4.2f} (of the minima "
              f"{ours_min / theirs_min:4.2f})")
    for connection in workers.values():
        connection.send(None)
    for process in processes:
        process.join()


if __name__ == "__main__":
    main()
