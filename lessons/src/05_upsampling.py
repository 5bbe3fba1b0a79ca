# Lesson 5 source: python lessons/build_notebooks.py turns this file into lessons/05_upsampling.ipynb.

# %%
# Lesson 5 · In-network upsampling. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks image sizes and step counts.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
SIZE = (64, 128) if FAST else (128, 256)    # (height, width) of the street scene used for pictures
STEPS = 200 if FAST else 600                # steps to learn an upsampling filter in section 6

# %% [markdown]
# # Lesson 5 · In-network upsampling
#
# A segmentation network needs context: to tell road from sidewalk it has to see a large part of
# the scene, so its encoder shrinks the feature maps, by pooling or strided convolutions, 2x at a
# time, down to 1/8 or 1/32 of the input. But the answer must have one class per *input* pixel.
# So somewhere the network has to **upsample**: bring coarse feature maps back to full
# resolution, inside the network, differentiably. The notes list the ways:
#
# - **unpooling**: *nearest neighbour* (copy each value into a 2 x 2 block) and *max unpooling*
#   (put each value back where the pooling found its maximum, its "switch");
# - **transpose convolution** ("deconvolution"), which learns how to upsample;
# - and, from the libraries, **bilinear** interpolation.
#
# You will see each one's forward, its backward and its artefacts; the transposed convolution is
# lesson 4's adjoint of a convolution, here run forward as a layer. Then you write nearest
# upsampling, max pooling and max unpooling yourself. About an hour.

# %%
# %matplotlib inline
import inspect

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, exercises, shapes
from minitorch_seg.data import generate_scene
from minitorch_seg.reference.conv import conv_transpose2d_loops

mt.manual_seed(0)


def show_maps(maps, titles, cmap="viridis", values=False, size=2.6, vmin=None, vmax=None):
    """A row of 2-D arrays as images on one colour scale, optionally with each value written in its cell."""
    vmin = min(numpy.min(m) for m in maps) if vmin is None else vmin
    vmax = max(numpy.max(m) for m in maps) if vmax is None else vmax
    fig, axes = plt.subplots(1, len(maps), figsize=(size * len(maps), size), squeeze=False)
    for ax, m, title in zip(axes[0], maps, titles):
        m = numpy.asarray(m)
        ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if values:
            for (i, j), v in numpy.ndenumerate(m):
                dark = plt.get_cmap(cmap)((v - vmin) / max(vmax - vmin, 1e-12))[:3] < (0.5, 0.5, 0.5)
                ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=8, color="w" if dark.all() else "k")
    return fig

# %% [markdown]
# What the encoder does to a picture: each 2x average pooling halves the resolution. Thin things
# (poles, signs, people) are the first to blur away; upsampling has to bring the resolution back.

# %%
scene = generate_scene("val", 0, size=SIZE)
image = mt.tensor(scene.image.transpose(2, 0, 1)[None].astype(numpy.float32) / 255)    # (1, 3, H, W)
pyramid = [image] + [F.avg_pool2d(image, 2 ** k) for k in (1, 2, 3)]
fig, axes = plt.subplots(1, 4, figsize=(14, 2.2))
for ax, level, k in zip(axes, pyramid, range(4)):
    ax.imshow(level.numpy()[0].transpose(1, 2, 0))
    ax.set_title(f"1/{2 ** k}: {level.shape[2]} x {level.shape[3]}")
    ax.axis("off")

# %% [markdown]
# ## 1. Unpooling: Nearest Neighbor
#
# Just duplicate the value, e.g. $2 \rightarrow \begin{bmatrix} 2 & 2 \\ 2 & 2 \end{bmatrix}$, for
# each pixel in the feature map. For a factor of 2:
#
# $$y[2u + a,\ 2v + b] = x[u, v], \qquad a, b \in \{0, 1\}.$$
#
# It has no weights, it is exact for constant regions, and it makes blocks. `F.interpolate` does
# it (and more: any size, and bilinear, below):

# %%
x = mt.tensor([[[[2.0, 1.0],
                 [0.0, 3.0]]]])
print("nearest, 2 -> [[2, 2], [2, 2]]:")
print(F.interpolate(x, scale_factor=2, mode="nearest")[0, 0].numpy())

# %% [markdown]
# ## 2. Unpooling: Max Unpooling
#
# Max pooling keeps the largest value of each window and forgets where it was. **Max
# unpooling** needs that position: keep information on which element was the max, the
# **switches**, and on the way back put each value at its switch position and pad with zeros,
# e.g. $2 \rightarrow \begin{bmatrix} 0 & 2 \\ 0 & 0 \end{bmatrix}$ when the 2 came from the top
# right. SegNet's decoder unpools with the switches of the matching encoder layer, so the
# upsampled maps put their values back on the edges the encoder saw. `max_pool2d(...,
# return_indices=True)` returns the switches (as flat indices $h W + w$ into each input plane, as
# PyTorch does) and `max_unpool2d` uses them:

# %%
features = mt.tensor([[[[1.0, 2.0, 0.0, 5.0],
                        [0.5, 0.0, 1.0, 3.0],
                        [4.0, 1.0, 0.0, 0.0],
                        [2.0, 3.0, 1.0, 6.0]]]])
pooled, switches = F.max_pool2d(features, 2, return_indices=True)
unpooled = F.max_unpool2d(pooled, switches, 2)
print("switches (flat index h*W + w of each maximum):\n", switches[0, 0].numpy())
show_maps([features[0, 0].numpy(), pooled[0, 0].numpy(), unpooled[0, 0].numpy()],
          ["input (4 x 4)", "max pooled (2 x 2)", "max unpooled with the switches"], values=True);

# %% [markdown]
# Max unpooling is the backward of max pooling in disguise: pooling's output $y = x[s]$ copies
# the element at the switch $s$, so its gradient sends $\bar y$ back to the switch and zero
# everywhere else, exactly what unpooling does to $\bar y$. The library uses one scatter for both:

# %%
x = features.clone().requires_grad_()
y = F.max_pool2d(x, 2)
g = mt.randn(*y.shape)
y.backward(g)
print("max_pool2d's gradient equals max_unpool2d of the upstream gradient:",
      numpy.allclose(x.grad.numpy(), F.max_unpool2d(g, switches, 2).numpy()))

# %% [markdown]
# ## 3. Transpose Convolution (Deconvolution)
#
# The unpoolings have no weights. A **transposed convolution** learns its upsampling. Lesson 4
# met it as the backward of a convolution, its adjoint $A^\top$ (section 5 there): the op that
# sends each output gradient back to the pixels its window read. Run forward on a small map, with
# a stride, the same op makes a larger map. The notes describe it in two sentences: *the output
# contains copies of the filter weighted by the input; sum at areas of overlap.* With stride $s$,
# input $x$ and a $k \times k$ filter $w$:
#
# $$y[s u + i,\ s v + j] \mathrel{+}= x[u, v]\, w[i, j] \quad \text{for every input pixel } (u, v) \text{ and filter tap } (i, j).$$
#
# Each input pixel stamps a copy of the filter, scaled by its value, $s$ pixels from its
# neighbour's copy; where copies overlap, they add. Here are the four copies that a 2 x 2 input
# makes with a 3 x 3 filter at stride 2 (each computed by the library on an input that is zero
# except at one pixel), and their sum:

# %%
x = mt.tensor([[[[1.0, 2.0],
                 [3.0, 4.0]]]])
w = mt.tensor([[[[1.0, 1.0, 1.0],
                 [1.0, 2.0, 1.0],
                 [1.0, 1.0, 1.0]]]])
copies = []
for u in range(2):
    for v in range(2):
        one_pixel = numpy.zeros((1, 1, 2, 2), numpy.float32)
        one_pixel[0, 0, u, v] = x[0, 0, u, v].item()
        copies.append(F.conv_transpose2d(mt.tensor(one_pixel), w, stride=2)[0, 0].numpy())
total = F.conv_transpose2d(x, w, stride=2)[0, 0].numpy()
show_maps(copies + [total], [f"copy for x[{u}, {v}] = {x[0, 0, u, v].item():g}" for u in range(2) for v in range(2)]
          + ["sum: the transposed conv"], values=True, size=2.5);

# %% [markdown]
# That is the whole algorithm, and the project's loop reference writes it exactly so, one
# weighted copy per input pixel (the fast version in `functional/conv.py` does the same sums with
# one matrix product and $k^2$ strided adds):

# %%
print(inspect.getsource(conv_transpose2d_loops))
print("loops equal the library:", numpy.allclose(conv_transpose2d_loops(x.numpy(), w.numpy(), stride=2)[0, 0], total))

# %% [markdown]
# ### Cropping to exactly 2x
#
# The stamps of an $H$-pixel input at stride $s$ cover $(H - 1)s + k$ pixels: 5 for $H = 2$,
# $k = 3$, $s = 2$ above, not the 4 we wanted. So the output may need cropping to make it
# exactly 2 times as large as the input. The `padding` $p$ of a transposed convolution crops $p$
# pixels from each border (it is the padding of the convolution it is the transpose of), and
# `output_padding` adds pixels back on one side:
#
# $$H_{out} = (H - 1)\,s - 2p + d\,(k - 1) + \text{output\_padding} + 1.$$
#
# **Predict first.** A decoder layer `up = mt.nn.ConvTranspose2d(16, 8, kernel_size=3, stride=2,
# padding=1)` receives a feature map `x` of shape (2, 16, 7, 9), (N, C, H, W). What is the shape
# of `up(x)`? Write it in the cell below as a tuple of four integers, then run the check.

# %% {"tags": ["prediction"], "prediction": "transposed_conv_shape"}
answer = ...

# %% {"tags": ["prediction-check"], "prediction": "transposed_conv_shape"}
exercises.check_prediction("transposed_conv_shape", answer)

# %%
up = mt.nn.ConvTranspose2d(16, 8, kernel_size=3, stride=2, padding=1)
print("up(x) has shape", up(mt.zeros(2, 16, 7, 9)).shape)

# %% [markdown]
# The common exact-2x choices, from `shapes.conv_transpose_output_size` (the one place this
# formula lives):

# %%
for k, p, op in [(2, 0, 0), (3, 1, 0), (3, 1, 1), (4, 1, 0)]:
    out = shapes.conv_transpose_output_size(16, kernel_size=k, stride=2, padding=p, output_padding=op)
    print(f"k={k} s=2 padding={p} output_padding={op}: 16 -> {out}" + ("   exactly 2x" if out == 32 else ""))

# %% [markdown]
# ### The checkerboard artefact
#
# "Sum at areas of overlap" has a catch. With $k = 3$ and $s = 2$, some output pixels are covered
# by one stamp, some by two, some by four, in a regular pattern. Feed in a constant image and a
# filter of ones, and the output is not constant: it is a **checkerboard**. A learned filter has
# to fight this uneven overlap with its weights, and often does not quite manage: the checkerboard
# artefacts of many GAN and segmentation decoders. When the kernel size is divisible by the
# stride ($k = 2$ or $4$ at $s = 2$) every interior pixel gets the same number of stamps. The
# other remedy is to upsample with a fixed interpolation (nearest or bilinear) and then convolve.

# %%
ones = mt.ones(1, 1, 8, 8)
results = [F.conv_transpose2d(ones, mt.ones(1, 1, k, k), stride=2, padding=p, output_padding=op)[0, 0].numpy()
           for k, p, op in [(3, 1, 1), (4, 1, 0), (2, 0, 0)]]
stamps = plt.get_cmap("viridis", 5)                          # one colour per count, 0 to 4
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), layout="constrained")
for ax, result, title in zip(axes, results, ["k=3, s=2: 1, 2 and 4 stamps", "k=4, s=2: 4 inside (2 on the border)",
                                             "k=2, s=2: 1 everywhere"]):
    shown = ax.imshow(result, cmap=stamps, vmin=-0.5, vmax=4.5)
    ax.set_title(f"{title}\n(output {result.shape[0]} x {result.shape[1]})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(shown, ax=axes, ticks=range(5), shrink=0.9, label="stamps summed at the pixel");

# %% [markdown]
# ## 4. Bilinear upsampling
#
# Bilinear interpolation places each output pixel's centre back in the input and mixes the two
# nearest input pixels along each axis, weighted by closeness. Along one axis, output pixel $u$
# at scale $s$ maps to the source coordinate $\tilde u = (u + \tfrac12)/s - \tfrac12$ (pixel
# centres aligned, `align_corners=False`), and with $i = \lfloor \tilde u \rfloor$,
# $\lambda = \tilde u - i$:
#
# $$y[u] = (1 - \lambda)\, x[i] + \lambda\, x[i + 1].$$
#
# That is linear in $x$, so it is a matrix $A$ with two nonzero weights per row, and in 2-D
# $y = A_h\, x\, A_w^\top$. Its backward is the same product with the transposed matrices:
# $\bar x = A_h^\top\, \bar y\, A_w$. Here is $A$ for 4 -> 8 pixels, next to nearest's:

# %%
eye = mt.tensor(numpy.eye(4, dtype=numpy.float32)[None, None])          # resample the identity: A's columns
a_bilinear = F.interpolate(eye, size=(8, 4), mode="bilinear").numpy()[0, 0]
a_nearest = F.interpolate(eye, size=(8, 4), mode="nearest").numpy()[0, 0]
show_maps([a_nearest, a_bilinear], ["nearest: A (8 x 4)", "bilinear: A (8 x 4)"], cmap="Blues", values=True, size=3.4);

# %% [markdown]
# Interior rows of the bilinear $A$ have weights $\tfrac14, \tfrac34$: at scale 2, bilinear
# upsampling *is* a transposed convolution with the fixed filter
# $\tfrac14(1, 3, 3, 1) \otimes \tfrac14(1, 3, 3, 1)$, $k = 4$, $s = 2$, $p = 1$ (exactly so away from
# the border, where bilinear clamps). That is how FCN initialises its learnable upsampling. The
# three methods on a 4x downsampled street scene (the transposed convolution's border is darker:
# fewer stamps overlap there, where bilinear instead repeats the edge pixel):

# %%
small = F.avg_pool2d(image, 4)                                                   # (1, 3, H/4, W/4)
per_channel = small.reshape(3, 1, *small.shape[2:])                              # channels as a batch
taps = numpy.array([1, 3, 3, 1], numpy.float32) / 4
bilinear_kernel = mt.tensor(numpy.outer(taps, taps)[None, None])                 # (1, 1, 4, 4)
deconv = F.conv_transpose2d(F.conv_transpose2d(per_channel, bilinear_kernel, stride=2, padding=1),
                            bilinear_kernel, stride=2, padding=1)
upsampled = {"input (1/4)": small,
             "nearest x4": F.interpolate(small, scale_factor=4, mode="nearest"),
             "bilinear x4": F.interpolate(small, scale_factor=4, mode="bilinear"),
             "transposed conv, bilinear filter, x2 twice": deconv.reshape(1, 3, *deconv.shape[2:])}
fig, axes = plt.subplots(1, 4, figsize=(15, 2.4))
for ax, (title, t) in zip(axes, upsampled.items()):
    ax.imshow(numpy.clip(t.numpy()[0].transpose(1, 2, 0), 0, 1))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
inside = (slice(None), slice(None), slice(4, -4), slice(4, -4))
print("bilinear x2 equals the transposed conv away from the border:",
      numpy.allclose(F.interpolate(per_channel, scale_factor=2, mode="bilinear").numpy()[inside],
                     F.conv_transpose2d(per_channel, bilinear_kernel, stride=2, padding=1).numpy()[inside], atol=1e-6))

# %% [markdown]
# ## 5. Exercises: nearest upsampling, max pooling with switches, max unpooling
#
# Now you write three of this lesson's ops, forward and backward. Each stub has exactly the
# signature of the library's function of the same name; replace the `raise NotImplementedError`
# lines, then run the cell after it. That cell calls `exercises.check`, which calls your function
# and the library's on many **drawn** inputs (batch sizes, channels, odd and even sides, factors,
# kernels, strides and paddings chosen by [hypothesis](https://hypothesis.readthedocs.io)) and
# compares the outputs, the indices, and the gradients at float64 precision, then your gradients
# with finite differences. When something disagrees it prints the smallest input that still fails.
# (`exercises.describe("max_pool2d")` prints what a check draws.) Inside `forward` and `backward`
# you work on NumPy arrays, as the library's `Function`s do; `apply` wraps them, and its keyword
# arguments reach `forward` as they are.
#
# **Exercise 1: `interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None)`,**
# for `mode="nearest"` and integer factors only: `scale_factor` is an int, or a pair
# $(s_h, s_w)$, possibly unequal (the check passes only `scale_factor`). Section 1's rule, for any
# factors:
#
# $$y[n, c, u, v] = x[n, c, \lfloor u / s_h \rfloor, \lfloor v / s_w \rfloor], \qquad
# x\ (N, C, H, W) \rightarrow y\ (N, C, s_h H, s_w W).$$
#
# Derive the backward first: which outputs did $x[u, v]$ reach, and what does fan-out do to
# their gradients (lesson 1)? It is linear, so its backward is its adjoint: which familiar op is
# that? A reshape of $\bar y$ does it without a loop (`numpy.repeat` does the forward).

# %% {"tags": ["exercise"], "exercise": "interpolate"}
class NearestUpsample(Function):
    """y[n, c, u, v] = x[n, c, u // sh, v // sw]: each value copied into an sh x sw block."""

    @staticmethod
    def forward(ctx, x, sh, sw):
        raise NotImplementedError("NearestUpsample.forward: each value copied into an sh x sw block")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("NearestUpsample.backward: the gradient you derived, (N, C, H, W)")


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    raise NotImplementedError("interpolate: (sh, sw) from scale_factor (an int or a pair), then NearestUpsample.apply")

# %% {"tags": ["exercise-check"], "exercise": "interpolate"}
try:
    exercises.check("interpolate", interpolate)
    print("interpolate passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# **Exercise 2: `max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False)`,**
# for `dilation=1` and `ceil_mode=False` (the check passes no others). `kernel_size`, `stride` and
# `padding` are each an int or a pair (h, w); `stride=None` means the kernel size. Window $(u, v)$
# covers the input padded by $p$ pixels of $-\infty$ on each side, from row $u s_h$ and column
# $v s_w$ of the padded map, and
#
# $$y[n, c, u, v] = \max_{0 \le i < k_h,\ 0 \le j < k_w} x_{pad}[n, c,\ u s_h + i,\ v s_w + j], \qquad
# H_o = \left\lfloor \frac{H + 2 p_h - k_h}{s_h} \right\rfloor + 1 \text{ (likewise } W_o).$$
#
# With `return_indices=True` return `(y, switches)` too: the switches of section 2, int64
# (N, C, Ho, Wo), each maximum's position as the flat index $h W + w$ in its **unpadded**
# $H \times W$ input plane, as PyTorch returns them. (The check draws distinct values, so there
# are no ties; padding is at most half the kernel, so each window holds an input pixel.) Loop over
# the $k_h k_w$ offsets $(i, j)$ if you like, not over pixels: the strided slice of the padded map
# at offset $(i, j)$ holds that element of every window at once.
#
# Derive the backward first: $y[u, v]$ copies one element of $x$; which? What happens when two
# windows overlap ($s < k$) and share their maximum? (The switches are not differentiable: the
# backward receives a gradient for them too, and ignores it.)

# %% {"tags": ["exercise"], "exercise": "max_pool2d"}
class MaxPool(Function):
    """y = the max of each window of x padded with -inf, and the switches h * W + w of the maxima."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        raise NotImplementedError("MaxPool.forward: (y, switches), both (N, C, Ho, Wo)")

    @staticmethod
    def backward(ctx, g, *_):
        raise NotImplementedError("MaxPool.backward: the gradient you derived, (N, C, H, W)")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    raise NotImplementedError("max_pool2d: pairs from the ints, stride None -> kernel, then MaxPool.apply")

# %% {"tags": ["exercise-check"], "exercise": "max_pool2d"}
try:
    exercises.check("max_pool2d", max_pool2d)
    print("max_pool2d passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# **Exercise 3: `max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None)`.**
# The inverse direction: `input` (N, C, h, w) values and `indices` their switches, from a max
# pooling with these `kernel_size`, `stride` and `padding`; return the zero map of the size that
# pooling came from, each value written at its switch. That size is
# $(h - 1)\, s - 2p + k$ per side, section 3's transposed-convolution formula with $d = 1$ and no
# output padding; but a pooling drops the last rows that no window reached, so the caller may give
# the size instead: `output_size`, (H, W) or (N, C, H, W). (The check draws non-overlapping
# windows, $s \ge k$, as SegNet's are, so no two values share a switch.)
#
# Derive the backward first: each output element is either zero or one of the input values;
# which gradient reaches input value $y[u, v]$?

# %% {"tags": ["exercise"], "exercise": "max_unpool2d"}
class MaxUnpool(Function):
    """z = zeros (N, C, Hz, Wz) with each input value written at its switch."""

    @staticmethod
    def forward(ctx, y, switches, out_hw):
        raise NotImplementedError("MaxUnpool.forward: a zero (N, C, Hz, Wz) map, each value at its switch")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("MaxUnpool.backward: the gradient you derived for y (the switches get None)")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    raise NotImplementedError("max_unpool2d: the output size (Hz, Wz), then MaxUnpool.apply")

# %% {"tags": ["exercise-check"], "exercise": "max_unpool2d"}
try:
    exercises.check("max_unpool2d", max_unpool2d)
    print("max_unpool2d passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# ## 6. Learning to upsample
#
# A transposed convolution's filter is learned like any weight. Here one 4 x 4 filter at stride 2
# (padding 1, exactly 2x) is trained to undo a 2x average pooling of street-scene images: input
# the pooled image, target the original, loss the mean squared error. Starting from random
# weights, what filter does it find?

# %%
gray = image.mean(dim=1, keepdim=True)                       # (1, 1, H, W)
pooled = F.avg_pool2d(gray, 2)                               # (1, 1, H/2, W/2)
up = mt.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)
optimizer = mt.optim.Adam(up.parameters(), lr=0.05)
losses = []
for step in range(STEPS):
    loss = ((up(pooled) - gray) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with mt.no_grad():
    fixed = {"bilinear (F.interpolate)": F.interpolate(pooled, scale_factor=2, mode="bilinear"),
             "bilinear's filter, transposed conv": F.conv_transpose2d(pooled, bilinear_kernel, stride=2, padding=1)}
    errors = {name: ((result - gray) ** 2).mean().item() for name, result in fixed.items()}
    learned = up(pooled).numpy()[0, 0]

fig, axes = plt.subplots(1, 4, figsize=(15, 3), layout="constrained")
axes[0].semilogy(losses, color="C0", label="learned filter")
for (name, error), colour in zip(errors.items(), ["C1", "C3"]):
    axes[0].axhline(error, color=colour, ls="--", lw=1.5, label=name)
axes[0].set_ylim(0.9 * min(losses + list(errors.values())), 3 * max(errors.values()))   # the end of training
axes[0].set_xlabel("step")
axes[0].set_title("mean squared error (the first steps are off the scale)", fontsize=9)
axes[0].legend(fontsize=7)
kernels = [(axes[1], up.weight.numpy()[0, 0], "learned 4 x 4 filter"),
           (axes[2], bilinear_kernel.numpy()[0, 0], "bilinear's filter")]
limit = max(abs(kernel).max() for _, kernel, _ in kernels)
for ax, kernel, title in kernels:                             # one colour scale for both; red > 0, blue < 0
    ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (i, j), v in numpy.ndenumerate(kernel):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="w" if abs(v) > 0.6 * limit else "k")
    ax.set_title(f"{title} (sum {kernel.sum():.2f})")
    ax.axis("off")
axes[3].imshow(learned, cmap="gray")
axes[3].set_title("upsampled by the learned filter")
axes[3].axis("off")
print(f"mean squared error after {STEPS} steps: learned {losses[-1]:.2e}; "
      + "; ".join(f"{name} {error:.2e}" for name, error in errors.items()))

# %% [markdown]
# The learned filter ends up centre-heavy, like bilinear's, with small (even negative) corners:
# a little sharper, because undoing an average wants some sharpening. Its weights sum to about 4:
# 4 stamps overlap at every interior pixel, so a constant image stays constant. The two lines
# are bilinear's error on the same task, with no training: interpolation, and bilinear's filter
# as a transposed convolution, whose border is darker (fewer stamps there); the printed numbers
# say which the learned filter beat. A decoder learns
# filters like these per channel, and anything else its data needs.
#
# ## What you have seen
#
# - Nearest-neighbour unpooling copies each value into a block, so its backward adds up each
#   block's gradients; max unpooling puts each value back at its switch and zeros elsewhere, and is
#   max pooling's backward (with adds where windows overlap); its own backward gathers at the switches.
# - A transposed convolution stamps copies of its filter weighted by the input and sums the
#   overlaps; its padding crops the output to exactly 2x; when $k$ is not a multiple of $s$ the
#   overlaps are uneven and make checkerboards.
# - Bilinear upsampling is a fixed linear map, a transposed convolution with a fixed filter at 2x.
# - The transposed convolution here is lesson 4's adjoint of a convolution, run forward: the same
#   stamps that carried a convolution's gradient back now carry a coarse map up.
#
# **Next:** lesson 6 puts convolutions, pooling and transposed convolutions together into a
# U-Net, whose skip connections bring back what the downsampling lost.
