# Lesson 6 source: python lessons/build_notebooks.py turns this file into lessons/06_unet.ipynb.

# %%
# Lesson 6 · U-Net. Run this cell first: it is the only one that reads the environment.
# LESSON_FAST=1 (the test suite sets it) only shrinks the data, the network's width and the training.
# CITYSCAPES_ROOT: a real Cityscapes folder (holding leftImg8bit/ and gtFine/; see DATASET.md) to train and
# predict on instead of the built-in synthetic scenes. LESSON_BACKEND: "numpy" (the CPU, default) or "cupy"
# (an NVIDIA GPU, lesson 11) for the training runs.
import os
import tempfile

FAST = os.environ.get("LESSON_FAST") == "1"
CITYSCAPES_ROOT = os.environ.get("CITYSCAPES_ROOT") or None
BACKEND = os.environ.get("LESSON_BACKEND") or "numpy"
# The built-in data: make_dataset()'s defaults (300 train and 50 val images of 128x256), kept in the user's
# cache and shared with `minitorch-seg train`; in FAST mode a tiny set in a temporary folder.
SCRATCH = tempfile.TemporaryDirectory(prefix="lesson06-")    # training runs (and FAST data); removed with the kernel
DATA = dict(out=os.path.join(SCRATCH.name, "data"), train=8, val=4, size=(64, 128)) if FAST else dict()
WIDTH = 8 if FAST else 16                  # channels of the first level (16 is the CLI's default U-Net)
BATCH = 4 if FAST else 8
EPOCHS = 2 if FAST else 4                  # section 6's training run
BALANCE_EPOCHS = 1 if FAST else 3          # each of section 8's four short runs (two losses, two seeds)
if CITYSCAPES_ROOT is None:                # built-in scenes: section 6 at full resolution, 8 at half (the CLI's)
    JOB = dict(input_scale=1.0, crop=(64, 128) if FAST else (128, 128))
    BALANCE_JOB = dict(input_scale=0.5, crop=(32, 64) if FAST else (64, 128))
    VIEW = None                            # the validation images are shown to the model as they are
else:                                      # real photographs, 1024x2048: the model sees them at 256x512
    JOB = BALANCE_JOB = dict(input_scale=0.25, crop=(64, 128) if FAST else (128, 256),
                             max_train_images=8 if FAST else 200, max_val_images=4 if FAST else 50)
    VIEW = (256, 512)
ABLATION_STEPS = 4 if FAST else 400       # section 9: optimizer steps of each run (4 decoders x 2 seeds)
ABLATION_JOB = dict(input_scale=0.5) if CITYSCAPES_ROOT is None else dict(   # built-in: the whole half-size frame
    input_scale=0.25, crop=(64, 128) if FAST else (128, 256), max_train_images=8 if FAST else 200,
    max_val_images=4 if FAST else 50)
# lessons/records/record.py runs this notebook in full, solved, to record section 9's comparison and the
# lesson's time: it sets LESSON_RECORDS (the folder to save it in) and LESSON_RECORD_NOTE (the machine, in words).
RECORDS = os.environ.get("LESSON_RECORDS") or None
RECORD_NOTE = os.environ.get("LESSON_RECORD_NOTE") or None

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
# 4. write the original skip connection, "copy and crop", forward and backward, and the up step
#    of the original expanding path, and let drawn inputs check them;
# 5. train a U-Net on the built-in street scenes and look at what it predicts;
# 6. weight the loss against the imbalance of the classes, as the default training job does,
#    derive what ENet's weights do to rare classes, and measure them against the plain loss;
# 7. build a mini U-Net around your own `unet_up`, and measure what its expanding path is made
#    of: transposed convolutions against nearest-neighbour upsampling and against SegNet's max
#    unpooling with switches, and the U-Net without its skip connections.
#
# About 60 to 75 minutes with the two exercises and the derivations on paper (sections 5 and
# 8), plus the computer's time for the training runs of sections 6, 8 and 9, which you can read
# on while they run: on two quiet CPU cores about 3, 5 and 25 minutes (section 9 trains eight
# short runs), 33 minutes in all.
# The first cell reads `CITYSCAPES_ROOT` to train on real Cityscapes photographs instead (what
# they are, and how to get a subset: [DATASET.md](../DATASET.md)) and `LESSON_BACKEND=cupy` to
# train on a GPU (lesson 11).

# %%
# %matplotlib inline
import inspect
import time

import matplotlib.pyplot as plt
import numpy
from matplotlib.patches import FancyArrowPatch, Rectangle

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, exercises, experiment, models, nn, shapes, viz
from minitorch_seg.data import CLASS_NAMES, Cityscapes, Resize, balance, make_dataset, normalize_chw
from minitorch_seg.models.summary import trace
from minitorch_seg.models.unet import DoubleConv, Up, UNet
from minitorch_seg.train import TrainConfig, Trainer, evaluate

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
#   convolution** (the notes' "deconvolution", lesson 5), **concatenates** the map of the same
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
#   $H_{out} = (H - 1)\,s - 2p + k$ (lesson 5); with $k = s = 2$ and $p = 0$ that is $2H$. And since
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
# ($H_{out} = H - 2$ by the formula of lesson 4), so the expanding path's maps came out *smaller*
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
# ## 5. Exercises: the original skip connection, and the up step around it
#
# Now you write the code. Each exercise below is a stub with exactly the signature of its
# reference; replace the `raise NotImplementedError` lines, then run the cell after it. That cell
# calls `exercises.check`, which runs your function and the reference on many **drawn** inputs
# (batches, channels, image sizes, and here above all the *size differences* between the two
# maps, odd and even, chosen by [hypothesis](https://hypothesis.readthedocs.io)) and compares the
# outputs and the gradient of every input at float64 precision, then your gradients with finite
# differences. When something disagrees it prints the *smallest* input that still fails.
# (`exercises.describe("copy_and_crop")` prints what a check draws.)
#
# A test at one fixed size would not do here: a crop placed "by halves",
# $\lfloor H_s/2 \rfloor - \lfloor H/2 \rfloor$, is right for an 8 x 10 skip and a 4 x 4 map (and
# whenever $H$ is even), and one pixel off whenever $H_s$ is even and $H$ odd.
#
# First, what the crop keeps. Each skip pixel either reaches one output element or none; the
# finite differences of the forward ($\partial\, \mathrm{sum}(y) / \partial\, \text{skip}$, one
# pixel at a time) show which, for an even and an odd size difference:

# %%
reference_crop = exercises.get("copy_and_crop").reference     # the composed reference; its forward only


def copied_pixels(skip_hw, x_hw, eps=1e-6):
    """d sum(copy_and_crop(skip, x)) / d skip by central differences: 1 where a skip pixel is copied, else 0."""
    skip, x = numpy.random.default_rng(0).standard_normal((1, 1, *skip_hw)), mt.zeros(1, 1, *x_hw, dtype="float64")

    def total(values):
        return reference_crop(mt.tensor(values), x).sum().item()

    numeric = numpy.zeros(skip_hw)
    for index in numpy.ndindex(*skip_hw):
        step = numpy.zeros_like(skip)
        step[(0, 0) + index] = eps
        numeric[index] = (total(skip + step) - total(skip - step)) / (2 * eps)
    return numeric


fig, axes = plt.subplots(1, 2, figsize=(8, 3), layout="constrained")
for ax, (skip_hw, x_hw) in zip(axes, [((8, 10), (4, 4)), ((7, 6), (4, 3))]):
    ax.imshow(copied_pixels(skip_hw, x_hw), cmap="Greens", vmin=0, vmax=1)
    ax.set_title(f"skip {skip_hw[0]} x {skip_hw[1]} cropped to {x_hw[0]} x {x_hw[1]}", fontsize=10)
    ax.set_xticks(numpy.arange(-0.5, skip_hw[1]), minor=True)
    ax.set_yticks(numpy.arange(-0.5, skip_hw[0]), minor=True)
    ax.grid(which="minor", color="0.8")
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
fig.suptitle("the skip pixels that reach the output (green)", fontsize=10);

# %% [markdown]
# **Exercise 1: `copy_and_crop(skip, x)`, forward and backward.** The original skip connection as
# one `Function`: crop the centre of the skip map `skip` (N, $C_s$, $H_s$, $W_s$) to the size
# H x W of the upsampled map `x` (N, $C_x$, H, W), and concatenate, skip first:
#
# $$y = \big[\,\text{skip}[:, :, t:t+H,\ l:l+W];\ x\,\big] \quad (N, C_s + C_x, H, W), \qquad
# t = \lfloor (H_s - H)/2 \rfloor,\ l = \lfloor (W_s - W)/2 \rfloor.$$
#
# When the difference is odd, the extra row is cut at the bottom and the extra column at the right
# (the right panel above: 7 rows to 4 keeps rows 1 to 4). Equal sizes crop nothing.
#
# Derive the backward on paper first, from $\bar y$ (N, $C_s + C_x$, H, W): which element of which
# input is output element $(c, u, v)$ a copy of, for $c < C_s$ and for $c \ge C_s$? What gradient
# do the cropped-away pixels get, and what shape must $\overline{\text{skip}}$ have? Inside
# `forward` and `backward` you work on NumPy arrays; keep on `ctx` what the backward needs.

# %% {"tags": ["exercise"], "exercise": "copy_and_crop"}
class CopyAndCrop(Function):
    """y = cat([skip cropped at its centre to x's size, x]) along the channels: the original U-Net's skip."""

    @staticmethod
    def forward(ctx, skip, x):
        raise NotImplementedError("CopyAndCrop.forward: crop skip at its centre to x's size, then concatenate")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("CopyAndCrop.backward: the gradients of skip (its full shape) and of x")


def copy_and_crop(skip, x):
    return CopyAndCrop.apply(skip, x)

# %% {"tags": ["exercise-check"], "exercise": "copy_and_crop"}
try:
    exercises.check("copy_and_crop", copy_and_crop)
    print("copy_and_crop passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# **Exercise 2: `unet_up(x, skip, up_weight, up_bias, weight, bias, padding=0)`, one step of the
# original expanding path,** written from library ops (`F.conv_transpose2d`, `F.conv2d`,
# `F.relu`, slicing and `F.cat`), so autograd gives its backward:
#
# 1. the 2 x 2 stride-2 transposed convolution of `x` (N, $C_{in}$, h, w) with `up_weight`
#    ($C_{in}$, $C_{up}$, 2, 2) and `up_bias` ($C_{up}$,): (N, $C_{up}$, 2h, 2w);
# 2. copy and crop: the centre of `skip` (N, $C_s$, $H_s$, $W_s$) cropped to 2h x 2w, skip first
#    along the channels, as in exercise 1 (write the crop with slicing here, so this exercise does
#    not depend on the other);
# 3. a 3 x 3 convolution with `weight` ($C_{out}$, $C_s + C_{up}$, 3, 3), `bias` and `padding`
#    (0 is the paper's valid convolution, 1 the padded one of our `DoubleConv`), then a ReLU.
#
# With padding 0 the output is (N, $C_{out}$, 2h - 2, 2w - 2). (The paper applies a second
# 3 x 3 convolution and ReLU after it; `Up` adds BatchNorm.) The check draws skips larger than the
# up-map by 0 to 3 rows and columns, and both paddings.

# %% {"tags": ["exercise"], "exercise": "unet_up"}
def unet_up(x, skip, up_weight, up_bias, weight, bias, padding=0):
    raise NotImplementedError("unet_up: transposed conv (2x2, stride 2), copy and crop, 3x3 conv, ReLU")

# %% {"tags": ["exercise-check"], "exercise": "unet_up"}
try:
    exercises.check("unet_up", unet_up)
    print("unet_up passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# When a check fails it raises `exercises.ExerciseFailed`, whose message is the report; the
# smallest failing input is kept on the error, to run your function on it by hand:
#
# ```python
# try:
#     exercises.check("copy_and_crop", copy_and_crop)
# except exercises.ExerciseFailed as failure:
#     small = failure.example                      # .args and .kwargs of the call
#     print(small.call(copy_and_crop), small.call(exercises.get("copy_and_crop").reference))
# ```

# %% [markdown]
# ## 6. Training a U-Net on street scenes
#
# Now the real thing: the project's training job (`minitorch_seg.train.Trainer`, what
# `minitorch-seg train` runs) on the built-in data, generated street scenes in the Cityscapes
# format (or, with `CITYSCAPES_ROOT` set, the first images of a real Cityscapes folder, seen at
# a quarter of their side). SGD with momentum, a short linear warm-up and the poly learning-rate
# schedule, random scale, crop and flip, and the mIoU on the validation images after every epoch.

# %%
root = CITYSCAPES_ROOT or make_dataset(**DATA)
run_folder = os.path.join(SCRATCH.name, "run")
# An unweighted loss, the plainest job (at full resolution on the built-in data); `minitorch-seg train`
# itself trains at half resolution with class weights (input_scale=0.5, class_weights="enet"): section 8.
config = TrainConfig(model="unet", model_options={"width": WIDTH}, epochs=EPOCHS, batch_size=BATCH,
                     class_weights="none", backend=BACKEND, **JOB)
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
val = Cityscapes(root, split="val", transforms=None if VIEW is None else Resize(VIEW))   # at the model's scale
model = trainer.model.eval()
for index in (0, 1):
    image, label = val[index]
    with mt.no_grad():
        logits = model(mt.tensor(normalize_chw(image[None]), device=BACKEND))   # (1, 19, H, W)
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
    _, calls = trace(model, mt.tensor(normalize_chw(image[None]), device=BACKEND))
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
# ## 8. Rare classes: weighting the loss
#
# Lesson 3 showed how unevenly street scenes share their pixels among the classes (the tables of
# [DATASET.md](../DATASET.md) count them for the built-in data: road and building cover about half
# of all pixels, a rider about one in a thousand) and why mIoU, an average over the classes,
# punishes a model that ignores the rare ones. The loss of section 6 does nothing about it. It is
# the mean over the labelled pixels, so class $k$, holding a share $p_k$ of them, makes a share
# $p_k$ of the loss and of its gradient: the road pulls on the weights a few hundred times as
# hard as the riders do, and a short run learns the road.
#
# The weighted cross-entropy of lesson 2 (`F.cross_entropy(logits, target, weight=w)`, PyTorch's
# definition) gives each class a weight $w_k$ and averages with those weights:
#
# $$L = \frac{\sum_i w_{t_i}\,\ell_i}{\sum_i w_{t_i}}, \qquad
# \ell_i = -\log \operatorname{softmax}(z_i)_{t_i},$$
#
# the sums over the labelled pixels $i$ of a batch (void pixels, 255, count for nothing), $t_i$
# the class of pixel $i$ and $z_i$ its logits. The denominator depends on the labels only, so the
# gradient is lesson 2's, softmax minus one-hot, scaled per pixel:
#
# $$\frac{\partial L}{\partial z_i} = \frac{w_{t_i}}{\sum_j w_{t_j}}
# \big(\operatorname{softmax}(z_i) - \operatorname{onehot}(t_i)\big).$$
#
# Every pixel pushes its logits as before, times its class's weight. Over many batches class $k$
# then holds the share
#
# $$s_k = \frac{p_k w_k}{\sum_j p_j w_j}$$
#
# of the total push instead of $p_k$: choosing the weights is choosing these shares. Two choices:
#
# - **Inverse frequency**, $w_k = 1/p_k$, makes every share equal, $1/19$. But it gives a class
#   with 0.01% of the pixels 10,000 times the weight of one with 100%: in the few batches where
#   its handful of pixels appear (their badly drawn borders included), they decide the step, and
#   the loss jumps from batch to batch with whether they appear at all.
# - **ENet's weights** (Paszke et al., 2016), which `minitorch-seg train` uses by default
#   (`class_weights="enet"`, in `minitorch_seg/data/balance.py`):
#   $w_k = 1 / \ln(c + p_k)$ with $c = 1.02$.
#
# The paper gives that formula without a derivation; expanding it shows what it does. Write
# $\ln(c + p) = \ln c + \ln(1 + p/c)$, and for $p$ small against $c$, $\ln(1 + p/c) \approx p/c$:
#
# $$w(p) \approx \frac{1}{\ln c + p/c} = \frac{c}{c \ln c + p}, \qquad
# c \ln c = 1.02 \ln 1.02 \approx 0.020.$$
#
# Two regimes, with the knee where the two terms of the denominator are equal, at
# $p^* = c \ln c \approx 2\%$ of the pixels:
#
# - **above the knee**, $p \gg 2\%$: $w \approx c / p$, inverse frequency. The frequent classes
#   (road, building, vegetation, car, sky) end up with about equal shares: $p\,w(p)$ only goes
#   from about 0.7 at $p = 5\%$ to 1.42 at $p = 1$ (exactly $p / \ln(1.02 + p)$);
# - **below the knee**, $p \ll 2\%$: $w \approx 1 / \ln c \approx 50.5$, a **cap**. Each pixel
#   of a rare class weighs about 50, against a few for a road pixel (and 1 for both under the
#   plain loss): its class's share $s_k \approx 50\,p_k / \sum_j p_j w_j$ grows several-fold
#   against $p_k$ (the table below shows by how much on this data), but no further. The rarer
#   the class, the smaller its share still, and no handful of pixels can take over a batch.
#
# The weights lie between $1/\ln 2.02 \approx 1.42$ (a class with every pixel) and
# $1/\ln 1.02 \approx 50.5$: a factor of 36 at most, against 10,000 for inverse frequency in the
# example above. And $c$ places the knee: a larger $c$ moves it up and lowers the cap.
#
# The price: a model trained with these weights predicts the rare classes more readily, also
# where they are not, so the frequent classes lose some pixels to false positives and their IoU
# can drop while the rare classes' IoU rises. Which one wins on mIoU is a question for a
# measurement. First, the numbers for our training data, read from the very job that trains
# with them:

# %%
def balance_trainer(class_weights, seed):
    """The default job of `minitorch-seg train`, shortened to BALANCE_EPOCHS epochs, with this loss and seed."""
    config = TrainConfig(model="unet", model_options={"width": WIDTH}, epochs=BALANCE_EPOCHS, batch_size=BATCH,
                         class_weights=class_weights, seed=seed, backend=BACKEND, **BALANCE_JOB)
    return Trainer(config, root, os.path.join(SCRATCH.name, f"balance-{class_weights}-{seed}"), progress=False,
                   log=lambda line: None)


weighted_job = balance_trainer("enet", seed=0)
counts = balance.pixel_counts(weighted_job.train_loader.dataset, len(CLASS_NAMES))
shares = counts / counts.sum()
weights = weighted_job.class_weights.numpy()                 # what the job computed: 1 / ln(1.02 + share)
assert numpy.allclose(weights, balance.enet_weights(counts))
pull = shares * weights / (shares * weights).sum()           # s_k, each class's share of the push
print(f"{len(weighted_job.train_loader.dataset)} training images; the classes from the most pixels to the fewest:")
print(f"{'class':>14} {'pixels':>8} {'weight':>7} {'share of the push':>18} {'plain loss':>11}")
for k in numpy.argsort(-counts):
    weight = f"{weights[k]:7.2f}" if counts[k] else "      -"
    print(f"{CLASS_NAMES[k]:>14} {100 * shares[k]:7.2f}% {weight} {100 * pull[k]:17.2f}% {100 * shares[k]:10.2f}%")

# %% [markdown]
# The weights as a function of the share, with the knee and the cap, and this data's classes on
# the curve; on the right, each class's share of the push under the plain loss and under the
# weighted one:

# %%
share_axis = numpy.logspace(-5, 0, 200)
present = counts > 0
order = numpy.argsort(-counts)
fig, (left_ax, right_ax) = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
left_ax.loglog(share_axis, 1 / numpy.log(balance.ENET_C + share_axis), color="C0", lw=2,
               label="ENet: 1 / ln(1.02 + p)")
left_ax.loglog(share_axis, 1 / share_axis, color="0.5", ls="--", label="inverse frequency: 1 / p")
left_ax.axhline(1 / numpy.log(balance.ENET_C), color="C3", ls=":", label="the cap, 1 / ln 1.02")
left_ax.axvline(balance.ENET_C * numpy.log(balance.ENET_C), color="C2", ls=":", label="the knee, 1.02 ln 1.02")
left_ax.loglog(shares[present], weights[present], "o", color="C1", label="this data's classes")
for n, k in enumerate(order[present[order]][::3]):                     # every third class, to stay readable
    left_ax.annotate(CLASS_NAMES[k], (shares[k], weights[k]), textcoords="offset points", fontsize=8,
                     xytext=(4, 6) if n % 2 else (-4, -12), ha="left" if n % 2 else "right")
left_ax.set_ylim(0.5, 2e3)
left_ax.set_xlabel("p, the class's share of the labelled pixels")
left_ax.set_ylabel("weight w")
left_ax.legend(fontsize=8)
x = numpy.arange(len(order))
right_ax.bar(x - 0.2, 100 * shares[order], width=0.4, color="0.6", label="plain loss: p")
right_ax.bar(x + 0.2, 100 * pull[order], width=0.4, color="C0", label="ENet weights: p w / sum(p w)")
right_ax.set_xticks(x, [CLASS_NAMES[k] for k in order], rotation=60, ha="right", fontsize=8)
right_ax.set_yscale("log")
right_ax.set_ylabel("% of the push on the weights")
right_ax.legend(fontsize=8)
fig.suptitle("What ENet's class weights do");

# %% [markdown]
# Now the measurement. Four short runs of the default training job (half resolution, the ENet
# weights, SGD with momentum and the poly schedule), shortened to `BALANCE_EPOCHS` epochs, which
# differ only in the loss (plain or weighted) and in the seed (0 or 1), which draws the initial
# weights and the order and augmentation of the batches. Two seeds per loss are the least that
# shows how much a short run varies by chance: a difference between the losses that is no larger
# than the one between two seeds of the same loss is not evidence of anything. Each run is scored
# on the validation images after its last epoch (minutes of the computer's time: read on while
# it runs).

# %%
iou, miou = {}, {}
for seed in (0, 1):
    for loss in ("enet", "none"):
        job = weighted_job if (loss, seed) == ("enet", 0) else balance_trainer(loss, seed)
        start = time.perf_counter()
        job.run()
        scores = evaluate(job.model, job.val_loader, input_scale=job.config.input_scale)
        iou[loss, seed], miou[loss, seed] = numpy.array(scores["iou"]), scores["miou"]
        print(f"loss {'plain' if loss == 'none' else 'ENet-weighted':>13}, seed {seed}: val mIoU {scores['miou']:.3f}, "
              f"pixel accuracy {scores['pixel_accuracy']:.3f} ({time.perf_counter() - start:.0f} s)")

# %% [markdown]
# Per class, from the most frequent to the rarest: the IoU of each run, and a verdict that calls
# a difference only when the two weighted runs are both above (or both below) the two plain ones
# (`experiment.verdict`, the rule section 9 uses too). With two seeds that is a weak test, but it
# keeps us from reading chance as an effect.

# %%
def verdict(plain, weighted):
    """Which loss did better on one class, or why we cannot say: from two seeds of each."""
    if numpy.isnan(plain).all() and numpy.isnan(weighted).all():
        return "not in the val images"
    if max(plain.max(), weighted.max()) == 0:
        return "0 in all four runs"
    said = experiment.verdict(plain, weighted)                # how the weighted runs compare with the plain ones
    return {"better": "weighted better", "worse": "plain better"}.get(said, said)


print(f"{'':>14} {'IoU, plain loss':>17} {'IoU, ENet weights':>19}")
print(f"{'class':>14} {'seed 0':>8} {'seed 1':>8} {'seed 0':>9} {'seed 1':>9}   verdict")
verdicts = {}
for k in order:
    plain = numpy.array([iou["none", seed][k] for seed in (0, 1)])
    weighted = numpy.array([iou["enet", seed][k] for seed in (0, 1)])
    verdicts[k] = verdict(plain, weighted)
    print(f"{CLASS_NAMES[k]:>14} {plain[0]:8.3f} {plain[1]:8.3f} {weighted[0]:9.3f} {weighted[1]:9.3f}   {verdicts[k]}")
print(f"{'mIoU':>14} {miou['none', 0]:8.3f} {miou['none', 1]:8.3f} {miou['enet', 0]:9.3f} {miou['enet', 1]:9.3f}   "
      f"{verdict(numpy.array([miou['none', s] for s in (0, 1)]), numpy.array([miou['enet', s] for s in (0, 1)]))}")
tally = {kind: sum(v == kind for v in verdicts.values()) for kind in sorted(set(verdicts.values()))}
print("classes per verdict:", tally)

# %% [markdown]
# The same numbers as a picture: a bar per loss (the mean of its two seeds) and a dot per run.

# %%
fig, ax = plt.subplots(figsize=(13, 3.6))
for offset, loss, colour, name in ((-0.2, "none", "0.6", "plain loss"), (0.2, "enet", "C0", "ENet weights")):
    runs = numpy.array([iou[loss, seed][order] for seed in (0, 1)])              # (2 seeds, 19 classes)
    ax.bar(x + offset, numpy.nan_to_num(runs.mean(axis=0)), width=0.4, color=colour,
           label=f"{name}: mIoU {miou[loss, 0]:.3f} and {miou[loss, 1]:.3f}")
    ax.plot(numpy.repeat(x + offset, 2), runs.T.ravel(), "k.", ms=4)
ax.set_xticks(x, [CLASS_NAMES[k] for k in order], rotation=60, ha="right", fontsize=8)
ax.set_ylabel("val IoU after the last epoch")
ax.legend(fontsize=8)
ax.set_title(f"Per-class IoU after {BALANCE_EPOCHS} epoch{'s' * (BALANCE_EPOCHS > 1)}, "
             "classes from the most pixels to the fewest", fontsize=10);

# %% [markdown]
# How to read it, whatever your numbers are:
#
# - **Where the weights act.** The classes just below the knee (a few percent or less of the
#   pixels down to a few tenths of a percent) are the ones the weighted loss can bring from 0 to
#   something in a short run: compare their rows. The rarest classes may stay at 0 with either
#   loss after so few epochs: a fifty-fold lift of a tiny share is still a small share.
# - **What it costs.** Look at the frequent classes' rows: a weighted model gives some of their
#   pixels to rare classes, so their IoU may drop a little.
# - **What the verdicts allow.** Only rows marked "better" are differences larger than the seed
#   to seed spread of these runs, and with two seeds per loss even they could be luck; "within the
#   seeds' spread" means this experiment cannot tell the losses apart on that class. A serious
#   comparison runs more seeds and longer (the benchmark's default job trains 16 epochs,
#   `benchmarks/README.md`).
# - **mIoU against pixel accuracy.** The weighted loss serves the average over classes that mIoU
#   is; pixel accuracy, dominated by the frequent classes, can go the other way (the lines printed
#   by the training cell above show both).

# %% [markdown]
# ## 9. Build, then measure: your own U-Net and four decoders
#
# So far you have read the project's U-Net. Now assemble one around your own code, and test
# what the notes say its expanding path is made of: "a sequence of deconvolutions and
# concatenations with high-resolution features from the contracting path". Lesson 5 met three
# ways to grow a map back (the notes' **Nearest Neighbor** and **Max Unpooling** with its
# switches, and the **Transpose Convolution**); here each becomes the up step of a whole decoder
# of the same depth and widths, and a fourth decoder cuts the concatenations:
#
# - **transposed conv**, the U-Net's up step: your `unet_up` from exercise 2, a 2 x 2 stride-2
#   transposed convolution, the skip concatenated, a 3 x 3 convolution and ReLU. With
#   `padding=1` (and sides divisible by 8) the two maps have the same size, so the crop cuts
#   nothing: a padded U-Net needs no crop, as section 4 said.
# - **nearest + conv**: nearest-neighbour upsampling (copies, no weights), a 3 x 3 convolution
#   that halves the channels, then the same concatenation and 3 x 3 convolution. The upsampling
#   is fixed and the learning happens in the convolution after it.
# - **max unpooling**, SegNet's decoder (Badrinarayanan, Kendall and Cipolla, 2017): a 3 x 3
#   convolution halves the channels, `F.max_unpool2d` puts each value back at its **switch** (where
#   the encoder's max pool found the maximum of its window) in a map of zeros, then a 3 x 3
#   convolution and ReLU. Nothing is concatenated: one integer per pooled pixel, the switch, is all
#   the decoder gets from the contracting path, against a whole feature map for the U-Net.
# - **no skips**: the U-Net with its skip connections cut. The network is the same, the skip map
#   is replaced by zeros, so the parameter count is the same and only the information is gone.
#
# The contracting path is the same for all four: the library's `DoubleConv` at each level, and
# between levels a 2 x 2 max pool that also returns its switches
# (`F.max_pool2d(x, 2, return_indices=True)`). Every decoder step ends with a BatchNorm, applied
# to what the step returns. A first version of this section had none, and both decoders without
# skips then predicted one class everywhere after 200 steps, with either seed (most likely the
# signal through a stack of plain convolutions started too small for the classifier to read, and
# without a skip nothing else reaches it). That was a failure of training, not a measurement of
# the decoders; with a BatchNorm after each step (the library's `DoubleConv` has one after every
# convolution) a 40-step run of each of them learned. If `unet_up` is still the stub, the cell below
# says so and the transposed-conv decoders use the library's layers for that step in the
# meantime (`nn.ConvTranspose2d`, `F.cat`, `nn.Conv2d`: section 1's `Up` without its BatchNorm);
# write exercise 2 and run this section again to train yours.

# %%
# x (1, 2, 2, 2), skip (1, 1, 4, 4), up_weight (2, 1, 2, 2), up_bias (1,), weight (1, 2, 3, 3), bias (1,)
YOUR_UNET_UP = exercises.attempted(unet_up, mt.zeros(1, 2, 2, 2), mt.zeros(1, 1, 4, 4), mt.zeros(2, 1, 2, 2),
                                   mt.zeros(1), mt.zeros(1, 2, 3, 3), mt.zeros(1), padding=1)
print("the transposed-conv decoders call your unet_up" if YOUR_UNET_UP else
      "unet_up is not written yet (exercise 2): until it is, the transposed-conv decoders use the library's "
      "layers for that step")
DECODERS = ("transposed conv", "nearest + conv", "max unpooling", "no skips")


class DecoderStep(nn.Module):
    """One level of the expanding path, then a BatchNorm: (N, C_in, h, w) -> the skip's shape (N, C_out, 2h, 2w)."""

    def __init__(self, in_channels, out_channels, decoder):
        super().__init__()
        self.decoder = decoder
        if decoder in ("transposed conv", "no skips"):
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:                                       # a 3x3 conv halves the channels, before or after the upsampling
            self.up = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        merged = out_channels if decoder == "max unpooling" else 2 * out_channels   # no concatenation in SegNet
        self.conv = nn.Conv2d(merged, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x, skip, switches):
        return self.norm(self.step(x, skip, switches))                       # each step's output rescaled

    def step(self, x, skip, switches):
        if self.decoder == "max unpooling":
            up = F.max_unpool2d(self.up(x), switches, 2)                    # (N, C_out, 2h, 2w), zeros off the switches
            return F.relu(self.conv(up))
        if self.decoder == "nearest + conv":
            up = self.up(F.interpolate(x, scale_factor=2, mode="nearest"))  # (N, C_out, 2h, 2w)
            return F.relu(self.conv(F.cat([skip, up], dim=1)))
        if self.decoder == "no skips":
            skip = mt.zeros_like(skip)                                       # the same shapes, no information
        if YOUR_UNET_UP:
            return unet_up(x, skip, self.up.weight, self.up.bias, self.conv.weight, self.conv.bias, padding=1)
        return F.relu(self.conv(F.cat([skip, self.up(x)], dim=1)))          # the library's layers meanwhile


class MiniUNet(nn.Module):
    """DoubleConv levels of width * 2**level channels, max pools that keep their switches, one decoder kind."""

    def __init__(self, decoder, width=WIDTH, depth=4, num_classes=19):
        super().__init__()
        channels = [width * 2 ** level for level in range(depth)]
        self.down = nn.ModuleList([DoubleConv(3, channels[0])] +
                                  [DoubleConv(a, b) for a, b in zip(channels, channels[1:])])
        self.up = nn.ModuleList([DecoderStep(a, b, decoder) for a, b in zip(channels[::-1], channels[-2::-1])])
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x):
        skips, switches = [], []
        for level, block in enumerate(self.down):
            if level > 0:
                x, where = F.max_pool2d(x, 2, return_indices=True)        # (N, C, H/2, W/2) and its switches
                switches.append(where)
            x = block(x)
            skips.append(x)
        x = skips.pop()                                                    # the bottom: no skip, no switches
        for step in self.up:
            x = step(x, skips.pop(), switches.pop())
        return self.head(x)                                                # (N, 19, H, W)


for decoder in DECODERS:
    mini = MiniUNet(decoder)
    with mt.no_grad():
        shape = mini(mt.zeros(1, 3, 64, 128)).shape
    print(f"{decoder:>16}: {sum(p.numel() for p in mini.parameters()):,} weights; "
          f"a 3 x 64 x 128 image gives logits {shape}")

# %% [markdown]
# The parameter counts differ a little: the 3 x 3 convolution of "nearest + conv" has more weights
# than a 2 x 2 transposed convolution, and SegNet's merge reads half the channels. The contracting
# path, the same in all four, holds most of them.
#
# Now the measurement, with `experiment.compare`: each decoder is trained for `ABLATION_STEPS`
# steps with the default job's recipe (half resolution, ENet's class weights, SGD with momentum,
# warm-up then the poly schedule, random scale, crop and flip), once with seed 0 and once with
# seed 1, and scored on the validation images. A run is defined by its steps, so the same seed
# gives the same numbers; the seed draws the initial weights and the batches' order and
# augmentation. The table's verdict compares each decoder with the first, transposed conv, and
# says "better" or "worse" only when both seeds of one are above both seeds of the other, as in
# section 8. In the full lesson a run is 400 steps, and there are eight runs of about 3 minutes
# each on two CPU cores: read on while they train. The table prints the seconds each run took
# here (the record below, those of a quiet two-core machine).

# %%
builders = {decoder: (lambda decoder=decoder: MiniUNet(decoder)) for decoder in DECODERS}
comparison = experiment.compare(builders, root, steps=ABLATION_STEPS, seeds=(0, 1), batch_size=BATCH, lr=0.05,
                                backend=BACKEND, **ABLATION_JOB)
print(comparison.table())
if RECORDS:                                    # lessons/records/record.py is recording the full lesson
    comparison.save(os.path.join(RECORDS, "06_decoders.json"), note=RECORD_NOTE)

# %% [markdown]
# Beside your run, the one recorded with the lesson's full settings
# (`lessons/records/06_decoders.json`, written by `python lessons/records/record.py 06`): the
# same code and steps, so a full run of yours should land near it, and seed for seed on the same
# numbers when the machine's arithmetic is the same.

# %%
experiment.beside_record(comparison, "06_decoders");            # records/ beside this notebook, else in the checkout

# %% [markdown]
# **What the record says.** Recorded on 2026-12-02 on a quiet 2-core x86-64 VM
# (`lessons/records/06_decoders.json`, 400 steps per run, 154 to 225 seconds each), validation
# mIoU for seeds 0 and 1:
#
# | decoder | seed 0 | seed 1 | mean | against transposed conv |
# |---|---|---|---|---|
# | transposed conv (U-Net) | 0.272 | 0.281 | 0.276 | |
# | nearest + conv | 0.279 | 0.274 | 0.276 | within the seeds' spread |
# | max unpooling (SegNet) | 0.208 | 0.194 | 0.201 | worse |
# | no skips | 0.226 | 0.232 | 0.229 | worse |
#
# - **Transposed convolution or nearest neighbour plus a convolution: no difference this
#   experiment can see.** The two means agree to the third decimal and each decoder has one seed
#   above the other's. The notes' "deconvolutions" are one good way to grow the map, not the only
#   one: a fixed upsampling followed by a learned convolution did as well here, with 12% more
#   weights.
# - **The concatenated features matter.** Both decoders that get nothing but the bottom of the
#   network, or nothing but the switches, scored below both U-Net seeds with both of theirs. The
#   switches say *where* each maximum was, but not what the map looked like around it; the skip
#   brings the whole high-resolution map. The record's per-class IoU shows where it counts: the
#   thin poles scored 0.185 and 0.173 with the U-Net, 0.000 in both runs without skips and
#   0.000 and 0.042 with switches only; terrain 0.178 and 0.199 against at most 0.008 in those
#   four runs, and traffic signs 0.141 and 0.135 against at most 0.030. The large classes (road,
#   sky, car) kept an IoU above 0.5 in every one of the eight runs.
# - **Pixel accuracy barely sees it.** The runs without skips reached pixel accuracy 0.743 and
#   0.754, the U-Net 0.758 and 0.759: pixel accuracy is dominated by the large regions, which
#   come out right either way, while mIoU weighs a pole as much as the road.
#
# The limits: 400 steps is two thirds of the default job (about 600 steps), so a difference here
# can be a faster start rather than a better end; two seeds per decoder make a weak test; and
# this is one synthetic data set. Your own table above, with your steps, is a second opinion on
# every line.

# %% [markdown]
# ## What you have seen
#
# - A U-Net is a contracting path (two 3 x 3 convolutions, then a 2 x 2 max pool, per level) and
#   an expanding path (a 2 x 2 stride-2 transposed convolution, a concatenation with the skip of
#   the same level, two 3 x 3 convolutions), then a 1 x 1 classifier.
# - The shapes: each level halves the side and doubles the channels; the transposed convolution
#   doubles exactly, with no checkerboard; the input must be divisible by $2^{depth-1}$.
# - Concatenation followed by a convolution is a sum of two convolutions with separate weights;
#   its backward splits the gradient by channels. The original U-Net cropped its skips; you wrote
#   that crop's backward, and an up step, and checked them on odd and even size differences.
# - Trained for a few minutes on street scenes, it finds the large classes first.
# - A weighted cross-entropy scales each pixel's gradient by its class's weight, so class $k$
#   gets the share $p_k w_k / \sum_j p_j w_j$ of the push. ENet's $w = 1/\ln(1.02 + p)$ is
#   inverse frequency above a knee at $1.02 \ln 1.02 \approx 2\%$ of the pixels and a cap of about
#   50 below it. Your table says which classes it helped and hurt in a short run, and which
#   differences two seeds cannot tell from chance.
# - Built from your own up step, a mini U-Net can be measured against other decoders of the same
#   depth: transposed convolutions, nearest-neighbour upsampling followed by a convolution, max
#   unpooling with the encoder's switches (SegNet), and the U-Net without its skip connections.
#   `experiment.compare` trains each for the same steps with two seeds, and its verdict calls a
#   difference only when it is larger than the spread between the seeds.
#
# **Next:** lesson 7 keeps the resolution from falling in the first place: atrous convolutions
# and DeepLab's atrous spatial pyramid pooling.
