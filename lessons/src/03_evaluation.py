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
# About 20 minutes.

# %%
# %matplotlib inline
import inspect
import tempfile

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, GradcheckError, gradcheck, metrics, viz
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
# We need predictions to score, and we have no trained network yet (lessons 6 to 9 build them).
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
# upsamples its answer back by nearest neighbour (`F.interpolate`, lesson 4). Big regions survive;
# anything thinner than $f$ pixels vanishes, and every boundary becomes a staircase. (A network
# must predict *some* class everywhere, so where the coarse label was void it says "road".)

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
ax.set_title("Coarser and coarser predictions");

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
# ## 5. Exercise: derive it yourself, then check it with gradcheck
#
# IoU cannot be trained on directly: the argmax that turns probabilities into classes has zero
# gradient almost everywhere. A common differentiable stand-in, the **soft IoU** (soft Jaccard
# index), replaces the predicted region by the predicted probabilities $p_i \in [0, 1]$ of one
# class at every pixel $i$, and the true region by its one-hot indicator $y_i \in \{0, 1\}$:
#
# $$J(p) = \frac{I}{U}, \qquad I = \sum_i p_i\, y_i, \qquad U = \sum_i \left(p_i + y_i - p_i\, y_i\right).$$
#
# With a one-hot $p$ this is exactly the IoU of section 1 (intersection over union, counted in
# pixels); training maximises it, i.e. minimises $1 - J$.
#
# 1. Derive $\partial J / \partial p_i$. (Both $I$ and $U$ depend on $p_i$.)
# 2. Run the template, whose backward is a first attempt, and the gradcheck cell after it.
# 3. Fix `backward` until gradcheck passes.

# %% {"tags": ["planted-wrong"], "gradcheck": "gradcheck(lambda p: MySoftIoU.apply(p, mt.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])), (mt.rand(2, 3, dtype='float64', requires_grad=True),))"}
class MySoftIoU(Function):
    """J = sum(p y) / sum(p + y - p y) for probabilities p and a 0/1 target y of the same shape."""

    @staticmethod
    def forward(ctx, p, y):
        intersection = (p * y).sum()
        union = (p + y - p * y).sum()
        ctx.save_for_backward(p, y)
        ctx.intersection, ctx.union = intersection, union
        return intersection / union

    @staticmethod
    def backward(ctx, g):
        p, y = ctx.saved_arrays
        # TODO: derive dJ/dp and fix this line (y, the target, gets no gradient: None).
        return g * y / ctx.union, None

# %% {"tags": ["exercise-check"]}
try:
    gradcheck(lambda p: MySoftIoU.apply(p, mt.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])),
              (mt.rand(2, 3, dtype='float64', requires_grad=True),))
    print("gradcheck passed: your backward agrees with the finite differences.")
except GradcheckError as error:
    print("gradcheck caught a wrong backward:\n", error)

# %% [markdown]
# **Solution.** The next two cells, the derivation and the corrected code, are collapsed: click
# the dots (or the bar to the left of a cell) to open them, once you have tried.

# %% [markdown] {"tags": ["solution"]}
# The first attempt differentiated only the numerator, as if the union
# were a constant. By the quotient rule, with $\partial I / \partial p_i = y_i$ and
# $\partial U / \partial p_i = 1 - y_i$:
#
# $$\frac{\partial J}{\partial p_i} = \frac{y_i\, U - I\,(1 - y_i)}{U^2}.$$
#
# Inside the true region ($y_i = 1$) raising $p_i$ grows the intersection: $+1/U$. Outside it,
# raising $p_i$ only grows the union: $-I/U^2$, a push towards zero that is stronger the better
# the overlap already is.

# %% {"tags": ["solution"]}
class MySoftIoU(Function):
    """J = I / U, I = sum(p y), U = sum(p + y - p y).  Backward: dJ/dp = (y U - I (1 - y)) / U^2."""

    @staticmethod
    def forward(ctx, p, y):
        intersection = (p * y).sum()
        union = (p + y - p * y).sum()
        ctx.save_for_backward(p, y)
        ctx.intersection, ctx.union = intersection, union
        return intersection / union

    @staticmethod
    def backward(ctx, g):
        p, y = ctx.saved_arrays
        return g * (y * ctx.union - ctx.intersection * (1 - y)) / ctx.union ** 2, None

# %%
gradcheck(lambda p: MySoftIoU.apply(p, mt.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])),
          (mt.rand(2, 3, dtype='float64', requires_grad=True),))

# %% [markdown]
# And with a one-hot $p$ it gives back the hard IoU: here for the road in the 1/8 prediction of
# the first image, against the IoU from its confusion matrix.

# %%
prediction = coarse_prediction(truth, 8)
kept = truth != 255
road_p = mt.tensor((prediction[kept] == 0).astype(numpy.float64))
road_y = mt.tensor((truth[kept] == 0).astype(numpy.float64))
print("soft IoU of the one-hot prediction:", MySoftIoU.apply(road_p, road_y).item())
print("IoU from the confusion matrix:     ",
      metrics.iou_from_confusion(metrics.confusion_matrix(prediction, truth, num_classes=19))[0])

# %% [markdown]
# ## What you have seen
#
# - One confusion matrix $M[t, p]$ gives every metric: pixel accuracy is its trace over its sum;
#   $\text{IoU}_c = TP_c / (TP_c + FP_c + FN_c)$ from its diagonal, row and column sums; mIoU
#   averages the IoUs over the classes present. Void pixels are not counted.
# - Pixel accuracy weights classes by their pixel count, so on road-dominated street scenes it
#   stays high while thin and rare classes are lost; mIoU weights every class equally.
# - Over a dataset, add the matrices and compute once.
#
# **Next:** lesson 4 shows how a network gets from a coarse feature map back to full resolution,
# the problem this lesson's coarse predictions illustrated.
