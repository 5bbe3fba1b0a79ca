"""One U-Net training step (batch 4, 3x128x256, 19 classes): ours against PyTorch CPU.

    python benchmarks/bench_step.py [--rounds 7] [--winograd 64] [--json results/step.json]

Runs, each in its own child process:
- timing, twice: with OpenBLAS choosing its own core, and pinned with OPENBLAS_CORETYPE=Haswell
  (the variable only takes effect before NumPy is imported). Ours, PyTorch with its default
  threads and PyTorch with one thread are interleaved round by round, each side in a process of
  its own (two MKLs must not meet in one: ``minitorch_seg/gemm.py``), each timed step right after
  an untimed one (``_serve``); medians and ratios; the machine's NumPy float32 GEMM ceiling;
- a per-op profile of our step (forward and backward seconds per Function);
- peak RSS minus RSS after import, for each side alone.

``--winograd C`` adds a fourth side to the timing rounds: our same step with the 3x3 convs of at
least C input and output channels through Winograd F(2x2, 3x3) (``functional/winograd.py``), and
runs the profile and our RSS with it on.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, HEIGHT, WIDTH, CLASSES = 4, 128, 256, 19
SETTLE = 0.3  # seconds: OpenBLAS's and PyTorch's worker threads spin a while after each call


def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def batch(seed=0):
    import numpy
    rng = numpy.random.default_rng(seed)
    images = rng.standard_normal((BATCH, 3, HEIGHT, WIDTH)).astype(numpy.float32)
    labels = rng.integers(0, CLASSES, (BATCH, HEIGHT, WIDTH))
    labels[rng.random(labels.shape) < 0.1] = 255
    return images, labels


def our_step_fn(mt=None):
    """(model, step) of our library, or of ``mt``, another copy of it under its own name (``bench_ab.py``)."""
    import importlib
    mt = mt or importlib.import_module("minitorch_seg")
    F, models, optim = (importlib.import_module(f"{mt.__name__}.{name}") for name in ("functional", "models", "optim"))
    mt.backend.tune_host_allocator()  # as the CLI does
    mt.manual_seed(0)
    model = models.build("unet", num_classes=CLASSES)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = batch()
    x, y = mt.tensor(images), mt.tensor(labels)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y, ignore_index=255)
        loss.backward()
        optimizer.step()
        return loss.item()
    return model, step


def torch_step_fn(state_dict=None):
    import torch
    sys.path.insert(0, HERE)
    from torch_unet import TorchUNet
    model = TorchUNet(num_classes=CLASSES)
    if state_dict is not None:
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state_dict.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = batch()
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y, ignore_index=255)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def gemm_gflops(size=2048, repeats=5):
    import numpy
    a = numpy.random.default_rng(0).standard_normal((size, size)).astype(numpy.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def openblas_core():
    import numpy
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(f"{i.get('internal_api')} {i.get('architecture')} x{i.get('num_threads')}" for i in threadpool_info())
    except ImportError:
        config = numpy.show_config(mode="dicts")
        return str(config.get("Build Dependencies", {}).get("blas", {}).get("name"))


def set_winograd(min_channels):
    """conv's dispatch threshold for Winograd F(2x2, 3x3); None: off (the library default)."""
    from minitorch_seg.functional import conv
    conv.WINOGRAD_MIN_CHANNELS = min_channels


def _side(name, connection):
    """One side of the timing rounds, in a process of its own: answers each message, (setting,) (the
    Winograd threshold for ours, torch's threads for PyTorch), with one timed step's seconds; None ends it.

    Our step runs as the CLI runs it (``parallel.tile_threads``). PyTorch's starts from our initial
    weights, built here with torch loaded first, so no product of ours runs in its process: two MKLs
    in one process share their symbols (``minitorch_seg/gemm.py``), and PyTorch's job ran 40% slower
    after ours had loaded MKL beside it."""
    if name == "ours":
        from minitorch_seg import gemm, parallel
        with parallel.tile_threads():
            step = our_step_fn()[1]
            step(), step()                                     # warm-up: first-touch of buffers, caches
            connection.send(gemm.engine())
            _serve(connection, step, set_winograd)
        return
    import torch
    step = torch_step_fn({k: v.numpy() for k, v in our_step_fn()[0].state_dict().items()})
    step(), step()
    default = torch.get_num_threads()
    connection.send(default)
    _serve(connection, step, torch.set_num_threads)


def _serve(connection, step, configure):
    """Answer each (setting,) with the seconds of one step right after an untimed one: in training,
    steps follow each other. After the pause (``SETTLE``) the first step touches memory left alone
    for a second or so; on the 2-core Xeon VM that made each side's step about 20 ms longer, and
    while the VM ran slowly memory so left took ~5 us a 4 KiB page to touch again (2026-12-03:
    our ratio 1.10x after a pause against 1.18-1.20x after a step, then; 1.24-1.26x against
    1.26-1.35x on the quick VM; ``results/2026-12-03-xeon-thp.md``)."""
    while (message := connection.recv()) is not None:                # (setting,)
        configure(message[0])
        step()
        connection.send(_timed(step))


def role_time(rounds, winograd=None):
    """Ours, our Winograd variant and PyTorch at its default threads and at one, a step each in turn,
    each side in a spawned process of its own; the pauses let the other side's spinning threads sleep."""
    import multiprocessing

    import numpy
    context = multiprocessing.get_context("spawn")
    sides = {}
    for name in ("ours", "torch"):
        mine, theirs = context.Pipe()
        process = context.Process(target=_side, args=(name, theirs), daemon=True)
        process.start()
        theirs.close()                        # only the worker holds it now: if the worker dies, recv() raises
        sides[name] = (mine, process)
    ours, torch_side = sides["ours"][0], sides["torch"][0]
    engine, default_threads = ours.recv(), torch_side.recv()

    def timed(connection, setting):
        time.sleep(SETTLE)
        connection.send((setting,))
        return connection.recv()
    times = {"ours": [], "torch": [], "torch_1thread": []}
    if winograd is not None:
        times["ours_winograd"] = []
    for _ in range(rounds):
        times["ours"].append(timed(ours, None))
        if winograd is not None:
            times["ours_winograd"].append(timed(ours, winograd))
        times["torch"].append(timed(torch_side, default_threads))
        times["torch_1thread"].append(timed(torch_side, 1))
    for connection, process in sides.values():
        connection.send(None)
        process.join()
    median = {k: float(numpy.median(v)) * 1e3 for k, v in times.items()}
    extra = {"winograd_min_channels": winograd, "ratio_winograd_vs_torch": median["ours_winograd"] / median["torch"]} \
        if winograd is not None else {}
    return {**extra, "ms": median, "ratio_vs_torch": median["ours"] / median["torch"],
            "ratio_vs_torch_1thread": median["ours"] / median["torch_1thread"],
            "torch_threads": default_threads, "conv_products": engine,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(auto)")}


def role_profile(steps=3):
    from minitorch_seg import autograd
    _, ours = our_step_fn()
    ours()
    with autograd.profile() as table:
        start = time.perf_counter()
        for _ in range(steps):
            ours()
        total = (time.perf_counter() - start) / steps
    rows = sorted(((name, calls / steps, fwd / steps * 1e3, bwd / steps * 1e3) for name, (calls, fwd, bwd) in table.items()),
                  key=lambda row: -(row[2] + row[3]))
    return {"step_ms": total * 1e3, "ops": [dict(zip(("op", "calls", "forward_ms", "backward_ms"), row)) for row in rows]}


def role_rss(side, steps=3):
    if side == "ours":
        import minitorch_seg  # noqa: F401
    else:
        import torch  # noqa: F401
    after_import = rss_mib()
    step = our_step_fn()[1] if side == "ours" else torch_step_fn()
    for _ in range(steps):
        step()
    return {"rss_after_import_mib": after_import, "peak_rss_mib": peak_rss_mib(),
            "peak_above_import_mib": peak_rss_mib() - after_import}


def child(role, *args, env=None):
    command = [sys.executable, os.path.abspath(__file__), "--role", role, *args]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", default="all", choices=["all", "time", "profile", "rss"])
    parser.add_argument("--side", default="ours", choices=["ours", "torch"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--winograd", type=int, metavar="C", help="also time our step with Winograd for >= C channels")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.role == "rss" and args.side == "torch":  # torch's own process: nothing of ours imported
        print(json.dumps(role_rss("torch")))
        return
    if args.role != "all":  # a child process: our side runs as the CLI runs it (parallel.tile_threads)
        from minitorch_seg import parallel
        machine = {"gemm_gflops": gemm_gflops(), "blas": openblas_core(),                     # BLAS's own threads
                   "cores_kept_awake": parallel.kept_awake()} if args.role == "time" else {}
        if args.role != "time":
            set_winograd(args.winograd)
        with parallel.tile_threads():
            role = {"time": lambda: role_time(args.rounds, args.winograd), "profile": role_profile,
                    "rss": lambda: role_rss(args.side)}
            print(json.dumps(dict(role[args.role](), **machine)))
        return

    auto = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    pinned = dict(auto, OPENBLAS_CORETYPE="Haswell")
    switch = ["--winograd", str(args.winograd)] if args.winograd is not None else []
    results = {"timing_auto_core": child("time", "--rounds", str(args.rounds), *switch, env=auto),
               "timing_pinned_haswell": child("time", "--rounds", str(args.rounds), *switch, env=pinned),
               "profile": child("profile", *switch, env=auto),
               "rss_ours": child("rss", "--side", "ours", *switch, env=auto),
               "rss_torch": child("rss", "--side", "torch", env=auto)}
    for label in ("timing_auto_core", "timing_pinned_haswell"):
        t = results[label]
        print(f"{label}: ours {t['ms']['ours']:.0f} ms, torch {t['ms']['torch']:.0f} ms ({t['torch_threads']} threads), "
              f"torch 1 thread {t['ms']['torch_1thread']:.0f} ms -> ratio {t['ratio_vs_torch']:.2f}x "
              f"({t['ratio_vs_torch_1thread']:.2f}x vs 1 thread); NumPy GEMM {t['gemm_gflops']:.0f} GFLOP/s [{t['blas']}]; "
              f"conv products: {t['conv_products']}; cores kept awake: {t['cores_kept_awake']}")
        if args.winograd is not None:
            print(f"  with Winograd for >= {args.winograd} channels: ours {t['ms']['ours_winograd']:.0f} ms -> ratio "
                  f"{t['ratio_winograd_vs_torch']:.2f}x")
    print(f"peak RSS above import: ours {results['rss_ours']['peak_above_import_mib']:.0f} MiB, "
          f"torch {results['rss_torch']['peak_above_import_mib']:.0f} MiB "
          f"(after import: {results['rss_ours']['rss_after_import_mib']:.0f} / {results['rss_torch']['rss_after_import_mib']:.0f} MiB)")
    print(f"\nper-op profile of our step ({results['profile']['step_ms']:.0f} ms with profiling):")
    print(f"{'op':<20} {'calls':>6} {'fwd ms':>8} {'bwd ms':>8}")
    for row in results["profile"]["ops"]:
        print(f"{row['op']:<20} {row['calls']:>6.0f} {row['forward_ms']:>8.1f} {row['backward_ms']:>8.1f}")
    if args.json:
        from minitorch_seg.checkpoint import atomic_write_bytes
        atomic_write_bytes(args.json, json.dumps(results, indent=2).encode())


if __name__ == "__main__":
    main()
