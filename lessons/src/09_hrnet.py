# Lesson 9 source: python lessons/build_notebooks.py turns this file into lessons/09_hrnet.ipynb.

# %%
# Lesson 9 · HRNet. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks the data, the network and the training.
import os
import tempfile

FAST = os.environ.get("LESSON_FAST") == "1"
# The data: the built-in subset (make_dataset()'s defaults: 300 train and 50 val images of 128x256),
# kept in the user's cache and shared with `minitorch-seg train`; in FAST mode a tiny set in a temporary folder.
SCRATCH = tempfile.TemporaryDirectory(prefix="lesson09-")    # for the training run (and FAST data); removed with the kernel
DATA = dict(out=os.path.join(SCRATCH.name, "data"), train=8, val=4, size=(64, 128)) if FAST else dict()
MODEL = dict(width=8, stem_width=16, depth=1) if FAST else dict()     # full: the CLI's default HRNet
CROP = (64, 128) if FAST else (128, 128)    # training crops (height, width)
BATCH = 4 if FAST else 8
EPOCHS = 2 if FAST else 4

# %% [markdown]
# # Lesson 9 · HRNet: high resolution all the way through
#
# U-Net (lesson 6) goes down to a coarse map and comes back up; DeepLab (lesson 7) stops going
# down at 1/8 or 1/16 and dilates. **HRNet** (Wang et al., "Deep High-Resolution Representation
# Learning for Visual Recognition", TPAMI 2020) never gives up the high resolution at all. The
# notes list three fundamental differences of HRNet from low-resolution classification networks
# and high-resolution representation learning networks:
#
# > 1. High- and low-resolution convolutional layers are connected **in parallel** rather than in
# >    series.
# > 2. High resolution is **maintained throughout** the entire network instead of recovering high
# >    resolution from low resolution.
# > 3. Multi-resolution representations are **fused repeatedly**, rendering rich high-resolution
# >    representations with strong position sensitivity.
#
# and add: *downsampling uses strided convolution.* In this lesson you will find each of the three
# in the project's `models/hrnet.py`, see the parallel branches' feature maps, read the fusion as a
# table, derive the backward of one fusion, train a small HRNet on street scenes, and set its
# result beside the paper's on **Cityscapes**, honestly. About 30 minutes (the full training run
# takes a few minutes more of the computer's time).

# %%
# %matplotlib inline
import inspect
import time

import matplotlib.pyplot as plt
import numpy
from matplotlib.patches import FancyArrowPatch

import minitorch_seg as mt
from minitorch_seg import Function, GradcheckError, gradcheck, viz
from minitorch_seg.data import Cityscapes, make_dataset, normalize_chw
from minitorch_seg.models.hrnet import HighResolutionModule, HRNet, transition
from minitorch_seg.models.summary import layer_table, trace
from minitorch_seg.nn import Conv2d, Identity
from minitorch_seg.train import TrainConfig, Trainer

mt.manual_seed(0)

# %% [markdown]
# ## 1. In parallel, not in series
#
# A classification network is a series: each stage takes the previous one's map, halves it, and
# the high-resolution map is gone. HRNet's stages instead run **branches side by side**: stage
# $s$ has $s$ branches, branch $b$ at $1/2^{b+2}$ of the input with $2^b$ times the width of
# branch 0. Between stages a **transition** keeps every branch and *adds* one, made from the
# lowest-resolution branch by a stride-2 3 x 3 convolution: the notes' "downsampling uses strided
# convolution" (HRNet has no pooling layer at all).

# %%
print(inspect.getsource(transition))
print(inspect.getsource(HighResolutionModule.__init__))

# %% [markdown]
# ## 2. High resolution throughout
#
# The stem's two stride-2 convolutions take the image to 1/4; from there, branch 0 stays at 1/4
# until the head. The forward pass, and the shapes of the branches after each stage (from one
# traced forward pass of the model we will train):

# %%
print(inspect.getsource(HRNet.forward))
model = HRNet(num_classes=19, **MODEL)
image_size = DATA.get("size", (128, 256))
with mt.no_grad():
    _, calls = trace(model.eval(), mt.zeros(1, 3, *image_size))
outputs = {call.name: call.output for call in calls}


def stage_output(outputs, stage):
    """The branches that stage ``stage`` (2, 3, ...) hands on: the output of its last module."""
    return outputs[f"stage{stage}.{len(getattr(model, f'stage{stage}')) - 1}"]


print(f"input {(1, 3, *image_size)}")
print(f"stage 1 (layer1):  {outputs['layer1'].shape}")
for stage in range(2, model.num_stages + 1):
    branches = stage_output(outputs, stage)
    print(f"stage {stage}:           " + "  ".join(str(b.shape) for b in branches))

# %% [markdown]
# The whole network as a picture: one lane per branch, from the stage where it is born to the
# head; a transition (red) grows each new branch from the lowest one; at the end of every module
# (grey) all branches exchange information; the head upsamples every branch to 1/4 and
# concatenates them.

# %%
modules_per_stage = [len(getattr(model, f"stage{s}")) for s in range(2, model.num_stages + 1)]
branch_shapes = [b.shape for b in stage_output(outputs, model.num_stages)]
fig, ax = plt.subplots(figsize=(12, 4.2))
x, born = 1.0, {0: 0.0}
ax.text(0.5, 0.45, "stem,\nstage 1", fontsize=8, ha="center")
fusions = []
for stage, count in enumerate(modules_per_stage, start=2):
    born[stage - 1] = x                                                   # the transition adds branch stage - 1
    ax.add_patch(FancyArrowPatch((x - 0.35, -(stage - 2)), (x, -(stage - 1)), arrowstyle="-|>",
                                 mutation_scale=12, color="C3", lw=2))
    start = x
    for _ in range(count):
        x += 1.2
        fusions.append((x, stage))
    ax.text((start + x) / 2, 0.45, f"stage {stage}\n({count} module{'s' if count > 1 else ''})", fontsize=8,
            ha="center")
    x += 0.6
end = x
for b, start in born.items():
    _, c, h, w = branch_shapes[b]
    ax.plot([start, end], [-b, -b], color=f"C{b}", lw=6, solid_capstyle="butt", alpha=0.8)
    ax.text(end + 0.1, -b, f"branch {b}: 1/{2 ** (b + 2)}, {c} channels, {h} x {w}", va="center", fontsize=8)
for fx, stage in fusions:
    for j in range(stage):
        for i in range(stage):
            if i != j:
                ax.add_patch(FancyArrowPatch((fx - 0.3, -j), (fx, -i), arrowstyle="-|>", mutation_scale=8,
                                             color="0.45", lw=0.8))
ax.text(end - 0.3, -model.num_stages + 0.35, "head: upsample all to 1/4,\nconcatenate, 1 x 1 convs", fontsize=8,
        ha="right")
ax.set_xlim(-0.3, end + 3.4)
ax.set_ylim(-model.num_stages + 0.2, 0.8)
ax.axis("off")
ax.set_title("HRNet: parallel branches, repeated fusion", fontsize=10);

# %% [markdown]
# ## 3. Repeated fusion
#
# Each `HighResolutionModule` runs its branches (a few residual blocks each), then **fuses**: the
# new branch $i$ is the ReLU of the sum over all branches $j$ of branch $j$ brought to branch
# $i$'s resolution and width,
#
# $$y_i = \operatorname{relu}\Big(\sum_j f_{ij}(x_j)\Big),$$
#
# where $f_{ij}$ is the identity when $j = i$; for a lower-resolution $j > i$, a 1 x 1
# convolution (to branch $i$'s width; cheaper at the low resolution) then upsampling by
# $2^{j-i}$; for a higher-resolution $j < i$, $i - j$ stride-2 3 x 3 convolutions. The code keeps
# the $f_{ij}$ in a table, `fuse_layers[i][j]`:

# %%
print(inspect.getsource(HighResolutionModule._fuse))
print(inspect.getsource(HighResolutionModule.forward))

# %% [markdown]
# The table of the last module, read from the model itself (row $i$: the branch that receives;
# column $j$: the branch it comes from):

# %%
last = getattr(model, f"stage{model.num_stages}")[-1]
n = last.num_branches
fig, ax = plt.subplots(figsize=(11, 5))
kinds = numpy.zeros((n, n))
for i in range(n):
    for j in range(n):
        layer = last.fuse_layers[i][j]
        convs = [m for m in layer.modules() if isinstance(m, Conv2d)]
        if isinstance(layer, Identity):
            text, kinds[i, j] = "identity", 1
        elif j > i:
            text, kinds[i, j] = (f"1x1 conv {convs[0].in_channels}→{convs[0].out_channels}\n+ BN,\n"
                                 f"upsample x{2 ** (j - i)}"), 0
        else:
            steps = "→".join([str(convs[0].in_channels)] + [str(c.out_channels) for c in convs])
            text, kinds[i, j] = f"{len(convs)} x (3x3 conv,\nstride 2)\n{steps}", 2
        ax.text(j, i, text, ha="center", va="center", fontsize=8)
ax.imshow(kinds, cmap="Pastel2", vmin=0, vmax=7)
ax.set_xticks(range(n), [f"from branch {j}\n(1/{2 ** (j + 2)})" for j in range(n)], fontsize=8)
ax.set_yticks(range(n), [f"to branch {i}\n(1/{2 ** (i + 2)})" for i in range(n)], fontsize=8)
ax.set_title("fuse_layers[i][j]: how branch j reaches branch i", fontsize=10);

# %% [markdown]
# Because every module ends with this exchange, the high-resolution branch keeps receiving what
# the low-resolution branches have worked out (context, semantics), and the low ones keep receiving
# the high one's precise positions: the notes' "rich high-resolution representations with strong
# position sensitivity". The head then reads all four.
#
# ## 4. Exercise: derive it yourself, then check it with gradcheck
#
# One term of a fusion, as a `Function`: branch $j = i + 1$ arrives at half the resolution and is
# upsampled by 2 (by nearest neighbour here; the model uses bilinear) and added to branch $i$:
#
# $$y[n, c, 2u + a, 2v + b] = \text{high}[n, c, 2u + a, 2v + b] + \text{low}[n, c, u, v], \qquad a, b \in \{0, 1\}.$$
#
# 1. Derive $\overline{\text{high}}$ and $\overline{\text{low}}$ from $\bar y$.
# 2. Run the template, whose backward is a first attempt, then the gradcheck cell. Read the
#    ratio of the analytic to the numeric value it reports.
# 3. Fix `backward` until gradcheck passes.

# %% {"tags": ["planted-wrong"], "gradcheck": "gradcheck(MyFuseUp.apply, (mt.randn(1, 2, 4, 6, dtype='float64', requires_grad=True), mt.randn(1, 2, 2, 3, dtype='float64', requires_grad=True)))"}
class MyFuseUp(Function):
    """y = high + nearest_upsample_x2(low): a lower-resolution branch fused into a higher one."""

    @staticmethod
    def forward(ctx, high, low):
        return high + low.repeat(2, axis=2).repeat(2, axis=3)                  # (N, C, 2H, 2W)

    @staticmethod
    def backward(ctx, g):
        n, c, h2, w2 = g.shape
        blocks = g.reshape(n, c, h2 // 2, 2, w2 // 2, 2)                       # (N, C, H, 2, W, 2): the 2x2 blocks
        # TODO: derive dL/dlow and fix this line: a first attempt, and wrong.
        return g, blocks.mean(axis=(3, 5))

# %% {"tags": ["exercise-check"]}
try:
    gradcheck(MyFuseUp.apply, (mt.randn(1, 2, 4, 6, dtype='float64', requires_grad=True),
                               mt.randn(1, 2, 2, 3, dtype='float64', requires_grad=True)))
    print("gradcheck passed: your backward agrees with the finite differences.")
except GradcheckError as error:
    print("gradcheck caught a wrong backward:\n", error)

# %% [markdown]
# **Solution.** The next two cells, the derivation and the corrected code, are collapsed: click
# the dots (or the bar to the left of a cell) to open them, once you have tried.

# %% [markdown] {"tags": ["solution"]}
# The sum passes $\bar y$ unchanged to each term, so $\overline{\text{high}} = \bar y$. Each
# $\text{low}[u, v]$ is copied to the four pixels of its 2 x 2 block, a fan-out, so its gradient
# is the **sum** of theirs:
#
# $$\overline{\text{low}}[n, c, u, v] = \sum_{a, b \in \{0, 1\}} \bar y[n, c, 2u + a,\ 2v + b],$$
#
# a 2 x 2 *sum* pooling (lesson 4 met it as the adjoint of nearest upsampling). The first attempt
# averaged the block: "the inverse of upsampling is downsampling" sounds right, but the backward
# of a copy is a sum, not an inverse, and the average is 4 times too small: gradcheck's analytic
# value is a quarter of the numeric one. (In HRNet the upsampling is bilinear, whose backward is
# a weighted sum with the same total weight, 4, per input pixel away from the border.)

# %% {"tags": ["solution"]}
class MyFuseUp(Function):
    """y = high + nearest_upsample_x2(low).  Backward: dL/dhigh = g; dL/dlow = 2 x 2 sum pooling of g."""

    @staticmethod
    def forward(ctx, high, low):
        return high + low.repeat(2, axis=2).repeat(2, axis=3)

    @staticmethod
    def backward(ctx, g):
        n, c, h2, w2 = g.shape
        blocks = g.reshape(n, c, h2 // 2, 2, w2 // 2, 2)
        return g, blocks.sum(axis=(3, 5))

# %%
gradcheck(MyFuseUp.apply, (mt.randn(1, 2, 4, 6, dtype='float64', requires_grad=True),
                           mt.randn(1, 2, 2, 3, dtype='float64', requires_grad=True)))

# %% [markdown]
# ## 5. Training an HRNet on street scenes
#
# The same training job as lesson 6, with `model="hrnet"`: SGD with momentum and the poly
# learning-rate schedule (HRNet's own recipe, after a short warm-up), random scale, crop and flip,
# and the validation mIoU after every epoch.

# %%
root = make_dataset(**DATA)
config = TrainConfig(model="hrnet", model_options=MODEL, epochs=EPOCHS, batch_size=BATCH, crop=CROP,
                     input_scale=1.0, class_weights="none")   # as in lesson 6: full resolution, plain loss
trainer = Trainer(config, root, os.path.join(SCRATCH.name, "run"), progress=False)
weights = sum(p.numel() for p in trainer.model.parameters())
print(f"{len(trainer.train_loader.dataset)} training images in batches of {BATCH}, "
      f"{len(trainer.val_loader.dataset)} validation images; {weights:,} weights")
start = time.perf_counter()
result = trainer.run()
minutes = (time.perf_counter() - start) / 60
our_miou = result["best_miou"]
print(f"{EPOCHS} epochs in {minutes:.1f} minutes; best validation mIoU {our_miou:.3f}")

# %%
history = trainer.history
fig, (left_ax, right_ax) = plt.subplots(1, 2, figsize=(10, 3))
left_ax.plot([row["epoch"] for row in history], [row["train_loss"] for row in history], "o-")
left_ax.set_xlabel("epoch")
left_ax.set_ylabel("mean training loss")
right_ax.plot([row["epoch"] for row in history], [100 * row["val_miou"] for row in history], "s-", color="C2")
right_ax.set_xlabel("epoch")
right_ax.set_ylabel("validation mIoU (%)")
fig.suptitle("HRNet training");

# %% [markdown]
# ## 6. The parallel branches, seen
#
# A forward pass of the trained network on a validation scene, and three channels of each branch
# as the last module leaves them (the three with the largest variance over the image), each drawn
# at its own resolution: the same scene at 1/4, 1/8, 1/16 and 1/32, computed side by side and
# fused four times over.

# %%
val = Cityscapes(root, split="val")
image, label = val[0]
model = trainer.model.eval()
with mt.no_grad():
    logits, calls = trace(model, mt.tensor(normalize_chw(image[None])))
branches = stage_output({call.name: call.output for call in calls}, model.num_stages)
fig, axes = plt.subplots(len(branches), 4, figsize=(13, 1.7 * len(branches)), layout="constrained")
for b, (row, branch) in enumerate(zip(axes, branches)):
    channels = branch.numpy()[0]                                              # (C, h, w)
    strongest = numpy.argsort(channels.reshape(len(channels), -1).var(axis=1))[::-1][:3]
    if b == 0:
        row[0].imshow(image)
        row[0].set_title("input", fontsize=9)
    for ax, c in zip(row[1:], strongest):
        ax.imshow(channels[c], cmap="magma", interpolation="nearest")
        ax.set_title(f"branch {b}, channel {c}: {channels.shape[1]} x {channels.shape[2]}", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")

# %% [markdown]
# And its predictions (lesson 3's caveat applies: the big classes come first):

# %%
viz.show_segmentation(image, label, logits[0])

# %% [markdown]
# ## 7. On Cityscapes: the paper's numbers, and ours
#
# The notes end the HRNet section with its results on **Cityscapes**. The paper's table of
# Cityscapes validation results (single scale, no flipping; Wang et al., TPAMI 2020) compares
# HRNetV2 with the dilated networks of lesson 7; GFLOPs are counted for one 1024 x 2048 image:
#
# | Model | Backbone | mIoU (val) | GFLOPs |
# |-------|----------|-----------:|-------:|
# | DeepLabv3 | Dilated-ResNet-101 | 78.5 | 1779 |
# | PSPNet | Dilated-ResNet-101 | 79.7 | 2018 |
# | HRNetV2 | HRNetV2-W48 | **81.1** | **696** |
#
# More accurate at well under half the computation: the dilated networks pay for their
# resolution by running the widest stages at 1/8 (lesson 7), HRNet by keeping only its narrowest
# branch at high resolution. The same numbers as a picture:

# %%
paper = {"DeepLabv3": (1779, 78.5), "PSPNet": (2018, 79.7), "HRNetV2-W48": (696, 81.1)}
fig, ax = plt.subplots(figsize=(5.5, 3.4))
for colour, (name, (gflops, miou)) in zip(["C0", "C1", "C2"], paper.items()):
    ax.plot(gflops, miou, "o", color=colour, ms=10)
    ax.annotate(name, (gflops, miou), textcoords="offset points", xytext=(8, -4), fontsize=9)
ax.set_xlim(400, 2400)
ax.set_ylim(77.5, 82)
ax.set_xlabel("GFLOPs per 1024 x 2048 image")
ax.set_ylabel("Cityscapes val mIoU (%)")
ax.set_title("The paper's Cityscapes val results");

# %% [markdown]
# And what our HRNet did here, counted the same way (our FLOPs are counted by `models.summary` at
# the validation images' size and scaled to 1024 x 2048 by the number of pixels: every counted
# layer's FLOPs are proportional to its pixels):

# %%
flops = sum(row.flops for row in layer_table(model, (1, 3, *image.shape[:2])))
scale = 1024 * 2048 / (image.shape[0] * image.shape[1])
print(f"{'':28s}{'mIoU (val)':>12}{'GFLOPs (1024 x 2048)':>24}{'weights':>14}")
print(f"{'HRNetV2-W48, the paper':28s}{81.1:>11.1f}%{696:>24}{'':>14}")
print(f"{'our HRNet, this notebook':28s}{100 * our_miou:>11.1f}%{flops * scale / 1e9:>24.0f}{weights:>14,}")

# %% [markdown]
# The two rows are **not comparable**, and the gap says nothing about our implementation:
#
# - **The data.** Ours are generated street scenes in the Cityscapes format: the same 19 classes,
#   but drawn by a program from polygons, with a far easier and different distribution (flat
#   colours and textures, no real lighting, no real clutter), and a few hundred images at
#   128 x 256 instead of 2,975 photographs at 1024 x 2048 with 500 for validation.
# - **The network.** Ours is a small fraction of HRNetV2-W48's width and depth, and starts from
#   random weights; the paper's backbone is pretrained on ImageNet first.
# - **The training.** Minutes of CPU time and a few epochs, against the paper's hundreds of
#   epochs over the full-size images on several GPUs.
#
# What does carry over is the *design*: parallel branches, high resolution throughout, repeated
# fusion. To see where our number stands, compare it with the other models of this course trained
# on the same data for the same time (`minitorch-seg train --model unet|hrnet|deeplab|swin`), not
# with the paper.
#
# ## What you have seen
#
# - HRNet's branches run in parallel, at 1/4, 1/8, 1/16 and 1/32, each born from the lowest
#   one by strided 3 x 3 convolutions; branch 0 stays at 1/4 from the stem to the head.
# - Every module ends in a fusion, $y_i = \operatorname{relu}(\sum_j f_{ij}(x_j))$, with the table
#   `fuse_layers[i][j]`: identity, 1 x 1 conv then upsampling, or strided 3 x 3 convs.
# - The backward of an upsample-and-add fusion: the gradient passes to the high branch unchanged,
#   and reaches the low branch summed over each 2 x 2 block.
# - On Cityscapes the paper reports 81.1 mIoU at 696 GFLOPs against 78.5 at 1779 (DeepLabv3) and
#   79.7 at 2018 (PSPNet); our small run on synthetic data is a different experiment.
#
# **Next:** lesson 10 runs the same code on a GPU, and shows what must (and must not) cross
# between the host and the device.
