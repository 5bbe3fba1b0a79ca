"""Datasets with torch's names: Dataset, TensorDataset, Subset, ConcatDataset and random_split.

>>> import minitorch_seg as mt
>>> data = TensorDataset(mt.arange(10), mt.arange(10) * 2)
>>> data[3]
(tensor(3), tensor(6))
>>> train, val = random_split(data, [0.8, 0.2], generator=mt.Generator().manual_seed(0))
>>> len(train), len(val)
(8, 2)
"""
import bisect
import math

from ...creation import randperm


class Dataset:
    """Base class: a subclass defines ``__getitem__(index)`` and ``__len__()``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} does not define __getitem__().")

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the index-th rows of each tensor: ``dataset[i] == tuple(t[i] for t in tensors)``."""

    def __init__(self, *tensors):
        sizes = {t.shape[0] for t in tensors}
        if len(sizes) > 1:
            raise ValueError(f"TensorDataset: all tensors need the same first dimension, got sizes "
                             f"{[t.shape[0] for t in tensors]}.")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """The datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable.")
        self.cumulative_sizes = []
        total = 0
        for dataset in self.datasets:
            total += len(dataset)
            self.cumulative_sizes.append(total)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        if index < 0:
            if -index > len(self):
                raise ValueError("ConcatDataset: absolute value of index should not exceed dataset length.")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def _lengths(total, lengths):
    """Counts from ``lengths``: counts that sum to ``total``, or fractions that sum to 1 (torch's rounding)."""
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and not all(isinstance(n, int) for n in lengths):
        if any(f < 0 or f > 1 for f in lengths):
            raise ValueError(f"random_split: fractions must be in [0, 1], got {list(lengths)}.")
        counts = [int(math.floor(total * f)) for f in lengths]
        for i in range(total - sum(counts)):       # the remainder, one each, round-robin from the first
            counts[i % len(counts)] += 1
        return counts
    if sum(lengths) != total:
        raise ValueError(f"random_split: the lengths {list(lengths)} sum to {sum(lengths)}, not to the dataset's "
                         f"length {total} (or give fractions that sum to 1).")
    return list(lengths)


def random_split(dataset, lengths, generator=None):
    """Disjoint random Subsets of the given lengths (counts, or fractions summing to 1), drawn from ``generator``."""
    counts = _lengths(len(dataset), lengths)
    order = randperm(sum(counts), generator=generator).tolist()
    subsets, start = [], 0
    for n in counts:
        subsets.append(Subset(dataset, order[start:start + n]))
        start += n
    return subsets
