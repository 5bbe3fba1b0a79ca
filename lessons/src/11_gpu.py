# Lesson 11 source: python lessons/build_notebooks.py turns this file into lessons/11_gpu.ipynb.

# %%
# Lesson 11 · Training on a GPU. Run this cell first: it is the only one that reads the environment.
# LESSON_FAST=1 (the test suite sets it) only shrinks the batches, the number of timed steps and the project.
# LESSON_BACKEND: "numpy" (the CPU, default) or "cupy" (an NVIDIA GPU) for the closing project's training runs.
# CITYSCAPES_ROOT: a real Cityscapes folder (holding leftImg8bit/ and gtFine/; see DATASET.md) for that project,
# which skips itself without one.
import os
import tempfile

FAST = os.environ.get("LESSON_FAST") == "1"
BACKEND = os.environ.get("LESSON_BACKEND") or "numpy"
CITYSCAPES_ROOT = os.environ.get("CITYSCAPES_ROOT") or None
SCRATCH = tempfile.TemporaryDirectory(prefix="lesson11-")    # data and run folders; removed with the kernel
SIZE = (32, 64) if FAST else (128, 256)      # (height, width) of the images in the steps counted and timed
BATCH = 2                                    # images per step
STEPS = 2 if FAST else 3                     # timed training steps per backend and width (the fastest is reported)
WIDTHS = (8, 16) if FAST else (8, 16, 32)    # U-Net widths to time
# The project (section 7): the default training job on the built-in data (make_dataset()'s defaults) and on the
# first images of CITYSCAPES_ROOT, the same number of epochs each; FAST: a tiny synthetic set and one epoch.
PROJECT_EPOCHS = 1 if FAST else 8
PROJECT_SYNTHETIC = (dict(out=os.path.join(SCRATCH.name, "project-data"), train=8, val=4, size=(64, 128)) if FAST
                     else dict())
PROJECT_REAL = dict(max_train_images=8 if FAST else 500, max_val_images=4 if FAST else 100, input_scale=0.25,
                    crop=(64, 128) if FAST else (128, 256))      # photographs of 1024x2048, seen at 256x512

# %% [markdown]
# # Lesson 11 · Training on a GPU
#
# Everything so far ran on NumPy, on the CPU. The same code runs on an NVIDIA GPU through
# **CuPy**, a NumPy-compatible array library whose arrays live in the GPU's memory:
#
# ```bash
# minitorch-seg train --backend cupy        # the same job as lesson 6, on the GPU
# minitorch-seg doctor                      # what NumPy, its BLAS, CuPy and the GPU look like from here
# ```
#
# No op was written twice. What makes that work, and what can quietly make a GPU run slow, is
# *where each array lives*, and in particular what comes back from the GPU to the host. In this
# lesson you will
#
# 1. see how an op finds its array module, and what moves to the device: the weights once, each
#    batch once;
# 2. see what must **not** come back: no `float()` or `.item()` inside a layer; one number per
#    training step (the loss, for the progress bar) and one matrix at the end of validation;
# 3. count the transfers with `backend.count_transfers()` on the **strict** backend, a CuPy
#    stand-in that runs on the CPU, and catch a planted `float()` in a layer;
# 4. time a training step on the CPU and, where there is one, on the GPU;
# 5. write two `Function`s that are safe on any backend, log-sum-exp and a per-channel
#    normalisation, checked on NumPy and on the strict backend;
# 6. and, as a closing project, train on real Cityscapes photographs with `--backend cupy` and
#    compare the per-class IoU with what the same job reaches on the built-in synthetic data.
#
# About 50 to 65 minutes with the two exercises and their derivations on paper. No GPU is
# needed: the cells that need one say so and skip themselves. The project needs a Cityscapes
# download (`CITYSCAPES_ROOT`, [DATASET.md](../DATASET.md)) and, to be quick, a GPU
# (`LESSON_BACKEND=cupy`); without the download it skips itself.

# %%
# %matplotlib inline
import inspect
import time

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, backend, exercises, gradcheck, models, nn, optim
from minitorch_seg.data import CLASS_NAMES, Cityscapes, DataLoader, balance, make_dataset
from minitorch_seg.train import TrainConfig, Trainer, evaluate

mt.manual_seed(0)

# %% [markdown]
# ## 1. One code, several array modules
#
# Every op starts the same way: `xp = get_array_module(*inputs)` gives NumPy for host arrays and
# CuPy for device arrays, and the op then writes `xp.exp`, `xp.zeros`, `a @ b`: the same lines
# for both. The shim is the only file that imports CuPy:

# %%
print(inspect.getsource(backend.get_array_module))

# %% [markdown]
# Ops follow their inputs. What decides where *new* arrays go (weights at initialisation,
# factories like `mt.zeros`, the data loader's batches) is the **current backend**:
# `mt.set_backend("cupy")`, or `with mt.use_backend("cupy"):` for a block. A finished model
# moves with `model.to("cupy")`. The training job does exactly this: it sets the configured
# backend before it builds the model, so the weights are made on the device (drawn on the host
# from the seeded generator and copied over once, so a seed gives the same weights everywhere),
# and its `DataLoader` copies each batch to the device once, as it hands it out:

# %%
print(inspect.getsource(DataLoader._to_tensors))

# %% [markdown]
# After that, everything stays on the device: forward, loss, backward, the optimizer's update.
# Only one number per step comes back, the loss for the progress bar. Here is the training
# loop of `Trainer`; the comment marks that one transfer:

# %%
print(inspect.getsource(Trainer._train_epoch))

# %% [markdown]
# ## 2. The strict backend: a GPU stand-in on the CPU
#
# On a GPU, a host array mixed into an op is an error (CuPy refuses it), but a `float(x)` or a
# `bool(x > 0)` on a device array is not: CuPy quietly copies it to the host, which waits for the
# GPU to finish everything queued before it. One such copy inside a layer, run thousands of
# times, can make a GPU run slower than the CPU, and nothing in the output says so.
#
# This project's third backend, `"strict"`, catches both without a GPU: its arrays are NumPy
# arrays that refuse to mix with plain host arrays and refuse every implicit conversion to a
# Python number. The test suite runs every op on it; code that passes there makes no host arrays
# and no hidden transfers on the GPU path.

# %%
device_array = backend.to_backend(numpy.array([1.0, -2.0, 3.0]), "strict")       # the sanctioned door
print(type(device_array).__name__, "on", backend.backend_name(device_array))
for description, attempt in [("float(a.sum())", lambda: float(device_array.sum())),
                             ("a + numpy.ones(3)", lambda: device_array + numpy.ones(3)),
                             ("if a.max() > 0: ...", lambda: bool(device_array.max() > 0))]:
    try:
        attempt()
    except backend.BackendError as error:
        print(f"{description:22s} -> BackendError: {str(error)[:95]}...")
print("backend.to_numpy(a), the explicit door back:", backend.to_numpy(device_array))

# %% [markdown]
# ## 3. Counting the transfers of a training step
#
# `backend.count_transfers()` counts every device-to-host transfer inside a `with` block, by the
# path it took (`to_numpy`, `float()`, `.item()`, ...). Host-to-device copies are not counted:
# they do not make the host wait for the GPU's results. Here is a small U-Net trained for a few
# steps on the strict backend, with the data loader putting each batch there, then validated:

# %%
root = make_dataset(out=os.path.join(SCRATCH.name, "data"), train=4 * BATCH, val=BATCH, size=SIZE)
events = []                                                        # (what, direction) in order, for the picture
with backend.use_backend("strict"):
    model = models.build("unet", width=8)                         # weights made on the (stand-in) device
    events.append(("weights", "to device"))
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train_loader = DataLoader(Cityscapes(root, "train"), BATCH, shuffle=True, backend="strict")
    with backend.count_transfers() as counter:
        for step, (images, labels) in enumerate(train_loader):
            events.append((f"batch {step + 1}", "to device"))
            loss = F.cross_entropy(model(images), labels, ignore_index=255)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            value = loss.item()                                    # the one transfer of the step
            events.append((f"loss {step + 1}", "to host"))
            print(f"step {step + 1}: loss {value:.3f}, transfers so far {counter.count} {counter.paths}")
    steps = step + 1
    val_loader = DataLoader(Cityscapes(root, "val"), BATCH, backend="strict")
    with backend.count_transfers() as validation:
        metrics = evaluate(model, val_loader)
    events += [(f"val batch {k + 1}", "to device") for k in range(len(val_loader))]
    events.append(("confusion matrix", "to host"))
print(f"{steps} training steps: {counter.count} transfers; validation: {validation.count} transfer {validation.paths}")

# %% [markdown]
# One transfer per step, and one for the whole validation: `ConfusionMatrix` adds each batch's
# counts on the device (one `bincount`) and copies the 19 x 19 matrix to the host once, in
# `compute()`. Drawn as a timeline of what crossed between host and device:

# %%
fig, ax = plt.subplots(figsize=(12, 2.6))
for t, (what, direction) in enumerate(events):
    down = direction == "to device"
    ax.annotate("", xy=(t, 0 if down else 1), xytext=(t, 1 if down else 0),
                arrowprops=dict(arrowstyle="-|>", color="C0" if down else "C3", lw=2))
    ax.text(t, 1.08 if down else -0.08, what, ha="center", va="bottom" if down else "top", fontsize=8,
            rotation=30, color="C0" if down else "C3")
ax.text(-1.3, 1, "host", va="center", ha="right", fontsize=10)
ax.text(-1.3, 0, "device", va="center", ha="right", fontsize=10)
ax.axhline(1, color="0.6", lw=0.8)
ax.axhline(0, color="0.6", lw=0.8)
ax.set_xlim(-3, len(events))
ax.set_ylim(-0.6, 1.6)
ax.axis("off")
ax.set_title("blue: host to device (not counted); red: device to host (counted)", fontsize=10);

# %% [markdown]
# ## 4. A planted `float()`, caught
#
# A layer that scales its output by a statistic of its input, written carelessly with `float()`:
# on NumPy it runs, and its result is right. On a GPU it would run too, but every call would stop
# and wait for the device. The strict backend refuses it, and the counter shows the path:

# %%
class CarelessScale(nn.Module):
    """A layer with a hidden transfer: the scale is computed as a Python float from a device array."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        scale = 1.0 / float(x.data.std())                  # the planted transfer
        return self.conv(x) * scale


x = mt.randn(1, 3, 8, 8)
print("on numpy: output", CarelessScale()(x).shape)
with backend.use_backend("strict"):
    layer = CarelessScale()
    with backend.count_transfers() as caught:
        try:
            layer(x.to("strict"))
        except backend.BackendError as error:
            print("on strict: BackendError:", str(error)[:110], "...")
print("counted:", caught.count, caught.paths)

# %% [markdown]
# The fix is to stay in tensors: `x.std()` is a 0-d tensor on the device, and `conv(x) / x.std()`
# broadcasts it, without the host ever seeing the number.
#
# ## 5. Timing: CPU against GPU
#
# Time a training step (forward, cross-entropy, backward, SGD update) of the U-Net at a few
# widths, on a fixed batch. Of a few steps we keep the fastest: whatever else the machine runs
# can only slow a step down, so the minimum is the least disturbed measurement (Python's
# `timeit` reports it for the same reason). First on NumPy, here:

# %%
rng = numpy.random.default_rng(0)
host_images = rng.standard_normal((BATCH, 3, *SIZE)).astype(numpy.float32)
host_labels = rng.integers(0, 19, (BATCH, *SIZE))


def step_seconds(width, backend_name, synchronize=lambda: None):
    """Seconds of the fastest of STEPS U-Net training steps on ``backend_name`` (after one warm-up step)."""
    with backend.use_backend(backend_name):
        mt.manual_seed(0)
        model = models.build("unet", width=width)
        optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        images, labels = mt.tensor(host_images), mt.tensor(host_labels)       # on the current backend
        times = []
        for _ in range(STEPS + 1):
            synchronize()
            start = time.perf_counter()
            loss = F.cross_entropy(model(images), labels, ignore_index=255)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            synchronize()                  # the GPU runs asynchronously: wait for it before reading the clock
            times.append(time.perf_counter() - start)
    return min(times[1:])


timings = {"numpy (CPU)": {w: step_seconds(w, "numpy") for w in WIDTHS}}
for width, seconds in timings["numpy (CPU)"].items():
    print(f"U-Net width {width:2d}, batch {BATCH} x {SIZE[0]} x {SIZE[1]}: {1000 * seconds:7.1f} ms per step on the CPU")

# %% [markdown]
# Then on CuPy, if this machine has a GPU. This cell asks `backend.cupy_unavailable_reason()`,
# which says in one sentence why CuPy cannot be used (not installed, no driver, no GPU), or
# `None` when it can; without a GPU the cell prints the reason and times nothing.

# %%
reason = backend.cupy_unavailable_reason()
if reason is not None:
    print("No GPU timing here:", reason)
else:
    cupy = backend.cupy_module()
    timings["cupy (GPU)"] = {w: step_seconds(w, "cupy", cupy.cuda.Device().synchronize) for w in WIDTHS}
    for width, seconds in timings["cupy (GPU)"].items():
        print(f"U-Net width {width:2d}: {1000 * seconds:7.1f} ms per step on the GPU "
              f"({timings['numpy (CPU)'][width] / seconds:.1f}x the CPU's speed)")

# %% [markdown]
# Whatever was measured, side by side (only the CPU's bars when there was no GPU):

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
bar = 0.8 / len(timings)
for k, (name, by_width) in enumerate(timings.items()):
    ax.bar(numpy.arange(len(WIDTHS)) + (k - (len(timings) - 1) / 2) * bar, [1000 * by_width[w] for w in WIDTHS],
           width=bar, label=name)
ax.set_xticks(range(len(WIDTHS)), [f"U-Net width {w}" for w in WIDTHS])
ax.set_ylabel("ms per training step")
ax.set_yscale("log")
ax.legend()
ax.set_title(f"batch {BATCH} x {SIZE[0]} x {SIZE[1]}, fastest of {STEPS} steps");

# %% [markdown]
# What to expect on a GPU. A small network on small images leaves a GPU mostly idle: each op
# launches a kernel or a few, and with a few thousand operations per step the launch overhead
# and Python's own dispatch, not the arithmetic, set the time. So the speed-up grows with the
# width and the image size, and the widest model gains the most. The CPU, by contrast, is busy
# with arithmetic from the start, and its time grows with the FLOPs.

# %% [markdown]
# ## 6. Two checks for two bugs
#
# A `Function` that runs on every backend takes its array module from its inputs,
# `xp = mt.get_array_module(x)`, and makes every new array with it. It can be wrong in two
# different ways: its backward can be wrong (finite differences catch that, on NumPy), and it
# can be right on NumPy and still not belong on a device.
#
# Not every `numpy.` in an op is a mistake. `numpy.exp(a)` or `numpy.sum(a)` of a device array
# is handed to the array's own module (NumPy's `__array_ufunc__` and `__array_function__`
# protocols, which CuPy implements too), so it stays on the device. Two things break:
#
# - **making an array on the host**: `numpy.zeros`, `numpy.ones`, `numpy.array(...)`,
#   `numpy.asarray(a)`; mixed into an op with device arrays it is an error on CuPy, or a copy;
# - **reading a number back**: `float(a)`, `a.item()`, `if a > 0:`, a Python loop that collects
#   one number per channel; each is a transfer that waits for the GPU (section 4).
#
# Here is a sum of squares along the last axis, right in value and gradient, with one habit from
# plain NumPy code: its output buffer is made by `numpy.zeros`. `gradcheck`, which runs on NumPy,
# cannot see anything wrong with it; the strict backend can.

# %%
class HostSumOfSquares(Function):
    """y = sum_j x_j^2 along the last axis; backward 2 x g. The output made by numpy.zeros: the host habit."""

    @staticmethod
    def forward(ctx, x):
        y = numpy.zeros(x.shape[:-1], dtype=x.dtype)        # a host array, whatever x is
        y += (x * x).sum(axis=-1)
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return 2 * x * g[..., None]


print("on NumPy, gradcheck:", gradcheck(HostSumOfSquares.apply, (mt.randn(3, 5, dtype="float64", requires_grad=True),)))
with backend.use_backend("strict"):
    try:
        HostSumOfSquares.apply(mt.randn(3, 5, dtype="float64"))
    except backend.BackendError as error:
        print("on strict: BackendError:", error)

# %% [markdown]
# The fix is `xp.zeros`, or better no buffer at all: `(x * x).sum(axis=-1)` is already an array
# of x's module. So the exercises of this lesson are checked twice: on NumPy, values and
# gradients against the reference, as in every lesson; then again on the strict backend, where
# a host array or a hidden transfer fails with the smallest input that shows it. Inside
# `forward` and `backward` you get raw arrays of the inputs' backend (NumPy, or strict arrays in
# the second run): use their methods (`x.max(axis=...)`, `x.sum(...)`, `x.reshape(...)`) and
# `xp` for the rest.
#
# ### Exercise 1: `logsumexp(input, dim, keepdim=False)`
#
# The numerically stable **log-sum-exp** (the denominator of the softmax, lesson 2), with
# `torch.logsumexp`'s semantics:
#
# $$y = \log \sum_j e^{x_j} = m + \log \sum_j e^{x_j - m}, \qquad m = \max_j x_j,$$
#
# the sums and the maximum along `dim`, an int or a tuple of dims (negative ones count from the
# end). With `keepdim=True` the reduced dims stay, with size 1; otherwise they are dropped. The
# check draws logits up to $\pm 1000$, where $e^x$ overflows and the shift by $m$ does not.
#
# Derive $\partial y / \partial x_j$ on paper first. Does $m$ matter for the derivative? (Start
# from the plain form $\log \sum_j e^{x_j}$, and then write the result in a form that cannot
# overflow either.) Hints for the code: `x.max(axis=dim, keepdims=True)` and `.sum(...)` take a
# tuple of axes too; computing $y$ with the reduced dims kept, and dropping them
# (`y.squeeze(axis=dim)`) only for the output, gives the backward a shape to `reshape` the
# upstream gradient to, so that it broadcasts against x.

# %% {"tags": ["exercise"], "exercise": "logsumexp"}
class LogSumExp(Function):
    """y = log sum exp(x) along ``dim``, computed as m + log sum exp(x - m); on any backend."""

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        raise NotImplementedError("LogSumExp.forward: m + log(sum(exp(x - m))) along dim, arrays made with xp")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("LogSumExp.backward: your derivative, times g put back on the reduced dims")


def logsumexp(input, dim, keepdim=False):
    return LogSumExp.apply(input, dim=dim, keepdim=keepdim)

# %% {"tags": ["exercise-check"], "exercise": "logsumexp"}
try:
    exercises.check("logsumexp", logsumexp)
    print("logsumexp passed on every drawn input, on both backends.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# ### Exercise 2: `normalize_channels(input, eps=1e-5)`
#
# The statistics half of batch normalisation (the `BatchNorm2d` inside lesson 6's U-Net, in
# training mode, without its learned scale and shift): each channel $c$ of a batch x (N, C, *)
# standardised over the batch and every position,
#
# $$\hat{x} = \frac{x - \mu_c}{\sigma_c}, \qquad \mu_c = \frac{1}{m}\sum x, \qquad
# \sigma_c = \sqrt{\frac{1}{m}\sum (x - \mu_c)^2 + \varepsilon},$$
#
# the sums over the $m$ values of channel $c$ (N times the number of positions), the variance
# the biased one (divided by $m$). The input may have no spatial dims (N, C), one or two.
#
# Derive the backward on paper first. Within one channel, $\hat{x}_i$ depends on every $x_j$ of
# that channel through $\mu$ and $\sigma$: find $\partial \mu / \partial x_j$ and
# $\partial \sigma / \partial x_j$ (write the latter with $\hat{x}_j$), then the quotient rule.
# Two checks on your result, one channel at a time: shifting all its values by a constant
# leaves $\hat{x}$ unchanged, so $\sum_j \partial L / \partial x_j = 0$; and scaling them
# (for $\varepsilon = 0$) too, so $\sum_j x_j\, \partial L / \partial x_j = 0$. Your formula
# should have both built in.
#
# On a device, section 4's habit is the trap: a loop over the channels that computes each
# channel's mean or standard deviation as a Python number. Reduce over all the axes but the
# channel axis at once (`axis=` takes a tuple; `keepdims=True` keeps the result broadcastable).

# %% {"tags": ["exercise"], "exercise": "normalize_channels"}
class NormalizeChannels(Function):
    """(x - mean) / sqrt(var + eps) per channel of x (N, C, *), statistics over every axis but 1."""

    @staticmethod
    def forward(ctx, x, eps):
        raise NotImplementedError("NormalizeChannels.forward: the per-channel statistics, then x_hat")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("NormalizeChannels.backward: the gradient you derived, per channel")


def normalize_channels(input, eps=1e-5):
    return NormalizeChannels.apply(input, eps=eps)

# %% {"tags": ["exercise-check"], "exercise": "normalize_channels"}
try:
    exercises.check("normalize_channels", normalize_channels)
    print("normalize_channels passed on every drawn input, on both backends.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# The library's own versions of these two, `F.log_softmax` (whose denominator is this
# log-sum-exp) and `F.batch_norm` in training mode, are checked the same way by the test suite.
# On the strict backend, a forward and a backward through both make no host array and transfer
# nothing:

# %%
x = mt.randn(2, 3, 4, 5, dtype="float64")
with backend.use_backend("strict"):
    x_device = x.to("strict").requires_grad_()
    with backend.count_transfers() as counter:
        y = F.log_softmax(F.batch_norm(x_device, None, None, training=True), dim=1)
        (y * y).sum().backward()
    print("transfers:", counter.count, "  gradient on", x_device.grad.backend)

# %% [markdown]
# ## 7. Project: real Cityscapes on the GPU
#
# Everything in the course so far trained on the built-in data: street scenes drawn by a program
# in the Cityscapes format, flat-coloured and easy compared with photographs. This project trains
# the same job on the real thing and asks which classes the synthetic data made look easy.
#
# 1. **Get the data.** Register at cityscapes-dataset.com and download `gtFine_trainvaltest.zip`
#    and `leftImg8bit_trainvaltest.zip`; [DATASET.md](../DATASET.md) says what is in them (2,975
#    train, 500 val and 1,525 test images of 1024 x 2048, 34 label ids of which 19 are trained
#    and evaluated, the rest void, 255) and how to make a smaller root of links to a few cities.
# 2. **Point the lesson at it and at the GPU**, then restart the kernel and run this notebook
#    again (the first cell reads both settings):
#
#    ```bash
#    CITYSCAPES_ROOT=~/cityscapes LESSON_BACKEND=cupy jupyter lab lessons/
#    ```
#
#    The cell below then trains the default job of `minitorch-seg train` (U-Net, ENet-weighted
#    loss, SGD with the poly schedule) for `PROJECT_EPOCHS` epochs twice: on the built-in data at
#    half resolution, as always, and on the first `max_train_images` training photographs of the
#    root at a quarter of their side (256 x 512, crops of 128 x 256), scored on its first
#    `max_val_images` val images at full resolution. It prints the per-class IoU of both side by
#    side, with each class's share of the training pixels, and draws them.
# 3. **The same from the command line**, on every image of the root (`--out` keeps the runs apart):
#
#    ```bash
#    minitorch-seg train --backend cupy --out runs/synthetic
#    minitorch-seg train --backend cupy --data ~/cityscapes --input-scale 0.25 --out runs/cityscapes
#    minitorch-seg evaluate runs/synthetic --backend cupy
#    minitorch-seg evaluate runs/cityscapes --data ~/cityscapes --backend cupy
#    ```
#
# Then answer, from your table: which classes are much easier on the synthetic scenes, and what
# about the drawings explains it (lesson 3's colour guards, DATASET.md's "how it is made")? Does
# the order of the classes by IoU follow their order by pixel share on both data sets, as
# lesson 6's weighting experiment would lead you to expect? And how far is your real-data mIoU
# from the 81.1 of lesson 10's HRNet table, and which of lesson 10's three reasons (data, network,
# training) still hold now that the data are real?

# %%
def train_and_score(name, data_root, **options):
    """The default training job for PROJECT_EPOCHS epochs on ``data_root``; its per-class val IoU and pixel shares."""
    config = TrainConfig(epochs=PROJECT_EPOCHS, backend=BACKEND, **options)
    trainer = Trainer(config, data_root, os.path.join(SCRATCH.name, f"project-{name}"), progress=False)
    start = time.perf_counter()
    trainer.run()
    scores = evaluate(trainer.model, trainer.val_loader, input_scale=config.input_scale)
    counts = balance.pixel_counts(trainer.train_loader.dataset, len(CLASS_NAMES))
    print(f"{name}: val mIoU {scores['miou']:.3f} after {PROJECT_EPOCHS} epoch{'s' * (PROJECT_EPOCHS > 1)} "
          f"({time.perf_counter() - start:.0f} s)")
    return numpy.array(scores["iou"]), counts / counts.sum()


gpu_problem = backend.cupy_unavailable_reason() if BACKEND == "cupy" else None
if CITYSCAPES_ROOT is None:
    print("The project is skipped: CITYSCAPES_ROOT is not set, so there is no real data to train on. Set it to a "
          "Cityscapes folder (DATASET.md), with LESSON_BACKEND=cupy on a GPU, and run the notebook again.")
elif gpu_problem is not None:
    print(f"The project is skipped: LESSON_BACKEND is cupy, and CuPy cannot be used here: {gpu_problem}")
else:
    if BACKEND != "cupy":
        print(f"Training on {BACKEND}, the CPU: expect this to take a long time; LESSON_BACKEND=cupy uses a GPU.")
    project = {"synthetic": train_and_score("synthetic", make_dataset(**PROJECT_SYNTHETIC)),
               "Cityscapes": train_and_score("Cityscapes", CITYSCAPES_ROOT, **PROJECT_REAL)}
    (synthetic_iou, synthetic_share), (real_iou, real_share) = project["synthetic"], project["Cityscapes"]
    print(f"\n{'':>14} {'share of the training pixels':>29} {'val IoU':>20}")
    print(f"{'class':>14} {'synthetic':>14} {'Cityscapes':>14} {'synthetic':>10} {'Cityscapes':>10} {'difference':>11}")
    for k in numpy.argsort(-real_share):                      # n/a: the class is in neither's val images nor predicted
        difference = real_iou[k] - synthetic_iou[k]
        difference = "n/a" if numpy.isnan(difference) else f"{difference:+.3f}"
        print(f"{CLASS_NAMES[k]:>14} {100 * synthetic_share[k]:13.2f}% {100 * real_share[k]:13.2f}% "
              f"{synthetic_iou[k]:10.3f} {real_iou[k]:10.3f} {difference:>11}")
    fig, ax = plt.subplots(figsize=(13, 3.6))
    order = numpy.argsort(-real_share)
    positions = numpy.arange(len(order))
    ax.bar(positions - 0.2, numpy.nan_to_num(synthetic_iou[order]), width=0.4, color="0.6", label="built-in synthetic")
    ax.bar(positions + 0.2, numpy.nan_to_num(real_iou[order]), width=0.4, color="C0", label="Cityscapes")
    ax.set_xticks(positions, [CLASS_NAMES[k] for k in order], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("val IoU")
    ax.legend()
    ax.set_title("The same job on synthetic and on real street scenes, classes by their share of Cityscapes' pixels",
                 fontsize=10)

# %% [markdown]
# ## What you have seen
#
# - Ops take their array module from their inputs; the current backend decides where new arrays
#   go. `--backend cupy` makes the weights on the GPU once and moves each batch once.
# - What comes back from the device: the loss, once per step, and the confusion matrix, once per
#   validation. A `float()`, `.item()` or `bool()` inside a layer is a hidden transfer that stalls
#   the GPU; the strict backend turns it into an error, and `count_transfers` counts them.
# - A GPU pays off with width and image size; a small network is limited by launch overhead.
# - A device-safe `Function` makes every array with `xp` and reads no number back; its backward
#   is checked against finite differences on NumPy, its device-safety on the strict backend: two
#   different checks for two different bugs.
# - The same job trains on real Cityscapes with `--backend cupy`; the per-class IoU against the
#   synthetic data's shows which classes the drawings made easy.
#
# That is the end of the course's lessons. From here: `minitorch-seg train --model hrnet`
# (or `swin`, `deeplab`, `unet`), `minitorch-seg evaluate`, and the code itself, where every
# backward in `functional/` carries its derivation in its docstring.
