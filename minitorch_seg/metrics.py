"""Segmentation metrics from one confusion matrix: per-class IoU, mIoU, pixel and class accuracy.

Notation: C classes; M (C, C) the confusion matrix, ``M[t, p]`` = the number of pixels whose
ground truth is class t and whose prediction is class p (rows: truth, columns: prediction, as
the official Cityscapes evaluation orders it). Pixels whose ground truth is ``ignore_index``
(255) are not counted at all, so they are neither false positives nor false negatives.

    TP_c = M[c, c]    FP_c = sum_t M[t, c] - TP_c    FN_c = sum_p M[c, p] - TP_c
    IoU_c = TP_c / (TP_c + FP_c + FN_c)               (NaN where TP_c + FP_c + FN_c = 0)
    mIoU = the mean of IoU_c over the classes where it is not NaN
    pixel accuracy = sum_c TP_c / sum_{t,p} M[t, p]   (correct non-ignored pixels / non-ignored pixels)
    class accuracy_c = TP_c / sum_p M[c, p]           (NaN for classes absent from the ground truth)
    mean class accuracy = the mean of class accuracy_c where it is not NaN

mIoU is averaged as the official ``evalPixelLevelSemanticLabeling`` averages it: over the
classes with TP + FP + FN > 0, i.e. classes that appear in the ground truth or are predicted on
some non-ignored pixel; a class never seen and never predicted does not pull the mean down.

``ConfusionMatrix`` accumulates M over a dataset with one ``bincount`` per batch on the batch's
own backend (the matrix stays on the GPU with CuPy); ``compute()`` copies the C x C matrix to the
host once and returns plain numbers. The free functions take a host matrix.

>>> import numpy
>>> target     = numpy.array([[0, 0, 1], [1, 2, 255]])
>>> prediction = numpy.array([[0, 1, 1], [1, 2, 0]])      # the last pixel is ignored
>>> cm = ConfusionMatrix(num_classes=3)
>>> cm.update(prediction, target)
>>> result = cm.compute()
>>> result["confusion"]
[[1, 1, 0], [0, 2, 0], [0, 0, 1]]
>>> [round(v, 4) for v in result["iou"]]                  # 1/2, 2/3, 1/1
[0.5, 0.6667, 1.0]
>>> round(result["miou"], 4), result["pixel_accuracy"], round(result["mean_class_accuracy"], 4)
(0.7222, 0.8, 0.8333)
"""
from __future__ import annotations

import numpy

from . import backend
from .tensor import Tensor

__all__ = ["ConfusionMatrix", "confusion_matrix", "iou_from_confusion", "mean_iou", "pixel_accuracy",
           "class_accuracy", "mean_class_accuracy", "metrics_from_confusion"]


# --------------------------------------------------------------------------------------------
# Counting, on the inputs' backend.
# --------------------------------------------------------------------------------------------
def _raw(x):
    """The array inside a Tensor (or the array itself); no copy, no graph."""
    return x.data if isinstance(x, Tensor) else x


def _class_indices(prediction, target, num_classes):
    """``prediction`` as integer class indices shaped like ``target`` (argmax over logits' class axis)."""
    if prediction.ndim == target.ndim + 1:                 # logits (N, C, H, W), (C, H, W) or (N, C)
        axis = 0 if prediction.ndim == 3 else 1
        if prediction.shape[axis] != num_classes:
            raise ValueError(f"ConfusionMatrix: logits of shape {tuple(prediction.shape)} have "
                             f"{prediction.shape[axis]} classes on axis {axis}, expected {num_classes}.")
        prediction = prediction.argmax(axis=axis)
    if tuple(prediction.shape) != tuple(target.shape):
        raise ValueError(f"ConfusionMatrix: prediction of shape {tuple(prediction.shape)} does not match "
                         f"target of shape {tuple(target.shape)} (pass class indices shaped like the target, "
                         "or logits with one more, class, axis).")
    for name, array in (("prediction", prediction), ("target", target)):
        if array.dtype.kind not in "iub":
            raise TypeError(f"ConfusionMatrix: {name} must hold integer class indices, got dtype {array.dtype}.")
    return prediction


def _bin_counts(prediction, target, num_classes, ignore_index):
    """Counts of length C*C + 2 on the inputs' backend: the C x C cells, then ignored, then invalid pixels.

    One ``bincount`` over the whole batch. Every pixel lands in a bin: a counted pixel in
    ``C * t + p``; a pixel whose target is ``ignore_index`` in bin C*C; a pixel whose target or
    prediction is out of 0..C-1 (and whose target is not ignored) in bin C*C + 1, which
    ``compute()`` turns into an error. ``xp.where`` rather than boolean indexing keeps the shape
    fixed, so on CuPy nothing has to ask the device how many pixels were kept. (CuPy's
    ``bincount`` itself still reads two scalars back, its non-negativity check and its largest
    index: a synchronisation per batch, not a copy of the data.)
    """
    xp = backend.get_array_module(prediction, target)
    c = num_classes
    t = target.astype(xp.int64).ravel()
    p = prediction.astype(xp.int64).ravel()
    ignored = t == ignore_index
    valid = (t >= 0) & (t < c) & (p >= 0) & (p < c)
    index = xp.where(valid, c * t + p, xp.where(ignored, c * c, c * c + 1))
    return xp.bincount(index, minlength=c * c + 2)


def _invalid_message(count, prediction=None, target=None, num_classes=None, ignore_index=None):
    message = (f"ConfusionMatrix: {count} non-ignored pixel(s) have a prediction or target outside "
               f"0..{num_classes - 1}")
    if prediction is not None:
        p, t = numpy.asarray(prediction).ravel(), numpy.asarray(target).ravel()
        bad = (t != ignore_index) & ((p < 0) | (p >= num_classes) | (t < 0) | (t >= num_classes))
        values = numpy.unique(numpy.concatenate([p[bad][(p[bad] < 0) | (p[bad] >= num_classes)],
                                                 t[bad][(t[bad] < 0) | (t[bad] >= num_classes)]]))
        message += f" (values {values[:10].tolist()})"
    return message + f"; targets may also be the ignore index {ignore_index}."


def confusion_matrix(prediction, target, num_classes=19, ignore_index=255):
    """The (C, C) confusion matrix of one batch, int64, on the inputs' backend (rows: truth)."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    cm.update(prediction, target)
    return cm.matrix


class ConfusionMatrix:
    """A confusion matrix accumulated over a dataset, then IoU, mIoU and accuracies (see the module).

    ``update(prediction, target)`` takes Tensors or arrays of any backend: ``target`` (N, H, W) or
    (H, W) integer class indices with ``ignore_index`` where unlabelled; ``prediction`` the same
    shape, or logits with a class axis ((N, C, H, W) or (C, H, W)), reduced by argmax. The counts
    live on the inputs' backend and are added with one ``bincount`` per call; nothing is copied
    to the host until ``compute()``, which makes exactly one transfer (the C x C matrix).

    Prediction or target values outside 0..C-1 on non-ignored pixels are an error: raised by
    ``update`` on NumPy arrays (the check is free there), by ``compute`` on the GPU (checking in
    ``update`` would cost a transfer per batch).
    """

    def __init__(self, num_classes=19, ignore_index=255):
        if num_classes < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be positive, got {num_classes}.")
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"ConfusionMatrix: ignore_index {ignore_index} is one of the classes "
                             f"0..{num_classes - 1}.")
        self.num_classes, self.ignore_index = int(num_classes), int(ignore_index)
        self.reset()

    def reset(self):
        """Forget everything counted so far."""
        self.counts = None           # (C*C + 2,) int64 on the backend of the first update

    def update(self, prediction, target):
        prediction, target = _raw(prediction), _raw(target)
        prediction = _class_indices(prediction, target, self.num_classes)
        counts = _bin_counts(prediction, target, self.num_classes, self.ignore_index)
        xp = backend.get_array_module(counts)
        if not backend.is_device_module(xp) and counts[-1]:
            raise ValueError(_invalid_message(int(counts[-1]), prediction, target, self.num_classes,
                                              self.ignore_index))
        if self.counts is None:
            self.counts = counts
        else:
            backend.get_array_module(self.counts, counts)  # a clear error if the backend changed
            self.counts += counts

    @property
    def matrix(self):
        """The (C, C) int64 matrix on the backend it was counted on (zeros on the host before any update)."""
        c = self.num_classes
        if self.counts is None:
            return numpy.zeros((c, c), dtype=numpy.int64)
        return self.counts[:c * c].reshape(c, c)

    def compute(self):
        """A plain dict of host numbers: iou (list, NaN where undefined), miou, pixel_accuracy,
        class_accuracy (list), mean_class_accuracy, confusion (nested lists), pixels, ignored_pixels.

        One device-to-host copy, of the counts; raises ValueError if any non-ignored pixel had a
        value outside 0..C-1 (counted on the device, reported here).
        """
        c = self.num_classes
        counts = numpy.zeros(c * c + 2, numpy.int64) if self.counts is None else backend.to_numpy(self.counts)
        if counts[-1]:
            raise ValueError(_invalid_message(int(counts[-1]), num_classes=c, ignore_index=self.ignore_index))
        result = metrics_from_confusion(counts[:c * c].reshape(c, c))
        result["ignored_pixels"] = int(counts[c * c])
        return result

    def __repr__(self):
        return f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index})"


# --------------------------------------------------------------------------------------------
# Metrics from a host matrix.
# --------------------------------------------------------------------------------------------
def _host_matrix(matrix):
    matrix = numpy.asarray(matrix, dtype=numpy.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"Expected a square (C, C) confusion matrix, got shape {matrix.shape}.")
    return matrix


def _ratio(numerator, denominator):
    """numerator / denominator elementwise, NaN where the denominator is 0 (and no warning)."""
    numerator, denominator = numpy.asarray(numerator, float), numpy.asarray(denominator, float)
    out = numpy.full(numpy.broadcast(numerator, denominator).shape, numpy.nan)
    numpy.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _nanmean(values):
    values = numpy.asarray(values, float)
    finite = values[~numpy.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def iou_from_confusion(matrix):
    """Per-class IoU_c = TP_c / (TP_c + FP_c + FN_c), NaN where the denominator is 0. Shape (C,)."""
    m = _host_matrix(matrix)
    tp = numpy.diag(m)
    return _ratio(tp, m.sum(axis=0) + m.sum(axis=1) - tp)


def mean_iou(matrix):
    """The mean of the per-class IoU over the classes where it is defined (TP + FP + FN > 0)."""
    return _nanmean(iou_from_confusion(matrix))


def pixel_accuracy(matrix):
    """Correctly classified non-ignored pixels over all non-ignored pixels: trace(M) / sum(M)."""
    m = _host_matrix(matrix)
    return float(_ratio(numpy.trace(m), m.sum()))


def class_accuracy(matrix):
    """Per-class recall TP_c / (TP_c + FN_c), NaN for classes absent from the ground truth. Shape (C,)."""
    m = _host_matrix(matrix)
    return _ratio(numpy.diag(m), m.sum(axis=1))


def mean_class_accuracy(matrix):
    """The mean of the per-class accuracy over the classes present in the ground truth."""
    return _nanmean(class_accuracy(matrix))


def metrics_from_confusion(matrix):
    """Every metric of a host (C, C) matrix as plain Python numbers (the dict ``compute`` returns)."""
    m = numpy.asarray(matrix)
    iou, accuracy = iou_from_confusion(m), class_accuracy(m)
    return {"iou": [float(v) for v in iou], "miou": _nanmean(iou), "pixel_accuracy": pixel_accuracy(m),
            "class_accuracy": [float(v) for v in accuracy], "mean_class_accuracy": _nanmean(accuracy),
            "confusion": m.astype(numpy.int64).tolist(), "pixels": int(m.sum())}
