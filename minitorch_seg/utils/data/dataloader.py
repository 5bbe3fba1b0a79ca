"""``DataLoader``: batches of a dataset, shuffled with a generator, collated as torch collates them.

``default_collate`` stacks tensors (and NumPy arrays) along a new first dim, turns numbers into
tensors (floats float64, ints int64, as torch), keeps strings as lists, and recurses into tuples,
lists and dicts, so a dataset returning ``(image, mask)`` gives batches ``[images, masks]``.

Unlike PyTorch: ``num_workers``, ``pin_memory``, ``prefetch_factor``, ``persistent_workers``,
``timeout`` and ``worker_init_fn`` are accepted and ignored: samples load in the calling process.
The shuffled order for a seed differs from torch's (another random algorithm).

>>> import minitorch_seg as mt
>>> from minitorch_seg.utils.data import TensorDataset
>>> loader = DataLoader(TensorDataset(mt.arange(5.0), mt.arange(5)), batch_size=2)
>>> [(x.tolist(), y.tolist()) for x, y in loader]
[([0.0, 1.0], [0, 1]), ([2.0, 3.0], [2, 3]), ([4.0], [4])]
"""
import collections.abc
import math

import numpy

from ... import backend, dtypes
from ...creation import randperm
from ...functional import stack
from ...tensor import Tensor


def default_collate(batch):
    """One batch from a list of samples (see the module docstring)."""
    first = batch[0]
    if isinstance(first, Tensor):
        return stack(list(batch), 0)
    if backend.backend_name_or_none(first) is not None and not isinstance(first, numpy.generic):
        xp = backend.get_array_module(*batch)
        return Tensor(xp.stack(batch))
    if isinstance(first, (bool, numpy.bool_)):
        return Tensor(backend.asarray(list(batch), dtype=dtypes.bool))
    if isinstance(first, (int, numpy.integer)):
        return Tensor(backend.asarray(list(batch), dtype=dtypes.int64))
    if isinstance(first, (float, numpy.floating)):
        return Tensor(backend.asarray(list(batch), dtype=dtypes.float64))
    if isinstance(first, (str, bytes)) or first is None:
        return list(batch)
    if isinstance(first, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):          # a namedtuple
        return type(first)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(first, collections.abc.Sequence):
        if any(len(sample) != len(first) for sample in batch):
            raise RuntimeError("default_collate: each element in the list of samples should be of equal size.")
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(f"default_collate: batches must contain tensors, arrays, numbers, strings, dicts or lists; "
                    f"found {type(first).__name__}.")


class DataLoader:
    """Iterate over ``dataset`` in batches: ``DataLoader(dataset, batch_size=1, shuffle=False, ...)``.

    ``shuffle`` draws a new order every epoch from ``generator`` (a ``Generator``) or the global
    generator; ``sampler``/``batch_sampler`` may give the indices instead; ``drop_last`` drops a
    short final batch; ``batch_size=None`` yields samples one by one, uncollated by default.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if shuffle and sampler is not None:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle.")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                             "sampler, and drop_last.")
        if batch_sampler is not None:
            batch_size = None if batch_size is None else 1
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, bool(shuffle)
        self.sampler, self.batch_sampler, self.drop_last = sampler, batch_sampler, drop_last
        self.num_workers, self.generator = num_workers, generator
        if collate_fn is None:
            collate_fn = default_collate if (batch_size is not None or batch_sampler is not None) else _identity
        self.collate_fn = collate_fn

    def _indices(self):
        if self.sampler is not None:
            return list(self.sampler)
        if self.shuffle:
            return randperm(len(self.dataset), generator=self.generator).tolist()
        return list(range(len(self.dataset)))

    def _batches(self):
        if self.batch_sampler is not None:
            yield from (list(b) for b in self.batch_sampler)
            return
        indices = self._indices()
        if self.batch_size is None:
            yield from indices
            return
        for start in range(0, len(indices), self.batch_size):
            batch = indices[start:start + self.batch_size]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __iter__(self):
        for batch in self._batches():
            if self.batch_size is None and self.batch_sampler is None:
                yield self.collate_fn(self.dataset[batch])
            else:
                yield self.collate_fn([self.dataset[i] for i in batch])

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        count = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return count
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)


def _identity(sample):
    return sample
