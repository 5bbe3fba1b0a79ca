"""Recipe: continue training one of our checkpoints with PyTorch's DistributedDataParallel, then bring it back.

minitorch_seg has no distributed engine of its own, and will not grow one: for many processes or
many machines, the path is PyTorch's. ``to_torch`` gives the model's torch twin (our names, our
weights); DDP trains it; its state_dict loads back into our model; our metrics evaluate it::

    from minitorch_seg import train
    from minitorch_seg.export import ddp_recipe

    model, meta = train.load_model("runs/hrnet/last.npz")                       # 1. our checkpoint
    state = ddp_recipe.train_ddp(model, images, labels, steps=1000, world_size=8, lr=0.01)   # 2-4.
    model.load_state_dict(state)                                               # 5. the weights come back
    print(ddp_recipe.evaluate(model, images, labels)["miou"])                   # 6. our metrics

``images`` (N, 3, H, W) float32, normalised as the checkpoint's ``meta["normalization"]`` says
(``data.transforms.normalize_chw``), ``labels`` (N, H, W) int64 train ids, 255 where void. The
steps:

1. ``train.load_model`` rebuilds the model from its checkpoint (``checkpoint.save`` for your own).
2. ``export.to_torch(model)``: the same architecture in torch, holding the same weights.
3. ``torch.multiprocessing.spawn`` starts ``world_size`` processes (``_worker``); each joins the
   process group (``gloo`` on CPUs, meeting through a file in a temporary folder; for GPUs use
   ``nccl``, one device per process, and for many machines launch ``_worker``'s body with
   ``torchrun``, which sets the rank and the address), wraps the twin in
   ``DistributedDataParallel`` and trains on its shard of the data (``DistributedSampler``):
   after training, a barrier, so no process tears the group down while another still uses it.
   DDP averages the gradients over the processes during ``backward``,
   so every replica takes the same step and the parameters stay identical.
4. Rank 0's ``state_dict()`` (every rank's, in ``workdir``) is written with ``torch.save``.
5. ``model.load_state_dict(state)``: the names are ours; the values land on our model's backend
   and dtype.
6. ``evaluate``: our ``metrics.ConfusionMatrix`` over the model's predictions.

BatchNorm runs per process on the process's batch (as in DDP without SyncBatchNorm); its
running statistics are rank 0's (DDP broadcasts buffers from rank 0 before every forward).
"""
import os
import tempfile

import numpy

from .. import metrics
from ..autograd import no_grad
from ..backend import to_backend
from ..tensor import Tensor
from .torch_model import to_torch, twin_class


def _worker(rank, world_size, rendezvous, name, config, workdir, steps, lr, batch_size, seed):
    """One process of the group: DDP training of the twin on this rank's shard; writes rank{r}.pt."""
    import torch
    import torch.distributed as dist
    from torch.nn.functional import cross_entropy
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    torch.manual_seed(seed)
    torch.set_num_threads(1)                        # the processes share the cores
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        state = torch.load(os.path.join(workdir, "initial.pt"), weights_only=True)
        twin = twin_class(name)(**config).to(next(v.dtype for v in state.values() if v.is_floating_point()))
        twin.load_state_dict(state)
        model = DistributedDataParallel(twin.train())
        with numpy.load(os.path.join(workdir, "data.npz")) as data:
            dataset = TensorDataset(torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]))
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        step, epoch = 0, 0
        while step < steps:
            sampler.set_epoch(epoch)                # a new shuffle, the same in every process
            for images, labels in loader:
                loss = cross_entropy(model(images), labels, ignore_index=255)
                optimizer.zero_grad()
                loss.backward()                     # DDP all-reduces (averages) the gradients here
                optimizer.step()
                step += 1
                if step == steps:
                    break
            epoch += 1
        torch.save(twin.state_dict(), os.path.join(workdir, f"rank{rank}.pt"))
        dist.barrier()                              # no process tears the group down while another still uses it
    finally:
        dist.destroy_process_group()
    # Its result is on disk: leave without the interpreter's teardown, where gloo's threads and the
    # DDP reducer can still be alive and abort the process ("terminate called without an active
    # exception", SIGABRT: seen twice under the full test suite's load). An error above still
    # propagates to mp.spawn with its traceback.
    os._exit(0)


def train_ddp(model, images, labels, steps, world_size=2, lr=0.01, batch_size=2, seed=0, workdir=None):
    """Train ``model``'s torch twin with DDP in ``world_size`` CPU processes for ``steps`` steps
    (SGD, momentum 0.9, cross-entropy ignoring 255; ``batch_size`` per process); returns rank 0's
    torch state_dict, our names. ``workdir`` keeps the files (initial state, data, each rank's
    result); by default a temporary folder. ``model`` itself is not changed."""
    import torch
    import torch.multiprocessing as mp

    from .. import gemm
    gemm.torch_arrived()            # after our MKL: it warns (two MKLs in one process)

    images = numpy.ascontiguousarray(images, dtype=numpy.dtype(next(model.parameters()).dtype))
    labels = numpy.ascontiguousarray(labels, dtype=numpy.int64)
    if len(images) < world_size * batch_size:
        raise ValueError(f"train_ddp: {len(images)} images cannot give {world_size} processes a batch of "
                         f"{batch_size} each.")
    with tempfile.TemporaryDirectory() as scratch:
        folder = workdir or scratch
        torch.save(to_torch(model).state_dict(), os.path.join(folder, "initial.pt"))
        numpy.savez(os.path.join(folder, "data.npz"), images=images, labels=labels)
        rendezvous = os.path.join(scratch, "rendezvous")     # a file store: no port to race for, no server to outlive
        mp.spawn(_worker, args=(world_size, rendezvous, type(model).__name__, model.config, folder, steps, lr,
                                batch_size, seed), nprocs=world_size, join=True)
        return torch.load(os.path.join(folder, "rank0.pt"), weights_only=True)


def evaluate(model, images, labels, num_classes=None, batch_size=4):
    """Our metrics (``ConfusionMatrix.compute``: miou, iou, accuracies) of ``model`` in eval mode."""
    confusion = metrics.ConfusionMatrix(num_classes or model.num_classes)
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for start in range(0, len(images), batch_size):
                batch = numpy.asarray(images[start:start + batch_size], dtype=numpy.dtype(parameter.dtype))
                logits = model(Tensor(to_backend(batch, parameter.backend)))
                confusion.update(logits, to_backend(numpy.asarray(labels[start:start + batch_size]), parameter.backend))
    finally:
        model.train(was_training)
    return confusion.compute()
