# Lesson 8 source: python lessons/build_notebooks.py turns this file into lessons/08_transformers.ipynb.

# %%
# Lesson 8 · Transformers: tokens and windows. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks the measurement of section 1.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
SCENES = 2 if FAST else 6            # generated scenes the token-size measurement of section 1 averages over

# %% [markdown]
# # Lesson 8 · Transformers for segmentation: tokens and windows
#
# A **Transformer** treats an image as a set of tokens, vectors that each stand for a patch of
# pixels, and lets every token look at every other through **attention**: each token's query is
# compared with all the keys, and the token takes the softmax-weighted average of all the values.
# That global view is what convolutions lack. The notes name the catch:
#
# > Tokenization becomes a problem as large tokens lead to imprecise segmentation while small
# > tokens are too expensive. A solution is **shifted window attention (Swin)**.
#
# This lesson is the first half of the answer, the windows themselves. You will
#
# 1. measure the token-size dilemma: what large tokens cost in accuracy, what small ones cost in
#    FLOPs and memory, and what windows save;
# 2. write the window partition and its reverse, from the project's `functional/windows.py`;
# 3. draw the cyclic shift that moves the windows from one block to the next, and the attention
#    mask it needs.
#
# Two exercises, each checked by hypothesis on many drawn inputs. About 45 minutes. Lesson 9
# builds Swin on these windows: the relative position bias, what the shift buys, Swin as a CNN
# backbone, and the fused window attention with its backward.

# %%
# %matplotlib inline
import ast
import inspect

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import exercises, metrics, models
from minitorch_seg.data import generate_scene, label_ids_to_train_ids, train_ids_to_colors
from minitorch_seg.functional.windows import window_mask
from minitorch_seg.models.summary import layer_table

mt.manual_seed(0)

# %% [markdown]
# ## 1. Large tokens: imprecise segmentation
#
# A Vision Transformer cuts the image into $p \times p$ patches and embeds each one as a token.
# Whatever the network then does, it says one thing per token, so its segmentation is drawn on a
# grid of $p \times p$ blocks (unless a decoder recovers the detail, from somewhere). Below, about
# the best such a segmentation can be: each block labelled with the true class at its centre. The
# mIoU beside each is measured against the truth over a few generated scenes, as in lesson 3.

# %%
def token_grid_labels(train_ids, p):
    """The truth seen one token per p x p patch: each patch takes the label of its centre pixel."""
    centres = train_ids[p // 2::p, p // 2::p]
    return numpy.repeat(numpy.repeat(centres, p, axis=0), p, axis=1)[:train_ids.shape[0], :train_ids.shape[1]]


scenes = [label_ids_to_train_ids(generate_scene("val", i, size=(128, 256)).label_ids) for i in range(SCENES)]
patches = [32, 16, 8, 4]
fig, axes = plt.subplots(1, 5, figsize=(18, 2.3))
axes[0].imshow(train_ids_to_colors(scenes[0]))
axes[0].set_title("truth (128 x 256 pixels)", fontsize=10)
for ax, p in zip(axes[1:], patches):
    matrix = metrics.ConfusionMatrix(num_classes=19)
    for truth in scenes:
        coarse = token_grid_labels(truth, p)
        matrix.update(numpy.where(coarse == 255, 0, coarse), truth)
    ax.imshow(train_ids_to_colors(token_grid_labels(scenes[0], p)))
    tokens = (128 // p) * (256 // p)
    ax.set_title(f"p = {p}: {tokens} tokens, mIoU {matrix.compute()['miou']:.0%}", fontsize=10)
for ax in axes:
    ax.axis("off")

# %% [markdown]
# ## 2. Small tokens: too expensive
#
# Self-attention over $L$ tokens of $C$ channels computes, per layer, the $L \times L$ scores
# $QK^\top$ and then $PV$: $2L^2C$ multiply-adds, **$4L^2C$ FLOPs**, and it must store the
# $L \times L$ attention weights of every head for the backward. Halving the patch side
# quadruples $L$ and multiplies both by 16.
#
# Swin keeps the tokens small and lets each attend only within its own $M \times M$ window of
# $N = M^2$ tokens: $L / N$ windows of $4N^2C$ FLOPs each, **$4LNC$ FLOPs** in all, linear in $L$. For a
# full Cityscapes image, 1024 x 2048, with Swin-T's $C = 96$ channels and $M = 7$, per layer:

# %%
C, M = 96, 7
print(f"{'patch':>5}  {'tokens L':>9}  {'global: GFLOPs':>15}  {'weights, 1 head':>16}  "
      f"{'windowed: GFLOPs':>17}  {'weights, 1 head':>16}")
for p in (32, 16, 8, 4):
    L = (1024 // p) * (2048 // p)
    print(f"{p:>5}  {L:>9,}  {4 * L * L * C / 1e9:>15,.1f}  {4 * L * L / 2**30:>13,.2f} GB  "
          f"{4 * L * M * M * C / 1e9:>17,.2f}  {4 * L * M * M / 2**20:>13,.1f} MB")

# %% [markdown]
# At 4 x 4 patches, global attention would need about 6,600 GFLOPs and 64 GB of attention weights
# per head, per layer; windows of 7 x 7 bring that to 2.5 GFLOPs and 25 MB. The same two curves,
# against the number of tokens:

# %%
tokens = numpy.logspace(2, 5.5, 50)
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.loglog(tokens, 4 * tokens ** 2 * C, label="global attention: $4L^2C$")
ax.loglog(tokens, 4 * tokens * M * M * C, label=f"windows of {M} x {M}: $4LNC$")
for p in (16, 8, 4):
    L = (1024 // p) * (2048 // p)
    ax.axvline(L, color="gray", ls=":")
    ax.text(L, 1e9, f" p = {p}", fontsize=8, color="gray")
ax.set_xlabel("tokens L")
ax.set_ylabel("FLOPs per layer")
ax.legend()
ax.set_title("Attention cost on a 1024 x 2048 image");

# %% [markdown]
# `models.summary` counts exactly these FLOPs for every attention layer of the project's Swin
# backbone (`WindowAttention` rows). At a 128 x 256 input each stage's map, its windows and the
# formula $4LNC$ agree with the summary; in the last stage the map is smaller than the window, so
# its one window is the whole map: global attention, where it is cheap.

# %%
backbone = models.build("swin").backbone
for row in layer_table(backbone, (1, 3, 128, 256)):
    if row.type == "WindowAttention" and row.name.endswith("blocks.0.attn"):
        windows, n, c = ast.literal_eval(row.output_shape)
        L = windows * n
        print(f"{row.name:22s} L = {L:5d} tokens in {windows:2d} windows of N = {n:2d}, C = {c:3d}:  "
              f"4 L N C = {4 * L * n * c / 1e6:5.1f} MFLOPs, summary {row.flops / 1e6:5.1f} MFLOPs")

# %% [markdown]
# ## 3. Window partition
#
# The tokens of a map (B, H, W, C) are cut into non-overlapping $W_h \times W_w$ windows
# ($M \times M$ in Swin, but nothing below needs them square) and stacked into a batch of
# windows (B $\cdot$ nW, $W_h W_w$, C), so that one batched attention computes all of them at
# once. `F.window_partition(x, window_size)` does it, and `F.window_reverse(windows, window_size,
# H, W)` undoes it.

# %% [markdown]
# An 8 x 8 map of tokens numbered in raster order, cut into four 4 x 4 windows; each row of the
# partition is one window's 16 tokens:

# %%
ids = mt.arange(64.0).reshape(1, 8, 8, 1)                           # (B, H, W, C)
windows = F.window_partition(ids, 4)                                # (B*nW, N, C) = (4, 16, 1)
window_of = numpy.arange(4).reshape(2, 2).repeat(4, axis=0).repeat(4, axis=1)      # window index of each token
colours = plt.get_cmap("Pastel1")
fig, (left_ax, right_ax) = plt.subplots(1, 2, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1, 2.4]})
left_ax.imshow(window_of, cmap=colours, vmin=0, vmax=8)
for (i, j), v in numpy.ndenumerate(ids.numpy()[0, :, :, 0]):
    left_ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8)
left_ax.set_title("the map: window of each token")
right_ax.imshow(numpy.arange(4)[:, None].repeat(16, axis=1), cmap=colours, vmin=0, vmax=8, aspect="auto")
for (i, j), v in numpy.ndenumerate(windows.numpy()[:, :, 0]):
    right_ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8)
right_ax.set_title("window_partition: one row per window, its tokens in raster order")
right_ax.set_xlabel("token of the window")
right_ax.set_ylabel("window")
for ax in (left_ax, right_ax):
    ax.set_xticks([])
    ax.set_yticks([])


# %% [markdown]
# Three orders are fixed, and the rest of Swin relies on them (the mask of section 4 is built
# for window $w$ in this order):
#
# - **batch-major**: the windows of image 0 first, then those of image 1; window $w$ of image
#   $b$ is row $b \cdot nW + w$;
# - the windows of an image in **raster order**: left to right along the top row of windows,
#   then the next row down;
# - the tokens of a window in raster order too: row $i$, column $j$ of the window is token
#   $i W_w + j$.
#
# ### Exercises 1 and 2: partition and reverse
#
# Now you write the code. Each exercise below is a stub with exactly the signature of the
# library's function of the same name; replace the `raise NotImplementedError` with your code,
# then run the cell after it. That cell calls `exercises.check`, which runs your function and the
# library's on many drawn inputs (batches of 1 and 2, 1 to 3 windows per side, square and
# non-square windows and maps) and compares the outputs and the gradients; when something
# disagrees, hypothesis shrinks the input to the smallest one that still fails and the check
# prints it. A square window on a square map hides a swapped H and W, and a single window hides
# any order of the windows: the check draws what exposes both.
#
# **Exercise 1: `window_partition(x, window_size)`.** `window_size` is an int (a square window)
# or a pair $(W_h, W_w)$; H and W are multiples of it. Write it with tensor operations only,
# `x.reshape(...)` and `x.permute(...)`: two reshapes and one permute, no loop and no `Function`.
# Each movement has its backward in the library, so autograd derives the partition's: the
# gradient of each window token goes back to the map position it came from.
#
# A hint: a reshape splits an axis in row-major order, so $H$ becomes (which window row, which
# row inside the window) $= (H/W_h, W_h)$, the first index the slower one. Write down the six
# axes after the first reshape, then the order they must be in before the last reshape can
# merge them into (windows, tokens, C).

# %% {"tags": ["exercise"], "exercise": "window_partition"}
def window_partition(x, window_size):
    """(B, H, W, C) -> (B*nW, Wh*Ww, C): windows batch-major and in raster order, tokens in raster order."""
    raise NotImplementedError("window_partition: two reshapes and one permute of x")

# %% {"tags": ["exercise-check"], "exercise": "window_partition"}
try:
    exercises.check("window_partition", window_partition)
    print("window_partition passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# **Exercise 2: `window_reverse(windows, window_size, H, W)`.** The inverse: windows
# (B $\cdot$ nW, $W_h W_w$, C), in `window_partition`'s order, back to the map (B, H, W, C) of
# height H and width W. The number of images is not an argument: a reshape can work it out
# (`-1`). The same three movements, undone in the reverse order; which permute undoes a permute
# that swaps two axes?

# %% {"tags": ["exercise"], "exercise": "window_reverse"}
def window_reverse(windows, window_size, H, W):
    """(B*nW, Wh*Ww, C) -> (B, H, W, C): the inverse of window_partition."""
    raise NotImplementedError("window_reverse: two reshapes and one permute of windows")

# %% {"tags": ["exercise-check"], "exercise": "window_reverse"}
try:
    exercises.check("window_reverse", window_reverse)
    print("window_reverse passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# When a check fails it raises `exercises.ExerciseFailed`, whose message is the report; the
# smallest failing input is kept on the error (`failure.example`), so you can run your function
# and the library's on it by hand: `failure.example.call(window_partition)` and
# `failure.example.call(F.window_partition)`. The rest of the lesson uses the library's
# functions, so it runs whatever state your exercises are in.

# %% [markdown]
# ## 4. Shifted windows: the cyclic shift and its mask
#
# Within one block, windows never exchange information: a token at a window's edge cannot see
# its neighbour across the border. Swin alternates two kinds of block. Even blocks use the
# regular windows (W-MSA); odd blocks shift the window grid by half a window, $M/2$ in each
# direction (SW-MSA), so that the new windows straddle the old borders.
#
# Shifting the grid naively makes more windows, some of them cut short at the map's edges. Swin's
# trick: **roll the map** instead, by $-M/2$ along both axes (`F.roll`, a cyclic shift), and cut
# the rolled map into the regular windows: the same number of windows, all full. But the windows
# along the bottom and right now hold tokens that were not neighbours (the map's top rows wrapped
# around below its bottom rows), and they must not attend to each other. The rolled map splits
# into 9 regions (3 bands of rows times 3 of columns); a token may attend only to tokens of its
# own region. After the attention, the map is rolled back.

# %%
shift = 2
rolled = F.roll(ids, (-shift, -shift), (1, 2)).numpy()[0, :, :, 0]
bands = numpy.array([0] * 4 + [1] * 2 + [2] * 2)                   # rows [0, H-M), [H-M, H-s), [H-s, H)
region = 3 * bands[:, None] + bands[None, :]                       # the 9 regions of the rolled map
fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
axes[0].imshow(numpy.roll(region, (shift, shift), axis=(0, 1)), cmap=colours, vmin=0, vmax=8)   # region of each token
for (i, j), v in numpy.ndenumerate(ids.numpy()[0, :, :, 0]):
    axes[0].text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8)
axes[0].set_title("the shifted grid on the map: 9 windows,\nmost of them cut short")
axes[1].imshow(region, cmap=colours, vmin=0, vmax=8)
for (i, j), v in numpy.ndenumerate(rolled):
    axes[1].text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8)
axes[1].set_title("rolled by (-2, -2): 4 full windows,\ncolour = region (who were neighbours)")
for ax, borders in [(axes[0], (1.5, 5.5)), (axes[1], (3.5,))]:
    for k in borders:                                              # the window borders
        ax.axhline(k, color="k", lw=2)
        ax.axvline(k, color="k", lw=2)
    ax.set_xticks([])
    ax.set_yticks([])
mask = window_mask(8, 8, 4, shift)                                 # (nW, N, N): 0 may attend, large negative may not
axes[2].imshow(numpy.block([[mask[0], mask[1]], [mask[2], mask[3]]]) == 0, cmap="Greys_r")
axes[2].axhline(15.5, color="C3", lw=2)
axes[2].axvline(15.5, color="C3", lw=2)
axes[2].set_title("window_mask: white = query (row) may attend\nto key (column); one 16 x 16 block per window")
axes[2].set_xticks([])
axes[2].set_yticks([]);

# %% [markdown]
# The colours match: each of the 9 regions of the rolled map is exactly one window of the shifted
# grid, so the 4 full windows with the mask compute the 9 cut-short windows, at the cost of 4.
# Window 0 (top left) lies in one region: its mask is all white. Window 3 (bottom right) mixes
# four regions, so its 16 tokens split into four groups of 4 that attend only among themselves.
# The mask is added to the attention scores before the softmax, so a blocked pair gets weight
# $e^{-\infty} = 0$. The library uses a large *finite* negative (`windows.mask_value`), which
# underflows to exactly 0 after the softmax's max-subtraction, but cannot make the
# $-\infty - (-\infty) = $ NaN that a fully masked row would give with $-\infty$. The code
# builds the 9 regions exactly as drawn:

# %%
print(inspect.getsource(window_mask))

# %% [markdown]
# ## What you have seen
#
# - Large tokens cap the segmentation's precision; small tokens make global attention's
#   $4L^2C$ FLOPs and $L^2$ weights unaffordable. Windows of $N$ tokens cost $4LNC$: linear in $L$.
# - `window_partition` stacks the windows as a batch (batch-major, windows and tokens in raster
#   order), and `window_reverse` undoes it; autograd derives both backwards from the movements.
# - The cyclic shift (`F.roll`) makes the shifted windows full-sized, and `window_mask` keeps
#   tokens that were not neighbours apart: 4 windows and a mask compute the 9 cut-short ones.
#
# **Next:** lesson 9 builds the Swin transformer on these windows: the relative position bias,
# what the shift buys, Swin as a drop-in CNN backbone, and the fused window attention.
