# Lesson 4 source: python lessons/build_notebooks.py turns this file into lessons/04_convolution.ipynb.

# %%
# Lesson 4 · Convolution. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks image and feature-map sizes.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
SIZE = (64, 128) if FAST else (128, 256)    # (height, width) of the street scene
TIMING = (2, 8, 24) if FAST else (4, 16, 48)   # (batch, channels, side) of the maps the three convs are timed on

# %% [markdown]
# # Lesson 4 · Convolution
#
# Every network in this course is mostly convolutions. This lesson opens one up: the formula,
# the output size, how it is computed fast (**im2col + GEMM**), its backward, and the operation
# that backward turns out to be, the **transposed convolution**: a convolution's adjoint, which
# lesson 5 then uses forward, to upsample. Then you write the convolution and its transpose,
# forward and backward (section 6). About 30 minutes to read, and as long for the exercises.

# %%
# %matplotlib inline
import inspect
import time

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, exercises, gradcheck, shapes
from minitorch_seg.data import generate_scene
from minitorch_seg.reference.conv import conv2d_im2col, conv2d_loops, im2col

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
# window moves per output pixel) and $d$ the **dilation** (how far apart the filter's taps are:
# 1 for an ordinary filter; lesson 7 shows what larger ones buy, the atrous convolution).
# Strictly this is a cross-correlation (the filter is not flipped), as in every deep learning
# library. The same filter slides over every position: a few weights, reused everywhere, and a
# feature detected the same way wherever it is.
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
# The price is memory: every input pixel is copied into up to $k^2$ columns. The project's
# `reference.conv.im2col(x, kernel_size, stride, padding, dilation)` builds the columns of a NumPy
# array $(N, C, H, W)$: an $(N,\ C k^2,\ H_{out} W_{out})$ array, from one strided slice of the padded
# input per filter tap (read its code: `inspect.getsource(im2col)`). Here is the column matrix of a
# 4 x 6 image (values 0..23) for a 3 x 3 filter, stride 1, no padding: the output is 2 x 4, so
# there are 8 columns, one per output position $(u, v)$ (column $u W_{out} + v$), each a flattened
# window of 9 taps. Row $i k + j$ holds tap $(i, j)$ of every window. The window of output
# position (1, 2) is outlined in the image, and its column in the matrix.

# %%
tiny = numpy.arange(24, dtype=numpy.float32).reshape(1, 1, 4, 6)                           # (N, C, H, W)
columns = im2col(tiny, 3)[0]                                                               # (9 taps, 2 * 4 positions)
out_h, out_w = 2, 4
u, v = 1, 2                                                                      # the outlined output position
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [6, 8]}, layout="constrained")
for ax, m in [(left, tiny[0, 0]), (right, columns)]:
    ax.imshow(m, cmap="Blues", vmin=0, vmax=40)
    for (i, j), value in numpy.ndenumerate(m):
        ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=9)
left.add_patch(plt.Rectangle((v - 0.5, u - 0.5), 3, 3, fill=False, edgecolor="C1", lw=3))
right.add_patch(plt.Rectangle((u * out_w + v - 0.5, -0.5), 1, 9, fill=False, edgecolor="C1", lw=3))
left.set_title("image (4 x 6)")
left.set_xticks(range(6))
left.set_yticks(range(4))
left.set_xlabel("column")
left.set_ylabel("row")
right.set_title(f"im2col: 9 rows (taps) x {out_h * out_w} columns (output positions)")
right.set_xticks(range(out_h * out_w), [f"{p}\n({p // out_w},{p % out_w})" for p in range(out_h * out_w)])
right.set_yticks(range(9), [f"{r}  ({r // 3},{r % 3})" for r in range(9)])
right.set_xlabel("output position u * 4 + v, and (u, v)")
right.set_ylabel("filter tap i * 3 + j, and (i, j)");

# %% [markdown]
# The GEMM on those columns gives the convolution:

# %%
w = numpy.arange(9, dtype=numpy.float32).reshape(1, 1, 3, 3)
gemm = (w.reshape(1, 9) @ columns).reshape(out_h, out_w)
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
# ### Fewer multiplications: Winograd's minimal filtering
#
# im2col does exactly the multiplications of the formula: $k^2$ per output per input channel.
# Winograd's algorithm (Lavin & Gray, 2016) does fewer. In one dimension, two outputs of a 3-tap
# filter $g$ over four inputs $d$ take 6 multiplications,
#
# $$y_0 = d_0 g_0 + d_1 g_1 + d_2 g_2, \qquad y_1 = d_1 g_0 + d_2 g_1 + d_3 g_2,$$
#
# but 4 are enough (**F(2, 3)**):
#
# $$m_0 = (d_0 - d_2)\, g_0,\quad m_1 = (d_1 + d_2)\,\tfrac{g_0 + g_1 + g_2}{2},\quad
# m_2 = (d_2 - d_1)\,\tfrac{g_0 - g_1 + g_2}{2},\quad m_3 = (d_1 - d_3)\, g_2,$$
# $$y_0 = m_0 + m_1 + m_2, \qquad y_1 = m_1 - m_2 - m_3.$$
#
# Check it by expanding: $m_1 + m_2 = d_1 g_1 + d_2 (g_0 + g_2)$, so $y_0 = d_0 g_0 + d_1 g_1 +
# d_2 g_2$; $m_1 - m_2 = d_1 (g_0 + g_2) + d_2 g_1$, so $y_1 = d_1 g_0 + d_2 g_1 + d_3 g_2$. The
# filter's sums are computed once per filter, not once per window, and the input's sums are
# additions only; the multiplications are what a convolution spends its time on.

# %%
d, g = numpy.array([3.0, -1.0, 4.0, 2.0]), numpy.array([0.5, -2.0, 1.5])
m = [(d[0] - d[2]) * g[0], (d[1] + d[2]) * (g[0] + g[1] + g[2]) / 2,
     (d[2] - d[1]) * (g[0] - g[1] + g[2]) / 2, (d[1] - d[3]) * g[2]]                # 4 multiplications
print("direct, 6 multiplications: ", [float(d[0:3] @ g), float(d[1:4] @ g)])
print("F(2, 3), 4 multiplications:", [float(m[0] + m[1] + m[2]), float(m[1] - m[2] - m[3])])

# %% [markdown]
# In matrices, $y = A^\top [(G g) \odot (B^\top d)]$, with $\odot$ elementwise and
# $B^\top$, $A^\top$ holding only $0$ and $\pm 1$. Applying it along the rows and then along the
# columns of a 4 x 4 patch gives **F(2x2, 3x3)**: $Y = A^\top [(G g G^\top) \odot (B^\top d B)] A$,
# a 2 x 2 block of outputs of a 3 x 3 filter from $4 \times 4 = 16$ multiplications instead of
# $4 \times 9 = 36$: 2.25x fewer. Summed over input channels, the 16 products of every patch
# become 16 matrix products, one per position of the 4 x 4 transformed patch, each with
# $C_{in}$ (not $9 C_{in}$) as its inner size. Its backward is the same algorithm: the input
# gradient of a stride-1 conv is a conv with the flipped filter. The library has it in
# `functional/winograd.py` for 3 x 3, stride-1 convolutions:

# %%
from minitorch_seg.functional import winograd

x = numpy.random.default_rng(0).standard_normal((2, 8, 12, 10))                      # float64 (N, C, H, W)
w = numpy.random.default_rng(1).standard_normal((4, 8, 3, 3))
by_winograd = winograd.conv3x3(x, w, padding=(1, 1))
direct = conv2d_loops(x, w, padding=1)
print("largest difference from the loops, float64:", numpy.abs(by_winograd - direct).max())
x32, w32 = x.astype(numpy.float32), w.astype(numpy.float32)
for name, y32 in [("Winograd", winograd.conv3x3(x32, w32, padding=(1, 1))), ("loops   ", conv2d_loops(x32, w32, padding=1))]:
    print(f"{name} in float32, largest error / largest output: {numpy.abs(y32 - direct).max() / numpy.abs(direct).max():.1e}")

# %% [markdown]
# Fewer multiplications is not the same as faster. The 16 matrix products have an inner size of
# $C_{in}$, and a BLAS library runs such skinny products well below its peak, and the transforms
# are extra passes over four times the input and output. On a 2-core x86-64 VM (2026-12-02,
# loaded by other jobs; CPU time), it was 1.1 to 3 times slower than im2col below 64 channels and within about 10% of it
# at 64 to 128, with no gain on a U-Net training step (`benchmarks/results/2026-12-02-winograd.md`).
# Measured again on 2026-12-03, its products through Intel MKL on a 2-core Xeon, forward and backward
# took 1.04 to 3 times the default path's time, shape by shape
# (`benchmarks/results/2026-12-03-xeon-limits.md`). So `F.conv2d` uses it only when switched on:
# `F.conv.WINOGRAD_MIN_CHANNELS = 64` sends every 3 x 3 stride-1 conv with at least 64 input and
# output channels through it. Measure before you believe an operation count.

# %% [markdown]
# ### No copy at all: one product, then shifted sums
#
# im2col's cost is often not its multiplications but its copy: $k^2 C_{in}$ values written and read
# per output pixel. Swap the order instead. First multiply every tap's weights with the *unshifted*
# input, $Z_{ij} = w[:, :, i, j]\, x_{pad}$: one product with $k^2 C_{out}$ rows and no copy. Then
# $y[u, v] = \sum_{i,j} Z_{ij}[u + i d, v + j d]$. Seen as a flat array of the padded image, each
# term is $Z_{ij}$ shifted by a constant, $i d W_p + j d$, so the sum is $k^2$ additions of
# contiguous slices. (Pixels near the right edge wrap into the next row; they are computed and
# dropped.) The library does not even pad: in the unpadded image a shift is still a constant
# offset where the output is as wide as the input, and what a row's slice reads from the next row
# is a column of $Z_{ij}$ that no output needs, so it zeroes those columns first
# (`_correlate_shifted` in `functional/conv.py`). This writes $k^2 C_{out}$ values per pixel
# instead of copying $k^2 C_{in}$, so it pays
# where a conv has fewer outputs than inputs, as the first conv of each U-Net decoder level has
# (its input is the skip and the upsampled map side by side). On a 2-core AVX-512 machine, a
# 32 -> 16 conv at 4 x 128 x 256 took 9 ms this way against 17 ms through im2col
# (`benchmarks/results/2026-12-02-xeon-shared-columns.md`). Yet `F.conv2d` on the CPU now takes
# MEC's row band for these convs (below): it copies only $C_{in}$ values a pixel, and measured
# faster still. Each algorithm wins against the one before it; count the bytes of each.

# %% [markdown]
# ### A third of the copy: MEC
#
# The copy im2col makes is mostly repeats. Output row $u$ reads padded rows $u, u+1, u+2$ (a
# 3 x 3 kernel, stride 1); output row $u+1$ reads rows $u+1, u+2, u+3$. im2col copies row $u+1$
# into both rows' columns, and into a third. **MEC** (memory-efficient convolution, Cho and Brand,
# 2017) copies each padded row once for each *horizontal* tap only:
#
# $$L[a, c, j, v] = x_{pad}[c,\ a,\ v + j],$$
#
# $k$ copies of the input instead of $k^2$. Laid out in that order, the $k$ rows $a = u, \dots,
# u+k-1$ that output row $u$ needs sit one after another in memory: row $u$'s patch matrix, of
# shape $(k C_{in} k) \times W_o$, is a *view* of $L$ starting $C_{in} k W_o$ values further
# on for each next output row. No copy for the vertical taps: the GEMMs find them by where they
# start reading. With the filter laid out to match, $w'[o, (i, c, j)] = w[o, c, i, j]$, output
# row $u$ is one matrix product, $y[:, u, :] = w' L_u$, and NumPy's `matmul` runs all the rows'
# products from one strided view:

# %%
from numpy.lib.stride_tricks import as_strided

x = numpy.random.default_rng(2).standard_normal((1, 3, 6, 7))
w = numpy.random.default_rng(3).standard_normal((4, 3, 3, 3))
c_in, k, out_h, out_w = 3, 3, 6, 7                      # padding 1 keeps the 6 x 7 size
x_pad = numpy.pad(x[0], ((0, 0), (1, 1), (1, 1)))       # (C, H + 2, W + 2)
taps = numpy.stack([x_pad[:, :, j:j + out_w] for j in range(k)], axis=2)      # (C, H + 2, k, W): the k horizontal taps
lowered = taps.transpose(1, 0, 2, 3).copy()                                  # (H + 2, C, k, W), one copy
item = lowered.itemsize
patches = as_strided(lowered, shape=(out_h, k * c_in * k, out_w),              # one (K, W) view per output row
                     strides=(c_in * k * out_w * item, out_w * item, item))
w_rows = w.transpose(0, 2, 1, 3).reshape(4, k * c_in * k)                    # w'[o, (i, c, j)]
y = (w_rows @ patches).transpose(1, 0, 2)                                    # (out_h, 4, W) -> (4, out_h, W)
print("largest difference from the loops:", numpy.abs(y - conv2d_loops(x, w, padding=1)[0]).max())
print(f"values copied: im2col {k * k * c_in * out_h * out_w}, MEC {lowered.size}")

# %% [markdown]
# The price is smaller products: one per output row, $W_o$ columns wide, where im2col's span
# several rows. For narrow maps the library puts several samples side by side in each product
# (`functional/mec.py`). On the CPU, `F.conv2d` computes this way every ungrouped convolution
# whose output rows share input rows (stride 1 and no dilation in height) and whose maps are not
# tiny (more than 512 output pixels a sample; below that im2col's copy is small and its products
# larger), its backward too (both gradients of section 4 come from MEC's copy of $\bar y$). On the 2-core
# test machine that took about 20 ms off a 305 ms U-Net step
# (`benchmarks/results/2026-12-02-xeon-mec.md`).
#
# Small products have a price of their own, and a way out. A BLAS library multiplies large
# matrices by first copying ("packing") blocks of both into the layout its inner loop reads
# fastest; that copy pays off over a large product. OpenBLAS's AVX-512 kernels also have a second
# way for small products, reading the operands where they lie, which they take up to $100^3$
# multiply-adds. A 16 -> 32-channel conv's row product at 128 x 256, $(32 \times 144)$ by
# $(144 \times 256)$, is 1.18 million: just over. Cut along the output channels into two
# $(16 \times 144)$ by $(144 \times 256)$ halves (views, nothing copied), each half goes the
# second way, and on one Zen 4 core they ran at 95-107 GFLOP/s against 76-82 whole. The
# values are bitwise the same: both ways add each dot product along $k C_{in} k$ in the same
# order, the packed one in runs of at most 448 terms, which the library follows for longer
# products (`minitorch_seg/small_products.py`). On the U-Net step: about 15 ms of 270
# (`benchmarks/results/2026-12-04-zen4-small-products.md`).
#
# The forward goes one step further. The $k$ horizontal taps are the same padded row read from
# $k$ starting points, and a product can start reading wherever it likes: copy only `x_pad`'s
# rows, laid out as `(H + 2, C, W + 2)`, and compute each output row as $k$ products, one per
# kernel column $j$, each reading from $j$ columns further on, added up. One copy of the input
# instead of $k$; the weight gradient keeps MEC's copies, whose products are $k$ times taller.
# With $w_j[o, (i, c)] = w[o, c, i, j]$, the rows $(i, c)$ of output row $u$'s patch again sit one
# after another in memory:

# %%
rows = x_pad.transpose(1, 0, 2).copy()                                  # (H + 2, C, W + 2), one copy
wide = out_w + 2                                                        # a padded row's length


def row_patches(j):                                                     # (K, W) per output row, from column j on
    return as_strided(rows.reshape(-1)[j:], shape=(out_h, k * c_in, out_w),
                      strides=(c_in * wide * item, wide * item, item))


w_cols = [w[:, :, :, j].transpose(0, 2, 1).reshape(4, k * c_in) for j in range(k)]    # w_j[o, (i, c)]
y = sum(w_cols[j] @ row_patches(j) for j in range(k)).transpose(1, 0, 2)
print("largest difference from the loops:", numpy.abs(y - conv2d_loops(x, w, padding=1)[0]).max())
print(f"values copied: MEC {lowered.size}, the padded rows {rows.size}")

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
# gradient: the **transposed convolution** of section 5. `gradcheck` confirms the library's
# backward for every input, with stride, padding and dilation all in play:

# %%
gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=2, dilation=2),
          (mt.randn(2, 3, 9, 10, dtype="float64", requires_grad=True),
           mt.randn(4, 3, 3, 3, dtype="float64", requires_grad=True),
           mt.randn(4, dtype="float64", requires_grad=True)))

# %% [markdown]
# **One im2col for both gradients.** At stride 1 the sum for $\bar w$ can be read the other way
# round. Put $a = u + i d$ and $e = v + j d$, and take $\bar y$ as zero off its grid:
#
# $$\bar w[o, c, i, j] = \sum_{n, a, e} x_{pad}[n, c, a, e]\; \bar y[n, o,\ a - i d,\ e - j d].$$
#
# For one pixel $(a, e)$ of $x$, the numbers $\bar y[n, o, a - i d, e - j d]$ over all
# $(o, i, j)$ form one im2col column of $\bar y$, with the taps in reverse order. Those are the
# columns that $\bar x$ is built from, because at stride 1 the transposed convolution of
# $\bar y$ is a correlation with the flipped filter. So the library builds them once per tile and
# uses them twice: times the flipped filter for $\bar x$, times $x$ for $\bar w$. The im2col of
# $x$, nine times the input, is never built. On the 2-core test machine that took 38 ms off a
# 429 ms U-Net step (`benchmarks/results/2026-12-02-xeon-shared-columns.md`). Using them twice pays
# most when the second product finds them still in the core's own cache, so a tile's columns are
# kept to about the size of its L2 (1 MiB on the EPYCs): whole samples a tile took up to 4.3 ms
# longer a conv (`benchmarks/results/2026-12-04-zen4-tiles.md`).

# %% [markdown]
# ## 5. Convolution and transposed convolution are each other's backward
#
# A convolution with a fixed filter is a linear map of its input: $y = A x$ for some big sparse
# matrix $A$. For any linear map, a small change $dx$ changes the loss by
#
# $$dL = \langle \bar y, dy \rangle = \langle \bar y, A\, dx \rangle = \langle A^\top \bar y, dx \rangle
# \quad\Rightarrow\quad \bar x = A^\top \bar y,$$
#
# and $A^\top$, the **transpose** (adjoint) of the convolution, is exactly the **transposed
# convolution** (`F.conv_transpose2d`) with the same filter, stride, padding and dilation: the
# name is literal. Section 4's sum for $\bar x$ says what it does: each output gradient goes back
# to the input pixels its window read, weighted by the filter, so every output pixel **stamps a
# weighted copy of the filter** into the input's canvas, $s$ pixels from its neighbour's copy, and
# the copies add where they overlap. And the other way round: the backward of a transposed
# convolution is the convolution. The library writes each op's backward as the other op. (Lesson
# 5 runs the transposed convolution forward, as a layer that learns to upsample, and draws the
# stamps.)
#
# The test of an adjoint is $\langle A x, y \rangle = \langle x, A^\top y \rangle$ for random $x$
# and $y$ (in float64, to about 15 digits):

# %%
x = mt.randn(2, 3, 9, 11, dtype="float64")
w = mt.randn(4, 3, 3, 3, dtype="float64")                    # conv: 3 -> 4 channels
y = mt.randn(2, 4, 5, 6, dtype="float64")                    # the conv's output shape at stride 2, padding 1
conv_x = F.conv2d(x, w, stride=2, padding=1)
transposed_y = F.conv_transpose2d(y, w, stride=2, padding=1)
print("conv:", x.shape, "->", conv_x.shape, "   transposed conv:", y.shape, "->", transposed_y.shape)
print("<conv(x), y>           =", (conv_x * y).sum().item())
print("<x, conv_transpose(y)> =", (x * transposed_y).sum().item())

# %% [markdown]
# and the gradient of a convolution with respect to its input *is* the transposed convolution of
# the upstream gradient; the library's `ConvTranspose2d.backward` is a `conv2d`:

# %%
x.requires_grad_()
F.conv2d(x, w, stride=2, padding=1).backward(y)
print("conv2d's input gradient equals conv_transpose2d(grad):",
      numpy.allclose(x.grad.numpy(), transposed_y.numpy()))
print(inspect.getsource(F.conv.ConvTranspose2d.backward))

# %% [markdown]
# One detail: with stride $s > 1$ the floor in the output size drops up to $s - 1$ rows, so
# several input sizes give the same output size; `output_padding` tells the transposed
# convolution which one to go back to: $(H + 2p - d(k-1) - 1) \bmod s$ rows, and likewise columns.
# With stride, padding and dilation all in play:

# %%
x = mt.randn(2, 3, 9, 10, dtype="float64", requires_grad=True)
w = mt.randn(4, 3, 3, 3, dtype="float64")
y = F.conv2d(x, w, stride=2, padding=2, dilation=2)                                      # (2, 4, 5, 5)
g = mt.randn(*y.shape, dtype="float64")
y.backward(g)
dropped = tuple((n + 2 * 2 - 2 * (3 - 1) - 1) % 2 for n in x.shape[2:])                  # rows, columns
back = F.conv_transpose2d(g, w, stride=2, padding=2, dilation=2, output_padding=dropped)
print("input", tuple(x.shape), "-> output", tuple(y.shape), "-> output_padding", dropped, "-> back to",
      tuple(back.shape))
print("dL/dx equals conv_transpose2d(g, w):", numpy.allclose(x.grad.numpy(), back.numpy()))

# %% [markdown]
# ## 6. Exercises: write the convolution and its transpose
#
# Now you write the code: the forward and the backward of `conv2d` and of `conv_transpose2d`,
# for one group, with stride, padding and dilation. Each stub below has exactly the signature of
# the library function of the same name; its last lines (given) turn ints into $(h, w)$ pairs, so
# `forward` always receives pairs. Inside `forward` and `backward` you work on NumPy arrays, as
# the library's `Function`s do. The cell after each stub calls `exercises.check`, which runs your
# function and the library's on many **drawn** inputs: batches, channels, odd and even non-square
# sides from 1, kernels 1 to 3 (non-square too), strides 1 to 3, padding 0 to 2, dilation 1 to 3,
# with and without a bias. It compares the outputs and the gradients of input, weight and bias at
# float64 precision, and your gradients with finite differences; when something disagrees it
# shrinks the input to the smallest one that still fails and prints it.
#
# One fixed test shape would not do: a weight gradient that forgets the dilation is right
# whenever $d = 1$, an input gradient that forgets the stride whenever $s = 1$, and a padding
# cropped from the wrong side whenever $p = 0$.
#
# Two ways to organise the computation, both fine:
#
# - **im2col + GEMM** (section 3): `im2col(x, (kh, kw), stride, padding, dilation)` gives the
#   $(N,\ C k_h k_w,\ H_{out} W_{out})$ columns, and `weight.reshape(O, -1) @ columns` the output.
# - **a loop over the $k_h k_w$ taps**: tap $(i, j)$ reads one strided slice of the padded input,
#   `xpad[:, :, i*dh : i*dh + sh*(Ho-1) + 1 : sh, j*dw : j*dw + sw*(Wo-1) + 1 : sw]`, an
#   $(N, C, H_{out}, W_{out})$ array (check it against the formula of section 1), and adds
#   `w[:, :, i, j]` $(O, C)$ times it to the output: `numpy.einsum("oc,ncuv->nouv", ...)`.
#   $k_h k_w$ small matrix products, and the slices make the backward easy to see.

# %% [markdown]
# **Exercise 1: `conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)`**,
# for `groups=1`: $x$ $(N, C, H, W)$, $w$ $(O, C, k_h, k_w)$, $b$ $(O,)$ or None, and
#
# $$y[n, o, u, v] = b[o] + \sum_{c, i, j} w[o, c, i, j]\; x_{pad}[n, c,\ u s_h + i d_h,\ v s_w + j d_w],$$
#
# of shape $(N, O, H_{out}, W_{out})$ (section 2). Derive the backward on paper first, starting
# from section 4's sums, and turn each into array code:
#
# - $\bar w[:, :, i, j]$: which slice of $x_{pad}$ did tap $(i, j)$ multiply? (An $(O, C)$
#   result, summed over $n, u, v$.)
# - $\bar x$: the forward *read* the slice of tap $(i, j)$ from $x_{pad}$. What does the
#   backward of reading a slice do with the incoming gradient, and where do the contributions of
#   overlapping taps go (lesson 1: a fan-out)? Work on a zero array shaped like $x_{pad}$, and
#   remember that the padding is not part of the input. (With im2col in the forward, this is
#   im2col's adjoint, "col2im", which you write.)
# - $\bar b$: $b[o]$ is added to every $(n, u, v)$.
#
# Save in `ctx` what the backward needs (`ctx.save_for_backward(...)` for arrays, plain
# attributes for the rest), and return one gradient per array input: $x$, $w$, $b$.

# %% {"tags": ["exercise"], "exercise": "conv2d"}
class Conv2d(Function):
    """y[n, o, u, v] = b[o] + sum_{c, i, j} w[o, c, i, j] xpad[n, c, u s + i d, v s + j d] (groups 1)."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation):
        # x (N, C, H, W), w (O, C, kh, kw), b (O,) or None; stride, padding, dilation: (h, w) pairs
        raise NotImplementedError("Conv2d.forward: y (N, O, Ho, Wo); save what the backward needs")

    @staticmethod
    def backward(ctx, g):
        # g (N, O, Ho, Wo): return the gradients of x, w and b
        raise NotImplementedError("Conv2d.backward: the gradients of x (N, C, H, W), w and b you derived")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    assert groups == 1, "this exercise covers groups=1 only"
    return Conv2d.apply(input, weight, bias, stride=shapes.pair(stride, "stride"),
                        padding=shapes.pair(padding, "padding"), dilation=shapes.pair(dilation, "dilation"))

# %% {"tags": ["exercise-check"], "exercise": "conv2d"}
try:
    exercises.check("conv2d", conv2d)
    print("conv2d passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# **Exercise 2: `conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
# groups=1, dilation=1)`**, for `groups=1` (the argument order is torch's). Here $x$ is
# $(N, C_{in}, H, W)$ and the weight $(C_{in}, C_{out}, k_h, k_w)$, as in torch: indexed by the
# *input* channel first. The forward is section 5's stamping, with taps $d$ apart: every input
# value $x[n, c, u, v]$ adds a copy of its filter $w[c]$ $(C_{out}, k_h, k_w)$, scaled by itself,
# into a canvas, tap $(i, j)$ landing at $(u s + i d,\ v s + j d)$; copies add where they overlap.
# The canvas has $(H - 1)s + d(k_h - 1) + 1 + q$ rows, where $q$ is `output_padding` (extra rows at
# the bottom: the rows section 2's floor lost, section 5), and cropping $p$ rows off the top and
# the bottom leaves
#
# $$H_{out} = (H - 1)s - 2p + d(k_h - 1) + q + 1$$
#
# (likewise the columns); then the bias is added. Tap by tap: tap $(i, j)$ of *all* the copies
# lands on one strided grid of the canvas, so each tap is one small product and one strided add.
#
# Derive the backward on paper first. What is the adjoint of the crop? Each tap *wrote* into a
# strided grid of the canvas: what does its backward do with the canvas's gradient, for $x$ and
# for $w$? Then compare your backward with your `conv2d`'s forward, and your forward with its
# backward: each op's backward is the other one's forward (a useful check on both).

# %% {"tags": ["exercise"], "exercise": "conv_transpose2d"}
class ConvTranspose2d(Function):
    """The adjoint of conv2d (groups 1): x[n, c, u, v] adds x[n, c, u, v] w[c] at (u s, v s), taps d apart; crop p."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, dilation):
        # x (N, C_in, H, W), w (C_in, C_out, kh, kw), b (C_out,) or None; the rest: (h, w) pairs
        raise NotImplementedError("ConvTranspose2d.forward: y (N, C_out, Ho, Wo); save what the backward needs")

    @staticmethod
    def backward(ctx, g):
        # g (N, C_out, Ho, Wo): return the gradients of x, w and b
        raise NotImplementedError("ConvTranspose2d.backward: the gradients of x, w and b you derived")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    assert groups == 1, "this exercise covers groups=1 only"
    return ConvTranspose2d.apply(input, weight, bias, stride=shapes.pair(stride, "stride"),
                                 padding=shapes.pair(padding, "padding"),
                                 output_padding=shapes.pair(output_padding, "output_padding"),
                                 dilation=shapes.pair(dilation, "dilation"))

# %% {"tags": ["exercise-check"], "exercise": "conv_transpose2d"}
try:
    exercises.check("conv_transpose2d", conv_transpose2d)
    print("conv_transpose2d passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# When a check fails it raises `exercises.ExerciseFailed`, whose message is the report; the
# smallest failing input is kept on the error, so you can run both functions on it by hand:
#
# ```python
# try:
#     exercises.check("conv2d", conv2d)
# except exercises.ExerciseFailed as failure:
#     small = failure.example                      # .args and .kwargs of the call
#     print(small.call(conv2d), small.call(F.conv2d))
# ```

# %% [markdown]
# ## What you have seen
#
# - A convolution is a weighted sum over a $k \times k$ window of every input channel, the same
#   weights at every position; its output has
#   $\lfloor (H + 2p - d(k-1) - 1)/s \rfloor + 1$ rows.
# - im2col copies every window into a column, and the convolution becomes one matrix product.
#   Winograd's F(2x2, 3x3) computes a 3 x 3 conv with 16 multiplications per 2 x 2 outputs
#   instead of 36; whether that is faster depends on the machine, so it is measured.
# - Its backward: the weight gradient correlates input and output gradient; the input gradient
#   is the transposed convolution, which stamps a weighted copy of the filter per output pixel.
# - Convolution and transposed convolution are adjoint: each is the other's backward, and
#   $\langle A x, y\rangle = \langle x, A^\top y\rangle$ tests it. You wrote both, stride,
#   padding and dilation included.
#
# **Next:** lesson 5 runs the transposed convolution forward, as one of the ways a network
# upsamples its coarse maps back to full resolution (lesson 7 returns to dilation, the atrous
# convolution).
