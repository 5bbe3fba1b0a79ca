"""Metrics: the confusion matrix, IoU, mIoU, accuracies; by hand, by definition, and against the
official Cityscapes evaluation where ``cityscapesscripts`` is installed."""
import copy
import math

import numpy
import pytest
from PIL import Image
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import metrics
from minitorch_seg.metrics import ConfusionMatrix

pytestmark = pytest.mark.metrics

IGNORE = 255
seeds = st.integers(0, 2**16)


@st.composite
def segmentation(draw, max_classes=6, max_side=6):
    """(prediction, target, C): (N, H, W) class indices, some targets ignored, predictions often right."""
    c = draw(st.integers(1, max_classes))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
    rng = numpy.random.default_rng(draw(seeds))
    target = rng.integers(0, c, shape)
    prediction = numpy.where(rng.random(shape) < 0.5, target, rng.integers(0, c, shape))
    target[rng.random(shape) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = IGNORE
    return prediction, target, c


def by_definition(prediction, target, c):
    """IoU per class and pixel accuracy counted with masks, one class at a time."""
    counted = target != IGNORE
    iou = []
    for k in range(c):
        tp = numpy.sum((prediction == k) & (target == k))
        fp = numpy.sum((prediction == k) & (target != k) & counted)
        fn = numpy.sum((prediction != k) & (target == k))
        iou.append(tp / (tp + fp + fn) if tp + fp + fn else math.nan)
    accuracy = numpy.sum((prediction == target) & counted) / counted.sum() if counted.any() else math.nan
    return numpy.array(iou), accuracy


def on_backend(*arrays):
    return [shim.to_backend(numpy.asarray(a)) for a in arrays]


def assert_same(a, b):
    numpy.testing.assert_allclose(numpy.asarray(a, float), numpy.asarray(b, float), rtol=1e-12, atol=0, equal_nan=True)


# --------------------------------------------------------------------------------------------
# By hand.
# --------------------------------------------------------------------------------------------
def test_hand_example(backend):
    # truth   0 0 1 1      prediction 0 1 1 1     pixel (1, 3): ignored, predicted 2
    #         2 2 0 255               2 0 0 2
    target = numpy.array([[0, 0, 1, 1], [2, 2, 0, IGNORE]])
    prediction = numpy.array([[0, 1, 1, 1], [2, 0, 0, 2]])
    cm = ConfusionMatrix(num_classes=4)
    cm.update(*on_backend(prediction, target))
    result = cm.compute()
    # rows: truth 0 -> predicted 0, 1, 0: [2, 1, 0, 0]; truth 1 -> [0, 2, 0, 0]; truth 2 -> [1, 0, 1, 0]
    assert result["confusion"] == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    # class 0: TP 2, FP 1 (a truth-2 pixel), FN 1 -> 2/4; class 1: TP 2, FP 1, FN 0 -> 2/3;
    # class 2: TP 1, FP 0 (the ignored pixel does not count), FN 1 -> 1/2; class 3: never seen -> NaN.
    assert_same(result["iou"], [0.5, 2 / 3, 0.5, math.nan])
    assert result["miou"] == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert result["pixel_accuracy"] == pytest.approx(5 / 7)
    assert_same(result["class_accuracy"], [2 / 3, 1.0, 0.5, math.nan])
    assert result["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)
    assert result["pixels"] == 7 and result["ignored_pixels"] == 1


def test_free_functions_on_a_host_matrix():
    m = numpy.array([[3, 1], [2, 4]])
    assert_same(metrics.iou_from_confusion(m), [3 / 6, 4 / 7])
    assert metrics.mean_iou(m) == pytest.approx((3 / 6 + 4 / 7) / 2)
    assert metrics.pixel_accuracy(m) == pytest.approx(0.7)
    assert_same(metrics.class_accuracy(m), [0.75, 4 / 6])
    assert math.isnan(metrics.mean_iou(numpy.zeros((3, 3))))
    assert math.isnan(metrics.pixel_accuracy(numpy.zeros((3, 3))))


def test_logits_are_reduced_by_argmax(backend):
    rng = numpy.random.default_rng(0)
    logits, target = rng.normal(size=(2, 5, 3, 4)), rng.integers(0, 5, (2, 3, 4))
    by_logits, by_indices = ConfusionMatrix(5), ConfusionMatrix(5)
    by_logits.update(mt.Tensor(shim.to_backend(logits), requires_grad=True), mt.Tensor(shim.to_backend(target)))
    by_indices.update(*on_backend(logits.argmax(axis=1), target))
    assert str(by_logits.compute()) == str(by_indices.compute())
    with pytest.raises(ValueError, match="classes"):
        ConfusionMatrix(4).update(*on_backend(logits, target))


def test_accumulates_over_batches_and_resets(backend):
    rng = numpy.random.default_rng(1)
    prediction, target = rng.integers(0, 3, (4, 5, 6)), rng.integers(0, 3, (4, 5, 6))
    whole, pieces = ConfusionMatrix(3), ConfusionMatrix(3)
    whole.update(*on_backend(prediction, target))
    for i in range(4):
        pieces.update(*on_backend(prediction[i], target[i]))           # (H, W) batches
    assert str(whole.compute()) == str(pieces.compute())
    pieces.reset()
    assert pieces.compute()["pixels"] == 0 and math.isnan(pieces.compute()["miou"])


def test_update_stays_on_the_device_and_compute_copies_once(backend, monkeypatch):
    rng = numpy.random.default_rng(2)
    batches = [on_backend(rng.integers(0, 19, (2, 8, 8)), rng.integers(0, 19, (2, 8, 8))) for _ in range(3)]
    calls = []
    real = shim.to_numpy
    monkeypatch.setattr(shim, "to_numpy", lambda a: calls.append(a) or real(a))
    cm = ConfusionMatrix(19)
    for prediction, target in batches:
        cm.update(mt.Tensor(prediction), target)
    assert calls == []
    assert shim.backend_name(cm.matrix) == backend
    cm.compute()
    assert len(calls) == 1 and calls[0].size == 19 * 19 + 2


def test_out_of_range_values_are_an_error(backend):
    target = numpy.array([[0, 1], [IGNORE, 1]])
    bad = numpy.array([[0, 5], [7, 1]])            # 5 at a counted pixel; 7 at an ignored one is fine
    cm = ConfusionMatrix(3)
    if backend == "numpy":                         # checked at once on the host ...
        with pytest.raises(ValueError, match=r"outside 0\.\.2 \(values \[5\]\)"):
            cm.update(bad, target)
    else:                                          # ... and at compute() on a device (no transfer per batch)
        cm.update(*on_backend(bad, target))
        with pytest.raises(ValueError, match="outside 0..2"):
            cm.compute()
    cm = ConfusionMatrix(3)
    cm.update(*on_backend(numpy.array([[0, 1], [7, 1]]), target))
    assert cm.compute()["pixels"] == 3
    with pytest.raises(TypeError, match="integer"):
        cm.update(*on_backend(numpy.zeros((2, 2)), target))
    with pytest.raises(ValueError, match="does not match"):
        cm.update(*on_backend(numpy.zeros((2, 3), int), target))
    with pytest.raises(ValueError, match="one of the classes"):
        ConfusionMatrix(3, ignore_index=2)


# --------------------------------------------------------------------------------------------
# Properties.
# --------------------------------------------------------------------------------------------
@settings(max_examples=30)
@given(segmentation())
def test_agrees_with_the_definition(case):
    prediction, target, c = case
    cm = ConfusionMatrix(c)
    cm.update(prediction, target)
    result = cm.compute()
    iou, accuracy = by_definition(prediction, target, c)
    assert_same(result["iou"], iou)
    assert_same(result["pixel_accuracy"], accuracy)
    assert_same(result["miou"], numpy.nanmean(iou) if not numpy.isnan(iou).all() else math.nan)


@settings(max_examples=20)
@given(segmentation(), seeds)
def test_relabelling_classes_leaves_miou_unchanged(case, seed):
    prediction, target, c = case
    relabel = numpy.random.default_rng(seed).permutation(c)
    original, relabelled = ConfusionMatrix(c), ConfusionMatrix(c)
    original.update(prediction, target)
    relabelled.update(relabel[prediction], numpy.where(target == IGNORE, IGNORE, relabel[target % c]))
    a, b = original.compute(), relabelled.compute()
    assert_same(a["miou"], b["miou"])
    assert_same(numpy.asarray(b["iou"])[relabel], a["iou"])
    for key in ("pixel_accuracy", "mean_class_accuracy"):
        assert_same(a[key], b[key])


@settings(max_examples=20)
@given(segmentation(), seeds)
def test_pixels_marked_255_change_nothing(case, seed):
    prediction, target, c = case
    rng = numpy.random.default_rng(seed)
    extra = rng.integers(0, c, (1,) + target.shape[1:])                 # any predictions at all
    with_ignored = ConfusionMatrix(c)
    with_ignored.update(numpy.concatenate([prediction, extra]),
                        numpy.concatenate([target, numpy.full_like(extra, IGNORE)]))
    plain = ConfusionMatrix(c)
    plain.update(prediction, target)
    a, b = plain.compute(), with_ignored.compute()
    assert b.pop("ignored_pixels") == a.pop("ignored_pixels") + extra.size
    assert str(a) == str(b)                                            # NaN == NaN in the printed form


@settings(max_examples=15)
@given(segmentation())
def test_a_perfect_prediction_scores_one(case):
    _, target, c = case
    if (target == IGNORE).all():
        target = target.copy()
        target.flat[0] = 0
    prediction = numpy.where(target == IGNORE, 0, target)
    cm = ConfusionMatrix(c)
    cm.update(prediction, target)
    result = cm.compute()
    assert result["miou"] == result["pixel_accuracy"] == result["mean_class_accuracy"] == 1.0


def test_same_on_every_backend(backend):
    rng = numpy.random.default_rng(3)
    prediction, target = rng.integers(0, 7, (2, 9, 11)), rng.integers(0, 7, (2, 9, 11))
    target[rng.random(target.shape) < 0.2] = IGNORE
    host, here = ConfusionMatrix(7), ConfusionMatrix(7)
    host.update(prediction, target)
    here.update(*on_backend(prediction.astype(numpy.uint8), target.astype(numpy.uint8)))
    assert str(host.compute()) == str(here.compute())      # str: NaN equals NaN


# --------------------------------------------------------------------------------------------
# The official evaluation (cityscapesscripts), on the same predictions.
# --------------------------------------------------------------------------------------------
def test_equals_the_official_cityscapes_evaluation(tmp_path, capsys):
    evaluation = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    from cityscapesscripts.helpers import labels as cs_labels
    from minitorch_seg.data.labels import label_ids_to_train_ids, train_ids_to_label_ids

    rng = numpy.random.default_rng(4)
    cm, predictions, truths = ConfusionMatrix(19), [], []
    for i in range(3):
        # Ground truth: label ids 0..33, ignored ones (unlabeled, parking, ...) included; train
        # class 16 (train, id 31) never appears, and is never predicted, so its IoU is NaN.
        label_ids = rng.integers(0, 34, (24, 40))
        label_ids[label_ids == 31] = 26
        train_ids = label_ids_to_train_ids(label_ids)          # our mapping: checked here end to end
        # Predictions on ignored pixels too (any class): the official script does not count them.
        guess = numpy.where(train_ids == IGNORE, rng.integers(0, 19, train_ids.shape), train_ids)
        prediction = numpy.where(rng.random(guess.shape) < 0.6, guess, rng.integers(0, 19, guess.shape))
        prediction[prediction == 16] = 13
        stem = f"city_{i:06d}_000019"
        truths.append(str(tmp_path / f"{stem}_gtFine_labelIds.png"))
        predictions.append(str(tmp_path / f"{stem}_pred.png"))
        Image.fromarray(label_ids.astype(numpy.uint8)).save(truths[-1])
        Image.fromarray(train_ids_to_label_ids(prediction).astype(numpy.uint8)).save(predictions[-1])
        cm.update(prediction, train_ids)

    args = copy.copy(evaluation.args)
    args.evalInstLevelScore = False         # needs instance-id images, not part of this comparison
    args.evalPixelAccuracy = False          # its own option is known to be wrong: computed below
    args.JSONOutput, args.quiet = False, True
    official = evaluation.evaluateImgLists(predictions, truths, args)
    capsys.readouterr()

    ours = cm.compute()
    names = {label.trainId: label.name for label in cs_labels.labels if 0 <= label.trainId < 19}
    assert_same(ours["iou"], [official["classScores"][names[k]] for k in range(19)])
    assert math.isnan(ours["iou"][16])
    assert ours["miou"] == pytest.approx(official["averageScoreClasses"], rel=1e-12)

    # Pixel accuracy from the official confusion matrix (rows: truth label id, columns: prediction),
    # over the rows of evaluated classes: correct pixels / all of those rows' pixels.
    matrix = numpy.array(official["confMatrix"], dtype=numpy.int64)
    evaluated = train_ids_to_label_ids(numpy.arange(19))   # the 19 label ids that are evaluated
    assert ours["pixel_accuracy"] == pytest.approx(matrix[evaluated, evaluated].sum() / matrix[evaluated].sum(),
                                                   rel=1e-12)
    # and the whole matrix, seen through the train-id mapping
    numpy.testing.assert_array_equal(numpy.array(ours["confusion"]), matrix[numpy.ix_(evaluated, evaluated)])
