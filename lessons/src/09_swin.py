# Lesson 9 source: python lessons/build_notebooks.py turns this file into lessons/09_swin.ipynb.

# %%
# Lesson 9 · Swin: shifted windows as a backbone. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks the token maps of the pictures and checks.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
DIM = 8 if FAST else 16              # channels of the Swin blocks whose reach section 2 draws

# %% [markdown]
# # Lesson 9 · Swin: shifted windows as a backbone
#
# Lesson 8 cut a map of tokens into windows, batched them (`window_partition`), and rolled the
# map so that the next block's windows straddle the old borders, with a mask for the tokens the
# roll brought together: blocks of regular windows (W-MSA) alternate with shifted ones (SW-MSA).
# This lesson builds the **Swin transformer** (Liu et al., 2021) on those windows, and ends where
# the notes do:
#
# > Swin transformer can be used as a drop-in replacement of CNN backbones for the encoder part of
# > standard semantic segmentation networks.
#
# You will
#
# 1. draw the relative position bias, Swin's only notion of where tokens are, and write it: a
#    gather from a table, whose backward is a scatter-add;
# 2. watch, with autograd, how the shifted windows let information cross window borders;
# 3. see Swin as a backbone that a CNN decoder takes unchanged;
# 4. write the fused window attention, its backward derived on paper first.
#
# Two exercises, each checked by hypothesis on many drawn inputs. About an hour.

# %%
# %matplotlib inline
import inspect

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, exercises, gradcheck, models, nn
from minitorch_seg.functional import windows
from minitorch_seg.reference.attention import window_attention_composed

mt.manual_seed(0)

# %% [markdown]
# ## 1. Relative position bias
#
# Attention by itself ignores where tokens are. Swin adds to each score $S_{ij}$ a learned bias
# that depends only on the *offset* between query $i$ and key $j$ inside the window,
# $(\Delta y, \Delta x) \in [-(M-1), M-1]^2$: a table of $(2M - 1)^2$ numbers per head. A fixed
# index (`relative_position_index`) says which table row each pair $(i, j)$ reads. Below, for a
# 4 x 4 window: the index (pairs with the same offset share a number and a colour); the table's
# 49 rows, placed at their offset, in the same colours (one hue per $\Delta y$, lighter to darker
# with $\Delta x$); and, for a table filled with $-\lVert(\Delta y, \Delta x)\rVert$ to make it
# visible, the bias that query 5 (row 1, column 1) puts on each key of the window. Query $i$ and key
# $j$ are numbered in raster order inside the window: token $i$ sits at row $i \,//\, 4$, column
# $i \bmod 4$. So each 4 x 4 block of the index pairs one row of queries with one row of keys: one
# $\Delta y$, one hue.

# %%
def offset_colour(dy, dx, m):
    """An RGB colour per offset: the hue from dy (C0 to C6), lighter for negative dx, darker for positive."""
    base = numpy.array(plt.matplotlib.colors.to_rgb(f"C{dy + m - 1}"))
    shade = dx / (m - 1)                                                          # -1 .. 1
    return base + (1 - base) * 0.7 * -shade if shade < 0 else base * (1 - 0.6 * shade)


def text_colour(rgb):
    return "k" if numpy.dot(rgb[:3], [0.299, 0.587, 0.114]) > 0.5 else "w"


window = 4
index = windows.relative_position_index(window)                                         # (N, N) of table rows
offsets = numpy.stack(numpy.meshgrid(numpy.arange(-(window - 1), window), numpy.arange(-(window - 1), window),
                                     indexing="ij")).reshape(2, -1).T             # row t of the table: (dy, dx)
table = mt.tensor(-numpy.hypot(offsets[:, 0], offsets[:, 1])[:, None])            # ((2M-1)^2, heads = 1)
bias = windows.relative_position_bias(table, window).numpy()[0] + 0.0             # (N, N); + 0.0: no -0.00
rows = len(offsets)                                                               # (2M - 1)^2 = 49
palette = plt.matplotlib.colors.ListedColormap([offset_colour(dy, dx, window) for dy, dx in offsets])
side = 2 * window - 1

fig, axes = plt.subplots(1, 3, figsize=(18, 6.2), gridspec_kw={"width_ratios": [1.5, 1, 0.8]}, layout="constrained")
axes[0].imshow(index, cmap=palette, vmin=-0.5, vmax=rows - 0.5)
for (i, j), v in numpy.ndenumerate(index):
    axes[0].text(j, i, str(v), ha="center", va="center", fontsize=8, color=text_colour(palette(v)))
for k in range(window, window * window, window):                                  # one query row, one key row
    axes[0].axhline(k - 0.5, color="k", lw=1)
    axes[0].axvline(k - 0.5, color="k", lw=1)
axes[0].set_xticks(range(window * window))
axes[0].set_yticks(range(window * window))
axes[0].set_title(f"relative_position_index({window}): table row read by (query i, key j)", fontsize=11)
axes[0].set_xlabel("key j (row j // 4, column j % 4 of the window)")
axes[0].set_ylabel("query i (row i // 4, column i % 4)")

axes[1].imshow(numpy.arange(rows).reshape(side, side), cmap=palette, vmin=-0.5, vmax=rows - 0.5)
for t, (dy, dx) in enumerate(offsets):
    axes[1].text(dx + window - 1, dy + window - 1, str(t), ha="center", va="center", fontsize=10,
                 color=text_colour(palette(t)))
axes[1].set_xticks(range(side), range(-(window - 1), window))
axes[1].set_yticks(range(side), range(-(window - 1), window))
axes[1].set_xlabel("Δx = column of i − column of j")
axes[1].set_ylabel("Δy = row of i − row of j")
axes[1].set_title(f"the table's {rows} rows, at their offset (Δy, Δx)", fontsize=11)

query_bias = bias[5].reshape(window, window)
shown = axes[2].imshow(query_bias, cmap="viridis")
for (i, j), v in numpy.ndenumerate(query_bias):
    axes[2].text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=10, color=text_colour(shown.to_rgba(v)))
axes[2].add_patch(plt.Rectangle((0.5, 0.5), 1, 1, fill=False, edgecolor="C3", lw=3))   # query 5's own position
axes[2].set_xticks(range(window))
axes[2].set_yticks(range(window))
axes[2].set_xlabel("key column")
axes[2].set_ylabel("key row")
axes[2].set_title("bias of query 5 (row 1, column 1, red)\non each key of the window", fontsize=11);

# %% [markdown]
# The gather `bias[h, i, j] = table[index[i, j], h]` copies one table entry to every pair at the
# same offset, so its backward adds up the gradients of all those pairs into that entry: a
# scatter-add. That is your first exercise.
#
# ### Exercise 1: the relative position bias
#
# Each exercise below is a stub with exactly the signature of the library's function of the same
# name (here `windows.relative_position_bias`); replace the `raise NotImplementedError` lines with
# your code, then run the cell after it. That cell calls `exercises.check`, which runs your
# function and the library's on many drawn inputs and compares the outputs and the gradients,
# then your gradients with finite differences; when something disagrees, hypothesis shrinks the
# input to the smallest one that still fails and the check prints it.
#
# **`relative_position_bias(table, window_size, table_size=None)`.** `table` is the learnable
# $((2T_h - 1)(2T_w - 1),\ \text{heads})$ table of a $T_h \times T_w$ window; `window_size` (an int
# or a pair $(W_h, W_w)$) is the window attended over, and `table_size` (an int or a pair; None
# means the window) the window the table was made for, at least as large on each side. Return
# the bias (heads, N, N), $N = W_h W_w$:
#
# $$\text{bias}[h, i, j] = \text{table}[\text{index}[i, j],\ h], \qquad
# \text{index}[i, j] = (\Delta y + T_h - 1)(2T_w - 1) + (\Delta x + T_w - 1),$$
#
# where $(\Delta y, \Delta x)$ is (row of $i$ minus row of $j$, column of $i$ minus column of $j$),
# token $i$ sitting at row $i \,//\, W_w$ and column $i \bmod W_w$ of the window. The figure above
# is the case $W = T = 4$. A window smaller than the table reads the rows of its own offsets, the
# centre of the table, so that a bias means the same offset in both.
#
# Two parts. The index is a constant, integers computed with NumPy from the two sizes (it gets no
# gradient, like the mask). The gather is a `Function`: its forward picks the table's rows,
# `table[index]`, and lays them out as (heads, N, N). Derive its backward on paper first: which
# pairs $(i, j)$ read table row $t$, and what does the chain rule do with their gradients
# (lesson 1: a fan-out)? In NumPy, `grad[rows] += values` adds each repeated row only once (why?);
# `numpy.add.at(grad, rows, values)` adds them all. The check draws windows of 1 to 4 per side,
# square and not, tables of the window's size and larger, and 1 to 3 heads: a square window hides
# a swapped $W_h$ and $W_w$, and a table of the window's own size hides a forgotten `table_size`.

# %% {"tags": ["exercise"], "exercise": "relative_position_bias"}
class RelativePositionBias(Function):
    """bias[h, i, j] = table[index[i, j], h]: a (T, heads) table gathered into (heads, N, N)."""

    @staticmethod
    def forward(ctx, table, index):
        # table (T, heads); index (N, N) of ints in [0, T), a constant
        raise NotImplementedError("RelativePositionBias.forward: (heads, N, N); save what the backward needs")

    @staticmethod
    def backward(ctx, g):
        # g (heads, N, N): return the gradient of the table, (T, heads)
        raise NotImplementedError("RelativePositionBias.backward: the gradient of the table you derived")


def relative_position_bias(table, window_size, table_size=None):
    raise NotImplementedError("relative_position_bias: the (N, N) index from the two sizes, then "
                              "RelativePositionBias.apply(table, index=index)")

# %% {"tags": ["exercise-check"], "exercise": "relative_position_bias"}
try:
    exercises.check("relative_position_bias", relative_position_bias)
    print("relative_position_bias passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# When a check fails it raises `exercises.ExerciseFailed`, whose message is the report; the
# smallest failing input is kept on the error (`failure.example`), so you can run your function
# and the library's on it by hand: `failure.example.call(relative_position_bias)` and
# `failure.example.call(windows.relative_position_bias)`. The rest of the lesson uses the
# library's functions, so it runs whatever state your exercises are in.
#
# ## 2. What the shift buys, measured with autograd
#
# Which input tokens can change one output token? Exactly those where its gradient is nonzero
# (lesson 7 drew receptive fields the same way). Below, a 16 x 16 map of tokens through Swin
# blocks with 4 x 4 windows, and the gradient of the output token marked with a cross. One W-MSA
# block: its own window only (the MLP works token by token). Two regular blocks: still that
# window, forever. A regular block and then a shifted one, as Swin stacks them: the reach spreads
# over the neighbouring windows.
#
# **Predict first.** With the shift of 2 (half the window), how many of the 256 input tokens can
# change the output token at row 5, column 6 after the W-MSA block and then the SW-MSA block?
# Lesson 8's pictures of the shifted grid (its section 4) help. Write a whole number in the cell
# below, then run the check.

# %% {"tags": ["prediction"], "prediction": "swin_reach"}
answer = ...

# %% {"tags": ["prediction-check"], "prediction": "swin_reach"}
exercises.check_prediction("swin_reach", answer)

# %%
def reach(blocks, side=16, token=(5, 6)):
    """|d output[token] / d input| summed over channels, through ``blocks`` on a side x side map."""
    x = mt.randn(1, side * side, DIM, dtype="float64", requires_grad=True)
    y = x
    for block in blocks:
        y = block(y, (side, side))
    y[0, token[0] * side + token[1]].sum().backward()
    return numpy.abs(x.grad.numpy()[0]).sum(axis=1).reshape(side, side)


def block(shift):
    return nn.SwinTransformerBlock(DIM, num_heads=2, window_size=4, shift_size=shift).double()


stacks = {"one W-MSA block": [block(0)], "W-MSA, then W-MSA": [block(0), block(0)],
          "W-MSA, then SW-MSA (Swin)": [block(0), block(2)]}
fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
for ax, (title, blocks) in zip(axes, stacks.items()):
    field = reach(blocks)
    ax.imshow(field > 0, cmap="Blues", vmin=0, vmax=1.3)
    ax.plot(6, 5, "x", color="C3", ms=10, mew=2)
    for k in range(0, 17, 4):
        ax.axhline(k - 0.5, color="0.5", lw=0.8)
        ax.axvline(k - 0.5, color="0.5", lw=0.8)
    ax.set_title(f"{title}:\n{int((field > 0).sum())} tokens reach the output", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])

# %% [markdown]
# A Swin stage stacks such pairs, and every stage after the first halves the map (`PatchMerging`:
# 2 x 2 neighbouring tokens concatenated, then a linear layer), so a window of the same $M$
# covers four times the image area: the reach grows like a CNN's receptive field.
#
# ## 3. A drop-in replacement of CNN backbones
#
# That last point is what makes Swin fit the segmentation networks of the previous lessons.
# `SwinTransformer` ends each stage with a map, and the four maps have the layout of a ResNet's
# four stages: 1/4, 1/8, 1/16 and 1/32 of the input, with $C$, $2C$, $4C$ and $8C$ channels.
# Any decoder written for a CNN backbone (an FPN, UPerNet, DeepLab's head) takes them unchanged;
# the project's `SwinSeg` puts a light UPerNet head on it:

# %%
with mt.no_grad():
    backbone = models.build("swin").backbone.eval()
    maps = backbone(mt.zeros(1, 3, 128, 256))
for stage, m in enumerate(maps):
    print(f"stage {stage}: {m.shape}  (1/{128 // m.shape[2]} of the input, {m.shape[1]} channels)")
print()
print(inspect.getsource(models.swin.SwinSeg.forward))

# %% [markdown]
# And one Swin block, the unit that all of the above runs inside (pre-norm, attention in
# windows, residual; pre-norm MLP, residual):

# %%
print(inspect.getsource(nn.SwinTransformerBlock.forward))

# %% [markdown]
# **An experiment: what padding does to a window.** A map whose sides are not multiples of the
# window $M$ is padded with zeros up to the next multiple. The official Swin segmentation code
# lets every query attend to those padded tokens too (it masks only the shift regions), so the
# padding leaks into the features of real tokens near the border; it also keeps the full window
# and its shift on maps smaller than one window. We do the same by default, so that official
# weights give official features at any input size. `mask_padding=True` masks the padded keys
# as well (unlike the official code): then a real token's output no longer depends on how much
# padding there is. Measured on one block, on a 9 x 10 map (window 4: padded to 12 x 12):

# %%
mt.manual_seed(0)
official = nn.SwinTransformerBlock(DIM, num_heads=2, window_size=4, shift_size=2).double().eval()
masked = nn.SwinTransformerBlock(DIM, num_heads=2, window_size=4, shift_size=2, mask_padding=True).double().eval()
masked.load_state_dict(official.state_dict())
tokens = mt.randn(1, 9 * 10, DIM, dtype="float64")                  # (B, H*W, C) for a 9 x 10 map
with mt.no_grad():
    pair = [block(tokens, (9, 10)).numpy()[0] for block in (official, masked)]
gap = numpy.abs(pair[0] - pair[1]).max(axis=-1).reshape(9, 10)       # per token
fig, ax = plt.subplots(figsize=(4, 3.4))
shown = ax.imshow(gap, cmap="magma")
fig.colorbar(shown, ax=ax, label="largest channel difference")
ax.set_title("official padding vs mask_padding=True")
ax.set_xlabel("w")
ax.set_ylabel("h");
print(f"tokens whose output changes: {(gap > 1e-12).sum()} of {gap.size}; "
      f"largest change {gap.max():.3f}")

# %% [markdown]
# Only tokens that share a window with padded tokens can change: here the last three rows. (The
# padded columns, after the cyclic shift, land in a shift region of their own, which the shift
# mask already hides from the real tokens.) Neither choice is wrong for training from scratch;
# loading official weights needs the official one.

# %% [markdown]
# ## 4. The fused window attention, and its backward
#
# All windows and heads go through one fused `Function`, `F.window_attention(q, k, v, bias,
# mask, scale)`. Per window and head, with queries, keys and values $Q, K, V$ ($N \times d$), the
# bias $B$ and the mask ($N \times N$) and the scale $s$:
#
# $$S = s\,QK^\top + B + \text{mask}, \qquad P = \operatorname{softmax}_{\text{rows}}(S), \qquad O = PV.$$
#
# Composed from a matmul, an add and a softmax, autograd would derive the backward for free
# (`reference/attention.py` has that twin), but each op would keep its own $N \times N$ arrays
# per window and head for its backward. One `Function` keeps only $P$ and the inputs, and its
# backward is a handful of batched matrix products. The price: you derive it.
#
# **Exercise 2: `window_attention(q, k, v, bias=None, mask=None, scale=None)`.** First derive
# the backward on paper, one operation at a time from the output back, with
# $G = \partial L / \partial O$:
#
# 1. $O = PV$ is a matrix product: what are $\bar V$ and $\bar P$ (lesson 1's rule for `@`)?
# 2. The softmax acts on each row separately, $P_{ij} = e^{S_{ij}} / \sum_l e^{S_{il}}$, and
#    every weight of a row depends on every score of that row, through the sum. Write the
#    Jacobian $\partial P_{ij} / \partial S_{ik}$ and contract it with $\bar P$ over $j$. The
#    result needs two elementwise products and one sum per row, never an $N \times N$ Jacobian
#    per row. A check on your formula: adding a constant to a whole row of scores leaves $P$
#    unchanged, so each row of $\bar S$ must sum to zero.
# 3. $S$ is a sum: each term gets $\bar S$. The bias is one $N \times N$ array per head, added
#    to **every** window (what does the chain rule do where a value is used many times?), and
#    $s\,QK^\top$ is the matrix product again.
#
# Then write it for all windows and heads at once. The layout:
#
# - q, k, v (B $\cdot$ nW, heads, N, d); `bias` None or (heads, N, N); `mask` None or
#   (nW, N, N), where mask $w$ is added to window $w$ of **every** image: row $b \cdot nW + w$
#   of q gets `mask[w]` (lesson 8's batch-major order), and the number of images is
#   (B $\cdot$ nW) / nW. The check draws batches of one and of two images.
# - `scale` None means $d^{-1/2}$: set it in `window_attention`, before `apply`.
# - `a @ b` multiplies the last two axes, batched over the leading ones, and
#   `a.swapaxes(-1, -2)` transposes each matrix.
# - The mask holds 0 (may attend) and `windows.mask_value`, about $-4.5 \cdot 10^{307}$ (may
#   not): subtract each row's maximum before `numpy.exp` (lesson 2), and the blocked keys get
#   weight exactly 0. The mask is a constant: return `None` for it. (A bias that is None gets
#   no gradient, whatever you return for it.)

# %% {"tags": ["exercise"], "exercise": "window_attention"}
class WindowAttention(Function):
    """softmax(scale Q K^T + bias + mask) V for every window and head; q, k, v (B*nW, heads, N, d)."""

    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale):
        raise NotImplementedError("WindowAttention.forward: S, then P = softmax(S) along the keys, then O = P V")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("WindowAttention.backward: the gradients of q, k, v and bias, and None for the mask")


def window_attention(q, k, v, bias=None, mask=None, scale=None):
    # TODO: scale=None means d ** -0.5, d the last side of q
    return WindowAttention.apply(q, k, v, bias, mask, scale=scale)

# %% {"tags": ["exercise-check"], "exercise": "window_attention"}
try:
    exercises.check("window_attention", window_attention)
    print("window_attention passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# Once yours passes, compare it with the library's: the docstring of
# `minitorch_seg.functional.attention.WindowAttention` has the same derivation and a shortcut
# for the row sum (FlashAttention's), and its code runs the softmax in place to save memory.
#
# The library's fused Function is held to the same standard. `gradcheck` on all four
# differentiable inputs at once (queries, keys, values and the bias), with a shift mask, in
# float64:

# %%
q, k, v = (mt.randn(2, 2, 4, 3, dtype="float64", requires_grad=True) for _ in range(3))   # (B*nW, heads, N, d)
bias = mt.randn(2, 4, 4, dtype="float64", requires_grad=True)                          # (heads, N, N)
shift_mask = mt.tensor(windows.window_mask(2, 4, 2, 1))                                # (nW = 2, N, N)
print("gradcheck of F.window_attention:",
      gradcheck(lambda q, k, v, b: F.window_attention(q, k, v, b, shift_mask), (q, k, v, bias)))

# %% [markdown]
# and it agrees with the composed twin in `reference/attention.py`, where autograd derives the
# backward from a matmul, an add and a softmax:

# %%
g = mt.randn(2, 2, 4, 3, dtype="float64")
grads = []
for attention in (F.window_attention, window_attention_composed):
    for t in (q, k, v, bias):
        t.grad = None
    attention(q, k, v, bias, shift_mask).backward(g)
    grads.append([t.grad.numpy().copy() for t in (q, k, v, bias)])
print("fused and composed gradients agree:", all(numpy.allclose(a, b) for a, b in zip(*grads)))

# %% [markdown]
# ## What you have seen
#
# - The relative position bias is a gather from a table of $(2M-1)^2$ offsets, indexed by each
#   pair's offset; its backward a scatter-add. You wrote both.
# - Alternating regular and shifted windows lets information cross window borders; with
#   `PatchMerging` the stages give the four-map pyramid of a CNN backbone, so Swin drops into
#   CNN segmentation networks.
# - A fused attention `Function` saves only the weights and its inputs; its backward goes through
#   the softmax row by row, and the bias, shared by every window, collects the gradients of all
#   of them.
#
# **Next:** lesson 10, HRNet: instead of going down and coming back up, keep the high resolution
# all the way through.
