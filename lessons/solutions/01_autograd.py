# Solutions to lesson 1's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks); the last cells answer its
# "predict first" questions. Try first.

# %% {"exercise": "softplus"}
class Softplus(Function):
    """y = 1/beta log(1 + e^(beta x)), and y = x where beta x > threshold.

    Backward: with z = beta x, dy/dx = 1/beta * e^z / (1 + e^z) * beta = 1 / (1 + e^-z) = sigmoid(beta x)
    on the curve, and 1 on the line.
    """

    @staticmethod
    def forward(ctx, x, beta, threshold):
        z = beta * x
        line = z > threshold
        # log(1 + e^z) = max(z, 0) + log(1 + e^-|z|): exp never sees a positive exponent
        curve = (numpy.maximum(z, 0) + numpy.log1p(numpy.exp(-numpy.abs(z)))) / beta
        ctx.save_for_backward(z, line)
        return numpy.where(line, x, curve)

    @staticmethod
    def backward(ctx, g):
        z, line = ctx.saved_arrays
        sigmoid = 0.5 * (1 + numpy.tanh(z / 2))                # 1 / (1 + e^-z), without overflow
        return g * numpy.where(line, 1.0, sigmoid)


def softplus(input, beta=1.0, threshold=20.0):
    return Softplus.apply(input, beta=beta, threshold=threshold)

# %% {"exercise": "add"}
class Add(Function):
    """y = a + b, broadcast.  Backward: dy/da = dy/db = 1, and each input element was copied to
    several outputs, so its gradient is the sum of theirs: g summed back to the input's shape."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx, g):
        return tuple(unbroadcast(g, shape) for shape in ctx.shapes)


def unbroadcast(g, shape):
    """Sum g over the axes broadcasting made: the leading ones it added, and those where shape has a 1."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))                           # now g.ndim == len(shape)
    ones = tuple(i for i, n in enumerate(shape) if n == 1)
    return g.sum(axis=ones, keepdims=True)


def add(input, other):
    return Add.apply(input, other)

# %% {"prediction": "gradcheck_flags"}
answer = "d"                     # n = 4, the last axis, where it should be 3
