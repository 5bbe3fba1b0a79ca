"""The default job (``minitorch-seg train``) against the identical PyTorch job, over several seeds.

    python benchmarks/bench_train.py [--seeds 0 1 2] [--epochs N] [--json results/train.json]

For each seed: our run (the CLI's defaults), then PyTorch's, each in a process of its own: the
same initial weights copied over, the same batches in the same order (our DataLoader feeds both),
the same schedule and loss; both validated with our metrics. Beside them, two baselines that need no learning: the
position prior (each pixel's most frequent training class) and a per-pixel colour classifier
(nearest class-mean RGB). Reports images/s, the final validation mIoU and, the figure of record
for speed, each seed's time ratio (our seconds over PyTorch's, run back to back under the same load);
the JSON also records the date, the CPU, the load average and the job's settings.
"""
import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))


def miou(prediction, label, classes=19):
    from minitorch_seg.metrics import ConfusionMatrix
    matrix = ConfusionMatrix(classes)
    matrix.update(prediction, label)
    return matrix.compute()["miou"]


def load_split(root, split):
    from minitorch_seg.data import Cityscapes
    dataset = Cityscapes(root, split)
    images, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return numpy.stack(images), numpy.stack(labels)


def baselines(root):
    """mIoU of the position prior and of the nearest-class-mean-colour classifier on val."""
    train_images, train_labels = load_split(root, "train")
    val_images, val_labels = load_split(root, "val")
    counts = numpy.zeros((19,) + train_labels.shape[1:], numpy.int64)
    for c in range(19):
        counts[c] = (train_labels == c).sum(axis=0)
    prior = numpy.broadcast_to(counts.argmax(axis=0), val_labels.shape)
    means = numpy.array([train_images[train_labels == c].mean(axis=0) if (train_labels == c).any() else [1e9] * 3
                         for c in range(19)])
    distances = ((val_images[..., None, :].astype(numpy.float32) - means) ** 2).sum(axis=-1)
    colour = distances.argmin(axis=-1)
    return {"position_prior_miou": miou(prior, val_labels), "colour_classifier_miou": miou(colour, val_labels)}


def cpu_name():
    """The CPU's model name as /proc/cpuinfo gives it (what ``lscpu`` prints), or platform's guess elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """When and where: the date, the CPU, its cores, the load average (1, 5, 15 minutes) now, and
    the OpenBLAS settings in the environment: on a Zen 5 EPYC whose environment set
    ``OPENBLAS_CORETYPE=Haswell`` our job took 110 s, and 77 s without it in the next run
    (``results/2026-12-03-zen5-awake.md``); and whether ``parallel.tile_threads()`` keeps the
    cores awake here (``minitorch_seg/awake.py``), and if not, why."""
    from minitorch_seg import parallel
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    openblas = {k: v for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS_")}
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_name(), "machine": platform.machine(), "cores": os.cpu_count(), "load_average": load,
            "openblas_environment": openblas, "cores_kept_awake": parallel.kept_awake()}


def ours(root, seed, epochs, out):
    from minitorch_seg.train import TrainConfig, Trainer
    config = TrainConfig(seed=seed)
    if epochs:
        config.epochs = epochs
    trainer = Trainer(config, root, out, log=lambda line: None, progress=False)
    start = time.perf_counter()
    summary = trainer.run()
    seconds = time.perf_counter() - start
    images = config.epochs * len(trainer.train_loader) * config.batch_size
    from minitorch_seg import gemm
    return {"final_miou": summary["history"][-1]["val_miou"], "best_miou": summary["best_miou"],
            "images_per_second": images / seconds, "seconds": seconds, "epochs": config.epochs,
            "conv_products": gemm.engine()}


def torch_segment(model, images, input_scale):
    """predict.segment in torch: resize by input_scale, pad to a multiple of 32, logits resized back, argmax."""
    import torch
    height, width = images.shape[2:]
    if input_scale != 1.0:
        images = torch.nn.functional.interpolate(images, scale_factor=input_scale, mode="bilinear", align_corners=False)
    small_h, small_w = images.shape[2:]
    images = torch.nn.functional.pad(images, (0, -small_w % 32, 0, -small_h % 32))
    logits = model(images)[:, :, :small_h, :small_w]
    if (small_h, small_w) != (height, width):
        logits = torch.nn.functional.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return logits.argmax(dim=1)


def theirs(root, seed, epochs, out):
    """The same job in PyTorch: our loader's batches, initial weights and class weights; torch's SGD and schedulers."""
    import torch
    sys.path.insert(0, HERE)
    from torch_unet import TorchUNet

    from minitorch_seg.metrics import ConfusionMatrix
    from minitorch_seg.train import TrainConfig, Trainer
    config = TrainConfig(seed=seed)
    if epochs:
        config.epochs = epochs
    reference = Trainer(config, root, out, log=lambda line: None, progress=False)  # same weights, loaders
    model = TorchUNet(num_classes=19)
    model.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in reference.model.state_dict().items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    total = config.epochs * len(reference.train_loader)
    warmup = min(config.warmup_steps, max(total - 1, 1))
    schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup),
        torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=max(total - warmup, 1), power=0.9)],
        milestones=[warmup])
    weight = None if reference.class_weights is None else torch.from_numpy(reference.class_weights.numpy().copy())
    start, history = time.perf_counter(), []
    for epoch in range(config.epochs):
        model.train()
        reference.train_loader.set_epoch(epoch)
        for images, labels in reference.train_loader:
            loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(images.numpy())),
                                                     torch.from_numpy(labels.numpy()), weight=weight,
                                                     ignore_index=255)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        matrix = ConfusionMatrix(19)
        with torch.no_grad():
            for images, labels in reference.val_loader:
                matrix.update(torch_segment(model, torch.from_numpy(images.numpy()), config.input_scale).numpy(),
                              labels.numpy())
        history.append(matrix.compute()["miou"])
    seconds = time.perf_counter() - start
    images = config.epochs * len(reference.train_loader) * config.batch_size
    return {"final_miou": history[-1], "best_miou": max(history), "images_per_second": images / seconds,
            "seconds": seconds}


def isolated(job, *args):
    """``job(*args)`` in a fresh Python process of its own (spawned, not forked): neither side's
    libraries, threads or allocator state (our MKL, PyTorch's OpenMP pool) are loaded in the other's."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:   # a crash raises
        return pool.submit(_child, job, *args).result()


def _child(job, *args):
    from minitorch_seg import backend
    backend.tune_host_allocator()   # as the command line does, and as the parent process did for both before
    return job(*args)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="default: the CLI's")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    from minitorch_seg import backend
    from minitorch_seg.data import make_dataset
    from minitorch_seg.train import TrainConfig
    backend.tune_host_allocator()
    root = make_dataset(log=print)
    config = asdict(TrainConfig())
    if args.epochs:
        config["epochs"] = args.epochs
    results = {"start": machine(), "config": config, "baselines": baselines(root), "runs": []}
    print(f"position prior mIoU {results['baselines']['position_prior_miou']:.3f}, "
          f"colour classifier mIoU {results['baselines']['colour_classifier_miou']:.3f}")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as out:
            run = {"seed": seed, "ours": isolated(ours, root, seed, args.epochs, out)}
            if not args.no_torch:
                run["torch"] = isolated(theirs, root, seed, args.epochs, out)
        results["runs"].append(run)
        line = f"seed {seed}: ours mIoU {run['ours']['final_miou']:.3f} ({run['ours']['images_per_second']:.1f} img/s, " \
               f"{run['ours']['seconds']:.0f} s)"
        if "torch" in run:
            run["time_ratio"] = run["ours"]["seconds"] / run["torch"]["seconds"]
            line += f"; torch mIoU {run['torch']['final_miou']:.3f} ({run['torch']['images_per_second']:.1f} img/s, " \
                    f"{run['torch']['seconds']:.0f} s); ours/torch time {run['time_ratio']:.2f}"
        print(line, flush=True)
        write(args.json, {**results, "end": machine()})  # after every seed: a stopped run keeps what it measured
    finals = [r["ours"]["final_miou"] for r in results["runs"]]
    print(f"ours: mean final mIoU {numpy.mean(finals):.3f} over seeds {args.seeds}")
    if not args.no_torch:
        print(f"torch: mean final mIoU {numpy.mean([r['torch']['final_miou'] for r in results['runs']]):.3f}")


def write(path, results):
    """The results as JSON at ``path`` (written atomically), if a path was given."""
    if path:
        from minitorch_seg.checkpoint import atomic_write_bytes
        atomic_write_bytes(path, json.dumps(results, indent=2).encode())


if __name__ == "__main__":
    main()
