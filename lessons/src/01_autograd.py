# Lesson 1 source: python lessons/build_notebooks.py turns this file into lessons/01_autograd.ipynb.

# %%
# Lesson 1 · Autograd and gradient checking. Run this cell first.
# LESSON_FAST=1 (the test suite sets it) only shrinks step counts; every code path stays the same.
import os

FAST = os.environ.get("LESSON_FAST") == "1"
STEPS = 200 if FAST else 800            # gradient-descent steps in the last section

# %% [markdown]
# # Lesson 1 · Autograd and gradient checking
#
# A segmentation network is a few million numbers, its weights, and a long chain of array
# operations that turns an image into a score for every pixel and class, and the scores into one
# number, the loss. Training needs the derivative of the loss with respect to every weight.
# Nobody writes those derivatives out for a whole network: **autograd** (automatic
# differentiation) assembles them from small pieces, one per operation, each derived by hand
# once. **Gradient checking** is how you find out that one of those pieces is wrong.
#
# In this lesson you will
#
# 1. build a **computation graph** and draw it,
# 2. run **reverse mode** by hand and compare with `backward()`,
# 3. write a **`Function` with a hand-derived backward**,
# 4. watch **`gradcheck`** catch a wrong backward,
# 5. see why one checked input is not enough, and let **hypothesis** draw many and shrink a failure,
# 6. write two `Function`s yourself, softplus and a broadcasting add, and have them checked.
#
# You need NumPy and the chain rule. About 45 minutes.

# %%
# %matplotlib inline
import inspect

import matplotlib.pyplot as plt
import numpy
from hypothesis import strategies as st

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, GradcheckError, exercises, gradcheck, testing, viz

mt.manual_seed(0)

# %% [markdown]
# ## 1. A computation graph
#
# Take a small expression, the kind every layer of a network is made of:
#
# $$L = \sum_{i,j} \operatorname{relu}(x_{ij}\, w_j + b)$$
#
# with an input $x$ of shape (4, 3), a weight $w$ of shape (3,) and a bias $b$. A tensor made
# with `requires_grad=True` asks for its gradient. Every operation on such tensors does two
# things: it computes its result, and it records a **node** in a graph: which `Function` ran,
# and where its inputs came from.

# %%
x = mt.randn(4, 3, requires_grad=True)
w = mt.randn(3, requires_grad=True)
b = mt.tensor(0.5, requires_grad=True)

h = x * w + b                      # (4, 3): w is broadcast over the 4 rows, b over everything
loss = h.relu().sum()
loss

# %% [markdown]
# `loss.grad_fn` is the node that made `loss`. Its `edges` say, per input, where that input came
# from: another node (an intermediate result), or a **leaf** tensor (one you made yourself),
# with the input's shape. Following the edges from `loss` back to the leaves walks the whole
# graph.

# %%
node = loss.grad_fn
for _ in range(4):                                 # Sum <- ReLU <- Add <- Mul
    print(f"{node.name} made {[shape for shape, _, _ in node.outputs]}; its inputs came from:")
    for producer, output_index, shape in node.edges:
        print(f"    {getattr(producer, 'name', 'a leaf tensor')} (shape {shape})")
    node = node.edges[0][0]                        # follow the first input back

# %% [markdown]
# `viz.draw_graph` follows every edge and draws the graph: a blue box per `Function` with the
# shape of what it produced, an orange box per leaf, arrows the way the forward pass went.

# %%
viz.draw_graph(loss, names={"x": x, "w": w, "b": b, "loss": loss})

# %% [markdown]
# ## 2. Reverse mode
#
# The graph is a composition of functions, so the derivative is the chain rule. Write
# $\bar v = \partial L / \partial v$ for the gradient of the loss with respect to any
# intermediate value $v$ (same shape as $v$). If a node computes $y = f(x)$, then
#
# $$\bar x_i = \sum_j \bar y_j \, \frac{\partial y_j}{\partial x_i}.$$
#
# This is the whole idea. Start at the output with $\bar L = 1$, and visit the nodes from the
# output towards the inputs: each node receives $\bar y$ for its output and hands $\bar x$ to each
# of its inputs. That is **reverse mode**. One backward pass gives the gradient with respect to
# *every* input at once, for about the cost of one forward pass, which is exactly what training
# needs: millions of weights, one loss. (Forward mode, which pushes derivatives from one input
# towards the output, would need one pass per weight.)
#
# Two rules make it work on any graph:
#
# - **Order.** A node may only run its backward once every node that used its output has sent
#   its share of $\bar y$. Visiting the nodes in reverse *topological* order guarantees that.
# - **Fan-out adds.** When a value feeds several places (here: $w$ is broadcast to 4 rows, $b$ to
#   12 elements), its gradient is the **sum** of what comes back from each place. That is the
#   multivariate chain rule, and it is why the engine accumulates gradients with `+`.
#
# Here is reverse mode for our expression, by hand, in NumPy. Each line is one node's backward.

# %%
xn, wn, bn = x.numpy(), w.numpy(), b.numpy()
hn = xn * wn + bn                                  # the forward pass again

grad_loss = 1.0                                    # dL/dL
grad_relu = grad_loss * numpy.ones_like(hn)        # Sum: every element counts once
grad_h = grad_relu * (hn > 0)                      # ReLU: passes the gradient where its input was > 0
grad_x = grad_h * wn                               # Mul: d(x w)/dx = w
grad_w = (grad_h * xn).sum(axis=0)                 # d(x w)/dw = x, summed over the 4 rows w was copied to
grad_b = grad_h.sum()                              # b was copied to all 12 elements: sum them all

loss.backward()                                    # the engine does the same walk
for name, ours, engine in [("x", grad_x, x.grad), ("w", grad_w, w.grad), ("b", grad_b, b.grad)]:
    print(f"dL/d{name} by hand equals the engine's:", numpy.allclose(ours, engine.numpy()))

# %% [markdown]
# The engine visited the nodes in this order (a topological sort of the graph, found without
# recursion so a graph 10,000 operations deep is fine):

# %%
[n.name for n in mt.autograd.topological_order(loss.grad_fn)]

# %% [markdown]
# ## 3. A Function with a hand-derived backward
#
# Every operation in `minitorch_seg` is a subclass of `Function` with two static methods that
# work on plain arrays:
#
# - `forward(ctx, *arrays)` computes the result and saves on `ctx` whatever backward will need;
# - `backward(ctx, grad_output)` gets $\bar y$ and returns $\bar x$ for each input, the formula
#   derived by hand, never the Jacobian matrix itself.
#
# Here is the library's sigmoid, $s = 1/(1 + e^{-x})$. Its derivative is
# $\frac{ds}{dx} = \frac{e^{-x}}{(1+e^{-x})^2} = s(1-s)$, a function of the *output*, so the
# forward saves $s$ and not $x$. (`xp` is the array module the inputs live in: NumPy here, CuPy
# on a GPU; in this lesson's own Functions we simply write `numpy`.)

# %%
print(inspect.getsource(F.activation.Sigmoid))

# %% [markdown]
# Writing your own is the same. For $y = x^3$: $\frac{dy}{dx} = 3x^2$, so
# $\bar x = 3x^2 \, \bar y$ elementwise, and the forward must save $x$. `Cube.apply(t)` runs it on
# a tensor and records a `Cube` node in the graph.

# %%
class Cube(Function):
    """y = x^3.  Backward: dy/dx = 3 x^2, so dL/dx = 3 x^2 * dL/dy."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return 3 * x ** 2 * g


t = mt.tensor([1.0, -2.0, 0.5], requires_grad=True)
Cube.apply(t).sum().backward()
print("dL/dt =", t.grad.tolist(), "  (3 t^2 =", (3 * t.numpy() ** 2).tolist(), ")")

# %% [markdown]
# ## 4. Gradient checking
#
# A backward pass can be wrong in ways no error message reveals: the network still trains, just
# worse. So every backward is checked against the definition of the derivative. The **central
# difference**
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon}$$
#
# is off by $O(\varepsilon^2)$ (the $\varepsilon^2$ terms of the two Taylor expansions cancel),
# the one-sided $\frac{f(x+\varepsilon e_i) - f(x)}{\varepsilon}$ by $O(\varepsilon)$. But
# $\varepsilon$ cannot be tiny either: $f(x\pm\varepsilon e_i)$ are rounded to about 16 digits in
# float64, and dividing their difference by $\varepsilon$ magnifies that rounding. The picture
# shows both errors for $f = \sin$ at $x = 1$: the sweet spot of the central difference is near
# $\varepsilon = 10^{-5}$, in float64. (In float32 it would be far worse: always check in float64.)

# %%
eps = numpy.logspace(-14, -1, 60)
exact = numpy.cos(1.0)
one_sided = numpy.abs((numpy.sin(1 + eps) - numpy.sin(1.0)) / eps - exact)
central = numpy.abs((numpy.sin(1 + eps) - numpy.sin(1 - eps)) / (2 * eps) - exact)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.loglog(eps, one_sided, label="one-sided  (f(x+ε) − f(x)) / ε")
ax.loglog(eps, central, label="central  (f(x+ε) − f(x−ε)) / 2ε")
ax.set_xlabel("ε")
ax.set_ylabel("|error| of d sin/dx at x = 1")
ax.legend()
ax.set_title("Truncation error falls with ε, rounding error grows");

# %% [markdown]
# `minitorch_seg.gradcheck(fn, inputs)` does this for every element of every input that
# requires grad (or along random directions for big inputs), in float64, and compares with
# what `backward` computes. A function with many outputs is first contracted with a fixed
# *random* upstream gradient $u$, $s(x) = \langle f(x), u\rangle$, so the check covers every
# output with one number, and a backward that sends gradients to the wrong positions cannot
# hide behind a symmetric all-ones $u$. It returns `True` or raises `GradcheckError` with the
# worst disagreement:

# %%
print(mt.gradient_check.__doc__.split(">>>")[0])
gradcheck(Cube.apply, (mt.randn(5, requires_grad=True),))

# %% [markdown]
# Now a wrong backward on purpose. The power rule applied carelessly, $\frac{d}{dx} x^3 = 3x$,
# looks plausible and runs without complaint. `gradcheck` is not fooled:

# %%
class WrongCube(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return 3 * x * g                         # wrong: should be 3 x^2


try:
    gradcheck(WrongCube.apply, (mt.randn(5, requires_grad=True),))
except GradcheckError as error:
    print("caught:", error)

# %% [markdown]
# ## 5. Property-based checking: many drawn inputs, and the smallest failure
#
# `gradcheck` checks one input. A backward can be right at that input and wrong at others, and
# the usual culprit is the **shape**: a backward written with one shape in mind hard-codes a size,
# picks the wrong axis, or forgets a broadcast, and is exactly right at the shape it was tried on.
# Here is one. `MeanAlong` averages along axis `dim`; each of the $n$ inputs of a mean gets
# $\bar y / n$, and this backward takes $n$ from the *last* axis instead of axis `dim`:

# %%
class MeanAlong(Function):
    """y = x.mean(axis=dim).  Backward: each of the n = x.shape[dim] averaged inputs gets g / n."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.shape, ctx.dim = x.shape, dim
        return x.mean(axis=dim)

    @staticmethod
    def backward(ctx, g):
        n = ctx.shape[-1]                            # planted bug: should be ctx.shape[ctx.dim]
        return numpy.broadcast_to(numpy.expand_dims(g, ctx.dim), ctx.shape) / n


def mean_along(x, dim):
    return MeanAlong.apply(x, dim=dim)

# %% [markdown]
# **Predict first.** Its author gradchecks it at four inputs:
#
# | | input | `dim` |
# |---|---|---|
# | a | a (5,) vector | 0 |
# | b | a (3, 4) matrix | 1 |
# | c | a (4, 4) matrix | 0 |
# | d | a (3, 4) matrix | 0 |
#
# Which one does `gradcheck` flag? Read the backward, write your answer (`"a"`, `"b"`, `"c"` or
# `"d"`) in the cell below, then run the check after it. The cell after that runs the four
# `gradcheck`s.

# %% {"tags": ["prediction"], "prediction": "gradcheck_flags"}
answer = ...

# %% {"tags": ["prediction-check"], "prediction": "gradcheck_flags"}
exercises.check_prediction("gradcheck_flags", answer)

# %%
candidates = {"a": ((5,), 0), "b": ((3, 4), 1), "c": ((4, 4), 0), "d": ((3, 4), 0)}      # shape, dim
for letter, (shape, dim) in candidates.items():
    try:
        gradcheck(lambda x: mean_along(x, dim), (mt.randn(*shape, dtype="float64", requires_grad=True),))
        print(f"{letter}) {shape}, dim {dim}: passes")
    except GradcheckError as error:
        print(f"{letter}) {shape}, dim {dim}: flagged: {error}")

# %% [markdown]
# Three of the four pass: along the last axis the bug is no bug, and on a square matrix the last
# axis has the size of every other. An author who tried a vector, the rows of a matrix and a
# square matrix would ship it. **Property-based checking** states
# what must hold for *every* input (here: the backward agrees with finite differences) and lets a
# library, [hypothesis](https://hypothesis.readthedocs.io), draw the inputs: many of them,
# different shapes each time. `minitorch_seg.testing` holds the strategies (what to draw) and
# the checks:
#
# - `testing.shapes(min_dims, max_dims, min_side, max_side)` draws shape tuples;
#   `testing.tensors(shape)` a float64 tensor of that shape (or of a drawn one);
#   `testing.broadcastable_pair()` two shapes that broadcast together; and
#   `testing.arguments(...)` bundles drawn arguments into one call `fn(*args, **kwargs)`.
# - `testing.check_gradients(fn, inputs)` runs `gradcheck` on every draw;
#   `testing.check_against(fn, reference, inputs)` compares outputs and gradients with a
#   reference function. Each raises `testing.CheckFailed` with a report.
#
# Below, each draw is a shape of 1 to 3 sides, then (`flatmap`: a strategy that depends on what was
# drawn) a tensor of that shape and one of its axes:

# %%
drawn = testing.shapes(min_dims=1, max_dims=3).flatmap(
    lambda shape: testing.arguments(testing.tensors(shape), st.integers(0, len(shape) - 1)))
try:
    testing.check_gradients(mean_along, drawn)
    print("no drawn input broke it")
except testing.CheckFailed as failure:
    print(failure)

# %% [markdown]
# The first draw that failed was probably a bigger tensor; the report shows a (1, 2) matrix
# averaged over its first axis, where $n$ is 1 and the bug divides by 2. That is **shrinking**:
# after a failure, hypothesis keeps trying simpler versions of the failing input (fewer axes,
# smaller sides, smaller integers) and keeps each one that still fails, until nothing simpler
# does. What you debug is the smallest input that shows the bug, small enough to work out by
# hand. (The tensor *values* are drawn from a seed and not shrunk: a gradient bug rarely hides
# in particular values, while shapes are where it lives.) `failure.example` holds that input:
# `failure.example.call(mean_along)` reruns it.

# %% [markdown]
# ## 6. Exercises: write the Function yourself
#
# Now you write the code. Each exercise below is a stub with the signature the check calls it
# with; replace the `raise NotImplementedError` lines with your forward and backward (on NumPy
# arrays, as in `Cube`), then run the cell after it. That cell calls `exercises.check`, which
# runs your function and a reference on many drawn inputs, compares the outputs and the
# gradients at float64 precision (rtol 1e-6), checks your gradients against finite
# differences, and prints the shrunk smallest failing input when something disagrees.
# (`exercises.describe("add")` says what a check draws.) Derive each backward on paper first.

# %% [markdown]
# **Exercise 1: `softplus(input, beta=1.0, threshold=20.0)`.** Softplus is a smooth relu, used
# where a network needs a positive output. With PyTorch's parameters, elementwise:
#
# $$\operatorname{softplus}(x) = \begin{cases} \frac{1}{\beta}\log\left(1 + e^{\beta x}\right) & \beta x \le \text{threshold} \\ x & \beta x > \text{threshold}\end{cases}$$
#
# $\beta > 0$ sharpens the bend; above the threshold the curve is within
# $e^{-\text{threshold}}/\beta$ of the line $y = x$, so it simply becomes the line. Here it is,
# drawn with the reference your function will be checked against (built from library operations):

# %%
reference_softplus = exercises.get("softplus").reference
grid = numpy.linspace(-4, 4, 161)
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(grid, numpy.maximum(grid, 0), "k:", label="relu")
for beta in (0.5, 1.0, 2.0):
    ax.plot(grid, reference_softplus(mt.tensor(grid), beta=beta).numpy(), label=f"softplus, beta = {beta}")
ax.set_xlabel("x")
ax.legend()
ax.set_title("A smooth relu");

# %% [markdown]
# Now write it:
#
# 1. Derive $\frac{dy}{dx}$ on paper, on both branches. (Write $z = \beta x$ and use the chain rule.
#    On the curve the answer is a function you have already met in this lesson.)
# 2. Write `forward` and `backward`. `beta` and `threshold` reach `forward` as keyword
#    parameters: they are numbers, not inputs, so `backward` returns one gradient, for `x`.
#
# Hints: the check draws $|x|$ up to 2000, where `numpy.exp(beta * x)` overflows to `inf`, and
# `0 * inf` is `nan`. Compute the curve as $\max(z, 0) + \log(1 + e^{-|z|})$ (the same value, but
# $e^{(\cdot)}$ never sees a positive exponent; `numpy.log1p` keeps small values exact), and pick
# the branch with `numpy.where`. If your derivative holds an exponential, write it so that it
# cannot overflow either (section 3's `Sigmoid` shows one way). Save on `ctx` what backward needs.

# %% {"tags": ["exercise"], "exercise": "softplus"}
class Softplus(Function):
    """y = 1/beta log(1 + e^(beta x)), and y = x where beta x > threshold."""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        raise NotImplementedError("Softplus.forward: the curve, without overflow, and x where beta * x > threshold")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("Softplus.backward: the derivative you derived, times g")


def softplus(input, beta=1.0, threshold=20.0):
    return Softplus.apply(input, beta=beta, threshold=threshold)

# %% {"tags": ["exercise-check"], "exercise": "softplus"}
try:
    exercises.check("softplus", softplus)
    print("softplus passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# **Exercise 2: `add(input, other)` with broadcasting.** In section 1, `x * w + b` added a (3,)
# weight to every row of a (4, 3) input and a single number to everything: NumPy's
# **broadcasting**. Line the two shapes up from the right; a missing leading axis counts as size
# 1, and an axis of size 1 is copied along the other's size. So (4, 3) with (3,) gives (4, 3),
# and (3, 1) with (1, 4) gives (3, 4): *both* were copied.
#
# The forward is one line, `a + b`. The backward is the exercise, and it is section 2's
# fan-out rule: an element that was copied to several outputs gets the **sum** of their
# gradients. Work it out on paper for (4, 3) + (3,) and for (3, 1) + (1, 4): over which axes
# does each input's gradient sum, and what shape must it have in the end? Then write the
# general rule, for any two shapes that broadcast. (`backward` must return one gradient per
# input, each with exactly that input's shape; the engine refuses any other.)
#
# Why this exercise needs drawn shapes: the classic wrong answer, returning $\bar y$ unchanged
# for both inputs, is exactly right whenever the two shapes are equal, which is the shape most
# people test with. The check draws equal shapes, shapes with fewer axes or sizes of 1, and
# pairs that both expand.

# %% {"tags": ["exercise"], "exercise": "add"}
class Add(Function):
    """y = a + b, with broadcasting."""

    @staticmethod
    def forward(ctx, a, b):
        raise NotImplementedError("Add.forward: a + b, and remember on ctx what backward needs")

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("Add.backward: g summed back to each input's own shape, one per input")


def add(input, other):
    return Add.apply(input, other)

# %% {"tags": ["exercise-check"], "exercise": "add"}
try:
    exercises.check("add", add)
    print("add passed on every drawn input.")
except exercises.NotAttempted as todo:
    print(todo)

# %% [markdown]
# When a check fails it raises `exercises.ExerciseFailed`, whose message is the report; the
# smallest failing input is kept on the error, so you can run your function on it by hand:
#
# ```python
# try:
#     exercises.check("add", add)
# except exercises.ExerciseFailed as failure:
#     small = failure.example                      # .args and .kwargs of the call
#     print(small.call(add), small.call(F.add))
# ```
#
# (The library's own unbroadcast, which every broadcasting op's backward calls, is
# `mt.autograd.sum_to_shape`: compare it with yours once your `add` passes.)

# %% [markdown]
# ## 7. Softplus inside a model
#
# A `Function` you wrote is as good as any built-in one. Here softplus is the hidden-layer
# activation of a tiny network, $\hat y = W_2\, \operatorname{softplus}(W_1 x + b_1) + b_2$,
# fitted to noisy samples of a curve by gradient descent: each step runs the forward pass,
# `backward()` fills every weight's `.grad`, and the optimizer moves each weight a little against
# its gradient. The softplus used here is the reference your exercise is checked against, built
# from library operations (relu, abs, exp, log and a mask); once your `softplus` passes its check
# it gives the same numbers, and `model` could call it instead.

# %%
rng = numpy.random.default_rng(0)
inputs = numpy.linspace(-2, 2, 64, dtype=numpy.float32)[:, None]                       # (64, 1)
targets = (numpy.sin(2 * inputs) + 0.1 * rng.standard_normal(inputs.shape)).astype(numpy.float32)

hidden = mt.nn.Linear(1, 16)
head = mt.nn.Linear(16, 1)
parameters = list(hidden.parameters()) + list(head.parameters())
optimizer = mt.optim.Adam(parameters, lr=0.03)


def model(t):
    return head(reference_softplus(hidden(t)))


losses = []
for step in range(STEPS):
    loss = ((model(mt.tensor(inputs)) - mt.tensor(targets)) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
left.semilogy(losses)
left.set_xlabel("step")
left.set_ylabel("mean squared error")
left.set_title("loss curve")
with mt.no_grad():
    fitted = model(mt.tensor(inputs)).numpy()
right.plot(inputs, targets, ".", label="data")
right.plot(inputs, fitted, label="model")
right.legend()
right.set_title(f"after {STEPS} steps");

# %% [markdown]
# And the graph of one step's loss. The composed softplus shows up as the handful of small nodes
# it is made of (Mul, ReLU, Abs, Neg, Exp, Add, Log, ...), each saving its own arrays for the
# backward pass; your `Softplus` would be one node, with one hand-derived backward and one saved
# array. That is why libraries write frequent operations as a single `Function`.

# %%
loss = ((model(mt.tensor(inputs)) - mt.tensor(targets)) ** 2).mean()
viz.draw_graph(loss, names={"W1": hidden.weight, "b1": hidden.bias, "W2": head.weight, "b2": head.bias,
                            "loss": loss})

# %% [markdown]
# ## What you have seen
#
# - Operations on tensors that require grad record a graph of `Function` nodes; `draw_graph` shows it.
# - Reverse mode walks that graph from the loss back, in topological order; each node turns
#   $\bar y$ into $\bar x$ with its hand-derived backward, and gradients from several paths add.
# - `gradcheck` compares every backward with central differences in float64, and catches
#   plausible-looking mistakes like a lost exponent or a lost minus sign.
# - At one input, that is. `testing.check_gradients` and `testing.check_against` check a property
#   on many drawn inputs and shapes, and hypothesis shrinks a failure to the smallest input that
#   still fails: a backward that is right only at the shape it was written for does not survive.
# - Broadcasting copies values, so its backward sums: each input's gradient is the upstream
#   gradient summed back to that input's shape.
#
# **Next:** lesson 2 derives the backward of the loss every segmentation network is trained
# with, the per-pixel cross-entropy.
