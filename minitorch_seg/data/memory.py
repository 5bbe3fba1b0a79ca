"""``InMemory``: a dataset whose samples are decoded once and then kept, up to a budget of bytes.

A training job reads every image once an epoch, so 16 epochs decode each PNG 16 times. On the
built-in data (300 training images of 128x256) decoding took 9 of the loader's 16 ms a batch, and
the loader's thread shares the two cores with the step: with it running, each step of the default
job took 15 ms longer than with the batches ready (2026-12-03, 2-core Xeon). Kept decoded, the
built-in splits hold 46 MB. A larger dataset keeps what fits in ``max_bytes`` and reads the rest
from disk each time, as before.

Nothing a sample is made of changes: each read returns fresh arrays equal to the dataset's own
(a copy of the kept image, the label in its own dtype), so a transform may write into them, and a
run with the cache gives the very batches of a run without it. That holds for a dataset whose
reads are all alike, as ``Cityscapes`` without ``transforms`` is: of one that draws a random
transform itself, the first draw would be kept (give random transforms to the ``DataLoader``).

>>> import numpy
>>> class Counting:
...     reads = 0
...     def __len__(self): return 3
...     def __getitem__(self, i):
...         Counting.reads += 1
...         return numpy.full((2, 2, 3), i, numpy.uint8), numpy.full((2, 2), i, numpy.int64)
>>> data = InMemory(Counting(), max_bytes=1 << 20)
>>> [int(data[i][1][0, 0]) for i in (0, 1, 0, -3, 1)], Counting.reads    # decoded once each
([0, 1, 0, 0, 1], 2)
>>> data[0][1].dtype
dtype('int64')
"""
import operator
import threading

import numpy


class InMemory:
    """``dataset`` (``len()``, ``dataset[i] -> (image, label)``, optionally ``target(i)``) with each
    sample kept after its first read while the kept ones take at most ``max_bytes``. Labels whose
    values fit in a byte are kept as uint8 and returned in their own dtype."""

    def __init__(self, dataset, max_bytes):
        self.dataset, self.max_bytes = dataset, int(max_bytes)
        self._kept, self._bytes, self._lock = {}, 0, threading.Lock()   # index -> (image, label, label dtype)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        key = self._key(index)
        kept = self._kept.get(key)
        if kept is None:
            image, label = self.dataset[key]
            kept = self._keep(key, numpy.asarray(image), numpy.asarray(label))
            if kept is None:                               # over the budget: as read
                return image, label
        image, label, dtype = kept
        return image.copy(), label.astype(dtype)

    def target(self, index):
        """The dataset's own ``target(index)``, read there each time: it may differ from the label that
        ``dataset[index]`` gives (``Cityscapes.target`` is the untransformed one)."""
        return self.dataset.target(index)

    def _key(self, index):
        """index as a position 0..len-1, or itself where it is out of range (the dataset then raises)."""
        index, size = operator.index(index), len(self)
        return index + size if -size <= index < 0 else index

    def _keep(self, key, image, label):
        if self._bytes + image.nbytes + label.size > self.max_bytes:    # over, even with a byte label
            return None
        dtype = label.dtype
        if dtype.kind in "iu" and label.size and 0 <= label.min() and label.max() <= 255:
            label = label.astype(numpy.uint8)
        else:
            label = label.copy()
        size = image.nbytes + label.nbytes
        with self._lock:
            if key in self._kept:                          # another thread kept it meanwhile
                return self._kept[key]
            if self._bytes + size > self.max_bytes:
                return None
            self._bytes += size
            self._kept[key] = image.copy(), label, dtype
            return self._kept[key]
