"""Lesson 3's exercises: the confusion matrix, mIoU from it, and the soft-IoU loss."""
import numpy
from hypothesis import strategies as st

from .. import backend as shim
from .. import metrics
from ..backend import get_array_module
from ..tensor import Tensor
from ..testing import arguments, make_target, tensors
from ..testing.strategies import VOID
from .registry import Exercise, register


# ---- drawing targets ----------------------------------------------------------------------------------
@st.composite
def _targets(draw, shape, classes, min_kept):
    """(target, ignore_index): int64 (N, H, W) with classes below ``classes``, some of them absent.

    The number of void pixels is drawn from none to all (all but ``min_kept`` pixels); the present
    classes are a drawn subset, so any class, not only the highest, can be absent; the void label
    is 255 (then not passed: the default) or another value outside 0..classes-1.
    """
    present = draw(st.lists(st.integers(0, classes - 1), min_size=1, max_size=classes, unique=True))
    void_count = draw(st.integers(0, int(numpy.prod(shape)) - min_kept))
    drawn = shim.to_numpy(make_target(shape, len(present), draw(st.integers(0, 2 ** 16)), void_count).data)
    void = drawn == VOID
    ignore_index = draw(st.sampled_from([255, 255, -1, classes, 250]))
    target = numpy.where(void, ignore_index, numpy.asarray(present)[numpy.where(void, 0, drawn)])
    return Tensor(shim.to_backend(target.astype(numpy.int64))), ignore_index


def _ignore_kwargs(ignore_index):
    return {} if ignore_index == 255 else {"ignore_index": ignore_index}


# ---- confusion_matrix ---------------------------------------------------------------------------------
@st.composite
def _confusion_inputs(draw):
    classes = draw(st.integers(1, 6))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    target, ignore_index = draw(_targets(shape, classes, min_kept=0))
    prediction = make_target(shape, classes, seed=draw(st.integers(0, 2 ** 16)))
    return draw(arguments(prediction, target, num_classes=classes, **_ignore_kwargs(ignore_index)))


register(Exercise(
    name="confusion_matrix", lesson="03_evaluation", reference=metrics.confusion_matrix, inputs=_confusion_inputs,
    task="Write confusion_matrix(prediction, target, num_classes=19, ignore_index=255): class indices "
         "(N, H, W) each, int64 Tensors (.numpy() gives the array); return the (num_classes, num_classes) "
         "integer array whose entry [t, p] counts the pixels of true class t predicted as p, skipping pixels "
         "whose target is ignore_index (one bincount, no loop over pixels).",
    drawn="batches 1-3, sides 1-6, 1-6 classes (any of them absent from a draw), void pixels from none to all, "
          "ignore_index 255 (the default) or -1, 250 or num_classes.",
    gradients=False))


# ---- mean_iou -----------------------------------------------------------------------------------------
@st.composite
def _mean_iou_inputs(draw):
    classes = draw(st.integers(1, 6))
    rng = numpy.random.default_rng(draw(st.integers(0, 2 ** 16)))
    matrix = rng.integers(0, 5, (classes, classes)) * (rng.random((classes, classes)) < 0.7)
    for c in range(classes):            # a class absent from the truth (row), the prediction (column), or both
        absent = draw(st.sampled_from(["", "", "truth", "prediction", "both"]))
        if absent in ("truth", "both"):
            matrix[c, :] = 0
        if absent in ("prediction", "both"):
            matrix[:, c] = 0
    return draw(arguments(matrix.astype(numpy.int64)))


register(Exercise(
    name="mean_iou", lesson="03_evaluation", reference=metrics.mean_iou, inputs=_mean_iou_inputs,
    task="Write mean_iou(matrix): the (C, C) confusion matrix M[t, p] (a NumPy integer array) -> the mean, as a "
         "float, of IoU_c = TP_c / (TP_c + FP_c + FN_c) over the classes c that occur (in the truth or the "
         "prediction: TP_c + FP_c + FN_c > 0); NaN if no class occurs.",
    drawn="1-6 classes, counts 0-4, classes absent from the truth only, from the prediction only, or from both; "
          "matrices with no class at all.",
    gradients=False))


# ---- soft_iou -----------------------------------------------------------------------------------------
def soft_iou(input, target, ignore_index=255, eps=1.0):
    """The soft-IoU (soft Jaccard) loss: 1 - the mean over classes of a differentiable IoU.

    Shapes: ``input`` (N, C, H, W) float, class probabilities (e.g. ``F.softmax(logits, dim=1)``;
    any values in [0, 1] work); ``target`` (N, H, W) int64 class indices, ``ignore_index`` on void
    pixels; ``eps`` > 0. Returns a 0-d tensor.

    With y the one-hot target (y[n, c, h, w] = [target[n, h, w] = c]) and K the kept pixels
    (target != ignore_index) of the *whole batch* (one IoU per class over the batch, as one
    confusion matrix over a dataset gives, not a mean of per-image IoUs):

        I_c = sum_{i in K} p_ic y_ic          U_c = sum_{i in K} (p_ic + y_ic - p_ic y_ic)
        J_c = (I_c + eps) / (U_c + eps)       loss = 1 - (1 / C) sum_c J_c

    With a one-hot p, I_c and U_c count pixels: J_c is the IoU of class c (up to eps). Void pixels
    count nowhere (their gradient is 0). ``eps`` keeps a class absent from the target and from the
    prediction at J_c = 1 (no 0 / 0); a class absent from the target but predicted somewhere has
    I_c = 0, J_c = eps / (U_c + eps): predicting it costs. Composed from library ops: its gradient
    is autograd's.

    >>> import minitorch_seg as mt
    >>> p = mt.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])       # one-hot (1, 2, 1, 2): class 0, then class 1
    >>> round(soft_iou(p, mt.tensor([[[0, 1]]]), eps=1e-9).item(), 4)         # both right: IoUs 1 and 1
    0.0
    >>> round(soft_iou(p, mt.tensor([[[0, 0]]]), eps=1e-9).item(), 4)         # IoUs 1/2 and 0
    0.75
    """
    xp = get_array_module(target.data)
    n, classes, h, w = input.shape
    keep = target.data != ignore_index                                               # (N, H, W)
    y = xp.eye(classes, dtype=input.dtype)[xp.where(keep, target.data, 0)]          # (N, H, W, C)
    y = Tensor(xp.ascontiguousarray(y.transpose(0, 3, 1, 2)) * keep[:, None])       # (N, C, H, W), 0 where void
    kept = input * Tensor(keep[:, None].astype(input.dtype))                         # (N, C, H, W), 0 where void
    intersection = (kept * y).sum(dim=(0, 2, 3))                                     # (C,)
    union = (kept + y - kept * y).sum(dim=(0, 2, 3))                                 # (C,)
    return 1 - ((intersection + eps) / (union + eps)).mean()


@st.composite
def _soft_iou_inputs(draw):
    classes = draw(st.integers(1, 5))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    target, ignore_index = draw(_targets(shape, classes, min_kept=1))
    probabilities = draw(tensors((shape[0], classes) + shape[1:], low=0.0, high=1.0))
    eps = draw(st.sampled_from([None, 0.5, 1e-3]))
    return draw(arguments(probabilities, target, **_ignore_kwargs(ignore_index),
                          **({} if eps is None else {"eps": eps})))


register(Exercise(
    name="soft_iou", lesson="03_evaluation", reference=soft_iou, inputs=_soft_iou_inputs,
    task="Write soft_iou(input, target, ignore_index=255, eps=1.0): probabilities p (N, C, H, W), class indices "
         "(N, H, W); with y the one-hot target and sums over the kept pixels of the whole batch, "
         "I_c = sum p y, U_c = sum (p + y - p y), return 1 - mean_c (I_c + eps) / (U_c + eps), and its "
         "backward, derived (the quotient rule; void pixels get 0).",
    drawn="batches 1-3, 1-5 classes (any of them absent from the target), sides 1-6, probabilities in [0, 1), "
          "void pixels from none to all but one, ignore_index 255 (the default) or -1, 250 or C, eps 1 (the "
          "default), 0.5 or 0.001."))
