"""Class weights for the loss (data/balance.py): ENet's 1/ln(1.02 + share), from the training labels."""
import math

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import functional as F
from minitorch_seg.data import Cityscapes, balance, make_dataset
from minitorch_seg.train import TrainConfig, build_class_weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_dataset(out=tmp_path_factory.mktemp("balance") / "synth", train=6, val=1, size=(32, 64), seed=1)


def test_pixel_counts_are_the_train_ids_of_every_label_image_without_the_ignored(tiny):
    dataset = Cityscapes(tiny, "train")
    labels = numpy.stack([dataset[i][1] for i in range(len(dataset))])
    counts = balance.pixel_counts(dataset, 19)
    assert counts.sum() == (labels != 255).sum() > 0
    assert counts.tolist() == [(labels == k).sum() for k in range(19)]


def test_target_alone_equals_the_target_of_the_pair(tiny):
    dataset = Cityscapes(tiny, "train")
    numpy.testing.assert_array_equal(dataset.target(2), dataset[2][1])


def test_enet_weights_by_the_formula_rare_classes_weigh_more_and_absent_ones_nothing():
    counts = numpy.array([700, 200, 100, 0])
    weights = balance.enet_weights(counts)
    assert weights[:3] == pytest.approx([1 / math.log(1.02 + share) for share in (0.7, 0.2, 0.1)], rel=1e-12)
    assert weights[0] < weights[1] < weights[2] and weights[3] == 0
    assert balance.enet_weights(counts * 10) == pytest.approx(weights, rel=1e-12)   # shares, not counts


def test_no_labelled_pixel_is_one_clear_error():
    with pytest.raises(ValueError, match="no pixel of any class"):
        balance.enet_weights(numpy.zeros(19))


def test_config_builds_weights_that_the_loss_uses(tiny):
    dataset = Cityscapes(tiny, "train")
    assert build_class_weights(TrainConfig(class_weights="none"), dataset) is None
    weights = build_class_weights(TrainConfig(class_weights="enet", dtype="float64"), dataset)
    assert weights.dtype == numpy.float64 and weights.shape == (19,)
    numpy.testing.assert_allclose(weights.numpy(), balance.enet_weights(balance.pixel_counts(dataset, 19)))
    logits, target = mt.randn(2, 19, 4, 4, dtype="float64"), mt.tensor(numpy.array([[[0, 1, 2, 255]] * 4] * 2))
    weighted = F.cross_entropy(logits, target, weight=mt.tensor(numpy.array([1.0, 9.0] + [1.0] * 17)), ignore_index=255)
    assert weighted.item() != pytest.approx(F.cross_entropy(logits, target, ignore_index=255).item())
    with pytest.raises(ValueError, match="Unknown class_weights 'median'"):
        build_class_weights(TrainConfig(class_weights="median"), dataset)

