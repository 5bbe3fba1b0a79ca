# Lesson 8 source: python lessons/build_notebooks.py turns this file into lessons/08_swin.ipynb.

# %%
# Lesson 8 · Transformers for segmentation: Swin. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks the token maps of the pictures and checks.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
DIM = 8 if FAST else 16              # channels of the Swin blocks whose reach section 6 draws
SCENES = 2 if FAST else 6            # generated scenes the token-size measurement of section 1 averages over

# %% [markdown]
# # Lesson 8 · Transformers for segmentation: shifted windows (Swin)
#
# A **Transformer** treats an image as a set of tokens, vectors that each stand for a patch of
# pixels, and lets every token look at every other through **attention**: each token's query is
# compared with all the keys, and the token takes the softmax-weighted average of all the values.
# That global view is what convolutions lack. The notes name the catch:
#
# > Tokenization becomes a problem as large tokens lead to imprecise segmentation while small
# > tokens are too expensive. A solution is **shifted window attention (Swin)**.
#
# and the reason Swin matters for this course:
#
# > Swin transformer can be used as a drop-in replacement of CNN backbones for the encoder part of
# > standard semantic segmentation networks.
#
# In this lesson you will
#
# 1. measure the token-size dilemma: what large tokens cost in accuracy, what small ones cost in
#    FLOPs and memory, and what windows save;
# 2. draw the window partition, the cyclic shift and its attention mask, and the relative
#    position bias, from the project's `functional/windows.py`;
# 3. watch, with autograd, how the shifted windows let information cross window borders;
# 4. see Swin as a backbone that a CNN decoder takes unchanged;
# 5. walk through the fused attention's hand-derived backward, and derive the core of it yourself.
#
# About 30 minutes.

# %%
# %matplotlib inline
import ast
import inspect

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, GradcheckError, gradcheck, metrics, models, nn
from minitorch_seg.data import generate_scene, label_ids_to_train_ids, train_ids_to_colors
from minitorch_seg.functional.attention import WindowAttention
from minitorch_seg.functional.windows import relative_position_bias, relative_position_index, window_mask
from minitorch_seg.models.summary import layer_table
from minitorch_seg.reference.attention import window_attention_composed

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
# The tokens of a map (B, H, W, C) are cut into non-overlapping $M \times M$ windows and stacked
# into a batch of windows (B $\cdot$ nW, $M^2$, C), so that one batched attention computes all of
# them at once. `F.window_partition` is two reshapes and one permute (and `F.window_reverse`
# undoes them; their backward is the same movement, reversed):

# %%
print(inspect.getsource(F.window_partition))

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
# ## 5. Relative position bias
#
# Attention by itself ignores where tokens are. Swin adds to each score $S_{ij}$ a learned bias
# that depends only on the *offset* between query $i$ and key $j$ inside the window,
# $(\Delta y, \Delta x) \in [-(M-1), M-1]^2$: a table of $(2M - 1)^2$ numbers per head. A fixed
# index (`relative_position_index`) says which table row each pair $(i, j)$ reads. Below, for a
# 4 x 4 window: the index (pairs with the same offset share a number); and, for a table filled
# with $-\lVert(\Delta y, \Delta x)\rVert$ to make it visible, the bias that query 5 (row 1,
# column 1) puts on each key of the window.

# %%
window = 4
index = relative_position_index(window)                                           # (N, N) of table rows
offsets = numpy.stack(numpy.meshgrid(numpy.arange(-(window - 1), window), numpy.arange(-(window - 1), window),
                                     indexing="ij")).reshape(2, -1).T             # row t of the table: (dy, dx)
table = mt.tensor(-numpy.hypot(offsets[:, 0], offsets[:, 1])[:, None])            # ((2M-1)^2, heads = 1)
bias = relative_position_bias(table, window).numpy()[0] + 0.0                     # (N, N); + 0.0: no -0.00
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1.6, 1, 1]})
axes[0].imshow(index, cmap="tab20c")
for (i, j), v in numpy.ndenumerate(index):
    axes[0].text(j, i, str(v), ha="center", va="center", fontsize=7)
axes[0].set_title("relative_position_index(4): table row of (query i, key j)", fontsize=10)
axes[0].set_xlabel("key j")
axes[0].set_ylabel("query i")
axes[1].imshow(offsets[:, 0].reshape(7, 7) ** 2 + offsets[:, 1].reshape(7, 7) ** 2, cmap="viridis_r")
for t, (dy, dx) in enumerate(offsets):
    axes[1].text(t % 7, t // 7, f"{t}\n({dy},{dx})", ha="center", va="center", fontsize=6)
axes[1].set_title("the table's 49 rows: offset (dy, dx)", fontsize=10)
axes[2].imshow(bias[5].reshape(window, window), cmap="viridis")
for (i, j), v in numpy.ndenumerate(bias[5].reshape(window, window)):
    axes[2].text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9, color="w")
axes[2].set_title("bias of query 5 on each key", fontsize=10)
for ax in axes[1:]:
    ax.axis("off")

# %% [markdown]
# The gather `bias[h, i, j] = table[index[i, j], h]` copies one table entry to every pair at the
# same offset, so its backward adds up the gradients of all those pairs into that entry: a
# scatter-add (`RelativePositionBias.backward`).
#
# ## 6. What the shift buys, measured with autograd
#
# Which input tokens can change one output token? Exactly those where its gradient is nonzero
# (lesson 5 drew receptive fields the same way). Below, a 16 x 16 map of tokens through Swin
# blocks with 4 x 4 windows, and the gradient of the output token marked with a cross. One W-MSA
# block: its own window only (the MLP works token by token). Two regular blocks: still that
# window, forever. A regular block and then a shifted one, as Swin stacks them: the reach spreads
# over the neighbouring windows.

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
# ## 7. A drop-in replacement of CNN backbones
#
# That last point is what makes Swin fit the segmentation networks of the previous lessons.
# `SwinTransformer` ends each stage with a map, and the four maps have the layout of a ResNet's
# four stages: 1/4, 1/8, 1/16 and 1/32 of the input, with $C$, $2C$, $4C$ and $8C$ channels.
# Any decoder written for a CNN backbone (an FPN, UPerNet, DeepLab's head) takes them unchanged;
# the project's `SwinSeg` puts a light UPerNet head on it:

# %%
with mt.no_grad():
    maps = backbone.eval()(mt.zeros(1, 3, 128, 256))
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
# ## 8. The backward of window attention
#
# All windows and heads go through one fused `Function`, `F.window_attention`. Per window and
# head, with $G = \partial L / \partial O$:
#
# $$S = s\,QK^\top + B + \text{mask}, \qquad P = \operatorname{softmax}_{\text{rows}}(S), \qquad O = PV.$$
#
# The derivation, one operation at a time, from the output back:
#
# 1. $O = PV$ is a matrix product, so $\bar V = P^\top G$ and $\bar P = G V^\top$.
# 2. The softmax acts on each row: $P_{ij} = e^{S_{ij}} / \sum_l e^{S_{il}}$, whose Jacobian is
#    $\partial P_{ij} / \partial S_{ik} = P_{ij}(\delta_{jk} - P_{ik})$ (every weight of the row
#    depends on every score of the row, through the sum). Applying it to $\bar P$:
#    $$\bar S_{ik} = \sum_j \bar P_{ij}\, P_{ij}(\delta_{jk} - P_{ik}) = P_{ik}\Big(\bar P_{ik} - \sum_j \bar P_{ij} P_{ij}\Big) = P_{ik}\,(\bar P_{ik} - D_i).$$
#    The row sum $D_i$ even has a shortcut: $D_i = \sum_j (G_i \cdot V_j) P_{ij} = G_i \cdot O_i$,
#    a dot product of length $d$ instead of $N$ (FlashAttention uses the same identity).
# 3. $S$ is a sum: the bias gets $\bar S$ (summed over the windows that share it), and the product
#    $s\,QK^\top$ gives $\bar Q = s\,\bar S K$ and $\bar K = s\,\bar S^\top Q$.
#
# The library's backward is these lines, for every window and head at once:

# %%
print(inspect.getsource(WindowAttention.backward))

# %% [markdown]
# `gradcheck` on all four differentiable inputs at once (queries, keys, values and the bias),
# with a shift mask, in float64:

# %%
q, k, v = (mt.randn(2, 2, 4, 3, dtype="float64", requires_grad=True) for _ in range(3))   # (B*nW, heads, N, d)
bias = mt.randn(2, 4, 4, dtype="float64", requires_grad=True)                          # (heads, N, N)
shift_mask = mt.tensor(window_mask(2, 4, 2, 1))                                        # (nW = 2, N, N)
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
# ## 9. Exercise: derive it yourself, then check it with gradcheck
#
# The heart of it: attention for one head and one window, no bias, no mask,
#
# $$O = \operatorname{softmax}_{\text{rows}}\!\big(s\,QK^\top\big)\, V, \qquad Q, K, V \in \mathbb{R}^{N \times d},\ s = d^{-1/2}.$$
#
# 1. Derive $\bar Q$, $\bar K$ and $\bar V$ from $G = \bar O$. (Section 8 has the route; do the
#    softmax step on paper.)
# 2. Run the template, whose backward is a first attempt, then the gradcheck cell. Which inputs
#    does gradcheck complain about, and which one passes? What does that tell you about where
#    the mistake is?
# 3. Fix `backward` until gradcheck passes.

# %% {"tags": ["planted-wrong"], "gradcheck": "gradcheck(MyAttention.apply, (mt.randn(5, 3, dtype='float64', requires_grad=True), mt.randn(5, 3, dtype='float64', requires_grad=True), mt.randn(5, 3, dtype='float64', requires_grad=True)))"}
class MyAttention(Function):
    """O = softmax(Q K^T s) V for one head: Q, K, V (N, d), s = d**-0.5."""

    @staticmethod
    def forward(ctx, q, k, v):
        scale = q.shape[1] ** -0.5
        scores = q @ k.T * scale                                          # (N, N)
        weights = numpy.exp(scores - scores.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)                     # P, rows sum to 1
        ctx.save_for_backward(q, k, v, weights)
        ctx.scale = scale
        return weights @ v                                                # (N, d)

    @staticmethod
    def backward(ctx, g):
        q, k, v, p = ctx.saved_arrays
        grad_v = p.T @ g                                                  # dV = P^T G
        grad_p = g @ v.T                                                  # dP = G V^T
        # TODO: derive dS from dP through the softmax and fix this line: a first attempt, and wrong.
        grad_s = p * grad_p
        return grad_s @ k * ctx.scale, grad_s.T @ q * ctx.scale, grad_v

# %% {"tags": ["exercise-check"]}
try:
    gradcheck(MyAttention.apply, (mt.randn(5, 3, dtype='float64', requires_grad=True),
                                  mt.randn(5, 3, dtype='float64', requires_grad=True),
                                  mt.randn(5, 3, dtype='float64', requires_grad=True)))
    print("gradcheck passed: your backward agrees with the finite differences.")
except GradcheckError as error:
    print("gradcheck caught a wrong backward:\n", error)

# %% [markdown]
# A hint, if you need one: `gradcheck` stops at the first input that fails. Check the three
# separately to see which are wrong:

# %%
for name, position in [("Q", 0), ("K", 1), ("V", 2)]:
    inputs = [mt.randn(5, 3, dtype="float64", requires_grad=(i == position)) for i in range(3)]
    try:
        gradcheck(MyAttention.apply, inputs)
        print(f"d{name}: passes")
    except GradcheckError:
        print(f"d{name}: fails")

# %% [markdown]
# **Solution.** The next two cells, the derivation and the corrected code, are collapsed: click
# the dots (or the bar to the left of a cell) to open them, once you have tried.

# %% [markdown] {"tags": ["solution"]}
# $\bar V = P^\top G$ was right (it does not go through the softmax), which is why $V$ passes and
# $Q$, $K$ fail: the mistake is in the softmax step. The first attempt used $\bar S = P \odot \bar P$,
# as if each weight $P_{ij}$ depended on its own score $S_{ij}$ alone. But the normalisation makes
# every weight of a row depend on every score of that row:
# $\partial P_{ij} / \partial S_{ik} = P_{ij}(\delta_{jk} - P_{ik})$, so
#
# $$\bar S_{ik} = P_{ik}\Big(\bar P_{ik} - \sum_j \bar P_{ij} P_{ij}\Big).$$
#
# The forgotten term is the row sum $D_i = \sum_j \bar P_{ij} P_{ij}$ (equal to $G_i \cdot O_i$).
# A check that helps remember it: adding a constant to a whole row of scores leaves the softmax
# unchanged, so each row of $\bar S$ must sum to zero; $\sum_k P_{ik}(\bar P_{ik} - D_i) = D_i - D_i = 0$.
# Then $\bar Q = s\,\bar S K$, $\bar K = s\,\bar S^\top Q$.

# %% {"tags": ["solution"]}
class MyAttention(Function):
    """O = softmax(Q K^T s) V.  Backward: dV = P^T G; dS = P (G V^T - D), D_i = sum_j (G V^T)_ij P_ij; dQ = s dS K; dK = s dS^T Q."""

    @staticmethod
    def forward(ctx, q, k, v):
        scale = q.shape[1] ** -0.5
        scores = q @ k.T * scale
        weights = numpy.exp(scores - scores.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        ctx.save_for_backward(q, k, v, weights)
        ctx.scale = scale
        return weights @ v

    @staticmethod
    def backward(ctx, g):
        q, k, v, p = ctx.saved_arrays
        grad_v = p.T @ g
        grad_p = g @ v.T
        grad_s = p * (grad_p - (grad_p * p).sum(axis=1, keepdims=True))
        return grad_s @ k * ctx.scale, grad_s.T @ q * ctx.scale, grad_v

# %%
gradcheck(MyAttention.apply, (mt.randn(5, 3, dtype='float64', requires_grad=True),
                              mt.randn(5, 3, dtype='float64', requires_grad=True),
                              mt.randn(5, 3, dtype='float64', requires_grad=True)))

# %% [markdown]
# Your one-head attention is the library's for one window and one head, forward and backward:

# %%
q, k, v = (mt.randn(5, 3, dtype="float64", requires_grad=True) for _ in range(3))
g = mt.randn(5, 3, dtype="float64")
MyAttention.apply(q, k, v).backward(g)
ours = [t.grad.numpy().copy() for t in (q, k, v)]
for t in (q, k, v):
    t.grad = None
F.window_attention(q.reshape(1, 1, 5, 3), k.reshape(1, 1, 5, 3), v.reshape(1, 1, 5, 3)).backward(g.reshape(1, 1, 5, 3))
print("same gradients as F.window_attention:", all(numpy.allclose(a, t.grad.numpy()) for a, t in zip(ours, (q, k, v))))

# %% [markdown]
# ## What you have seen
#
# - Large tokens cap the segmentation's precision; small tokens make global attention's
#   $4L^2C$ FLOPs and $L^2$ weights unaffordable. Windows of $N$ tokens cost $4LNC$: linear in $L$.
# - `window_partition` stacks the windows as a batch; the cyclic shift (`F.roll`) makes the
#   shifted windows full-sized, and `window_mask` keeps tokens that were not neighbours apart.
# - The relative position bias is a gather from a table of $(2M-1)^2$ offsets; its backward a
#   scatter-add.
# - Alternating regular and shifted windows lets information cross window borders; with
#   `PatchMerging` the stages give the four-map pyramid of a CNN backbone, so Swin drops into
#   CNN segmentation networks.
# - Attention's backward: $\bar V = P^\top G$, $\bar S = P \odot (G V^\top - D)$ with the row
#   sum $D_i = G_i \cdot O_i$, then $\bar Q$, $\bar K$ by the product rule.
#
# **Next:** lesson 9, HRNet: instead of going down and coming back up, keep the high resolution
# all the way through.
