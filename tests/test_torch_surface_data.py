"""minitorch_seg.utils.data (Dataset, TensorDataset, DataLoader, random_split, ...) against torch.utils.data,
and utils.checkpoint.checkpoint."""

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg.utils import checkpoint as mt_checkpoint
from minitorch_seg.utils.data import (ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate,
                                      random_split)
from helpers import assert_one_sentence

pytestmark = pytest.mark.data


def plain(value):
    """Batches as nested Python data, with each tensor's dtype name, to compare the two libraries."""
    if hasattr(value, "tolist") and hasattr(value, "shape"):
        return (str(value.dtype).replace("torch.", ""), value.tolist())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class Pairs:
    """A map-style dataset written once against a library (``lib`` is torch or minitorch_seg)."""

    def __init__(self, lib, kind):
        self.lib, self.kind = lib, kind

    def __len__(self):
        return 7

    def __getitem__(self, i):
        image = self.lib.tensor(numpy.full((2, 3), i, dtype=numpy.float32))
        mask = self.lib.tensor(numpy.full((3,), i % 3, dtype=numpy.int64))
        if self.kind == "tuple":
            return image, mask
        if self.kind == "dict":
            return {"image": image, "mask": mask, "name": f"img{i}", "scale": i / 2, "index": i}
        if self.kind == "numpy":
            return numpy.full((2,), i, dtype=numpy.float64), i % 2 == 0
        return image


@pytest.mark.parametrize("kind", ["tuple", "dict", "numpy", "tensor"])
@pytest.mark.parametrize("batch_size, drop_last", [(3, False), (3, True), (1, False), (7, False)])
def test_batches_match_torchs_dataloader(torch, kind, batch_size, drop_last):
    from torch.utils.data import DataLoader as TorchLoader
    ours = DataLoader(Pairs(mt, kind), batch_size=batch_size, drop_last=drop_last, num_workers=2, pin_memory=True)
    theirs = TorchLoader(Pairs(torch, kind), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert [plain(b) for b in ours] == [plain(b) for b in theirs]


def test_batch_size_none_yields_samples_uncollated(torch):
    from torch.utils.data import DataLoader as TorchLoader
    ours = list(DataLoader(Pairs(mt, "tuple"), batch_size=None))
    theirs = list(TorchLoader(Pairs(torch, "tuple"), batch_size=None))
    assert len(ours) == 7 and [plain(b) for b in ours] == [plain(b) for b in theirs]


def test_shuffle_draws_a_new_permutation_each_epoch_from_the_generator():
    data = TensorDataset(mt.arange(10))
    loader = DataLoader(data, batch_size=4, shuffle=True, generator=mt.Generator().manual_seed(3))
    epochs = [[x.item() for (batch,) in loader for x in batch] for _ in range(3)]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    assert epochs[0] != epochs[1]
    again = DataLoader(data, batch_size=4, shuffle=True, generator=mt.Generator().manual_seed(3))
    assert [x.item() for (batch,) in again for x in batch] == epochs[0]
    mt.manual_seed(5)
    first = [b[0].tolist() for b in DataLoader(data, batch_size=5, shuffle=True)]
    mt.manual_seed(5)
    assert [b[0].tolist() for b in DataLoader(data, batch_size=5, shuffle=True)] == first


def test_sampler_and_batch_sampler_give_the_indices(torch):
    data = TensorDataset(mt.arange(6) * 10)
    assert [b[0].tolist() for b in DataLoader(data, batch_size=2, sampler=[5, 0, 3])] == [[50, 0], [30]]
    assert [b[0].tolist() for b in DataLoader(data, batch_sampler=[[1, 2], [4]])] == [[10, 20], [40]]
    with pytest.raises(ValueError) as raised:
        DataLoader(data, shuffle=True, sampler=[0])
    assert_one_sentence(raised.value, "shuffle")


def test_tensor_dataset_subset_and_concat_match_torch(torch):
    from torch.utils import data as tdata
    x = numpy.arange(12.0).reshape(6, 2)
    ours = TensorDataset(mt.tensor(x), mt.arange(6))
    theirs = tdata.TensorDataset(torch.tensor(x), torch.arange(6))
    assert len(ours) == len(theirs) == 6 and plain(ours[4]) == plain(theirs[4])
    assert plain(Subset(ours, [5, 1])[1]) == plain(tdata.Subset(theirs, [5, 1])[1])
    both, tboth = ConcatDataset([ours, Subset(ours, [0])]), tdata.ConcatDataset([theirs, tdata.Subset(theirs, [0])])
    assert len(both) == len(tboth) == 7 and plain(both[6]) == plain(tboth[6]) and plain(both[-1]) == plain(tboth[-1])
    assert len(ours + ours) == 12
    with pytest.raises(ValueError) as raised:
        TensorDataset(mt.zeros(3), mt.zeros(4))
    assert_one_sentence(raised.value, "[3, 4]")
    with pytest.raises(NotImplementedError):
        Dataset()[0]


@pytest.mark.parametrize("total, lengths", [(10, [0.3, 0.3, 0.4]), (5, [0.5, 0.5]), (7, [0.1, 0.9]),
                                            (10, [3, 7]), (9, [1 / 3] * 3), (4, [0.25, 0.75])])
def test_random_split_sizes_match_torch_and_the_parts_are_disjoint(torch, total, lengths):
    from torch.utils.data import random_split as torch_split
    parts = random_split(range(total), lengths, generator=mt.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [len(p) for p in torch_split(range(total), lengths)]
    indices = [i for p in parts for i in p]
    assert sorted(indices) == list(range(total))
    again = random_split(range(total), lengths, generator=mt.Generator().manual_seed(0))
    assert [list(p) for p in again] == [list(p) for p in parts]


def test_random_split_with_lengths_that_do_not_fit_is_one_sentence():
    with pytest.raises(ValueError) as raised:
        random_split(range(10), [3, 3])
    assert_one_sentence(raised.value, "[3, 3]", "10")


def test_default_collate_of_namedtuples_and_unknown_types():
    from collections import namedtuple
    Sample = namedtuple("Sample", ["x", "y"])
    batch = default_collate([Sample(mt.ones(2), 1), Sample(mt.zeros(2), 2)])
    assert isinstance(batch, Sample) and batch.x.shape == (2, 2) and batch.y.tolist() == [1, 2]
    with pytest.raises(TypeError) as raised:
        default_collate([object(), object()])
    assert_one_sentence(raised.value, "object")


def test_checkpoint_gives_the_same_values_and_gradients():
    def block(x, scale):
        return (x * x * scale).sum()
    x1, x2 = mt.tensor([1.0, 2.0], requires_grad=True), mt.tensor([1.0, 2.0], requires_grad=True)
    y1 = mt_checkpoint.checkpoint(block, x1, 3.0, use_reentrant=False)
    y2 = block(x2, 3.0)
    y1.backward()
    y2.backward()
    assert y1.item() == y2.item() and x1.grad.tolist() == x2.grad.tolist() == [6.0, 12.0]
    layers = [lambda t: t * 2, lambda t: t + 1]
    assert mt_checkpoint.checkpoint_sequential(layers, 2, mt.ones(1)).tolist() == [3.0]
