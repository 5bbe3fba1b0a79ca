# Lesson 3 source: python lessons/build_notebooks.py turns this file into lessons/03_evaluation.ipynb.

# %%
# Lesson 3 · Evaluation: pixel accuracy and mIoU. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks the image size and the number of images.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
SIZE = (64, 128) if FAST else (128, 256)    # (height, width) of the generated validation images
VAL_IMAGES = 8 if FAST else 50              # how many validation images to generate and score

# %% [markdown]
# # Lesson 3 · Evaluation metrics: mIoU and pixel accuracy
#
# A trained network gives a class for every pixel. How good is that? The notes name the two
# numbers every segmentation paper reports:
#
# - **mIoU**: mean Intersection over Union, the IoU of each class, then the average over classes;
# - **Pixel accuracy**: the percentage of pixels in the image which were correctly classified.
#
# Both come from one table, the **confusion matrix**. In this lesson you compute them from it,
# then see on street scenes why pixel accuracy flatters a model: a scene that is mostly road
# and building lets a model score over 90% while it misses every person, sign and traffic light.
# Then you write the matrix, mIoU and a differentiable soft IoU yourself.
# About 45 minutes, with the exercises of section 5.

# %%
# %matplotlib inline
import inspect
import tempfile

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, exercises, metrics, viz
from minitorch_seg.data import CLASS_NAMES, TRAIN_ID_PALETTE, Cityscapes, make_dataset

mt.manual_seed(0)

# %% [markdown]
# ## 1. The confusion matrix
#
# Count, over all labelled pixels, how often the truth was class $t$ and the prediction class
# $p$: that is the $C \times C$ confusion matrix $M[t, p]$ (rows: truth, columns: prediction, as
# the official Cityscapes evaluation orders it). Pixels labelled 255 (void) are not counted at
# all. For a class $c$:
#
# - **true positives** $TP_c = M[c, c]$, the pixels of $c$ predicted as $c$;
# - **false positives** $FP_c = \sum_{t} M[t, c] - TP_c$, the rest of its column: other pixels
#   predicted as $c$;
# - **false negatives** $FN_c = \sum_{p} M[c, p] - TP_c$, the rest of its row: pixels of $c$
#   predicted as something else.
#
# Then
#
# $$\text{pixel accuracy} = \frac{\sum_c M[c, c]}{\sum_{t, p} M[t, p]}, \qquad
# \text{IoU}_c = \frac{TP_c}{TP_c + FP_c + FN_c}, \qquad
# \text{mIoU} = \frac{1}{|\mathcal{C}'|}\sum_{c \in \mathcal{C}'} \text{IoU}_c,$$
#
# where $\mathcal{C}'$ are the classes that occur at all (in the truth or the prediction);
# a class never seen and never predicted has no IoU ($0/0$) and is left out of the mean.
# $\text{IoU}_c$ is literally the intersection of the predicted and the true region of $c$ over
# their union:

# %%
truth = numpy.zeros((12, 20), bool)
truth[3:10, 3:12] = True                                   # where the car really is
predicted = numpy.zeros((12, 20), bool)
predicted[5:11, 6:16] = True                               # where the network says it is
picture = numpy.ones((12, 20, 3))
picture[truth & ~predicted] = (0.95, 0.6, 0.2)             # FN: missed
picture[~truth & predicted] = (0.3, 0.55, 0.9)             # FP: false alarm
picture[truth & predicted] = (0.3, 0.75, 0.35)             # TP: the intersection
tp, fp, fn = (truth & predicted).sum(), (~truth & predicted).sum(), (truth & ~predicted).sum()

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.imshow(picture)
ax.set_title(f"IoU = TP / (TP + FP + FN) = {tp} / ({tp} + {fp} + {fn}) = {tp / (tp + fp + fn):.2f}", fontsize=10)
colours = [(0.3, 0.75, 0.35), (0.3, 0.55, 0.9), (0.95, 0.6, 0.2)]
ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in colours],
          labels=["TP: intersection", "FP: predicted, not true", "FN: true, missed"],
          loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
ax.axis("off");

# %% [markdown]
# The library counts the matrix with one `bincount` (every pixel lands in bin $C \cdot t + p$)
# and derives every metric from it. A small example, by hand and by `minitorch_seg.metrics`:

# %%
target = numpy.array([[0, 0, 0, 1],
                      [0, 0, 2, 2],
                      [0, 1, 2, 255]])                     # 255: void, not counted
prediction = numpy.array([[0, 0, 0, 0],
                          [0, 0, 2, 0],
                          [0, 1, 1, 1]])
M = metrics.confusion_matrix(prediction, target, num_classes=3)
print("confusion matrix (rows: truth, columns: prediction):\n", M)

tp = numpy.diag(M)
iou = tp / (M.sum(axis=0) + M.sum(axis=1) - tp)
print("by hand:   pixel accuracy", tp.sum() / M.sum(), "  IoU per class", iou.round(3), "  mIoU", iou.mean().round(4))
print("metrics:   pixel accuracy", metrics.pixel_accuracy(M), "  IoU per class",
      metrics.iou_from_confusion(M).round(3), "  mIoU", round(metrics.mean_iou(M), 4))

# %% [markdown]
# ## 2. Street scenes are mostly road
#
# Now real-looking data: a validation set of generated street scenes in the Cityscapes format
# (`make_dataset` writes it; `Cityscapes` reads it back as (image, train ids) pairs). How are the
# labelled pixels shared among the 19 classes?

# %%
workspace = tempfile.TemporaryDirectory()                       # removed when the kernel stops
root = make_dataset(out=os.path.join(workspace.name, "synthetic"), train=1, val=VAL_IMAGES, size=SIZE)
val = Cityscapes(root, split="val")
samples = [val[i] for i in range(len(val))]                     # (image uint8 (H, W, 3), train ids (H, W))
counts = numpy.bincount(numpy.concatenate([t.ravel() for _, t in samples]), minlength=256)[:19]
share = counts / counts.sum()

order = numpy.argsort(-share)
fig, ax = plt.subplots(figsize=(10, 3))
ax.bar(range(19), 100 * share[order], color=TRAIN_ID_PALETTE[order] / 255, edgecolor="0.4")
ax.set_xticks(range(19), [CLASS_NAMES[c] for c in order], rotation=60, ha="right")
ax.set_ylabel("% of labelled pixels")
ax.set_title(f"Class shares over {len(val)} validation images");

# %% [markdown]
# A handful of classes, road and building first, own most of the pixels; persons, riders,
# poles, signs and lights together own a few percent. Keep that in mind for what follows.
#
# ## 3. Why pixel accuracy flatters a model
#
# We need predictions to score, and we have no trained network yet (lessons 6 to 10 build them).
# So we imitate a typical failure: a model that is perfect on the big classes and blind to the
# small ones. Call a class *small* if it has less than 2.5% of the pixels. Wherever the truth is
# a small class (or void), our model answers with the nearest pixel of a big class: it paints
# the road over the pedestrian and the building over the pole, as a real network that never
# learned them would. (`scipy.ndimage.distance_transform_edt` finds that nearest pixel.)

# %%
from scipy import ndimage

small = numpy.flatnonzero(share < 0.025)
print("small classes:", ", ".join(CLASS_NAMES[c] for c in small))


def blind_prediction(train_ids):
    """The truth, with every small-class (or void) pixel replaced by the nearest big-class pixel's class."""
    unknown = numpy.isin(train_ids, small) | (train_ids == 255)
    _, (rows, cols) = ndimage.distance_transform_edt(unknown, return_indices=True)
    return train_ids[rows, cols]


def evaluate(predict):
    """Pixel accuracy, mIoU and per-class IoU of ``predict`` over the whole validation set."""
    matrix = metrics.ConfusionMatrix(num_classes=19)
    for _, truth in samples:
        matrix.update(predict(truth), truth)
    return matrix.compute()


blind = evaluate(blind_prediction)
print(f"pixel accuracy {blind['pixel_accuracy']:.1%}    mIoU {blind['miou']:.1%}")

# %%
image, truth = samples[0]
viz.show_segmentation(image, truth, blind_prediction(truth))

# %% [markdown]
# The IoU of each class beside its share of the pixels:

# %%
iou = numpy.array(blind["iou"])
fig, ax = plt.subplots(figsize=(10, 3))
ax.bar(numpy.arange(19) - 0.2, 100 * share[order], width=0.4, color="0.7", label="% of pixels")
ax.bar(numpy.arange(19) + 0.2, 100 * numpy.nan_to_num(iou[order]), width=0.4,
       color=TRAIN_ID_PALETTE[order] / 255, edgecolor="0.4", label="IoU (%)")
ax.set_xticks(range(19), [CLASS_NAMES[c] for c in order], rotation=60, ha="right")
ax.legend()
ax.set_title(f"Blind to small classes: pixel accuracy {blind['pixel_accuracy']:.1%}, mIoU {blind['miou']:.1%}");

# %% [markdown]
# Another typical failure: a network that sees the scene at a coarse resolution. It gets the
# label of every $f \times f$ block right (nearest-neighbour downsampling of the truth), then
# upsamples its answer back by nearest neighbour (`F.interpolate`, lesson 5). Big regions survive;
# anything thinner than $f$ pixels vanishes, and every boundary becomes a staircase. (A network
# must predict *some* class everywhere, so where the coarse label was void it says "road".)
#
# **Predict first.** Such a network at 1/8 of the resolution, a common output stride (lesson 7):
# what mIoU does it score, as a fraction from 0 to 1? It is perfect on every 8 x 8 block; you
# have the class shares above, and the blind model's numbers for scale. The check computes the
# truth on this lesson's full validation set, 50 scenes of 128 x 256 (the figure below uses the
# lesson's own set, smaller under `LESSON_FAST`).

# %% {"tags": ["prediction"], "prediction": "coarse_miou"}
answer = ...

# %% {"tags": ["prediction-check"], "prediction": "coarse_miou"}
exercises.check_prediction("coarse_miou", answer)

# %%
def coarse_prediction(train_ids, factor):
    """The truth seen at 1/factor resolution: nearest-neighbour down, then nearest-neighbour back up."""
    labels = mt.tensor(train_ids[None, None].astype(numpy.float32))                        # (1, 1, H, W)
    small_map = F.interpolate(labels, scale_factor=1 / factor, mode="nearest")
    back = F.interpolate(small_map, size=train_ids.shape, mode="nearest").numpy()[0, 0].astype(numpy.int64)
    return numpy.where(back == 255, 0, back)


factors = [1, 2, 4, 8, 16]
results = {f: evaluate(lambda t, f=f: coarse_prediction(t, f)) for f in factors}
all_road = evaluate(lambda t: numpy.zeros_like(t))

fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.plot(factors, [100 * results[f]["pixel_accuracy"] for f in factors], "o-", label="pixel accuracy")
ax.plot(factors, [100 * results[f]["miou"] for f in factors], "s-", label="mIoU")
ax.axhline(100 * all_road["pixel_accuracy"], color="C0", ls=":", label="'road' everywhere: accuracy")
ax.axhline(100 * all_road["miou"], color="C1", ls=":", label="'road' everywhere: mIoU")
ax.set_xscale("log", base=2)
ax.set_xticks(factors, [f"1/{f}" for f in factors])
ax.set_xlabel("resolution the 'network' sees")
ax.set_ylabel("%")
ax.set_ylim(0, 102)
ax.legend(fontsize=8)
ax.set_title(f"Coarser and coarser predictions\n(1/8: mIoU {results[8]['miou']:.0%}, "
             f"pixel accuracy {results[8]['pixel_accuracy']:.0%}, {len(samples)} scenes of {SIZE[0]} x {SIZE[1]})",
             fontsize=10);

# %% [markdown]
# Why the two numbers part ways: write $n_c$ for the number of pixels of class $c$ and $N$ for
# all of them. Pixel accuracy is
#
# $$\text{pixel accuracy} = \frac{\sum_c TP_c}{N} = \sum_c \frac{n_c}{N} \cdot \frac{TP_c}{n_c},$$
#
# an average of the per-class recalls $TP_c / n_c$ **weighted by how many pixels each class
# has**. On a road-dominated scene the road and building terms dominate the sum; losing every
# pole and every person changes it by their few percent of pixels. mIoU gives **every class the
# same weight**, $1/|\mathcal{C}'|$, so a class the model never finds costs it a whole
# $1/|\mathcal{C}'|$, however small the class. And IoU counts false positives too: a model that
# paints road over the sidewalk is punished twice, in the sidewalk's IoU (false negatives) and
# in the road's (false positives). That is why Cityscapes ranks by mIoU, and why a pixel accuracy
# above 90% says little.
#
# ## 4. Over a dataset: one matrix, not a mean of means
#
# The official evaluation adds up **one** confusion matrix over the whole validation set and
# computes IoU from it once; `ConfusionMatrix.update` per batch and `compute()` at the end does the
# same. The mean of per-image mIoUs is a different number: a person covering 20 pixels in one
# image would weigh as much as the road in another.

# %%
def image_miou(truth, prediction):
    return metrics.mean_iou(metrics.confusion_matrix(prediction, truth, num_classes=19))


per_image = [image_miou(t, blind_prediction(t)) for _, t in samples]
print(f"mIoU of the dataset's confusion matrix: {blind['miou']:.4f}")
print(f"mean of the per-image mIoUs:           {numpy.mean(per_image):.4f}")

# %% [markdown]
# The metric code is short; every formula above is in it:

# %%
print(inspect.getsource(metrics.iou_from_confusion))
print(inspect.getsource(metrics.pixel_accuracy))

# %% [markdown]
# ## 5. Exercises: count, average, and a loss you can train on
#
# Now you write the code. Each exercise below is a stub with exactly the signature of the function
# it is checked against (`metrics.confusion_matrix`, `metrics.mean_iou`, and for the soft IoU the
# exercise's reference); replace the `raise NotImplementedError` lines, then run the cell after it.
# That cell calls `exercises.check`, which calls your function and that one on many **drawn**
# inputs (batches, class counts and image sizes chosen by
# [hypothesis](https://hypothesis.readthedocs.io), void pixels from none to all, classes missing
# from the draw) and compares the results; for the loss, also the gradients, and your gradients
# with finite differences. When something disagrees, it prints the smallest input that still
# fails. (`exercises.describe("confusion_matrix")` prints what a check draws.)
#
# **Exercise 1: `confusion_matrix(prediction, target, num_classes=19, ignore_index=255)`.**
# `prediction` and `target` are int64 tensors of class indices, (N, H, W) each (`.numpy()` gives
# their arrays); return the (C, C) integer matrix $M[t, p]$ of section 1, counted over every pixel
# of the batch whose target is not `ignore_index`. No loop over pixels: section 1 says how one
# `numpy.bincount` does it. Three things the check will try: a void label other than 255, classes
# that occur nowhere in the draw (the matrix is still C x C), and rows that are the truth.

# %% {"tags": ["exercise"], "exercise": "confusion_matrix"}
def confusion_matrix(prediction, target, num_classes=19, ignore_index=255):
    """M[t, p]: the number of kept pixels of true class t predicted as p; (num_classes, num_classes) integers."""
    raise NotImplementedError("confusion_matrix: one bincount over the kept pixels, reshaped to C x C")

# %% {"tags": ["exercise-check"], "exercise": "confusion_matrix"}
try:
    exercises.check("confusion_matrix", confusion_matrix)
    print("confusion_matrix passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# **Exercise 2: `mean_iou(matrix)`.** From a (C, C) confusion matrix (a NumPy integer array)
# to the mIoU of section 1, a Python float: the mean of $\text{IoU}_c$ over the classes that
# occur, $\mathcal{C}'$. Read the definition of $\mathcal{C}'$ again before you write it: which
# classes have $TP_c + FP_c + FN_c = 0$? (A class may be missing from the truth but predicted,
# or the other way round; and a matrix of zeros has no mIoU at all: NaN.)

# %% {"tags": ["exercise"], "exercise": "mean_iou"}
def mean_iou(matrix):
    """The mean of IoU_c = TP_c / (TP_c + FP_c + FN_c) over the classes that occur; NaN if none does."""
    raise NotImplementedError("mean_iou: per-class IoU from the diagonal, row and column sums, then the mean")

# %% {"tags": ["exercise-check"], "exercise": "mean_iou"}
try:
    exercises.check("mean_iou", mean_iou)
    print("mean_iou passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# **Exercise 3: the soft-IoU loss, `soft_iou(input, target, ignore_index=255, eps=1.0)`.**
# IoU cannot be trained on directly: the argmax that turns probabilities into classes has zero
# gradient almost everywhere. A common differentiable stand-in, the **soft IoU** (soft Jaccard
# index), replaces the predicted region of class $c$ by the predicted probabilities
# $p_{ic} \in [0, 1]$ at every pixel $i$, and the true region by its one-hot indicator
# $y_{ic} = [\text{target}_i = c]$. Over the kept pixels $K$ of the **whole batch** (one IoU per
# class, as one confusion matrix over a dataset gives):
#
# $$I_c = \sum_{i \in K} p_{ic}\, y_{ic}, \qquad U_c = \sum_{i \in K} \left(p_{ic} + y_{ic} - p_{ic}\, y_{ic}\right),
# \qquad J_c = \frac{I_c + \varepsilon}{U_c + \varepsilon}, \qquad
# \mathcal{L} = 1 - \frac{1}{C} \sum_{c} J_c.$$
#
# With a one-hot $p$, $I_c$ and $U_c$ count pixels and $J_c$ is the IoU of section 1 (up to
# $\varepsilon$); training minimises $\mathcal{L}$. The $\varepsilon > 0$ keeps a class absent
# from the target and never predicted at $J_c = 1$ instead of $0/0$ (the check draws such
# classes, and $\varepsilon$ of 1, 0.5 and 0.001).
#
# `input` is (N, C, H, W) probabilities (a softmax's output; the check draws any values in
# [0, 1)), `target` (N, H, W) class indices with `ignore_index` on void pixels; return a 0-d
# tensor. Derive the backward on paper first: $\partial \mathcal{L} / \partial p_{ic}$ for a kept
# pixel $i$. Both $I_c$ and $U_c$ depend on $p_{ic}$ (what are $\partial I_c / \partial p_{ic}$ and
# $\partial U_c / \partial p_{ic}$?), so it is a quotient rule; which other classes' $J$ does
# $p_{ic}$ touch? And what is the gradient at a void pixel? Inside `forward` and `backward` you work
# on NumPy arrays (`numpy.eye(C)[labels]` is a one-hot); the target gets no gradient (`None`).

# %% {"tags": ["exercise"], "exercise": "soft_iou"}
class SoftIoU(Function):
    """1 - mean_c (I_c + eps) / (U_c + eps) over the kept pixels of the batch; p (N, C, H, W), target (N, H, W)."""

    @staticmethod
    def forward(ctx, p, target, ignore_index, eps):
        raise NotImplementedError("SoftIoU.forward: the one-hot y, I_c and U_c over the kept pixels, then the loss")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("SoftIoU.backward: the gradient you derived for p (the target gets None)")


def soft_iou(input, target, ignore_index=255, eps=1.0):
    return SoftIoU.apply(input, target, ignore_index=ignore_index, eps=eps)

# %% {"tags": ["exercise-check"], "exercise": "soft_iou"}
try:
    exercises.check("soft_iou", soft_iou)
    print("soft_iou passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# With a one-hot $p$ the soft IoU gives back the hard one. Here is the 1/8 prediction of section
# 3 on the first image, scored by the exercise's reference (`exercises.get("soft_iou").reference`,
# which your `soft_iou` equals once it passes) with a tiny $\varepsilon$, and by the confusion matrix.
# The one difference is the classes that occur nowhere: the soft IoU scores them
# $\varepsilon / \varepsilon = 1$, mIoU leaves them out.

# %%
reference_soft_iou = exercises.get("soft_iou").reference
coarse = coarse_prediction(truth, 8)                                            # (H, W) class indices
one_hot = numpy.eye(19)[coarse].transpose(2, 0, 1)[None]                        # (1, 19, H, W): 0 or 1
truth_batch = mt.tensor(truth[None].astype(numpy.int64))                        # (1, H, W)
loss = reference_soft_iou(mt.tensor(one_hot), truth_batch, eps=1e-9)
iou = metrics.iou_from_confusion(metrics.confusion_matrix(coarse, truth, num_classes=19))
print(f"1 - soft-IoU loss of the one-hot prediction:  {1 - loss.item():.6f}")
print(f"mean IoU, classes that occur nowhere as 1:    {numpy.where(numpy.isnan(iou), 1.0, iou).mean():.6f}")
print(f"mIoU (classes that occur nowhere left out):   {numpy.nanmean(iou):.6f}")

# %% [markdown]
# Where does the loss push? Soften that prediction into probabilities (a softmax of 4 times the
# one-hot) and look at $-\partial \mathcal{L} / \partial p$ for the road class: the direction
# gradient descent moves the road probability. Compare it with your derivation, inside the true
# road and outside it.

# %%
probabilities = F.softmax(mt.tensor(4 * one_hot), dim=1).requires_grad_()
reference_soft_iou(probabilities, truth_batch).backward()
push = -probabilities.grad.numpy()[0, 0]                                        # road is class 0
limit = numpy.abs(push).max()
fig, axes = plt.subplots(1, 3, figsize=(14, 2.8), layout="constrained")
axes[0].imshow(truth == 0, cmap="gray")
axes[0].set_title("true road")
axes[1].imshow(coarse == 0, cmap="gray")
axes[1].set_title("road in the 1/8 prediction")
shown = axes[2].imshow(push, cmap="RdBu", vmin=-limit, vmax=limit)
axes[2].set_title(r"$-\partial \mathcal{L} / \partial p_{road}$")
fig.colorbar(shown, ax=axes[2], shrink=0.8)
for ax in axes:
    ax.axis("off")

# %% [markdown]
# Two values and a zero: every true-road pixel is pushed up by the same amount, every other
# labelled pixel down by the same amount, whatever its own probability; the void pixels (white)
# not at all. The prediction enters only through $I_c$ and $U_c$, the sums over the
# whole batch: they set the two amounts. Unlike the cross-entropy of lesson 2, which pushes each
# pixel by how wrong it is, the soft IoU scores each class's overlap as a whole, and every class's
# $J_c$ counts $1/C$ in the loss however few pixels it has: a pole weighs as much as the road, as
# in mIoU.

# %% [markdown]
# ## What you have seen
#
# - One confusion matrix $M[t, p]$ gives every metric: pixel accuracy is its trace over its sum;
#   $\text{IoU}_c = TP_c / (TP_c + FP_c + FN_c)$ from its diagonal, row and column sums; mIoU
#   averages the IoUs over the classes present. Void pixels are not counted.
# - Pixel accuracy weights classes by their pixel count, so on road-dominated street scenes it
#   stays high while thin and rare classes are lost; mIoU weights every class equally.
# - Over a dataset, add the matrices and compute once.
# - The soft IoU replaces the counted regions by probabilities: differentiable, it equals IoU for
#   one-hot predictions, and its gradient raises the probability inside the true region and
#   lowers it outside.
#
# **Next:** lesson 4 opens up the convolution, the operation these networks are made of, and its
# backward; lesson 5 then shows how a network gets from a coarse feature map back to full
# resolution, the problem this lesson's coarse predictions illustrated.
