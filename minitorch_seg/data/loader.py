"""``DataLoader``: batches of (images, labels) Tensors, reproducible from (seed, epoch, index).

Everything random is a function of numbers the trainer already checkpoints:

- the order of an epoch is ``numpy.random.default_rng([seed, epoch]).permutation(len(dataset))``
  (or 0..n-1 without shuffling);
- sample ``index`` of epoch ``epoch`` is augmented with its own generator,
  ``numpy.random.default_rng([seed, epoch, index])``.

No state is shared between samples, so a background thread may load ahead without changing a
single pixel, and a run resumed at batch k of an epoch sees exactly the batches k, k+1, ... that
the uninterrupted run saw.

A background thread (``prefetch=True``) reads, decodes and transforms the next batches while
the current one trains; the main thread only moves each finished host batch to the backend
(one ``to_backend`` per array) and wraps it in Tensors. ``wait_seconds`` adds up, per epoch, the
time the training loop spent waiting for data (including that move).

>>> import numpy, minitorch_seg as mt
>>> class Tiny:
...     def __len__(self): return 5
...     def __getitem__(self, i): return numpy.full((2, 3, 3), i, numpy.uint8), numpy.full((2, 3), i)
>>> loader = DataLoader(Tiny(), batch_size=2, shuffle=True, seed=1)
>>> len(loader), [labels.numpy()[:, 0, 0].tolist() for images, labels in loader]
(3, [[4, 0], [1, 2], [3]])
>>> loader.set_epoch(1); [labels.numpy()[:, 0, 0].tolist() for images, labels in loader]
[[1, 4], [0, 3], [2]]
>>> images, labels = next(iter(loader)); images.shape, images.dtype, labels.dtype
((2, 3, 2, 3), dtype('float32'), dtype('int64'))
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy

from .. import backend as shim
from ..tensor import Tensor
from .transforms import IMAGENET_MEAN, IMAGENET_STD, normalize_chw

__all__ = ["DataLoader"]

_DONE = object()


class DataLoader:
    """Iterate over ``dataset`` in batches of ``(images, labels)``: float32 (N, 3, H, W) and int64 (N, H, W).

    ``dataset``: anything with ``len()`` and ``dataset[i] -> (image uint8 (H, W, 3), label int (H, W))``.
    ``transform``: a paired transform ``(image, label, rng) -> (image, label)`` (see ``transforms``),
    called with the sample's own generator. Images are then normalised with ``mean``/``std``
    (ImageNet's by default) and put channels first.
    ``seed``, ``set_epoch(epoch, start_batch=0)``: what the order and the augmentation depend on;
    ``start_batch`` makes the next iteration begin at that batch (resuming mid-epoch).
    ``prefetch``: load up to ``prefetch_batches`` batches ahead in a background thread
    (``workers`` > 1 loads the samples of a batch on that many threads). The batches are the
    same with prefetch on or off.
    ``backend``: where batches go; None means the backend current when each batch is handed out.

    Unlike PyTorch: no worker processes (threads: PNG decoding and resizing release the GIL) and
    no ``collate_fn``; the shuffle order is a pure function of (seed, epoch), not of a global
    generator's history.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=0, transform=None,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, prefetch=True, prefetch_batches=2, workers=1,
                 backend=None):
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be positive, got {batch_size}.")
        if backend is not None:
            shim.module_for(backend)  # fail now for an unknown or unavailable backend
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.seed, self.transform, self.mean, self.std = int(seed), transform, mean, std
        self.prefetch, self.prefetch_batches = prefetch, max(1, int(prefetch_batches))
        self.workers = max(1, int(workers))
        self.backend = backend
        self.epoch, self.start_batch = 0, 0
        self.wait_seconds = 0.0

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch, start_batch=0):
        """Choose the epoch (the order and augmentation) and the batch the next iteration starts at."""
        if not 0 <= start_batch <= len(self):
            raise ValueError(f"DataLoader: start_batch {start_batch} is outside 0..{len(self)}.")
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def order(self, epoch=None):
        """The dataset indices of an epoch, in the order they are served."""
        epoch = self.epoch if epoch is None else epoch
        n = len(self.dataset)
        return numpy.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else numpy.arange(n)

    def batch_indices(self, epoch=None):
        """The dataset indices of every batch of an epoch (a list of arrays)."""
        order = self.order(epoch)
        return [order[b * self.batch_size:(b + 1) * self.batch_size] for b in range(len(self))]

    # ---- making one host batch (the same code with and without the thread) ------------------
    def _sample(self, index, epoch):
        image, label = self.dataset[int(index)]
        image, label = numpy.asarray(image), numpy.asarray(label)
        if self.transform is not None:
            image, label = self.transform(image, label, numpy.random.default_rng([self.seed, epoch, int(index)]))
        return image, label

    def _host_batch(self, indices, epoch, pool=None):
        samples = list(pool.map(lambda i: self._sample(i, epoch), indices)) if pool else \
            [self._sample(i, epoch) for i in indices]
        shapes = {(s[0].shape, s[1].shape) for s in samples}
        if len(shapes) > 1:
            raise ValueError(f"DataLoader: samples of one batch differ in size ({sorted(shapes)}); "
                             "give a transform that crops or resizes them to one size.")
        images = numpy.stack([s[0] for s in samples])                      # (N, H, W, 3) uint8
        labels = numpy.stack([s[1] for s in samples]).astype(numpy.int64, copy=False)  # (N, H, W)
        return normalize_chw(images, self.mean, self.std), labels          # (N, 3, H, W) float32

    def _to_tensors(self, host_images, host_labels):
        name = self.backend or shim.get_backend()
        return Tensor(shim.to_backend(host_images, name)), Tensor(shim.to_backend(host_labels, name))

    # ---- iteration --------------------------------------------------------------------------
    def __iter__(self):
        epoch, start = self.epoch, self.start_batch
        self.start_batch = 0            # a resume point applies to one iteration only
        batches = self.batch_indices(epoch)[start:]
        self.wait_seconds = 0.0
        if not batches:
            return iter(())
        return self._prefetched(batches, epoch) if self.prefetch else self._inline(batches, epoch)

    def _inline(self, batches, epoch):
        pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        try:
            for indices in batches:
                began = time.perf_counter()
                tensors = self._to_tensors(*self._host_batch(indices, epoch, pool))
                self.wait_seconds += time.perf_counter() - began
                yield tensors
        finally:
            if pool:
                pool.shutdown(wait=True)

    def _prefetched(self, batches, epoch):
        results = queue.Queue(maxsize=self.prefetch_batches)
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(batches, epoch, results, stop),
                                  name="minitorch_seg-DataLoader", daemon=True)
        thread.start()
        try:
            while True:
                began = time.perf_counter()
                item = results.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                tensors = self._to_tensors(*item)
                self.wait_seconds += time.perf_counter() - began
                yield tensors
        finally:
            # Dropped, finished or failed: stop the thread, unblocking it if it waits on a full queue.
            stop.set()
            while thread.is_alive():
                try:
                    results.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.01)

    def _produce(self, batches, epoch, results, stop):
        """The background thread: make host batches in order and queue them; errors are queued too."""
        pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None

        def put(item):
            while not stop.is_set():
                try:
                    results.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for indices in batches:
                if stop.is_set() or not put(self._host_batch(indices, epoch, pool)):
                    return
            put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the training loop, raised there
            put(error)
        finally:
            if pool:
                pool.shutdown(wait=True)

    def __repr__(self):
        return (f"DataLoader(len(dataset)={len(self.dataset)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, transform={self.transform!r}, "
                f"prefetch={self.prefetch})")
