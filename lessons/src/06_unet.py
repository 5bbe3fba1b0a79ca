# Lesson 6 source: python lessons/build_notebooks.py turns this file into lessons/06_unet.ipynb.

# %%
# Lesson 6 · U-Net. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks the data, the network's width and the training.
import os
import tempfile

FAST = os.environ.get("LESSON_FAST") == "1"
# The data: the built-in subset (make_dataset()'s defaults: 300 train and 50 val images of 128x256),
# kept in the user's cache and shared with `minitorch-seg train`; in FAST mode a tiny set in a temporary folder.
SCRATCH = tempfile.TemporaryDirectory(prefix="lesson06-")    # for the training run (and FAST data); removed with the kernel
DATA = dict(out=os.path.join(SCRATCH.name, "data"), train=8, val=4, size=(64, 128)) if FAST else dict()
WIDTH = 8 if FAST else 16                  # channels of the first level (16 is the CLI's default U-Net)
CROP = (64, 128) if FAST else (128, 128)    # training crops (height, width)
BATCH = 4 if FAST else 8
EPOCHS = 2 if FAST else 4

# %% [markdown]
# # Lesson 6 · U-Net
#
# Lessons 4 and 5 built the parts: convolutions that see a neighbourhood, pooling that shrinks a
# map, and transposed convolutions that grow it back. The notes' section **Examples** puts them
# together into networks, and its first example is the one most segmentation code still starts
# from:
#
# > **U-Net**: sequence of deconvolutions and concatenations with high-resolution features from the
# > contracting path.
#
# (Ronneberger, Fischer and Brox, 2015, for cell images; since then everywhere.) In this lesson you
# will
#
# 1. read the project's U-Net, and draw its **contracting path**, its **expanding path** of
#    transposed convolutions ("deconvolutions"), and the **concatenations** between them;
# 2. follow the shapes level by level with `models.summary`;
# 3. see why concatenating and then convolving is the right way to merge the two paths, and where
#    the original paper had to **crop**;
# 4. derive the backward of the original skip connection, "copy and crop", and check it;
# 5. train a U-Net on the built-in street scenes and look at what it predicts.
#
# About 25 minutes (the full training run takes a few minutes more of the computer's time).

# %%
# %matplotlib inline
import inspect
import time

import matplotlib.pyplot as plt
import numpy
from matplotlib.patches import FancyArrowPatch, Rectangle

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, GradcheckError, gradcheck, models, shapes, viz
from minitorch_seg.data import Cityscapes, make_dataset, normalize_chw
from minitorch_seg.models.summary import trace
from minitorch_seg.models.unet import DoubleConv, Up, UNet
from minitorch_seg.train import TrainConfig, Trainer

mt.manual_seed(0)

# %% [markdown]
# ## 1. The network
#
# A U-Net has two halves.
#
# - The **contracting path** is an ordinary classification-style encoder. Each level applies two
#   3 x 3 convolutions (with BatchNorm and ReLU: a `DoubleConv`), then a 2 x 2 max pool halves the
#   map before the next level, which doubles the channels. Going down, the features see more of the
#   image and say more about *what* is there, on a coarser grid.
# - The **expanding path** goes back up. Each `Up` block doubles the map with a **transposed
#   convolution** (the notes' "deconvolution", lesson 4), **concatenates** the map of the same
#   resolution saved from the contracting path, and applies another `DoubleConv`. Those saved maps
#   carry the high-resolution features: *where* the edges are.
#
# A 1 x 1 convolution at the top turns the last map into one logit per class and pixel. The whole
# model is three short classes:

# %%
print(inspect.getsource(DoubleConv))
print(inspect.getsource(Up))
print(inspect.getsource(UNet.forward))

# %% [markdown]
# Drawn with the shapes of a real forward pass (`trace` runs the model once and records every
# module's output), the two paths make the letter that gives the network its name: down on the
# left, up on the right, and a skip connection across at every level. Each box is a map; its
# height is drawn proportional to the map's side and its width to the number of channels.

# %%
model = UNet(num_classes=19, width=WIDTH)
image_size = DATA.get("size", (128, 256))
with mt.no_grad():
    _, calls = trace(model.eval(), mt.zeros(1, 3, *image_size))
outputs = {call.name: call.output for call in calls}
depth = len(model.down)
down_shapes = [outputs[f"down.{level}"].shape for level in range(depth)]
up_shapes = {depth - 2 - i: outputs[f"up.{i}"].shape for i in range(depth - 1)}       # level -> shape


def draw_box(ax, x, y, shape, colour):
    """A map (N, C, H, W) as a box centred at (x, y), height ~ H, width ~ C; returns (bottom, top) of box and label."""
    _, c, h, w = shape
    box_w, box_h = 0.25 + 1.4 * c / (8 * WIDTH), 2.2 * h / image_size[0]
    ax.add_patch(Rectangle((x - box_w / 2, y - box_h / 2), box_w, box_h, facecolor=colour, edgecolor="0.3"))
    ax.text(x, y - box_h / 2 - 0.1, f"{c} x {h} x {w}", ha="center", va="top", fontsize=8)
    return y - box_h / 2 - 0.55, y + box_h / 2 + 0.05, box_w


def arrow(ax, start, end, colour, **kw):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=colour, lw=1.5, **kw))


x_left = {level: 0.9 * level for level in range(depth - 1)}                # contracting path, going right
x_right = {level: 7.0 - 0.9 * level for level in range(depth - 1)}         # expanding path, going left
x_left[depth - 1] = x_right[depth - 1] = 3.5                                # the bottom, shared
rows = {level: -3.0 * level for level in range(depth)}                      # one row per level, top = full size
fig, ax = plt.subplots(figsize=(11, 6))
left_box = {level: draw_box(ax, x_left[level], rows[level], down_shapes[level], "#fce5cd") for level in range(depth)}
right_box = {level: draw_box(ax, x_right[level], rows[level], up_shapes[level], "#cfe2f3") for level in range(depth - 1)}
right_box[depth - 1] = left_box[depth - 1]
for level in range(depth - 1):
    arrow(ax, (x_left[level], left_box[level][0]), (x_left[level + 1], left_box[level + 1][1]), "C3")
    arrow(ax, (x_right[level + 1], right_box[level + 1][1]), (x_right[level], right_box[level][0]), "C2")
    arrow(ax, (x_left[level] + left_box[level][2] / 2 + 0.1, rows[level]),
          (x_right[level] - right_box[level][2] / 2 - 0.1, rows[level]), "0.45", linestyle="--")
ax.text(x_left[0] - 0.15, (rows[0] + rows[1]) / 2 - 0.5, "max pool 2x2", color="C3", fontsize=8, ha="right")
ax.text(x_right[0] + 0.15, (rows[0] + rows[1]) / 2 - 0.9, "transposed conv\n2x2, stride 2", color="C2", fontsize=8)
ax.text(3.5, rows[0] + 0.1, "copy, then concatenate", color="0.35", fontsize=8, ha="center")
ax.text(x_right[0] + 0.9, rows[0], f"1 x 1 conv\n→ 19 x {image_size[0]} x {image_size[1]} logits", va="center", fontsize=8)
ax.text(x_left[0], rows[0] + 1.7, "contracting path", fontsize=10, color="C3", ha="center")
ax.text(x_right[0], rows[0] + 1.7, "expanding path", fontsize=10, color="C2", ha="center")
ax.set_xlim(-1.5, 9.6)
ax.set_ylim(rows[depth - 1] - 1.6, rows[0] + 2.1)
ax.axis("off")
ax.set_title(f"U-Net, width {WIDTH}, depth {depth}: each map as channels x height x width", fontsize=10);

# %% [markdown]
# ## 2. The shapes, level by level
#
# `models.summary` runs one forward pass and lists every layer with its output shape, its
# parameters and its FLOPs (a multiply-add counted as 2):

# %%
models.summary(model, (1, 3, *image_size))

# %% [markdown]
# The same forward pass, condensed to one line per level: what the contracting path keeps, what
# the transposed convolution brings up from the level below, what the concatenation makes of the
# two, and what the expanding path's `DoubleConv` returns. At every level the two halves of the
# concatenation have the same size and the same number of channels.

# %%
up_calls = {call.name: call for call in calls if call.name.startswith("up.") and call.name.count(".") == 1}
print(f"{'level':>5}  {'contracting (skip)':>20}  {'transposed conv':>18}  {'concatenated':>18}  {'expanding':>18}")
for level in range(depth):
    line = f"{level:>5}  {str(down_shapes[level]):>20}"
    if level < depth - 1:
        i = depth - 2 - level
        upsampled = outputs[f"up.{i}.up"].shape
        skip = up_calls[f"up.{i}"].inputs[1].shape
        joined = (skip[0], skip[1] + upsampled[1], *skip[2:])
        line += f"  {str(upsampled):>18}  {str(joined):>18}  {str(up_shapes[level]):>18}"
    else:
        line += "  (the bottom: no skip, no upsampling)"
    print(line)

# %% [markdown]
# Three things to read off the table:
#
# - **The transposed convolution doubles exactly.** Its output size is
#   $H_{out} = (H - 1)\,s - 2p + k$ (lesson 4); with $k = s = 2$ and $p = 0$ that is $2H$. And since
#   $k$ is a multiple of $s$, every output pixel is stamped exactly once: no checkerboard.
# - **It also halves the channels** (from $2C$ to $C$), so that the upsampled map and the skip
#   carry $C$ channels each and the concatenation has $2C$; the `DoubleConv` after it brings that
#   back to $C$.
# - **The input must be divisible by $2^{depth - 1}$** (8 here; the models of this project ask for
#   multiples of 32), or a level would have an odd side that pooling rounds down and the
#   transposed convolution cannot restore. `Up` pads (or crops) the upsampled map to the skip's
#   size in that case; section 4 shows what the original U-Net did instead.
#
# ## 3. Why concatenate
#
# Merging the two paths could also be done by adding them (as the FCN and HRNet do). U-Net
# concatenates along the channels and lets the next convolution decide. That loses nothing: a
# convolution is linear in each of its input channels, so a convolution of the concatenation
# $[a; b]$ is the sum of two convolutions, one reading $a$ and one reading $b$, with the filter
# split along its input channels:
#
# $$w * [a; b] = w_{[:, :C_a]} * a + w_{[:, C_a:]} * b.$$
#
# Adding first, $w * (a + b)$, is the special case where both halves of the filter are forced to
# be equal. Concatenation gives the network separate weights for "what the decoder thinks" and
# "what the image looked like here", at the price of twice the input channels in that one
# convolution.

# %%
a, b = mt.randn(1, 4, 8, 8, dtype="float64"), mt.randn(1, 4, 8, 8, dtype="float64")
w = mt.randn(5, 8, 3, 3, dtype="float64")                       # 5 output channels, reading 4 + 4
concatenated = F.conv2d(F.cat([a, b], dim=1), w, padding=1)
split = F.conv2d(a, w[:, :4], padding=1) + F.conv2d(b, w[:, 4:], padding=1)
print("conv(cat(a, b)) equals conv_a(a) + conv_b(b):", numpy.allclose(concatenated.numpy(), split.numpy()))

# %% [markdown]
# And the backward of a concatenation is the reverse move: the gradient of $[a; b]$ is *split*
# along the channels, the first $C_a$ channels to $a$, the rest to $b$. Nothing is added and
# nothing is scaled, because every output element is a copy of exactly one input element.
#
# ## 4. Copy and crop: the original U-Net
#
# Our `DoubleConv` pads its convolutions (`padding=1`), so a level keeps its size. The original
# U-Net did not pad: every 3 x 3 convolution took 2 pixels off each side length
# ($H_{out} = H - 2$ by the formula of lesson 5), so the expanding path's maps came out *smaller*
# than the contracting path's maps they were to be joined with, and the paper crops the centre of
# each skip before concatenating ("copy and crop" in its figure). The paper's sizes, recomputed
# with the project's one copy of the output-size formulas:

# %%
def valid_double_conv(size):
    return shapes.conv_output_size(shapes.conv_output_size(size, 3), 3)      # two 3x3 convs, no padding


size, skips = 572, []                          # the paper's input tile
print(f"contracting: input {size}", end="")
for level in range(4):
    size = valid_double_conv(size)
    skips.append(size)
    size = shapes.conv_output_size(size, 2, stride=2)                         # 2x2 max pool
    print(f" -> {skips[-1]} -> pool {size}", end="")
size = valid_double_conv(size)
print(f" -> bottom {size}")
for level in reversed(range(4)):
    up = shapes.conv_transpose_output_size(size, kernel_size=2, stride=2)
    crop = (skips[level] - up) // 2
    size = valid_double_conv(up)
    print(f"level {level}: up-conv gives {up:3d}; the skip has {skips[level]:3d}: crop {crop:2d} pixels from each side; "
          f"after the convs {size}")

# %% [markdown]
# A 572 x 572 tile gives a 388 x 388 segmentation of its centre: the border pixels lack the
# context the valid convolutions need, so the paper segments large images as overlapping tiles.
# Padding (as almost every later U-Net does, ours included) keeps the sizes equal and the code
# simple, at the price of border pixels computed partly from zeros.
#
# ## 5. Exercise: derive it yourself, then check it with gradcheck
#
# The original skip connection, as one `Function`: crop the centre of the skip map `skip`
# (N, $C_s$, H, W) to the size h x w of the upsampled map `x` (N, $C_x$, h, w), and concatenate:
#
# $$y = \big[\,\text{skip}[:, :, t:t+h,\ l:l+w];\ x\,\big], \qquad t = \lfloor (H - h)/2 \rfloor,\ l = \lfloor (W - w)/2 \rfloor.$$
#
# 1. Derive $\overline{\text{skip}}$ and $\bar x$ from $\bar y$. (Which element of which input is
#    each output element a copy of? What gradient do the cropped-away pixels get?)
# 2. Run the template, whose backward is a first attempt, then the gradcheck cell. Which input
#    does gradcheck complain about?
# 3. Fix `backward` until gradcheck passes.

# %% {"tags": ["planted-wrong"], "gradcheck": "gradcheck(MyCopyAndCrop.apply, (mt.randn(1, 2, 8, 10, dtype='float64', requires_grad=True), mt.randn(1, 3, 4, 4, dtype='float64', requires_grad=True)))"}
class MyCopyAndCrop(Function):
    """y = cat([skip cropped to x's size at its centre, x]) along channels: the original U-Net's skip connection."""

    @staticmethod
    def forward(ctx, skip, x):
        h, w = x.shape[2:]
        top, left = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2
        ctx.skip_shape, ctx.top, ctx.left = skip.shape, top, left
        return numpy.concatenate([skip[:, :, top:top + h, left:left + w], x], axis=1)   # (N, C_s + C_x, h, w)

    @staticmethod
    def backward(ctx, g):
        c_skip, (h, w) = ctx.skip_shape[1], g.shape[2:]
        grad_skip = numpy.zeros(ctx.skip_shape, dtype=g.dtype)
        # TODO: derive dL/dskip and fix this line: a first attempt, and wrong.
        grad_skip[:, :, :h, :w] = g[:, :c_skip]
        return grad_skip, g[:, c_skip:]

# %% {"tags": ["exercise-check"]}
try:
    gradcheck(MyCopyAndCrop.apply, (mt.randn(1, 2, 8, 10, dtype='float64', requires_grad=True),
                                    mt.randn(1, 3, 4, 4, dtype='float64', requires_grad=True)))
    print("gradcheck passed: your backward agrees with the finite differences.")
except GradcheckError as error:
    print("gradcheck caught a wrong backward:\n", error)

# %% [markdown]
# Where does each backward put the skip's gradient? With an all-ones $\bar y$, the gradient of
# the skip shows which of its pixels the output copied; the finite differences of the forward show
# the truth:

# %%
skip = mt.randn(1, 1, 8, 10, dtype="float64", requires_grad=True)
small = mt.randn(1, 1, 4, 4, dtype="float64")
MyCopyAndCrop.apply(skip, small).sum().backward()


def copied_sum(values):
    with mt.no_grad():
        return MyCopyAndCrop.apply(mt.tensor(values), small).sum().item()


base = skip.numpy()
numeric = numpy.zeros_like(base)
for index in numpy.ndindex(base.shape):
    step = numpy.zeros_like(base)
    step[index] = 1e-6
    numeric[index] = (copied_sum(base + step) - copied_sum(base - step)) / 2e-6
fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
for ax, grad, title in [(axes[0], numeric[0, 0], "finite differences: the pixels copied"),
                        (axes[1], skip.grad.numpy()[0, 0], "your backward")]:
    ax.imshow(grad, cmap="Greens", vmin=0, vmax=1)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(numpy.arange(-0.5, 10), minor=True)
    ax.set_yticks(numpy.arange(-0.5, 8), minor=True)
    ax.grid(which="minor", color="0.8")
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)

# %% [markdown]
# **Solution.** The next two cells, the derivation and the corrected code, are collapsed: click
# the dots (or the bar to the left of a cell) to open them, once you have tried.

# %% [markdown] {"tags": ["solution"]}
# Output channel $c < C_s$ at $(u, v)$ is a copy of $\text{skip}[c, t + u, l + v]$; output
# channel $C_s + c$ is a copy of $x[c, u, v]$. A copy passes its gradient through unchanged, so
#
# $$\overline{\text{skip}}[c, t + u, l + v] = \bar y[c, u, v], \qquad \bar x[c, u, v] = \bar y[C_s + c, u, v],$$
#
# and every skip pixel outside the crop gets 0: it reached no output. The concatenation's backward
# splits $\bar y$ along the channels; the crop's backward pads the first part with zeros back to
# the skip's size, *at the offset of the crop*. The first attempt padded on the wrong sides: it
# put the gradient in the top-left corner, which is right only when nothing is cropped ($t = l = 0$).
# So gradcheck flags input 0, the skip, while input 1 passes. (A test with equal sizes would never
# have noticed.)

# %% {"tags": ["solution"]}
class MyCopyAndCrop(Function):
    """y = cat([skip cropped at its centre, x]).  Backward: split g by channels; pad the skip's part back at the crop's offset."""

    @staticmethod
    def forward(ctx, skip, x):
        h, w = x.shape[2:]
        top, left = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2
        ctx.skip_shape, ctx.top, ctx.left = skip.shape, top, left
        return numpy.concatenate([skip[:, :, top:top + h, left:left + w], x], axis=1)

    @staticmethod
    def backward(ctx, g):
        c_skip, (h, w) = ctx.skip_shape[1], g.shape[2:]
        grad_skip = numpy.zeros(ctx.skip_shape, dtype=g.dtype)
        grad_skip[:, :, ctx.top:ctx.top + h, ctx.left:ctx.left + w] = g[:, :c_skip]
        return grad_skip, g[:, c_skip:]

# %%
gradcheck(MyCopyAndCrop.apply, (mt.randn(1, 2, 8, 10, dtype='float64', requires_grad=True),
                                mt.randn(1, 3, 4, 4, dtype='float64', requires_grad=True)))

# %% [markdown]
# ## 6. Training a U-Net on street scenes
#
# Now the real thing: the project's training job (`minitorch_seg.train.Trainer`, what
# `minitorch-seg train` runs) on the built-in data, generated street scenes in the Cityscapes
# format. SGD with momentum, a short linear warm-up and the poly learning-rate schedule,
# random scale, crop and flip, and the mIoU on the validation images after every epoch.

# %%
root = make_dataset(**DATA)
run_folder = os.path.join(SCRATCH.name, "run")
# Full resolution and an unweighted loss, the plainest job; `minitorch-seg train` itself trains at
# half resolution with class weights (input_scale=0.5, class_weights="enet"), which learns faster.
config = TrainConfig(model="unet", model_options={"width": WIDTH}, epochs=EPOCHS, batch_size=BATCH, crop=CROP,
                     input_scale=1.0, class_weights="none")
trainer = Trainer(config, root, run_folder, progress=False)
print(f"{len(trainer.train_loader.dataset)} training images in batches of {BATCH}, "
      f"{len(trainer.val_loader.dataset)} validation images; {sum(p.numel() for p in trainer.model.parameters()):,} weights")
start = time.perf_counter()
result = trainer.run()
print(f"{EPOCHS} epochs in {time.perf_counter() - start:.0f} s; best validation mIoU {result['best_miou']:.3f}")

# %% [markdown]
# The loss per epoch and the validation mIoU after each epoch (`Trainer` also writes this
# picture into its run folder as `curves.png`, beside the checkpoints and `metrics.csv`):

# %%
history = trainer.history
epochs = [row["epoch"] for row in history]
fig, (left_ax, right_ax) = plt.subplots(1, 2, figsize=(10, 3))
left_ax.plot(epochs, [row["train_loss"] for row in history], "o-")
left_ax.axhline(numpy.log(19), color="gray", ls=":", label="log 19: a uniform guess")
left_ax.set_xlabel("epoch")
left_ax.set_ylabel("mean training loss")
left_ax.legend()
right_ax.plot(epochs, [100 * row["val_miou"] for row in history], "s-", color="C2", label="mIoU")
right_ax.plot(epochs, [100 * row["val_pixel_accuracy"] for row in history], "^-", color="C1", label="pixel accuracy")
right_ax.set_xlabel("epoch")
right_ax.set_ylabel("% on the validation images")
right_ax.legend()
fig.suptitle("U-Net training");

# %% [markdown]
# What it predicts on two validation scenes. After minutes of CPU time, expect the big classes
# (road, sky, building, vegetation) to be found and the thin ones (poles, signs, people) mostly
# missed; lesson 3 explains why the mIoU is so much lower than the pixel accuracy.

# %%
val = Cityscapes(root, split="val")
model = trainer.model.eval()
for index in (0, 1):
    image, label = val[index]
    with mt.no_grad():
        logits = model(mt.tensor(normalize_chw(image[None])))                    # (1, 19, H, W)
    display(viz.show_segmentation(image, label, logits[0]))

# %% [markdown]
# ## 7. What the skip connection brings
#
# The top level of the expanding path joins two maps of full resolution: the skip from the first
# `DoubleConv` of the contracting path, and the transposed convolution of everything the network
# learned further down. Here are both for the first validation scene, with the output of the
# `DoubleConv` that reads their concatenation (each map shown is the one channel of its tensor
# with the largest variance over the image). The skip is sharp but has seen only a 5 x 5
# neighbourhood of each pixel; the upsampled map has seen far more of the scene but is coarse:
# it is stamped from a map of half the side, and its 2 x 2 stamps show. The merge has both.

# %%
image, label = val[0]
with mt.no_grad():
    _, calls = trace(model, mt.tensor(normalize_chw(image[None])))
outputs = {call.name: call.output for call in calls}
top = f"up.{depth - 2}"
maps = {"skip: down.0 (contracting path)": outputs["down.0"],
        f"upsampled: {top}.up (transposed conv)": outputs[f"{top}.up"],
        f"after concat + DoubleConv: {top}": outputs[top]}
fig, axes = plt.subplots(1, 4, figsize=(16, 2.4))
axes[0].imshow(image)
axes[0].set_title("input")
for ax, (title, tensor) in zip(axes[1:], maps.items()):
    channels = tensor.numpy()[0]                                        # (C, H, W)
    ax.imshow(channels[channels.reshape(len(channels), -1).var(axis=1).argmax()], cmap="magma")
    ax.set_title(title, fontsize=9)
for ax in axes:
    ax.axis("off")

# %% [markdown]
# ## What you have seen
#
# - A U-Net is a contracting path (two 3 x 3 convolutions, then a 2 x 2 max pool, per level) and
#   an expanding path (a 2 x 2 stride-2 transposed convolution, a concatenation with the skip of
#   the same level, two 3 x 3 convolutions), then a 1 x 1 classifier.
# - The shapes: each level halves the side and doubles the channels; the transposed convolution
#   doubles exactly, with no checkerboard; the input must be divisible by $2^{depth-1}$.
# - Concatenation followed by a convolution is a sum of two convolutions with separate weights;
#   its backward splits the gradient by channels. The original U-Net cropped its skips, whose
#   backward pads the gradient back *at the crop's offset*.
# - Trained for a few minutes on street scenes, it finds the large classes first.
#
# **Next:** lesson 7 keeps the resolution from falling in the first place: atrous convolutions
# and DeepLab's atrous spatial pyramid pooling.
