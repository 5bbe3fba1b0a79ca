# Lesson 10 source: python lessons/build_notebooks.py turns this file into lessons/10_gpu.ipynb.

# %%
# Lesson 10 · Training on a GPU. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks the batches and the number of timed steps.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
SIZE = (32, 64) if FAST else (128, 256)      # (height, width) of the images in the steps counted and timed
BATCH = 2                                    # images per step
STEPS = 2 if FAST else 3                     # timed training steps per backend and width (the fastest is reported)
WIDTHS = (8, 16) if FAST else (8, 16, 32)    # U-Net widths to time

# %% [markdown]
# # Lesson 10 · Training on a GPU
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
# 5. write a `Function` that is safe on any backend, and check its backward.
#
# About 20 minutes. No GPU is needed: the cells that need one say so and skip themselves.

# %%
# %matplotlib inline
import inspect
import tempfile
import time

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, GradcheckError, backend, gradcheck, models, nn, optim
from minitorch_seg.data import Cityscapes, DataLoader, make_dataset
from minitorch_seg.train import Trainer, evaluate

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
workspace = tempfile.TemporaryDirectory(prefix="lesson10-")          # removed when the kernel stops
root = make_dataset(out=os.path.join(workspace.name, "data"), train=4 * BATCH, val=BATCH, size=SIZE)
events = []                                                        # (what, direction) in order, for the picture
with backend.use_backend("strict"):
    model = models.build("unet", width=8)                         # weights made on the (stand-in) device
    events.append(("weights", "to device"))
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train_loader = DataLoader(Cityscapes(root, "train"), BATCH, shuffle=True, backend="strict")
    with backend.count_transfers() as counter:
        for step, (images, labels) in enumerate(train_loader):
            events.append((f"batch {step + 1}", "to device"))
            loss = F.cross_entropy(model(images), labels)
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
            loss = F.cross_entropy(model(images), labels)
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
#
# ## 6. Exercise: derive it yourself, then check it with gradcheck
#
# A `Function` that runs on every backend takes its array module from its inputs and makes
# every new array with it. Here is the numerically stable **log-sum-exp** of each row (the
# denominator of the softmax, lesson 2), written that way:
#
# $$y_i = \log \sum_j e^{x_{ij}} = m_i + \log \sum_j e^{x_{ij} - m_i}, \qquad m_i = \max_j x_{ij}.$$
#
# 1. Derive $\partial y_i / \partial x_{ij}$. (Does $m_i$ matter for the derivative?)
# 2. Run the template, whose backward is a first attempt, then the gradcheck cell.
# 3. Fix `backward` until gradcheck passes, using only `xp` for new arrays.

# %% {"tags": ["planted-wrong"], "gradcheck": "gradcheck(MyLogSumExp.apply, (mt.randn(3, 5, dtype='float64', requires_grad=True),))"}
class MyLogSumExp(Function):
    """y_i = log sum_j exp(x_ij), along the last axis, computed as m + log sum exp(x - m)."""

    @staticmethod
    def forward(ctx, x):
        xp = mt.get_array_module(x)                          # numpy, cupy or strict: whatever x lives on
        m = x.max(axis=-1, keepdims=True)                    # (..., 1)
        y = m[..., 0] + xp.log(xp.exp(x - m).sum(axis=-1))   # (...)
        ctx.save_for_backward(x, m, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, m, y = ctx.saved_arrays
        xp = mt.get_array_module(g)
        # TODO: derive dy/dx and fix this line: a first attempt, and wrong.
        return g[..., None] * xp.exp(x - m)

# %% {"tags": ["exercise-check"]}
try:
    gradcheck(MyLogSumExp.apply, (mt.randn(3, 5, dtype='float64', requires_grad=True),))
    print("gradcheck passed: your backward agrees with the finite differences.")
except GradcheckError as error:
    print("gradcheck caught a wrong backward:\n", error)

# %% [markdown]
# **Solution.** The next two cells, the derivation and the corrected code, are collapsed: click
# the dots (or the bar to the left of a cell) to open them, once you have tried.

# %% [markdown] {"tags": ["solution"]}
# Differentiate the plain form $y_i = \log \sum_l e^{x_{il}}$: the derivative of a log of a sum is
# the derivative of the sum over the sum,
#
# $$\frac{\partial y_i}{\partial x_{ij}} = \frac{e^{x_{ij}}}{\sum_l e^{x_{il}}} = e^{x_{ij} - y_i} = \operatorname{softmax}(x_i)_j,$$
#
# so $\bar x_{ij} = \bar y_i\, e^{x_{ij} - y_i}$. The shift $m_i$ is only a way to compute the same
# $y_i$ without overflow; it changes nothing in the derivative. The first attempt used
# $e^{x_{ij} - m_i}$, the shifted exponential, which is the softmax *before* its division by
# $\sum_l e^{x_{il} - m_i}$: too large by that sum, which lies between 1 and the row's length. And
# $e^{x - y}$ is as safe as the forward: $y_i \ge \max_j x_{ij}$, so the exponent is never positive.

# %% {"tags": ["solution"]}
class MyLogSumExp(Function):
    """y_i = log sum_j exp(x_ij).  Backward: dy_i/dx_ij = exp(x_ij - y_i), the softmax of row i."""

    @staticmethod
    def forward(ctx, x):
        xp = mt.get_array_module(x)
        m = x.max(axis=-1, keepdims=True)
        y = m[..., 0] + xp.log(xp.exp(x - m).sum(axis=-1))
        ctx.save_for_backward(x, m, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, m, y = ctx.saved_arrays
        xp = mt.get_array_module(g)
        return g[..., None] * xp.exp(x - y[..., None])

# %%
gradcheck(MyLogSumExp.apply, (mt.randn(3, 5, dtype='float64', requires_grad=True),))

# %% [markdown]
# Because it takes `xp` from its inputs, your Function runs unchanged on the strict backend, makes
# no host arrays, and transfers nothing, forward or backward:

# %%
x = mt.randn(4, 6, dtype="float64", requires_grad=True)
MyLogSumExp.apply(x).sum().backward()
on_host = x.grad.numpy().copy()
with backend.use_backend("strict"):
    x_device = x.detach().to("strict").requires_grad_()
    with backend.count_transfers() as counter:
        MyLogSumExp.apply(x_device).sum().backward()
    print("transfers:", counter.count, "  gradient on", x_device.grad.backend,
          "  equal to NumPy's:", numpy.allclose(x_device.grad.numpy(), on_host))

# %% [markdown]
# The same Function written with one habit from plain NumPy code, `numpy.zeros` for the output
# it fills row by row, is just as correct on NumPy, and `gradcheck` (which runs on NumPy) cannot
# see anything wrong with it. The strict backend can: that host array would make the op fail on
# CuPy, or, mixed into a computation, force copies between host and device.

# %%
class HostLogSumExp(MyLogSumExp):
    """The solution's maths, with the output made by numpy.zeros: right on the host, wrong on a device."""

    @staticmethod
    def forward(ctx, x):
        xp = mt.get_array_module(x)
        m = x.max(axis=-1, keepdims=True)
        y = numpy.zeros(x.shape[:-1], dtype=x.dtype)         # the host habit
        y += m[..., 0] + xp.log(xp.exp(x - m).sum(axis=-1))
        ctx.save_for_backward(x, m, y)
        return y


print("on NumPy, gradcheck:", gradcheck(HostLogSumExp.apply, (mt.randn(3, 5, dtype="float64", requires_grad=True),)))
with backend.use_backend("strict"):
    try:
        HostLogSumExp.apply(mt.randn(3, 5, dtype="float64"))
    except backend.BackendError as error:
        print("on strict: BackendError:", error)

# %% [markdown]
# ## What you have seen
#
# - Ops take their array module from their inputs; the current backend decides where new arrays
#   go. `--backend cupy` makes the weights on the GPU once and moves each batch once.
# - What comes back from the device: the loss, once per step, and the confusion matrix, once per
#   validation. A `float()`, `.item()` or `bool()` inside a layer is a hidden transfer that stalls
#   the GPU; the strict backend turns it into an error, and `count_transfers` counts them.
# - A GPU pays off with width and image size; a small network is limited by launch overhead.
# - A device-safe `Function` makes every array with `xp`; its backward is checked by `gradcheck`
#   and its device-safety by the strict backend: two different checks for two different bugs.
#
# That is the end of the course's lessons. From here: `minitorch-seg train --model hrnet`
# (or `swin`, `deeplab`, `unet`), `minitorch-seg evaluate`, and the code itself, where every
# backward in `functional/` carries its derivation in its docstring.
