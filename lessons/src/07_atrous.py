# Lesson 7 source: python lessons/build_notebooks.py turns this file into lessons/07_atrous.ipynb.

# %%
# Lesson 7 · Atrous convolution and DeepLab. Run this cell first: it is the only one that reads the environment.
# LESSON_FAST=1 (the test suite sets it) only shrinks image and map sizes, and section 8's data and training.
# LESSON_BACKEND: "numpy" (the CPU, default) or "cupy" (an NVIDIA GPU, lesson 11) for section 8's training runs.
# LESSON_RECORDS, LESSON_RECORD_NOTE: set by lessons/records/record.py, which runs this notebook solved and in full;
# section 8 then saves its comparison in that folder as 07_aspp.json, with the note (the machine, in words).
import os
import tempfile

FAST = os.environ.get("LESSON_FAST") == "1"
BACKEND = os.environ.get("LESSON_BACKEND") or "numpy"
RECORDS = os.environ.get("LESSON_RECORDS") or None
RECORD_NOTE = os.environ.get("LESSON_RECORD_NOTE") or ""
SIZE = (64, 128) if FAST else (128, 256)          # (height, width) of the street scene filtered in section 1
FIELD = 41 if FAST else 71                        # side of the input for the receptive-field pictures
COST_SIZE = (64, 128) if FAST else (128, 256)     # (height, width) of the input whose costs section 3 counts
# Section 8: the built-in data (make_dataset()'s defaults, 300 train and 50 val images of 128 x 256, in the user's
# cache); in FAST mode a tiny set in a temporary folder. STEPS: optimizer steps per run, about 2 minutes each on
# two quiet CPU cores.
SCRATCH = tempfile.TemporaryDirectory(prefix="lesson07-")   # FAST data; removed with the kernel
DATA = dict(out=os.path.join(SCRATCH.name, "data"), train=8, val=4, size=(64, 128)) if FAST else dict()
STEPS = 4 if FAST else 2400

# %% [markdown]
# # Lesson 7 · Atrous convolution and DeepLab
#
# The notes' second example is the **atrous convolution (aka dilated convolution)**: a 3 x 3
# filter whose taps are $r$ pixels apart sees a $(2r + 1) \times (2r + 1)$ window for the price
# of 9 weights, and with padding $r$ keeps the map's size. This lesson opens up the operation,
# then the networks built on it, the DeepLab family (Chen et al., 2017), through the project's
# small DeepLabV3 (`models/deeplab.py`):
#
# 1. the **atrous convolution** itself: lesson 4's convolution with its taps spread, its
#    gradient, and the receptive field a stack of them buys, measured with autograd;
# 2. a **dilated backbone**: stop downsampling early, dilate instead, and the map stays at 1/16
#    or 1/8 of the input (its **output stride**) with the receptive field it would have had;
# 3. what that costs, in FLOPs and memory, counted by `models.summary`;
# 4. **atrous spatial pyramid pooling** (ASPP): parallel atrous convolutions at several rates,
#    and a picture of which pixels each branch reads;
# 5. why the rates must be scaled to the map: $2r + 1$ must fit it;
# 6. the image-pooling branch; then you write it, and the atrous branches, as functions of their
#    weights (section 7);
# 8. you build a small DeepLab whose ASPP head runs your two functions, and measure the claim
#    behind ASPP: trained beside a single-scale head of the same size, two seeds each.
#
# About 35 minutes to read, 20 for the exercises (section 7), and about 7 minutes of the
# computer's time for section 8's four short training runs (on two quiet CPU cores).

# %%
# %matplotlib inline
import ast
import inspect
import io

import matplotlib.pyplot as plt
import numpy
from matplotlib.patches import Rectangle

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, exercises, experiment, gradcheck, models, nn, shapes
from minitorch_seg.data import generate_scene, make_dataset
from minitorch_seg.models.deeplab import ASPP, DilatedResNet, ImagePooling
from minitorch_seg.models.summary import layer_table
from minitorch_seg.nn import Conv2d, MaxPool2d

mt.manual_seed(0)

# %% [markdown]
# ## 1. Atrous convolution (aka dilated convolution)
#
# To label a pixel "road" rather than "sidewalk" a network must see a large neighbourhood, its
# **receptive field**. Classification networks grow it by downsampling: pool, then convolve, and
# each 3 x 3 filter covers twice as much of the image. But every downsampling throws away
# resolution that a segmentation network must then recover (lessons 5 and 6).
#
# The **atrous convolution** ("à trous": with holes) spreads the filter's taps $d$ pixels apart
# instead. It is lesson 4's convolution with dilation $d > 1$; for one channel, stride 1 and no
# padding:
#
# $$y[u, v] = \sum_{i, j} w[i, j]\; x[u + i d,\ v + j d].$$
#
# A 3 x 3 filter with dilation $d$ still has 9 weights, but spans $2d + 1$ pixels. With padding
# $p = d$ and stride 1 the output keeps the input's size (lesson 4's output-size formula:
# $H + 2d - 2d - 1 + 1 = H$), so the view widens **without losing resolution**. DeepLab builds on
# this: it keeps the backbone's last maps at 1/8 resolution and uses dilations 2, 4 and more where
# a classification network would downsample (section 2). The taps of a 3 x 3 filter at
# $d = 1, 2, 3$:

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
# ### Its gradient
#
# Its backward is lesson 4's, with the taps $d$ apart. The weight gradient of tap $(i, j)$ reads
# the input at the same spread positions,
# $\bar w[i, j] = \sum_{u, v} \bar y[u, v]\, x[u + i d,\ v + j d]$, and the input gradient is the
# transposed convolution with the same dilation, which stamps the filter *with its holes*: the
# gradient of one output pixel reaches exactly the 9 input pixels it read, each with its tap's
# weight. `gradcheck` at dilations 2 and 3 (stride 1, padding $d$), then that stamp for a filter
# holding 1 to 9:

# %%
for d in (2, 3):
    print(f"gradcheck at dilation {d}:",
          gradcheck(lambda x, w, d=d: F.conv2d(x, w, padding=d, dilation=d),
                    (mt.randn(1, 2, 9, 8, dtype="float64", requires_grad=True),
                     mt.randn(3, 2, 3, 3, dtype="float64", requires_grad=True))))
x = mt.zeros(1, 1, 9, 9, dtype="float64", requires_grad=True)
taps = mt.arange(1.0, 10.0, dtype="float64").reshape(1, 1, 3, 3)
F.conv2d(x, taps, padding=3, dilation=3)[0, 0, 4, 4].backward()     # one output pixel, d = 3
stamp = x.grad.numpy()[0, 0]
fig, ax = plt.subplots(figsize=(3.4, 3.4))
ax.imshow(stamp, cmap="Oranges", vmin=0, vmax=12)
for (i, j), value in numpy.ndenumerate(stamp):
    ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=9)
ax.set_title("d y[4, 4] / d x, dilation 3:\nthe filter, stamped with holes", fontsize=10)
ax.set_xticks([])
ax.set_yticks([]);

# %% [markdown]
# **Predict first.** Stack three 3 x 3 convolutions with dilations 1, 2 and 4 (stride 1, padding
# equal to the dilation, so the map keeps its size). One pixel of the last map depends on a square
# of input pixels, its **receptive field**: how many pixels wide is it? Write a whole number in
# the cell below, then run the check; the cells after it measure it.

# %% {"tags": ["prediction"], "prediction": "dilated_receptive_field"}
answer = ...

# %% {"tags": ["prediction-check"], "prediction": "dilated_receptive_field"}
exercises.check_prediction("dilated_receptive_field", answer)

# %% [markdown]
# ### The receptive field, measured with autograd
#
# Which input pixels can influence one output pixel? Exactly those where the gradient of that
# output with respect to the input is nonzero, so a backward pass draws the receptive field, as
# it drew one layer's stamp above. Below, four stacked 3 x 3 convolutions with all-ones filters,
# "same" padding, and the gradient of the centre output pixel. The brightness counts the paths
# from each input pixel to the output (the *effective* receptive field, brightest in the middle).
# Stacking $L$ layers of dilation $d_l$ gives a field of $1 + 2\sum_l d_l$ pixels:
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
field, _ = receptive_field([1, 2, 4])
print("dilations 1, 2, 4 (your prediction): a field", numpy.ptp(numpy.nonzero(field)[1]) + 1, "pixels wide")

# %% [markdown]
# The same edge filter (lesson 4's Sobel) at growing dilation responds to edges at growing
# scales, while every map keeps the full resolution:

# %%
street = generate_scene("val", 1, size=SIZE)
gray = mt.tensor(street.image.mean(axis=2)[None, None].astype(numpy.float32) / 255)     # (1, 1, H, W)
sobel = numpy.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], numpy.float32)
fig, axes = plt.subplots(1, 3, figsize=(15, 2.4))
for ax, d in zip(axes, (1, 3, 6)):
    edges = F.conv2d(gray, mt.tensor(sobel[None, None]), padding=d, dilation=d).numpy()[0, 0]
    ax.imshow(edges, cmap="RdBu_r", vmin=-abs(edges).max(), vmax=abs(edges).max())
    ax.set_title(f"vertical edges, dilation {d}: {edges.shape[0]} x {edges.shape[1]}")
    ax.axis("off")

# %% [markdown]
# ## 2. Output stride
#
# A classification backbone (a ResNet, say) halves its map five times: stride-2 convolution and
# max pool in the stem, then one halving at the start of each of stages 2, 3 and 4. Its last map
# is 1/32 of the input: a 1024 x 2048 Cityscapes image becomes 32 x 64, a 128 x 256 one 4 x 8.
# Each halving doubles the step between the pixels every later 3 x 3 filter reads, which is how
# the receptive field grows fast; but a segmentation decoded from a 4 x 8 map has lost every thin
# object (lesson 3 measured how much mIoU that costs).
#
# DeepLab's answer: keep the stride 1 in the last stage (or the last two) and **dilate** those
# stages' convolutions by the factor the missing halvings would have added. The map stays at
# 1/16 (or 1/8) of the input, its **output stride**, and each filter still reads pixels as far
# apart as in the original network, so the receptive field is the same. Here is how the
# project's `DilatedResNet` builds its stages; `output_stride` decides which stages trade their
# stride for dilation:

# %%
print(inspect.getsource(DilatedResNet.__init__))

# %% [markdown]
# The receptive field of a chain of layers follows from two running numbers: $j$, the distance in
# input pixels between neighbouring pixels of the current map (the product of the strides so far),
# and $R$, the receptive field. A layer with kernel $k$, dilation $d$ and stride $s$ spans
# $d(k - 1) + 1$ pixels of its input map, each $j$ input pixels apart, so
#
# $$R \leftarrow R + d\,(k - 1)\, j, \qquad j \leftarrow j\, s.$$
#
# Walking the backbone's convolutions and pools in order (the 1 x 1 shortcut convolutions run
# beside the main path and add nothing) for both output strides:

# %%
def stage_table(output_stride):
    """Per stage of the backbone: its map, the strides and dilations of its convs and pools, the receptive field."""
    backbone = DilatedResNet(output_stride=output_stride)
    modules = dict(backbone.named_modules())
    field, jump, table = 1, 1, {}
    for row in layer_table(backbone, (1, 3, 128, 256)):
        module = modules[row.name]
        if "downsample" in row.name or not isinstance(module, (Conv2d, MaxPool2d)):
            continue
        k = shapes.pair(module.kernel_size, "kernel_size")[0]
        d = shapes.pair(module.dilation, "dilation")[0]
        s = shapes.pair(module.stride, "stride")[0]
        field, jump = field + d * (k - 1) * jump, jump * s
        stage = table.setdefault(row.name.split(".")[0] if row.name.startswith("layer") else "stem",
                                 {"strides": [], "dilations": []})
        stage["strides"].append(s)
        stage["dilations"].append(d)
        stage.update(shape=ast.literal_eval(row.output_shape), field=field, jump=jump)
    return table


for output_stride in (16, 8):
    print(f"output stride {output_stride}, input 128 x 256:")
    for name, stage in stage_table(output_stride).items():
        print(f"  {name:7s} strides {' '.join(map(str, stage['strides'])):9s} dilations "
              f"{' '.join(map(str, stage['dilations'])):9s} -> map {stage['shape'][2]:3d} x {stage['shape'][3]:3d} "
              f"(1/{stage['jump']:2d}), receptive field {stage['field']:4d} pixels")

# %% [markdown]
# At both output strides the receptive field comes out the same. (The first convolution of a
# dilated stage keeps the previous stage's dilation: it stands where the strided convolution
# stood, which read its input at the old spacing; the convolutions after it read a map that is
# no longer halved, so their taps are spread twice as far.) The field is far larger than our
# 128-pixel high images (the *effective* field, where the gradient is large, is much smaller;
# section 1 measured one), while the last map is twice as fine at output stride 8. Dilation
# bought the resolution back without shrinking what each output pixel can see.
#
# ## 3. What it costs
#
# Nothing is free. A convolution's cost is proportional to the number of output pixels it
# computes: $2\,k^2\,C_{in}\,C_{out}\,H_{out}W_{out}$ FLOPs (a multiply-add counted as 2). The
# dilated stages keep the *channels* of a deep stage (they are the widest) at a map twice as
# fine per halving skipped, so they cost 4 times as much per halving, and so does the memory of
# the activations that backward needs.
#
# **Predict first.** Section 2's table says which stages run at the finer map. For the whole
# network, `models.build("deeplab")` on a 128 x 256 input, stem to head: how many times the FLOPs
# of output stride 16 does output stride 8 cost? Write a number in the cell below, then run the
# check. `models.summary` counts it after that.

# %% {"tags": ["prediction"], "prediction": "flop_ratio_os8_os16"}
answer = ...

# %% {"tags": ["prediction-check"], "prediction": "flop_ratio_os8_os16"}
exercises.check_prediction("flop_ratio_os8_os16", answer)

# %%
def summary_totals(output_stride):
    text = io.StringIO()
    models.summary(models.build("deeplab", output_stride=output_stride), (1, 3, *COST_SIZE), file=text)
    return text.getvalue().strip().splitlines()[-2:]                    # "Total params", "Total FLOPs"


for output_stride in (16, 8):
    print(f"output stride {output_stride}:", "; ".join(summary_totals(output_stride)))

# %% [markdown]
# Where the FLOPs go, stage by stage, and the memory of every layer's output (float32, batch 1),
# from the same per-layer table that `summary` prints:

# %%
def group(name):
    if name.startswith("backbone.layer"):
        return name.split(".")[1]
    if name.startswith("backbone."):
        return "stem"
    return "ASPP" if name.startswith("classifier.0.") else "head"


groups = ["stem", "layer1", "layer2", "layer3", "layer4", "ASPP", "head"]
costs = {}
for output_stride in (16, 8):
    flops, memory = dict.fromkeys(groups, 0), dict.fromkeys(groups, 0)
    for row in layer_table(models.build("deeplab", output_stride=output_stride), (1, 3, *COST_SIZE)):
        flops[group(row.name)] += row.flops
        memory[group(row.name)] += 4 * int(numpy.prod(ast.literal_eval(row.output_shape)))
    costs[output_stride] = flops, memory

fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
for ax, index, unit, scale in [(axes[0], 0, "GFLOPs", 1e9), (axes[1], 1, "MB of activations", 2**20)]:
    for shift, output_stride in [(-0.2, 16), (0.2, 8)]:
        ax.bar(numpy.arange(len(groups)) + shift, [costs[output_stride][index][g] / scale for g in groups],
               width=0.4, label=f"output stride {output_stride}")
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(unit)
    ax.legend()
total = {os_: sum(costs[os_][0].values()) for os_ in (16, 8)}
axes[0].set_title(f"FLOPs per stage: OS 8 costs {total[8] / total[16]:.1f}x OS 16 in all")
axes[1].set_title(f"activation memory, input {COST_SIZE[0]} x {COST_SIZE[1]}");

# %% [markdown]
# The stem, layer1 and layer2 are identical; layer3, layer4 and ASPP, the widest parts, cost
# about 4 times as much at output stride 8. That is why the DeepLabV3 paper trains at output
# stride 16 and evaluates at 8, where a slower, finer answer is worth it.
#
# ## 4. Atrous spatial pyramid pooling
#
# On top of the backbone, ASPP reads the same map with five branches in parallel, each seeing a
# different amount of context around each pixel:
#
# - a 1 x 1 convolution: the pixel itself;
# - three 3 x 3 atrous convolutions with rates $r_1 < r_2 < r_3$: windows of $2r + 1$ cells;
# - **image pooling**: the average of the whole map, through a 1 x 1 convolution, copied back to
#   every pixel: the context of the entire image.
#
# Their outputs are concatenated along the channels and mixed by a 1 x 1 convolution (the
# concatenation of lesson 6 again: a sum of five convolutions with separate weights). The code:

# %%
print(inspect.getsource(ASPP))
print(inspect.getsource(ImagePooling.forward))
print("default rates at output stride 16:", models.build("deeplab").classifier[0].atrous_rates,
      "   at output stride 8:", models.build("deeplab", output_stride=8).classifier[0].atrous_rates)

# %% [markdown]
# Which cells of the backbone's map does each branch read, for one output cell? At output
# stride 16 a 128 x 256 image gives an 8 x 16 map, one cell per 16 x 16 pixels. Drawn over the
# image, for the output cell outlined in black: each 3 x 3 branch reads 9 cells, $r$ cells apart;
# image pooling reads them all. The last panel is the paper's smallest rate, 6, meant for the
# 33 x 33 map of a 513 x 513 crop: on our map most of its taps fall off the edge, onto the zero
# padding.

# %%
scene = generate_scene("val", 0, size=(128, 256))
cell = 16                                              # pixels per map cell at output stride 16
rows, cols = 128 // cell, 256 // cell
centre = (2, 5)                                        # the output cell (row, column) we look at
branches = [("1 x 1 conv", [0]), ("3 x 3, rate 1", [-1, 0, 1]), ("3 x 3, rate 2", [-2, 0, 2]),
            ("3 x 3, rate 3", [-3, 0, 3]), ("image pooling", None), ("3 x 3, rate 6 (paper)", [-6, 0, 6])]
fig, axes = plt.subplots(2, 3, figsize=(15, 6.4), layout="constrained")
for ax, (title, offsets) in zip(axes.ravel(), branches):
    ax.imshow(scene.image, extent=(0, 256, 128, 0))
    taps = ([(centre[0] + dy, centre[1] + dx) for dy in offsets for dx in offsets] if offsets is not None
            else [(r, c) for r in range(rows) for c in range(cols)])
    inside = [(r, c) for r, c in taps if 0 <= r < rows and 0 <= c < cols]
    for r, c in taps:
        on_map = (r, c) in inside
        ax.add_patch(Rectangle((c * cell, r * cell), cell, cell, facecolor="C1" if on_map else "none",
                               alpha=0.55 if on_map else 1, edgecolor="C1" if on_map else "C3",
                               linestyle="-" if on_map else ":", lw=1.5))
    ax.add_patch(Rectangle((centre[1] * cell, centre[0] * cell), cell, cell, fill=False, edgecolor="k", lw=2))
    for k in range(cols + 1):
        ax.axvline(k * cell, color="w", lw=0.3)
    for k in range(rows + 1):
        ax.axhline(k * cell, color="w", lw=0.3)
    ax.set_xlim(-24, 280)
    ax.set_ylim(152, -72)
    reads = f"all {len(taps)} cells" if offsets is None else f"{len(inside)} of {len(taps)} taps on the map"
    ax.set_title(f"{title}: {reads}", fontsize=10)
    ax.axis("off")

# %% [markdown]
# ## 5. Why the rates are scaled
#
# A 3 x 3 filter at rate $r$ spans $2r + 1$ cells. When that exceeds the map, the outer taps of
# every position read padding, and their weights learn nothing and add nothing: the branch
# degenerates towards a 1 x 1 convolution, only the centre weight doing any work. (The DeepLabV3
# paper shows exactly this effect on a 65 x 65 map, and it is why it added the image-pooling
# branch: the context that large rates fail to deliver.)
#
# How many of the 9 weights read real pixels, on average over all positions of an $H \times W$
# map? Along one axis the tap at offset $o \in \{-r, 0, r\}$ is inside the map for $\max(0, H - |o|)$
# of the $H$ positions, and the two axes are independent, so
#
# $$\mathbb{E}[\text{valid taps}] = \Big(1 + \tfrac{2\max(0,\ H - r)}{H}\Big)\Big(1 + \tfrac{2\max(0,\ W - r)}{W}\Big).$$
#
# At $r \ge \max(H, W)$ it is 1: a 1 x 1 convolution. The rule the project's DeepLab follows,
# $2r + 1 \le \min(H, W)$, keeps every branch well above that. For our 8 x 16 map: $r \le 3$,
# hence the rates (1, 2, 3) at output stride 16 and twice those, (2, 4, 6), at output stride 8
# (the 16 x 32 map). The paper's (6, 12, 18) and (12, 24, 36) were chosen for its 33 x 33 and
# 65 x 65 maps, and scaled the same way; they are a little bolder (2 x 18 + 1 = 37 > 33), and
# the curves show what that costs their largest rate.

# %%
def valid_taps(rate, h, w):
    return (1 + 2 * max(0, h - rate) / h) * (1 + 2 * max(0, w - rate) / w)


maps = {"8 x 16 (ours, OS 16)": (8, 16, (1, 2, 3)), "16 x 32 (ours, OS 8)": (16, 32, (2, 4, 6)),
        "33 x 33 (paper, OS 16)": (33, 33, (6, 12, 18)), "65 x 65 (paper, OS 8)": (65, 65, (12, 24, 36))}
rates = numpy.arange(1, 41)
fig, ax = plt.subplots(figsize=(7.5, 3.6))
for colour, (name, (h, w, used)) in zip(["C0", "C1", "C2", "C3"], maps.items()):
    ax.plot(rates, [valid_taps(r, h, w) for r in rates], color=colour, label=f"{name}: rates {used}")
    ax.plot(used, [valid_taps(r, h, w) for r in used], "o", color=colour)
ax.axhline(1, color="gray", ls=":")
ax.text(40, 1.3, "1: a 1 x 1 convolution", ha="right", fontsize=8, color="gray")
ax.set_xlabel("atrous rate r")
ax.set_ylabel("valid taps of 9 (mean over positions)")
ax.legend(fontsize=8)
ax.set_title("A 3 x 3 atrous filter on a small map degenerates as r grows");

# %% [markdown]
# ## 6. Image pooling
#
# The fifth branch skips the question of rates altogether: the **global average** of each
# channel over the whole map, $\mu_c = \frac{1}{HW}\sum_{h,w} x[c, h, w]$, is context of the entire
# image at any size. A 1 x 1 convolution and a ReLU transform the $C$ means, and the result is
# copied back to every position so that it can be concatenated with the other branches
# (`ImagePooling.forward`, printed in section 4: `mean`, `conv`, `expand`). Every input pixel
# influences every output pixel, which is the point of the branch; what that means for its
# backward is your first exercise.
#
# ## 7. Exercises: DeepLab's branches as functions of their weights
#
# A layer is a function of its input *and of its weights*. Below you write two parts of ASPP that
# way, the weights as arguments, and the cell after each stub calls `exercises.check`: it runs
# your function and a reference (`exercises.describe(NAME)` says which) on many **drawn** inputs,
# batches, channels and every map size from 1 x 1 to 7 x 7, odd and even, square and not, and
# compares the outputs, the gradients of the input, the weights and the bias (float64, rtol 1e-6),
# and your gradients with finite differences. A failure is shrunk to the smallest input that
# still fails. One fixed test map would not do: a backward that divides by a hard-coded 20 passes
# every test at 4 x 5, and one that assumes $H = W$ passes every square map.
#
# **Exercise 1: `image_pooling(input, weight, bias=None)`**, the image-pooling branch: $x$
# $(N, C, H, W)$, a 1 x 1 filter $w$ $(O, C, 1, 1)$ and a bias $b$ $(O,)$ or None give $(N, O, H, W)$,
#
# $$y[n, o, h, w] = \mathrm{relu}\Big(b[o] + \sum_{c} w[o, c, 0, 0]\, \mu[n, c]\Big), \qquad
# \mu[n, c] = \frac{1}{HW} \sum_{h'=1}^{H} \sum_{w'=1}^{W} x[n, c, h', w'], \quad \text{for every } (h, w).$$
#
# Write its two pieces that the library has no single op for as `Function`s, forward and backward:
# `GlobalAveragePool`, $(N, C, H, W) \to (N, C, 1, 1)$, and `CopyToMap`, $(N, O, 1, 1) \to (N, O, H, W)$
# (called as `CopyToMap.apply(y, size=(H, W))`: `size` is a setting, not an input, and gets no
# gradient). The 1 x 1 convolution and the ReLU between them are the library's `F.conv2d` and
# `F.relu`. Derive both backwards on paper first:
#
# - $\partial L / \partial x[n, c, h', w']$: which values of the pooled map does $x[n, c, h', w']$
#   change, and by how much?
# - $\partial L / \partial y[n, o, 0, 0]$ for the copy: how many outputs does one value feed, and
#   what does the chain rule do with their gradients (lesson 1: fan-out)?
#
# A backward of the right shape can still be wrong (the engine checks only the shape): the check's
# gradient comparison and finite differences are what find it.

# %% {"tags": ["exercise"], "exercise": "image_pooling"}
class GlobalAveragePool(Function):
    """(N, C, H, W) -> (N, C, 1, 1): the mean of each channel over the map."""

    @staticmethod
    def forward(ctx, x):
        raise NotImplementedError("GlobalAveragePool.forward: the mean over (H, W), axes kept; save what backward needs")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("GlobalAveragePool.backward: g (N, C, 1, 1) -> the gradient of x (N, C, H, W)")


class CopyToMap(Function):
    """(N, C, 1, 1) -> (N, C, H, W): each value copied to every position of an H x W map."""

    @staticmethod
    def forward(ctx, y, size):
        raise NotImplementedError("CopyToMap.forward: (N, C, 1, 1) -> (N, C, *size)")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("CopyToMap.backward: g (N, C, H, W) -> the gradient of y (N, C, 1, 1)")


def image_pooling(input, weight, bias=None):
    raise NotImplementedError("image_pooling: GlobalAveragePool, then F.conv2d and F.relu, then CopyToMap")

# %% {"tags": ["exercise-check"], "exercise": "image_pooling"}
try:
    exercises.check("image_pooling", image_pooling)
    print("image_pooling passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# Once you have tried, a picture of what the backward must give. The gradient of *one* output
# pixel, $y[0, 0, 1, 2]$, of the pooling and the copy (the library's `mean` and `expand`, no
# convolution) with respect to a 4 x 5 input, from finite differences of the forward and from
# autograd: the same small value everywhere, not a spike at the pixel's own position (the third
# panel), as if each input pixel reached only the output pixel where it sits.

# %%
x = mt.randn(1, 1, 4, 5, dtype="float64", requires_grad=True)


def pool_and_copy(t):
    return t.mean(dim=(2, 3), keepdim=True).expand(*t.shape)


upstream = numpy.zeros((1, 1, 4, 5))
upstream[0, 0, 1, 2] = 1.0                                              # dL/dy: one output pixel only
pool_and_copy(x).backward(mt.tensor(upstream))
numeric = numpy.zeros((4, 5))
for index in numpy.ndindex(4, 5):
    step = numpy.zeros((1, 1, 4, 5))
    step[(0, 0) + index] = 1e-6
    with mt.no_grad():
        plus = pool_and_copy(mt.tensor(x.numpy() + step)).numpy()[0, 0, 1, 2]
        minus = pool_and_copy(mt.tensor(x.numpy() - step)).numpy()[0, 0, 1, 2]
    numeric[index] = (plus - minus) / 2e-6
spike = numpy.zeros((4, 5))
spike[1, 2] = 1 / 20                                                    # each input reaching its own pixel only
fig, axes = plt.subplots(1, 3, figsize=(12, 2.6))
for ax, grad, title in [(axes[0], numeric, "finite differences"), (axes[1], x.grad.numpy()[0, 0], "autograd"),
                        (axes[2], spike, "the elementwise misreading")]:
    ax.imshow(grad, cmap="Blues", vmin=0, vmax=0.12)
    for (i, j), v in numpy.ndenumerate(grad):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=8)
    ax.set_title(f"d y[1, 2] / d x: {title}", fontsize=10)
    ax.axis("off")

# %% [markdown]
# **Exercise 2: `atrous_pyramid(input, weight, bias=None, rates=(1, 2, 3))`**, ASPP's atrous
# branches (`convs[1:4]` in section 4) as a function of their weights, without their BatchNorm
# and ReLU: $x$ $(N, C, H, W)$, one 3 x 3 filter bank per rate in $w$ $(R, O, C, 3, 3)$, biases $b$
# $(R, O)$ or None, and $R$ rates give $(N, R\,O, H, W)$. Branch $k$ convolves $x$ with $w[k]$ and
# $b[k]$ at dilation `rates[k]`, padded so that the map keeps its $H \times W$ size; the branches are
# concatenated along the channels in the order of the rates.
#
# Use the library's `F.conv2d` and `F.cat`, whose backwards autograd chains for you: what you
# write is the geometry. What padding keeps the size of a 3 x 3 convolution at dilation $r$
# (lesson 4's output-size formula)? And of a $k \times k$ one? The check draws 1 to 3 rates from 1
# to 4 on maps from 1 x 1 up, so rates larger than the map too, where (section 5) every off-centre
# tap reads padding and the branch is still well defined.

# %% {"tags": ["exercise"], "exercise": "atrous_pyramid"}
def atrous_pyramid(input, weight, bias=None, rates=(1, 2, 3)):
    raise NotImplementedError("atrous_pyramid: one F.conv2d per rate, concatenated along the channels")

# %% {"tags": ["exercise-check"], "exercise": "atrous_pyramid"}
try:
    exercises.check("atrous_pyramid", atrous_pyramid)
    print("atrous_pyramid passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# When a check fails it raises `exercises.ExerciseFailed`, whose message is the report; the
# smallest failing input is kept on the error (`failure.example`, with `.args` and `.kwargs`), so
# you can call your function on it by hand: `failure.example.call(image_pooling)`.

# %% [markdown]
# ## 8. Build, then measure: your ASPP in a network
#
# The notes' claim, in DeepLab's words: reading the map at **several rates in parallel**, plus the
# image's average, gives every pixel context at several scales at once, which one 3 x 3 filter
# does not. Section 5 showed which cells each branch reads; whether that helps is a question for a
# measurement. Here you assemble a small segmentation network around your two functions, then
# train it beside the same network with a **single-scale head** of about the same size:
#
# - **a backbone** to output stride 8: four 3 x 3 conv-BN-ReLUs (16, 32, 64 and 64 channels), the
#   first three with stride 2. A 64 x 128 input (the built-in scenes at half scale) gives an
#   8 x 16 map, on which the rates (1, 2, 3) fit (section 5: $2r + 1 \le 8$);
# - **the head**, ASPP from your functions: a 1 x 1 branch, your `atrous_pyramid` at rates
#   (1, 2, 3), a BatchNorm and ReLU (one BatchNorm over the concatenation is a BatchNorm per
#   branch: it works channel by channel), your `image_pooling`; all concatenated and projected by a
#   1 x 1 conv-BN-ReLU to 32 channels, as `models.deeplab.ASPP` does (without its dropout);
# - **a 1 x 1 classifier** to the 19 classes, and bilinear upsampling of the logits to the input.
#
# The head keeps its weights in library layers (`nn.Conv2d`, so that `parameters()` finds them and
# the optimizer updates them); `forward` hands those weights to your functions. While a function is
# still its stub, the head runs the library's layers holding the same weights instead (the same
# numbers, as the exercise checks compare), and the next cell says so: fill in the exercises to
# train your own code.
#
# The receptive fields, with section 2's rule ($R \leftarrow R + d(k - 1)j$): the backbone's
# convolutions reach $1 + 2(1 + 2 + 4 + 8) = 31$ pixels; a 3 x 3 head at $j = 8$ adds 16 (47
# pixels), ASPP's rate-3 branch adds 48 (79 pixels, more than the 64-pixel height), and image
# pooling reads the whole image. The single-scale head is a 3 x 3 conv-BN-ReLU (dilation 1) wide
# enough to hold about as many weights as ASPP's branches, then the same 1 x 1 projection, so the
# comparison is about the context, not the size.

# %%
probe = mt.randn(1, 2, 5, 5)
YOURS = {"atrous_pyramid": exercises.attempted(atrous_pyramid, probe, mt.randn(2, 3, 2, 3, 3), None, (1, 2)),
         "image_pooling": exercises.attempted(image_pooling, probe, mt.randn(3, 2, 1, 1))}
for name, yours in YOURS.items():
    print(f"{name}: " + ("yours, as written in section 7" if yours else
                         "still the stub: the head runs the library's layers holding the same weights instead"))


def conv_bn_relu(in_channels, out_channels, kernel_size=3, stride=1):
    """A convolution (padding that keeps the size at stride 1, no bias), BatchNorm, ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                   padding=kernel_size // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class YourASPP(nn.Module):
    """ASPP from your functions: 1x1 branch, atrous_pyramid at ``rates``, image_pooling; concatenated, projected 1x1.

    (N, in_channels, h, w) -> (N, channels, h, w). The weights live in library layers; forward hands them over.
    """

    def __init__(self, in_channels, channels, rates=(1, 2, 3)):
        super().__init__()
        self.rates = tuple(rates)
        self.point = nn.Conv2d(in_channels, channels, 1, bias=False)                    # the 1x1 branch
        self.atrous = nn.ModuleList([nn.Conv2d(in_channels, channels, 3, padding=r, dilation=r, bias=False)
                                     for r in self.rates])                               # one bank per rate
        self.norm = nn.BatchNorm2d((1 + len(self.rates)) * channels)                     # 1x1 and atrous branches
        self.pooling = ImagePooling(in_channels, channels)                               # 1x1 conv (bias) + ReLU
        self.project = conv_bn_relu((2 + len(self.rates)) * channels, channels, kernel_size=1)

    def forward(self, x):
        if YOURS["atrous_pyramid"]:
            weight = mt.stack([conv.weight for conv in self.atrous])                      # (R, O, C, 3, 3)
            atrous = atrous_pyramid(x, weight, None, self.rates)                          # (N, R O, h, w)
        else:
            atrous = F.cat([conv(x) for conv in self.atrous], dim=1)                      # (N, R O, h, w)
        local = F.relu(self.norm(F.cat([self.point(x), atrous], dim=1)))                  # (N, (1 + R) O, h, w)
        conv = self.pooling.conv[0]
        context = image_pooling(x, conv.weight, conv.bias) if YOURS["image_pooling"] else self.pooling(x)
        return self.project(F.cat([local, context], dim=1))                              # (N, O, h, w)


def single_scale_head(in_channels, channels, weights):
    """A 3x3 conv-BN-ReLU (dilation 1) about as wide as ``weights`` allows, then the same 1x1 projection."""
    width = round((weights - 2 * channels) / (9 * in_channels + 2 + channels))   # 9 C W + 2 W + W O + 2 O = weights
    return nn.Sequential(conv_bn_relu(in_channels, width), conv_bn_relu(width, channels, kernel_size=1))


class SmallDeepLab(nn.Module):
    """Backbone to output stride 8, ``head`` (64 -> 32 channels), 1x1 classifier, logits upsampled to the input."""

    def __init__(self, head, num_classes=19):
        super().__init__()
        self.backbone = nn.Sequential(conv_bn_relu(3, 16, stride=2), conv_bn_relu(16, 32, stride=2),
                                      conv_bn_relu(32, 64, stride=2), conv_bn_relu(64, 64))
        self.head = head
        self.classifier = nn.Conv2d(32, num_classes, 1)

    def forward(self, x):
        logits = self.classifier(self.head(self.backbone(x)))                            # (N, 19, H/8, W/8)
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)


def count(module):
    return sum(p.numel() for p in module.parameters())


aspp_weights = count(YourASPP(64, 32))
variants = {"multi-scale: ASPP": lambda: SmallDeepLab(YourASPP(64, 32)),
            "single-scale: 3x3 head": lambda: SmallDeepLab(single_scale_head(64, 32, aspp_weights))}
x = mt.randn(2, 3, 64, 128)
for name, build in variants.items():
    model = build()
    with mt.no_grad():
        features = model.backbone(x)
        shapes_seen = [x.shape, features.shape, model.head(features).shape, model(x).shape]
    print(f"{name:24s} head {count(model.head):6,} weights, network {count(model):7,}:  "
          + " -> ".join(str(tuple(s)) for s in shapes_seen))

# %% [markdown]
# Now the measurement, with `experiment.compare`: each network is trained for `STEPS` steps of the
# default job's recipe (SGD with momentum, warm-up then the poly schedule, random scale, crop and
# flip, ENet's class weights, lesson 6) on the built-in scenes at half scale, then scored on the 50
# validation images (validation mIoU). Twice each, with seeds 0 and 1: the seed draws the initial
# weights and the batches' order and augmentation, and two seeds of one network can differ by as much
# as two networks do. The verdict says "better" or "worse" only when both seeds of one network score
# above both of the other; otherwise "within the seeds' spread", which means this experiment cannot
# tell them apart. Four runs of about 2 minutes each on two CPU cores (a few seconds under
# `LESSON_FAST`, where the numbers mean nothing).

# %%
root = make_dataset(**DATA)
comparison = experiment.compare(variants, root, steps=STEPS, seeds=(0, 1), batch_size=4, lr=0.01, input_scale=0.5,
                                class_weights="enet", backend=BACKEND)
print(comparison.table())
if RECORDS:
    comparison.save(os.path.join(RECORDS, "07_aspp.json"), note=f"{RECORD_NOTE}; your functions: {YOURS}; "
                    f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")

# %% [markdown]
# Your run, beside the one recorded with these settings (`lessons/records/07_aspp.json`: this
# notebook run in full with the solutions filled in, as `lessons/records/record.py` does; its date,
# machine and seconds per run are in the file):

# %%
experiment.beside_record(comparison, "07_aspp");            # records/ beside this notebook, else in the checkout

# %% [markdown]
# **What the recorded run says** (recorded on 2026-12-02 on a quiet 2-core x86-64 VM,
# `lessons/records/07_aspp.json`; each run took 86 to 112 seconds. An earlier recording the same
# day, on the same VM loaded by other jobs, took 400 to 750 seconds a run and gave the same four
# scores to the last digit: a run is fixed by its seed and steps.) After 2400 steps the ASPP network scored
# 0.288 and 0.297 (seeds 0 and 1, mean 0.292), the single-scale head 0.283 and 0.298 (mean 0.290).
# That is **within the seeds' spread**: changing the seed moved each network's score more than
# changing its head did. So this experiment neither confirms the claim nor refutes it; it cannot
# see a difference this small.
#
# Why it may not show here, and what would show it: our scenes are small (64 pixels high at half
# scale), so the backbone's 31 pixels and a 3 x 3 head's 47 already see much of the image; they are
# drawn by a program from polygons in flat colours, far simpler than photographs; and two minutes
# of training from random weights leave both networks far from what they could learn. DeepLab's
# gains were measured on 513 x 513 crops of real photographs, whose objects range over many scales,
# with a backbone pretrained on ImageNet. More seeds and longer runs would narrow the spread; a
# difference that survives them would be evidence. Your own run above, with your functions, is
# another pair of seeds' worth of the same question (under `LESSON_FAST` its numbers mean nothing).

# %% [markdown]
# ## What you have seen
#
# - An atrous (dilated) convolution spreads a filter's taps $d$ apart: $2d + 1$ pixels for 9
#   weights, at full resolution with padding $d$. Its backward is the convolution's, taps spread
#   the same way. Stacked with mixed dilations, its receptive field grows exponentially;
#   repeating one dilation leaves holes (gridding).
# - An atrous backbone trades its last strides for dilation: the map stays at 1/16 or 1/8 of the
#   input (the output stride), with the receptive field of the original network.
# - The price: the widest stages run at 4 times the pixels per halving skipped; output stride 8
#   costs several times the FLOPs and activation memory of 16 (`models.summary` counts them).
# - ASPP reads the map at several rates in parallel, plus the global average; concatenated and
#   mixed by a 1 x 1 convolution.
# - A rate is only useful while $2r + 1$ fits the map; beyond that a 3 x 3 filter degenerates
#   towards 1 x 1. Rates are scaled with the map: (1, 2, 3) for our 8 x 16 maps, (6, 12, 18) for
#   the paper's 33 x 33.
# - Image pooling's backward spreads the upstream gradient over the whole map: every input pixel
#   influences every output pixel. You wrote it, and ASPP's atrous branches, as functions of
#   their weights.
# - You built a small DeepLab whose ASPP runs your two functions, and trained it beside a
#   single-scale head of the same size, two seeds each: on the built-in scenes, after 2-minute
#   runs, the difference was within the seeds' spread. A claim is tested by a measurement that
#   could tell; this one could not, and says so.
#
# **Next:** lesson 8 replaces convolutions altogether: transformers, their token-size dilemma,
# and attention inside windows; lesson 9 then builds Swin on them.
