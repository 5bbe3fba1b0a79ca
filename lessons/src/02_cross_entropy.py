# Lesson 2 source: python lessons/build_notebooks.py turns this file into lessons/02_cross_entropy.ipynb.

# %%
# Lesson 2 · The per-pixel cross-entropy loss. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks image sizes and step counts.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
SIZE = (32, 64) if FAST else (64, 128)      # (height, width) of the generated street scenes
SCENES = 2 if FAST else 4                   # scenes in the little training set of section 7
STEPS = 30 if FAST else 150                 # training steps in section 7

# %% [markdown]
# # Lesson 2 · The per-pixel cross-entropy loss
#
# **Semantic segmentation** assigns each pixel in the input image individually to a single class
# from a set $\mathcal{C} = \{1, \dots, C\}$. Cityscapes, the street-scene benchmark this project
# follows, has $C = 19$: road, sidewalk, building, ..., car, bicycle.
#
# A segmentation network therefore outputs, for an image of $H \times W$ pixels, $C$ numbers
# per pixel, the **logits** $x[c, h, w]$: an array of shape (N, C, H, W) for a batch of N images.
# The softmax over the class axis turns each pixel's logits into probabilities:
#
# $$\hat{Y}[h, w, c] = \frac{e^{x[c,h,w]}}{\sum_{k=1}^{C} e^{x[k,h,w]}}.$$
#
# This lesson is about the loss that training minimises: the **categorical cross-entropy loss on
# softmax outputs**, per pixel and for the entire image; its gradient, which turns out to be
# "softmax minus one-hot"; the pixels it must ignore; and how to compute it without overflow.
# About 25 minutes.

# %%
# %matplotlib inline
import inspect

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, exercises, nn, viz
from minitorch_seg.data import generate_scene, label_ids_to_train_ids, normalize_chw

mt.manual_seed(0)

# %% [markdown]
# Here is the kind of image and label we train on: a generated street scene in the Cityscapes
# format, with its label map of train ids 0..18 (drawn in the Cityscapes colours). Black pixels
# carry the label 255: "void", not one of the 19 classes.

# %%
scene = generate_scene("train", 0, size=SIZE)
label = label_ids_to_train_ids(scene.label_ids).astype(numpy.int64)     # (H, W) train ids
viz.show_segmentation(scene.image, label)

# %% [markdown]
# ## 1. The per-pixel loss
#
# Let $y[h, w]$ be the true class of pixel $(h, w)$ and $Y$ its **one-hot** encoding:
# $Y[h, w, c] = 1$ if $c = y[h, w]$ and 0 otherwise. The notes define the loss of one pixel as
#
# $$-\log\left(\hat{Y}[h, w, y[h, w]]\right) = -\sum_{c=1}^{C} Y[h, w, c] \log\left(\hat{Y}[h, w, c]\right).$$
#
# The two sides are equal because the one-hot $Y$ is zero in every term but one: the sum picks
# out the log-probability of the correct class. So the per-pixel loss is *minus the log of the
# probability the network gave to the right answer*. It is 0 when that probability is 1, and it
# grows without bound as the probability goes to 0: confident mistakes cost the most.

# %%
p = numpy.linspace(0.005, 1, 200)
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.plot(p, -numpy.log(p))
ax.set_xlabel(r"$\hat{Y}[h, w, y[h, w]]$, the probability of the true class")
ax.set_ylabel("per-pixel loss")
ax.set_title(r"$-\log \hat{Y}$");

# %% [markdown]
# Both sides of the formula, in NumPy, for a tiny "image" of 2 x 3 pixels and 3 classes
# (the notes count classes from 1, code from 0):

# %%
rng = numpy.random.default_rng(0)
logits = rng.standard_normal((3, 2, 3))                # x[c, h, w]: C = 3, H = 2, W = 3
y = numpy.array([[0, 2, 1],
                 [1, 1, 0]])                           # y[h, w]
Y_hat = numpy.exp(logits) / numpy.exp(logits).sum(axis=0)          # softmax over c: (C, H, W)
Y = numpy.eye(3)[y]                                    # one-hot: (H, W, C)
Y_hat_hwc = Y_hat.transpose(1, 2, 0)                   # (H, W, C), the notes' index order

picked = -numpy.log(numpy.take_along_axis(Y_hat_hwc, y[..., None], axis=2))[..., 0]
summed = -(Y * numpy.log(Y_hat_hwc)).sum(axis=2)
print("-log Y_hat[h, w, y[h, w]]:\n", picked.round(4))
print("-sum_c Y log Y_hat:\n", summed.round(4))

# %% [markdown]
# ## 2. The loss for the entire image
#
# The categorical cross-entropy loss for the entire image is the mean of the per-pixel losses
# over its $H \times W$ pixels:
#
# $$\mathcal{L}_{CE}(\hat{Y}; Y) = -\frac{1}{HW} \sum_{h=1}^{H} \sum_{w=1}^{W} \sum_{c=1}^{C} Y[h, w, c] \log\left(\hat{Y}[h, w, c]\right).$$
#
# For a batch, the mean runs over the pixels of all N images. The mean (rather than the sum)
# keeps the loss, and the size of the gradient steps, independent of the image size.
# `minitorch_seg.functional.cross_entropy` takes the logits (N, C, H, W) and the class indices
# (N, H, W), as `torch.nn.functional.cross_entropy` does:

# %%
loss = F.cross_entropy(mt.tensor(logits[None]), mt.tensor(y[None]))
print("by hand:      ", summed.mean())
print("cross_entropy:", loss.item())

# %% [markdown]
# ## 3. The gradient: softmax minus one-hot
#
# Training needs $\partial \mathcal{L} / \partial x$ for every logit. Take one pixel, drop the
# $(h, w)$ indices, and write its loss with the softmax spelled out:
#
# $$\ell = -\log \frac{e^{x_y}}{\sum_k e^{x_k}} = -x_y + \log \sum_{k} e^{x_k}.$$
#
# Differentiate with respect to the logit $x_c$ of any class $c$. The first term gives $-1$ if
# $c = y$ and 0 otherwise, which is $-Y_c$. The second is a log of a sum: its derivative is the
# derivative of the sum, $e^{x_c}$, over the sum itself, which is exactly the softmax
# $\hat{Y}_c$. So
#
# $$\frac{\partial \ell}{\partial x_c} = \hat{Y}_c - Y_c, \qquad
# \frac{\partial \mathcal{L}_{CE}}{\partial x[c, h, w]} = \frac{1}{HW}\left(\hat{Y}[h, w, c] - Y[h, w, c]\right).$$
#
# In words: every class's logit is pushed down in proportion to the probability it got, and the
# true class's logit is pushed up by 1. The pushes at one pixel sum to zero (probabilities sum to
# 1), and a pixel that is already confidently right ($\hat{Y} \approx Y$) gets almost no gradient.
# Nothing here needs the softmax's own Jacobian: the loss and the softmax together have this
# simple derivative, which is why libraries fuse them into one `Function`.
#
# Check the formula against the engine:

# %%
x = mt.tensor(logits[None], requires_grad=True)
F.cross_entropy(x, mt.tensor(y[None])).backward()
formula = (Y_hat - Y.transpose(2, 0, 1)) / y.size        # (softmax - one-hot) / HW, (C, H, W)
print("autograd equals (softmax - one-hot) / HW:", numpy.allclose(x.grad.numpy()[0], formula))

# %% [markdown]
# ## 4. The ignore index
#
# Cityscapes leaves some pixels unlabelled ("void": the ego car's bonnet, the frame border,
# objects no class fits). They carry the label **255**, and they must not teach the network
# anything. So the loss averages only over the set $K$ of *kept* pixels, those with
# $y[h, w] \neq 255$:
#
# $$\mathcal{L} = -\frac{1}{|K|} \sum_{(h, w) \in K} \log \hat{Y}[h, w, y[h, w]],
# \qquad \frac{\partial \mathcal{L}}{\partial x[c, h, w]} =
# \begin{cases} \frac{1}{|K|}\left(\hat{Y}[h, w, c] - Y[h, w, c]\right) & (h, w) \in K \\ 0 & \text{otherwise.}\end{cases}$$
#
# With no pixel ignored, $|K| = HW$ and this is the notes' formula. `cross_entropy` takes the
# label to ignore as `ignore_index`; its default is PyTorch's, -100, so Cityscapes targets need
# `ignore_index=255`, as every call below passes. Here is the library's `Function`, whose docstring
# carries the same derivation:

# %%
print(inspect.getsource(F.loss.CrossEntropy))

# %% [markdown]
# Ignoring a pixel is not the same as giving it some class: the mean over $K$ changes, and the
# ignored pixel's logits receive exactly zero gradient.

# %%
y_void = y.copy()
y_void[0, 2] = 255                                     # one pixel becomes void
x = mt.tensor(logits[None], requires_grad=True)
loss = F.cross_entropy(x, mt.tensor(y_void[None]), ignore_index=255)
loss.backward()
print("mean over the 5 kept pixels:", loss.item(), "=", numpy.delete(summed.ravel(), 2).mean())
print("gradient at the void pixel:", x.grad.numpy()[0, :, 0, 2])

# %% [markdown]
# ## 5. Numerical stability: the log-sum-exp trick
#
# $e^{x}$ overflows float32 for $x > 88.7$ (and float64 for $x > 709.8$). Logits of a few hundred
# are rare but do happen in a diverging run, and a naive softmax then returns `inf / inf = nan`,
# which poisons every weight in the next step. The fix costs nothing: for any constant $m$,
#
# $$\log \sum_k e^{x_k} = m + \log \sum_k e^{x_k - m},$$
#
# and with $m = \max_k x_k$ every exponent is $\le 0$, so every $e^{(\cdot)}$ lies in $(0, 1]$ and
# the sum in $[1, C]$: no overflow, and no $\log 0$ either. The loss is then computed as
# $\ell = \log\sum_k e^{x_k} - x_y$ directly, never as the log of a (possibly underflowed)
# probability.

# %%
def naive_loss(z, true_class):
    p = numpy.exp(z) / numpy.exp(z).sum()
    return -numpy.log(p[true_class])


def stable_loss(z, true_class):
    m = z.max()
    return m + numpy.log(numpy.exp(z - m).sum()) - z[true_class]


scales = numpy.linspace(1, 200, 200)
with numpy.errstate(all="ignore"):
    naive = [naive_loss(numpy.float32([s, 0.5 * s, 0.0]), 1) for s in scales]
stable = [stable_loss(numpy.float32([s, 0.5 * s, 0.0]), 1) for s in scales]
library = [F.cross_entropy(mt.tensor([[s, 0.5 * s, 0.0]]), mt.tensor([1])).item() for s in scales]

fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(scales, stable, lw=4, alpha=0.4, label="log-sum-exp")
ax.plot(scales, library, "k:", label="F.cross_entropy")
ax.plot(scales, naive, "r", label="naive softmax, then log")
ax.set_xlabel("s, for logits (s, s/2, 0) and true class 1 (float32)")
ax.set_ylabel("loss")
ax.legend()
ax.set_title("The naive loss is nan once $e^s$ overflows");
print("at s = 200:  naive", naive[-1], "  stable", stable[-1])

# %% [markdown]
# ## 6. Exercises: write the loss yourself, and let hypothesis try to break it
#
# Now you write the code. Each exercise below is a stub with exactly the signature of the
# library's function of the same name; replace the `raise NotImplementedError` lines with your
# forward and backward, then run the cell after it. That cell calls `exercises.check`, which calls
# your function and the library's on many **drawn** inputs: batches, class counts and image sizes
# chosen by [hypothesis](https://hypothesis.readthedocs.io), void pixels from none to nearly all,
# with and without class weights. It compares the outputs and the gradient of every input at
# float64 precision (rtol 1e-6), and your gradients with finite differences. When something
# disagrees, hypothesis *shrinks* the input to the smallest one that still fails and the check
# prints it, so you debug a 1 x 2 x 1 x 2 batch rather than a 3 x 5 x 6 x 6 one.
#
# One fixed test input would not do: dividing by the number of pixels instead of the number of
# kept pixels is right whenever no pixel is void, and a hard-coded size is right at that size.
# (`exercises.describe("cross_entropy")` prints what a check draws.) Inside `forward` and
# `backward` you work on NumPy arrays, as the library's `Function`s do; `apply` wraps them.

# %% [markdown]
# **Exercise 1: `log_softmax(input, dim)`.** The log of the softmax along `dim`, computed with
# section 5's trick so that logits of $\pm 1000$ give finite numbers (the check draws them).
# Derive the backward on paper first: with $\ell_i = x_i - \log \sum_k e^{x_k}$ and an upstream
# gradient $g$, what is $\partial L / \partial x_j = \sum_i g_i\, \partial \ell_i / \partial x_j$?
# (It needs the softmax, which you can get back from the output: $\hat{Y} = e^{\ell}$.)

# %% {"tags": ["exercise"], "exercise": "log_softmax"}
class LogSoftmax(Function):
    """log softmax(x) along ``dim``, without overflow."""

    @staticmethod
    def forward(ctx, x, dim):
        raise NotImplementedError("LogSoftmax.forward: x - m - log(sum(exp(x - m))), m the max along dim")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("LogSoftmax.backward: the gradient you derived (dim gets no gradient)")


def log_softmax(input, dim):
    return LogSoftmax.apply(input, dim=dim)

# %% {"tags": ["exercise-check"], "exercise": "log_softmax"}
try:
    exercises.check("log_softmax", log_softmax)
    print("log_softmax passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# **Exercise 2: `cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean")`.**
# The whole loss of sections 2 to 4, as `F.cross_entropy` computes it: logits (N, C, H, W),
# targets (N, H, W) with `ignore_index` on void pixels. Two things the sections did not show:
#
# - `weight`, a (C,) tensor or None, multiplies each pixel's loss by the weight of its true class
#   $w_{y}$ (lesson 6's training uses this against class imbalance); `"mean"` then divides by the
#   **sum of those weights over the kept pixels**, not by their number (with no weight they are
#   the same). The weight gets no gradient: it is a constant, as in PyTorch.
# - `reduction="sum"` returns the sum over kept pixels, `"none"` the (N, H, W) map of per-pixel
#   losses (0 on void pixels).
# - `ignore_index` is whatever label the caller passes: the check draws targets whose void label
#   is the default -100, or 255, -1 or C, so compare with the argument, never a constant.
#
# Write the forward with the log-sum-exp trick and the backward from section 4's formula, scaled
# as the forward is. (The target and the other arguments get no gradient: return `None` for them.)

# %% {"tags": ["exercise"], "exercise": "cross_entropy"}
class CrossEntropy(Function):
    """-w[y] log softmax(x)[y] per kept pixel, reduced; x (N, C, H, W), target (N, H, W)."""

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction):
        raise NotImplementedError("CrossEntropy.forward: the per-pixel loss, weighted, then reduced")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("CrossEntropy.backward: w[y] (softmax - one-hot), scaled as the forward")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean"):
    weight = None if weight is None else weight.numpy()            # a constant: no gradient
    return CrossEntropy.apply(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction)

# %% {"tags": ["exercise-check"], "exercise": "cross_entropy"}
try:
    exercises.check("cross_entropy", cross_entropy)
    print("cross_entropy passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# When a check fails it raises `exercises.ExerciseFailed`, whose message is the report; the
# smallest failing input is kept on the error, so you can run your function on it by hand:
#
# ```python
# try:
#     exercises.check("cross_entropy", cross_entropy)
# except exercises.ExerciseFailed as failure:
#     small = failure.example                      # .args and .kwargs of the call
#     print(small.call(cross_entropy), small.call(F.cross_entropy))
# ```

# %% [markdown]
# ## 7. The loss at work
#
# A tiny fully convolutional network (three convolutions: lesson 4 explains them) trained with
# this loss on a few generated scenes. Each step: logits for every pixel, the mean per-pixel
# cross-entropy over the kept pixels, backward, an Adam step. Once your `cross_entropy` passes its
# check it gives the library's numbers, so either could drive the training; we use the library's.
#
# **Predict first.** A freshly initialised network has small random weights, so its 19 logits
# are nearly equal at every pixel. Where will the training curve start? Take the limit: logits
# exactly equal everywhere. What is the mean per-pixel cross-entropy then? Write it in the cell
# below (a number), then run the check.

# %% {"tags": ["prediction"], "prediction": "uniform_loss"}
answer = ...

# %% {"tags": ["prediction-check"], "prediction": "uniform_loss"}
exercises.check_prediction("uniform_loss", answer)

# %%
scenes = [generate_scene("train", i, size=SIZE) for i in range(SCENES)]
images = mt.tensor(normalize_chw(numpy.stack([s.image for s in scenes])))                  # (N, 3, H, W)
labels = mt.tensor(label_ids_to_train_ids(numpy.stack([s.label_ids for s in scenes])).astype(numpy.int64))

model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                      nn.Conv2d(16, 16, 3, padding=2, dilation=2), nn.ReLU(),
                      nn.Conv2d(16, 19, 1))
optimizer = mt.optim.Adam(model.parameters(), lr=0.02)
losses = []
for step in range(STEPS):
    loss = F.cross_entropy(model(images), labels, ignore_index=255)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses)
ax.axhline(numpy.log(19), color="gray", ls=":", label="log 19: a uniform guess")
ax.set_xlabel("step")
ax.set_ylabel(r"$\mathcal{L}_{CE}$")
ax.legend()
ax.set_title("training loss");

# %% [markdown]
# Its predictions on the first training scene: the big classes come first, the thin ones (poles,
# signs) last; lesson 3 measures exactly that.

# %%
with mt.no_grad():
    prediction = model(images[:1]).numpy()[0].argmax(axis=0)
viz.show_segmentation(scenes[0].image, labels.numpy()[0], prediction)

# %% [markdown]
# Where does the loss still push? One more forward and backward on that scene, and three maps:
# the probability the network gives the true class, the per-pixel loss $-\log$ of it, and the
# size of the gradient $\lVert \hat{Y} - Y \rVert$ at each pixel. The loss, and with it the
# gradient, concentrates on boundaries and small objects. The void pixels have no true class, no
# loss and exactly zero gradient: they are drawn black in all three maps, as in the label maps
# above (no value of the colour scale is black).

# %%
scores = model(images[:1])
scores.retain_grad()                                       # keep dL/d(logits), not only the weights'
target = labels[:1]
F.cross_entropy(scores, target, ignore_index=255).backward()
label0 = target.numpy()[0]
probs = F.softmax(scores, dim=1).numpy()[0]                                             # (19, H, W)
void = label0 == 255
p_true = numpy.take_along_axis(probs, numpy.where(void, 0, label0)[None], axis=0)[0]
per_pixel = F.cross_entropy(scores, target, ignore_index=255, reduction="none").numpy()[0]               # 0 where ignored
kept = (~void).sum()
gradient_size = numpy.linalg.norm(scores.grad.numpy()[0], axis=0) * kept                # |softmax - one-hot|

scale = plt.get_cmap("YlOrRd").with_extremes(bad="black")          # masked (void) pixels: black, in every panel
fig, axes = plt.subplots(1, 3, figsize=(14, 3.1), layout="constrained")
for ax, (title, image) in zip(axes, [("probability of the true class", p_true),
                                     ("per-pixel loss", per_pixel),
                                     ("gradient size × |K|", gradient_size)]):
    shown = ax.imshow(numpy.ma.masked_where(void, image), cmap=scale)
    ax.set_title(title)
    ax.axis("off")
    fig.colorbar(shown, ax=ax, shrink=0.8)
fig.legend(handles=[plt.Rectangle((0, 0), 1, 1, color="black")], labels=["void (255): no loss, no gradient"],
           loc="outside lower center", fontsize=9, frameon=False);

# %% [markdown]
# ## What you have seen
#
# - The per-pixel loss $-\log \hat{Y}[h, w, y[h,w]]$ equals $-\sum_c Y \log \hat{Y}$ with the
#   one-hot $Y$; the image loss is its mean over the $HW$ pixels (over the kept pixels, when some
#   are labelled 255).
# - Its gradient with respect to the logits is $(\hat{Y} - Y)$ divided by the number of pixels
#   averaged: softmax minus one-hot.
# - Computing it as $\log\sum e^{x - m} + m - x_y$ never overflows.
#
# **Next:** lesson 3 asks how good a segmentation is: pixel accuracy, mIoU, and why the first
# can flatter a model.
