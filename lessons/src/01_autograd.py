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
# 4. watch **`gradcheck`** catch a wrong backward, then derive one yourself and check it.
#
# You need NumPy and the chain rule. About 25 minutes.

# %%
# %matplotlib inline
import inspect

import matplotlib.pyplot as plt
import numpy

import minitorch_seg as mt
import minitorch_seg.functional as F
from minitorch_seg import Function, GradcheckError, gradcheck, viz

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
[n.name for n in mt.autograd._topological_order(loss.grad_fn)]

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
# ## 5. Exercise: derive it yourself, then check it with gradcheck
#
# **Softplus** is a smooth ReLU, used where a network needs a positive output:
#
# $$\operatorname{softplus}(x) = \log(1 + e^{x}).$$
#
# 1. Derive $\frac{d}{dx}\operatorname{softplus}(x)$ on paper. (The answer is a function you have
#    already met in this lesson.)
# 2. The cell below holds a first attempt whose backward is **wrong**. Run it, then run the
#    gradcheck cell after it and read what it caught.
# 3. Fix `backward` and run both cells again until gradcheck passes.
#
# The forward is computed as $\max(x, 0) + \log(1 + e^{-|x|})$: the same value, but $e^{(\cdot)}$
# never sees a positive exponent, so it cannot overflow for large $x$.

# %% {"tags": ["planted-wrong"], "gradcheck": "gradcheck(MySoftplus.apply, (mt.randn(7, dtype='float64', requires_grad=True),))"}
class MySoftplus(Function):
    """y = log(1 + e^x), computed as max(x, 0) + log(1 + e^-|x|)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return numpy.maximum(x, 0) + numpy.log1p(numpy.exp(-numpy.abs(x)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        # TODO: derive dy/dx and fix this line: it is a first attempt, and it is wrong.
        return g / (1 + numpy.exp(x))

# %% {"tags": ["exercise-check"]}
try:
    gradcheck(MySoftplus.apply, (mt.randn(7, dtype='float64', requires_grad=True),))
    print("gradcheck passed: your backward agrees with the finite differences.")
except GradcheckError as error:
    print("gradcheck caught a wrong backward:\n", error)

# %% [markdown]
# A picture often says *how* it is wrong. Plot what `backward` returns (with $\bar y = 1$)
# against the central difference of the forward:

# %%
grid = numpy.linspace(-5, 5, 201)
probe = mt.tensor(grid, requires_grad=True)
MySoftplus.apply(probe).sum().backward()


def softplus_values(v):
    with mt.no_grad():                       # values only: no graph
        return MySoftplus.apply(mt.tensor(v)).numpy()


numeric = (softplus_values(grid + 1e-5) - softplus_values(grid - 1e-5)) / 2e-5
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(grid, numeric, label="finite difference of forward", lw=3, alpha=0.5)
ax.plot(grid, probe.grad.numpy(), "--", label="your backward")
ax.set_xlabel("x")
ax.legend()
ax.set_title("d softplus / dx");

# %% [markdown]
# **Solution.** The next two cells, the derivation and the corrected code, are collapsed: click
# the dots (or the bar to the left of a cell) to open them, once you have tried.

# %% [markdown] {"tags": ["solution"]}
# Write $y = \log(1 + e^x)$. By the chain rule,
# $\frac{dy}{dx} = \frac{e^x}{1 + e^x} = \frac{1}{1 + e^{-x}} = \sigma(x)$, the sigmoid. The first
# attempt returned $\frac{1}{1+e^{x}} = \sigma(-x)$, the mirror image: one lost minus sign. To
# evaluate $\sigma$ without overflow, use $\sigma(x) = \tfrac12\left(1 + \tanh\tfrac{x}{2}\right)$.

# %% {"tags": ["solution"]}
class MySoftplus(Function):
    """y = log(1 + e^x).  Backward: dy/dx = e^x / (1 + e^x) = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return numpy.maximum(x, 0) + numpy.log1p(numpy.exp(-numpy.abs(x)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g * 0.5 * (1 + numpy.tanh(x / 2))     # sigmoid(x), without overflow

# %%
gradcheck(MySoftplus.apply, (mt.randn(7, dtype='float64', requires_grad=True),))

# %% [markdown]
# ## 6. Your Function inside a model
#
# A `Function` you wrote is as good as any built-in one. Here it is the hidden-layer activation
# of a tiny network, $\hat y = W_2\, \operatorname{softplus}(W_1 x + b_1) + b_2$, fitted to noisy
# samples of a curve by gradient descent: each step runs the forward pass, `backward()` fills
# every weight's `.grad`, and the optimizer moves each weight a little against its gradient.

# %%
rng = numpy.random.default_rng(0)
inputs = numpy.linspace(-2, 2, 64, dtype=numpy.float32)[:, None]                       # (64, 1)
targets = (numpy.sin(2 * inputs) + 0.1 * rng.standard_normal(inputs.shape)).astype(numpy.float32)

hidden = mt.nn.Linear(1, 16)
head = mt.nn.Linear(16, 1)
parameters = list(hidden.parameters()) + list(head.parameters())
optimizer = mt.optim.Adam(parameters, lr=0.03)


def model(t):
    return head(MySoftplus.apply(hidden(t)))


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
# And the graph of one step's loss: your `MySoftplus` is a node like any other.

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
#
# **Next:** lesson 2 derives the backward of the loss every segmentation network is trained
# with, the per-pixel cross-entropy.
