"""Is a change faster? ``bench_step.py``'s U-Net step at a base revision and at the working tree, in one process.

    python benchmarks/bench_ab.py [--base HEAD] [--rounds 30] [--warm] [--job] [--json results/ab.json]

On the shared 2-core machine our step moved by 10-20% from one process to the next and from one
minute to the next: more than most changes gain. Timing two versions one after the other (or
each against PyTorch in its own process, ``bench_step.py``'s ratio) then needs many runs to tell
a 5% change from noise. Here the base revision's package is unpacked (``git archive``) under
another name, ``minitorch_seg_base``; both versions build the same model from the same seed and
take turns, a step each, in the order ABBA, after a pause (``bench_step.SETTLE``). Each version
runs in its own ``parallel.tile_threads`` (BLAS on one thread for both). The figure is the median
of the paired differences; the losses of the last step are printed beside it, to show the two
computed the same thing. Two A/A runs (the base the working tree itself, 24 and 30 rounds, on
steps of about 800 ms) gave -17 and -5 ms, quartiles about -50 / +10 ms: read a difference under
about 15 ms as none. ``--warm`` times each step right after an untimed one of the same version, 50
ms apart (as ``bench_step.py`` serves its steps), instead of after the pause: a step that starts
on cold caches and idle cores varies more. The CPU time of each timed step (all threads) is
reported beside the wall clock. ``--job`` takes the training job's step instead: batch 8 at 3x64x128
(``minitorch-seg train``'s default input scale), whose small maps weigh the per-call costs more.

For an A/B of one op rather than the step, ``unpack`` and ``tile_threads`` serve a script of one's
own: ``with tile_threads(base, minitorch_seg):`` runs both packages' tiles on the host threads.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def unpack(revision, folder):
    """The package at ``revision``, importable as ``minitorch_seg_base`` (it imports itself relatively)."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", revision, "minitorch_seg"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    os.rename(os.path.join(folder, "minitorch_seg"), os.path.join(folder, "minitorch_seg_base"))
    sys.path.insert(0, folder)
    import minitorch_seg_base
    return minitorch_seg_base


@contextlib.contextmanager
def tile_threads(*packages):
    """Each package's ``parallel.tile_threads()``, entered together, with the thread count the first one
    takes. The first puts BLAS on one thread; a second entered plainly would read that one thread as
    its count and run its tiles in turn on the caller's thread. The per-op A/Bs of session 44, in
    scripts that did so, ran their base versions without tile threads and overstated what four
    changes gained (``results/2026-12-04-zen4-passes.md``, corrected)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(packages[0].parallel.tile_threads())
        threads = packages[0].parallel.host_threads()
        for package in packages[1:]:
            stack.enter_context(package.parallel.tile_threads(threads))
        yield threads


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="the git revision to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warm", action="store_true", help="time each step right after an untimed one")
    parser.add_argument("--job", action="store_true", help="the training job's step: batch 8, 3x64x128")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    sys.path[:0] = [ROOT, HERE]                      # the working tree's package, and bench_step
    import numpy
    import bench_step
    import minitorch_seg
    if args.job:
        bench_step.BATCH, bench_step.HEIGHT, bench_step.WIDTH = 8, 64, 128
    with tempfile.TemporaryDirectory() as folder:
        base = unpack(args.base, folder)
        with tile_threads(base, minitorch_seg):
            steps = {"base": bench_step.our_step_fn(base)[1], "tree": bench_step.our_step_fn(minitorch_seg)[1]}
            for step in steps.values():           # warm-up: first touch of buffers, caches
                step(), step()
            times, cpu, losses = {name: [] for name in steps}, {name: [] for name in steps}, {}
            for round_ in range(args.rounds):
                for name in (("base", "tree") if round_ % 2 == 0 else ("tree", "base")):
                    if args.warm:
                        steps[name]()
                    time.sleep(0.05 if args.warm else bench_step.SETTLE)
                    start, start_cpu = time.perf_counter(), time.process_time()
                    losses[name] = steps[name]()
                    times[name].append(time.perf_counter() - start)
                    cpu[name].append(time.process_time() - start_cpu)
    results = {"base": args.base, "rounds": args.rounds, "warm": args.warm, "job": args.job, "last_loss": losses,
               "batch": [bench_step.BATCH, 3, bench_step.HEIGHT, bench_step.WIDTH]}
    for label, values in (("", times), ("cpu_", cpu)):
        ms = {name: numpy.array(v) * 1e3 for name, v in values.items()}
        difference = ms["tree"] - ms["base"]
        low, high = (float(q) for q in numpy.percentile(difference, [25, 75]))
        medians = {name: float(numpy.median(v)) for name, v in ms.items()}
        paired = {"median": float(numpy.median(difference)), "quartiles": [low, high],
                  "tree_less": int((difference < 0).sum())}
        results[label + "median_ms"], results[label + "paired_difference_ms"] = medians, paired
        print(f"{'CPU time' if label else 'wall clock'}: base ({args.base}) {medians['base']:.0f} ms, working tree "
              f"{medians['tree']:.0f} ms (medians of {args.rounds}); paired difference, tree - base: median "
              f"{paired['median']:+.1f} ms, quartiles {low:+.1f} / {high:+.1f} ms, the tree less in "
              f"{paired['tree_less']} of {args.rounds}")
    print(f"last losses {losses['base']:.6f} / {losses['tree']:.6f}")
    if args.json:
        from minitorch_seg.checkpoint import atomic_write_bytes
        from minitorch_seg.experiment import recorded_now
        results["recorded"] = recorded_now(f"bench_ab.py --base {args.base} --rounds {args.rounds}"
                                           + (" --warm" if args.warm else "") + (" --job" if args.job else ""))
        atomic_write_bytes(args.json, json.dumps(results, indent=2).encode())


if __name__ == "__main__":
    main()
