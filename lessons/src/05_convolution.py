# Lesson 5 source: python lessons/build_notebooks.py turns this file into lessons/05_convolution.ipynb.

# %%
# Lesson 5 · Convolution and atrous convolution. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks image and feature-map sizes.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
SIZE = (64, 128) if FAST else (128, 256)    # (height, width) of the street scene
TIMING = (2, 8, 24) if FAST else (4, 16, 48)   # (batch, channels, side) of the maps the three convs are timed on
FIELD = 41 if FAST else 71                  # side of the input for the receptive-field pictures

# %% [markdown]
# # Lesson 5 · Convolution and atrous convolution
#
# Every network in this course is mostly convolutions. This lesson opens one up: the formula,
# the output size, how it is computed fast (**im2col + GEMM**), its backward, and the **atrous
# convolution (aka dilated convolution)**, which lets a segmentation network see a wide
# neighbourhood without losing resolution. About 30 minutes.

# %%
# %matplotlib inline
import inspect
import time

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, GradcheckError, gradcheck, shapes
from minitorch_seg.data import generate_scene
from minitorch_seg.functional.conv import _columns
from minitorch_seg.reference.conv import conv2d_im2col, conv2d_loops

mt.manual_seed(0)

# %% [markdown]
# ## 1. The formula
#
# A convolution layer has a filter $w$ of shape $(C_{out}, C_{in}, k, k)$ and a bias $b$. Each
# output value is a weighted sum over a $k \times k$ window of every input channel:
#
# $$y[n, o, u, v] = b[o] + \sum_{c=1}^{C_{in}} \sum_{i=0}^{k-1} \sum_{j=0}^{k-1} w[o, c, i, j]\;
# x_{pad}[n, c,\ u s + i d,\ v s + j d],$$
#
# where $x_{pad}$ is the input with $p$ zeros around each side, $s$ is the **stride** (how far the
# window moves per output pixel) and $d$ the **dilation** (how far apart the filter's taps are;
# section 5). Strictly this is a cross-correlation (the filter is not flipped), as in every deep
# learning library. The same filter slides over every position: a few weights, reused
# everywhere, and a feature detected the same way wherever it is.
#
# The project's loop reference is this formula, line for line:

# %%
print(inspect.getsource(conv2d_loops))

# %% [markdown]
# Hand-made filters show what one output channel computes. Three classic ones on a street
# scene: a vertical-edge detector (Sobel), a horizontal-edge detector, and a 5 x 5 blur:

# %%
scene = generate_scene("val", 1, size=SIZE)
gray = mt.tensor(scene.image.mean(axis=2)[None, None].astype(numpy.float32) / 255)     # (1, 1, H, W)
sobel = numpy.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], numpy.float32)
filters = mt.tensor(numpy.stack([numpy.pad(sobel, 1), numpy.pad(sobel.T, 1),
                                 numpy.full((5, 5), 1 / 25, numpy.float32)])[:, None])  # (3, 1, 5, 5)
feature_maps = F.conv2d(gray, filters, padding=2)                                       # (1, 3, H, W)

fig, axes = plt.subplots(1, 4, figsize=(15, 2.2))
axes[0].imshow(scene.image)
axes[0].set_title("input")
for ax, fmap, title in zip(axes[1:], feature_maps.numpy()[0], ["vertical edges", "horizontal edges", "blur"]):
    if title == "blur":
        ax.imshow(fmap, cmap="gray")
    else:                                          # red: positive response, blue: negative, white: none
        ax.imshow(fmap, cmap="RdBu_r", vmin=-abs(fmap).max(), vmax=abs(fmap).max())
    ax.set_title(f"feature map: {title}")
for ax in axes:
    ax.axis("off")

# %% [markdown]
# ## 2. The output size
#
# A filter of $k$ taps, $d$ apart, spans $d(k - 1) + 1$ input pixels. On an input of $H$ pixels
# padded to $H + 2p$, its first position starts at 0 and its last must end inside, so it can
# start at $0, s, 2s, \dots$ up to $H + 2p - d(k-1) - 1$. Counting those starts:
#
# $$H_{out} = \left\lfloor \frac{H + 2p - d(k - 1) - 1}{s} \right\rfloor + 1,$$
#
# and the same for the width. The formula lives in one place, `shapes.conv_output_size`:

# %%
print(inspect.getsource(shapes.conv_output_size))
for k, s, p, d, note in [(3, 1, 1, 1, "'same' 3x3: the size is kept"), (3, 2, 1, 1, "stride 2: halved (rounded up)"),
                         (7, 2, 3, 1, "a ResNet stem"), (3, 1, 0, 1, "no padding: shrinks by k - 1"),
                         (3, 1, 4, 4, "dilation 4 with padding 4: kept")]:
    out = shapes.conv_output_size(64, k, s, p, d)
    print(f"H = 64, k = {k}, s = {s}, p = {p}, d = {d}:  H_out = {out:3d}   ({note})")

# %% [markdown]
# ## 3. im2col + GEMM
#
# Six nested loops in Python are far too slow. The fast way reorganises the data so that the
# whole convolution is **one matrix product** (a GEMM, which BLAS libraries do near the
# machine's peak):
#
# 1. **im2col**: for each output position $(u, v)$, copy its input window (all $C_{in}$ channels,
#    $k \times k$ taps) into one **column**. The columns form a matrix of shape
#    $(C_{in} k^2,\ H_{out} W_{out})$.
# 2. **GEMM**: reshape the filter to $(C_{out},\ C_{in} k^2)$, one row per output channel. Row
#    times column is exactly the sum in the formula, so
#    $$Y_{(C_{out},\ H_{out} W_{out})} = W_{(C_{out},\ C_{in} k^2)} \cdot \text{cols}_{(C_{in} k^2,\ H_{out} W_{out})}.$$
#
# The price is memory: every input pixel is copied into up to $k^2$ columns. Here is the column
# matrix of a 5 x 5 image (values 0..24) for a 3 x 3 filter, stride 1, no padding: 9 output
# positions, 9 columns, each a flattened window. Row $i k + j$ holds tap $(i, j)$ of every window.

# %%
tiny = numpy.arange(25, dtype=numpy.float32).reshape(1, 1, 5, 5)
columns = _columns(tiny, (3, 3), (1, 1), (0, 0), (1, 1), 1, (3, 3))[0, 0]                 # (9, 9)
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [5, 9]})
for ax, m, title in [(left, tiny[0, 0], "image (5 x 5)"), (right, columns, "im2col: one column per output pixel")]:
    ax.imshow(m, cmap="Blues")
    for (i, j), v in numpy.ndenumerate(m):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=8)
    ax.set_title(title)
right.set_xlabel("output position u * 3 + v")
right.set_ylabel("filter tap i * 3 + j")
left.axis("off");

# %% [markdown]
# The GEMM on those columns gives the convolution:

# %%
w = numpy.arange(9, dtype=numpy.float32).reshape(1, 1, 3, 3)
gemm = (w.reshape(1, 9) @ columns).reshape(3, 3)
print("W @ cols:\n", gemm)
print("conv2d_loops equals it:", numpy.allclose(gemm, conv2d_loops(tiny, w)[0, 0]))
print("F.conv2d equals it:    ", numpy.allclose(gemm, F.conv2d(mt.tensor(tiny), mt.tensor(w))[0, 0].numpy()))

# %% [markdown]
# `reference.conv.conv2d_im2col` builds the columns from differentiable tensor operations
# (padding, strided slices, a stack, a matmul), so autograd derives its backward for free; the
# library's `F.conv2d` does the same computation on raw arrays, in cache-sized tiles, with a
# hand-derived backward. All three agree; the timings show why the library is written the way it is:

# %%
batch, channels, side = TIMING
x = mt.randn(batch, channels, side, side)
weight = mt.randn(channels, channels, 3, 3)
timings = {}
for name, conv in [("loops", lambda: conv2d_loops(x.numpy(), weight.numpy(), padding=1)),
                   ("im2col from tensor ops", lambda: conv2d_im2col(x, weight, padding=1).numpy()),
                   ("F.conv2d", lambda: F.conv2d(x, weight, padding=1).numpy())]:
    start = time.perf_counter()
    result = conv()
    timings[name] = time.perf_counter() - start
    print(f"{name:24s} {1000 * timings[name]:9.2f} ms   equal to F.conv2d: "
          f"{numpy.allclose(result, F.conv2d(x, weight, padding=1).numpy(), atol=1e-4)}")

fig, ax = plt.subplots(figsize=(6, 2.4))
ax.barh(list(timings), [1000 * t for t in timings.values()], color=["C3", "C1", "C2"])
ax.set_xscale("log")
ax.set_xlabel("milliseconds (log scale)")
ax.set_title(f"one 3x3 conv, {batch} x {channels} x {side} x {side}");

# %% [markdown]
# ## 4. The backward
#
# The formula is linear in $x$ and in $w$, so both gradients are sums of the same products
# (lesson 1: multiply by what the other factor was, and add over everywhere it was used):
#
# $$\bar w[o, c, i, j] = \sum_{n, u, v} \bar y[n, o, u, v]\; x_{pad}[n, c,\ u s + i d,\ v s + j d],
# \qquad \bar b[o] = \sum_{n, u, v} \bar y[n, o, u, v],$$
#
# $$\bar x_{pad}[n, c, a, e] = \sum_{\substack{o, u, v, i, j:\\ u s + i d = a,\ v s + j d = e}} \bar y[n, o, u, v]\; w[o, c, i, j]:$$
#
# the weight gradient correlates the input with the output gradient (the same im2col columns,
# one more GEMM), and the input gradient stamps a weighted copy of the filter for every output
# gradient: the **transposed convolution** of lesson 4. `gradcheck` confirms the library's
# backward for every input, with stride, padding and dilation all in play:

# %%
gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=2, dilation=2),
          (mt.randn(2, 3, 9, 10, dtype="float64", requires_grad=True),
           mt.randn(4, 3, 3, 3, dtype="float64", requires_grad=True),
           mt.randn(4, dtype="float64", requires_grad=True)))

# %% [markdown]
# ## 5. Atrous convolution (aka dilated convolution)
#
# To label a pixel "road" rather than "sidewalk" a network must see a large neighbourhood, its
# **receptive field**. Classification networks grow it by downsampling: pool, then convolve, and
# each 3 x 3 filter covers twice as much of the image. But every downsampling throws away
# resolution that a segmentation network must then recover (lesson 4).
#
# The **atrous convolution** ("à trous": with holes) spreads the filter's taps $d$ pixels apart
# instead:
#
# $$y[u, v] = \sum_{i, j} w[i, j]\; x[u + i d,\ v + j d].$$
#
# A 3 x 3 filter with dilation $d$ still has 9 weights, but spans $2d + 1$ pixels. With padding
# $p = d$ and stride 1 the output keeps the input's size (the formula of section 2), so the view
# widens **without losing resolution**. DeepLab builds on this: it keeps the backbone's last maps
# at 1/8 resolution and uses dilations 2, 4 and more where a classification network would
# downsample. The taps of a 3 x 3 filter at $d = 1, 2, 3$:

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, d in zip(axes, (1, 2, 3)):
    grid = numpy.zeros((7, 7))
    grid[3 - d:3 + d + 1:d, 3 - d:3 + d + 1:d] = 1
    ax.imshow(grid, cmap="Oranges", vmin=0, vmax=1.5)
    ax.set_xticks(numpy.arange(-0.5, 7), minor=True)
    ax.set_yticks(numpy.arange(-0.5, 7), minor=True)
    ax.grid(which="minor", color="0.6")
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(f"d = {d}: 9 weights span {2 * d + 1} x {2 * d + 1}")

# %% [markdown]
# ### The receptive field, measured with autograd
#
# Which input pixels can influence one output pixel? Exactly those where the gradient of that
# output with respect to the input is nonzero, so a backward pass draws the receptive field. Below,
# four stacked 3 x 3 convolutions with all-ones filters, "same" padding, and the gradient of the
# centre output pixel. The brightness counts the paths from each input pixel to the output (the
# *effective* receptive field, brightest in the middle). Stacking $L$ layers of dilation $d_l$
# gives a field of $1 + 2\sum_l d_l$ pixels:
#
# - dilation 1, 1, 1, 1: $1 + 2 \cdot 4 = 9$, growing linearly with depth;
# - dilation 1, 2, 4, 8: $1 + 2 \cdot 15 = 31$, doubling per layer for the same 36 weights;
# - dilation 2, 2, 2, 2: 17 wide, but only every other pixel is seen: the **gridding** artefact of
#   repeating one dilation, which mixing dilations (as the second stack does) avoids;
# - and for comparison, two stride-2 downsamplings: a wide field, but an output at 1/4 resolution.

# %%
def receptive_field(dilations, strides=None):
    """|d(centre output)/d(input)| through 3x3 all-ones convs with these dilations ('same' padding)."""
    x = mt.zeros(1, 1, FIELD, FIELD, dtype="float64", requires_grad=True)
    y = x
    for d, s in zip(dilations, strides or [1] * len(dilations)):
        y = F.conv2d(y, mt.ones(1, 1, 3, 3, dtype="float64"), stride=s, padding=d, dilation=d)
    centre = [n // 2 for n in y.shape[2:]]
    y[0, 0, centre[0], centre[1]].backward()
    return x.grad.numpy()[0, 0], y.shape[2:]


stacks = {"d = 1, 1, 1, 1": ([1, 1, 1, 1], None), "d = 1, 2, 4, 8": ([1, 2, 4, 8], None),
          "d = 2, 2, 2, 2": ([2, 2, 2, 2], None), "stride 2, 2, then d = 1, 1": ([1, 1, 1, 1], [2, 2, 1, 1])}
fig, axes = plt.subplots(1, 4, figsize=(15, 4))
for ax, (title, (dilations, strides)) in zip(axes, stacks.items()):
    field, out_hw = receptive_field(dilations, strides)
    rows, cols = numpy.nonzero(field)
    ax.imshow(numpy.log1p(field), cmap="inferno")
    ax.set_title(f"{title}\nfield {numpy.ptp(rows) + 1} x {numpy.ptp(cols) + 1}, "
                 f"output {out_hw[0]} x {out_hw[1]}", fontsize=10)
    ax.axis("off")

# %% [markdown]
# The same edge filter at growing dilation responds to edges at growing scales, while every map
# keeps the full resolution:

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 2.4))
for ax, d in zip(axes, (1, 3, 6)):
    edges = F.conv2d(gray, mt.tensor(sobel[None, None]), padding=d, dilation=d).numpy()[0, 0]
    ax.imshow(edges, cmap="RdBu_r", vmin=-abs(edges).max(), vmax=abs(edges).max())
    ax.set_title(f"vertical edges, dilation {d}: {edges.shape[0]} x {edges.shape[1]}")
    ax.axis("off")

# %% [markdown]
# ## 6. Exercise: derive it yourself, then check it with gradcheck
#
# Here is a single-channel atrous convolution, no padding, stride 1:
# $y[u, v] = \sum_{i, j} w[i, j]\, x[u + i d,\ v + j d]$, with $x$ of shape (H, W), $w$ of shape
# (k, k) and $y$ of shape $(H - d(k-1),\ W - d(k-1))$. Its backward has two parts: $\bar x$ (a
# weighted copy of the filter stamped for each $\bar y[u, v]$) and $\bar w$.
#
# 1. Derive $\bar w[i, j]$. (Which input value multiplied $w[i, j]$ in output $(u, v)$?)
# 2. Run the template, whose $\bar w$ is a first attempt, then the gradcheck cell. Which input
#    does gradcheck complain about?
# 3. Fix `backward` until gradcheck passes.

# %% {"tags": ["planted-wrong"], "gradcheck": "gradcheck(lambda x, w: MyAtrousConv.apply(x, w, dilation=2), (mt.randn(7, 8, dtype='float64', requires_grad=True), mt.randn(3, 3, dtype='float64', requires_grad=True)))"}
class MyAtrousConv(Function):
    """y[u, v] = sum_{i, j} w[i, j] x[u + i d, v + j d]: one channel, no padding, stride 1, dilation d."""

    @staticmethod
    def forward(ctx, x, w, dilation):
        d, k = dilation, w.shape[0]
        out_h, out_w = x.shape[0] - d * (k - 1), x.shape[1] - d * (k - 1)
        y = numpy.zeros((out_h, out_w), dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                y += w[i, j] * x[i * d:i * d + out_h, j * d:j * d + out_w]     # tap (i, j) of every window
        ctx.save_for_backward(x, w)
        ctx.dilation = d
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_arrays
        d, k = ctx.dilation, w.shape[0]
        out_h, out_w = g.shape
        grad_x, grad_w = numpy.zeros_like(x), numpy.zeros_like(w)
        for i in range(k):
            for j in range(k):
                grad_x[i * d:i * d + out_h, j * d:j * d + out_w] += w[i, j] * g   # a weighted stamp per g[u, v]
                # TODO: derive dL/dw[i, j] and fix this line: a first attempt, and wrong.
                grad_w[i, j] = (g * x[i:i + out_h, j:j + out_w]).sum()
        return grad_x, grad_w

# %% {"tags": ["exercise-check"]}
try:
    gradcheck(lambda x, w: MyAtrousConv.apply(x, w, dilation=2),
              (mt.randn(7, 8, dtype='float64', requires_grad=True), mt.randn(3, 3, dtype='float64', requires_grad=True)))
    print("gradcheck passed: your backward agrees with the finite differences.")
except GradcheckError as error:
    print("gradcheck caught a wrong backward:\n", error)

# %% [markdown]
# **Solution.** The next two cells, the derivation and the corrected code, are collapsed: click
# the dots (or the bar to the left of a cell) to open them, once you have tried.

# %% [markdown] {"tags": ["solution"]}
# In output $(u, v)$ the weight $w[i, j]$ multiplied
# $x[u + i d,\ v + j d]$, so
#
# $$\bar w[i, j] = \sum_{u, v} \bar y[u, v]\; x[u + i d,\ v + j d],$$
#
# the correlation of the input with the output gradient *at the same dilation*. The first
# attempt read $x[u + i, v + j]$: it forgot the dilation, which is right only for $d = 1$, so
# gradcheck flags input 1, the filter, while input 0 passes. (This is exactly the bug a test
# with $d = 1$ alone would never find: check every argument.)

# %% {"tags": ["solution"]}
class MyAtrousConv(Function):
    """y[u, v] = sum_{i, j} w[i, j] x[u + i d, v + j d].

    Backward: dL/dx stamps g[u, v] w at (u, v), taps d apart; dL/dw[i, j] = sum_{u, v} g[u, v] x[u + i d, v + j d].
    """

    @staticmethod
    def forward(ctx, x, w, dilation):
        d, k = dilation, w.shape[0]
        out_h, out_w = x.shape[0] - d * (k - 1), x.shape[1] - d * (k - 1)
        y = numpy.zeros((out_h, out_w), dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                y += w[i, j] * x[i * d:i * d + out_h, j * d:j * d + out_w]
        ctx.save_for_backward(x, w)
        ctx.dilation = d
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_arrays
        d, k = ctx.dilation, w.shape[0]
        out_h, out_w = g.shape
        grad_x, grad_w = numpy.zeros_like(x), numpy.zeros_like(w)
        for i in range(k):
            for j in range(k):
                grad_x[i * d:i * d + out_h, j * d:j * d + out_w] += w[i, j] * g
                grad_w[i, j] = (g * x[i * d:i * d + out_h, j * d:j * d + out_w]).sum()
        return grad_x, grad_w

# %%
gradcheck(lambda x, w: MyAtrousConv.apply(x, w, dilation=2),
          (mt.randn(7, 8, dtype='float64', requires_grad=True), mt.randn(3, 3, dtype='float64', requires_grad=True)))

# %% [markdown]
# And it agrees with the library's `F.conv2d(..., dilation=2)`, forward and backward:

# %%
x = mt.randn(9, 11, dtype="float64", requires_grad=True)
w = mt.randn(3, 3, dtype="float64", requires_grad=True)
ours = MyAtrousConv.apply(x, w, dilation=2)
ours.sum().backward()
grads = x.grad.numpy().copy(), w.grad.numpy().copy()
x.grad = w.grad = None
library = F.conv2d(x[None, None], w[None, None], dilation=2)[0, 0]
library.sum().backward()
print("forward equal:", numpy.allclose(ours.numpy(), library.numpy()),
      "  dL/dx equal:", numpy.allclose(grads[0], x.grad.numpy()),
      "  dL/dw equal:", numpy.allclose(grads[1], w.grad.numpy()))

# %% [markdown]
# ## What you have seen
#
# - A convolution is a weighted sum over a $k \times k$ window of every input channel, the same
#   weights at every position; its output has
#   $\lfloor (H + 2p - d(k-1) - 1)/s \rfloor + 1$ rows.
# - im2col copies every window into a column, and the convolution becomes one matrix product.
# - Its backward: the weight gradient correlates input and output gradient; the input gradient
#   is the transposed convolution (lesson 4).
# - Dilation spreads the taps: the receptive field grows exponentially with mixed dilations,
#   at full resolution; repeating one dilation leaves holes (gridding).
#
# **Next:** lessons 6 to 10 put these pieces together: U-Net, atrous networks, the Swin
# transformer, HRNet, and running it all on a GPU.
