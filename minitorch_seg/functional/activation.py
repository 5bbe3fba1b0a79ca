"""Activations and normalised exponentials: relu leaky_relu sigmoid tanh gelu softmax log_softmax dropout.

Each saves the smallest thing its derivative can be written in: sigmoid, tanh and softmax save
their *output* (their derivatives are functions of it), relu saves a boolean mask.
"""
import math

from .. import parallel
from ..autograd import Function
from ..backend import get_array_module
from ..random import random_uniform
from ..special import erf


class ReLU(Function):
    """y = max(x, 0).  Backward: dL/dx = g unless x <= 0 (0 at x = 0, as torch).

    Written as torch writes it, so that the edge cases agree: relu(-inf) = 0 (not -inf * 0 = nan),
    relu(nan) = nan, and at a NaN input the gradient passes through (nan <= 0 is false). That is
    exactly where y != 0 (y is +-0 wherever x <= 0, x itself above 0, NaN at NaN): the mask is one
    pass over y, not two over x. Both directions go through the values in runs on the host
    threads (``parallel.map_runs``). The backward multiplies g by the mask in g's own memory where
    g is nobody else's (``Context.free_grads``): 5 ms off the U-Net step on the 2-core Xeon.
    """

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        shape, x = x.shape, xp.ascontiguousarray(x).reshape(-1)
        y, passes = xp.empty_like(x), xp.empty(x.shape, dtype=bool)

        parallel.map_runs(xp, lambda r: relu_into(x[r], y[r], passes[r]), x.size, x.itemsize)
        ctx.save_for_backward(passes.reshape(shape))
        return y.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        (passes,) = ctx.saved_arrays
        xp = get_array_module(g)
        dtype = xp.result_type(g.dtype, passes.dtype)
        grad = g if ctx.free_grads[:1] == (True,) and g.dtype == dtype else xp.empty(g.shape, dtype=dtype)
        if not g.flags.c_contiguous:
            # a view, such as a skip's part of a concatenation's gradient: in runs of the first
            # axis, as it is (a contiguous copy of it cost the U-Net step 1.5 ms on one thread)
            parallel.map_leading(xp, lambda tile: xp.multiply(g[tile], passes[tile], out=grad[tile]), g)
            return grad
        flat = g.reshape(-1), passes.reshape(-1), grad.reshape(-1)
        parallel.map_runs(xp, lambda r: xp.multiply(flat[0][r], flat[1][r], out=flat[2][r]), g.size, g.itemsize)
        return grad


# ``relu_into`` compares x with a row of zeros, not with the number 0: NumPy 2.4's maximum has a SIMD
# loop for two arrays and none for an array and a number. On a 2-core Zen 4 EPYC, one thread, float32,
# maximum(x, 0) took 142 us for 1 MiB and 861 for 8 MiB, where multiply(x, 0) took 29 and 328, and
# maximum of two 1 MiB arrays 41; batch norm's ReLU over half the channels of 4x16x128x256, in its
# tile, took 188 us against a row of zeros and 606 against 0, mask included. The same values, bit for
# bit (+-0, NaN and infinities included). Rows of at most this many values, a view of x's last axis
# cut where a power of two of at least a sixteenth of this divides it, so the zeros stay in L1.
ZERO_ROW = 1 << 13


def relu_into(x, y, mask=None):
    """y = max(x, 0) (y may be x), and its mask y != 0 into ``mask`` unless None: ``ReLU``'s forward,
    and batch norm's where it runs the ReLU after it (``norm.batch_norm_relu``)."""
    xp = get_array_module(x)
    rows = _rows(x)                                    # x and y of one shape: cut alike
    if rows.ndim and rows.shape[-1] > ZERO_ROW:        # a long axis no power of two divides
        xp.maximum(x, x.dtype.type(0), out=y)
    else:
        xp.maximum(rows, xp.zeros(rows.shape[-1:], dtype=x.dtype), out=_rows(y))
    if mask is not None:
        xp.not_equal(y, 0, out=mask)


def _rows(a):
    """a, its last axis cut into rows of at most ``ZERO_ROW`` values where a power of two of at least
    ``ZERO_ROW // 16`` divides it (one axis split in two: always a view), else a itself.

    >>> import numpy
    >>> _rows(numpy.empty((2, 3 * ZERO_ROW))).shape, _rows(numpy.empty(7)).shape, _rows(numpy.empty(9001)).shape
    ((2, 3, 8192), (7,), (9001,))
    """
    size = a.shape[-1] if a.ndim else 1
    if size <= ZERO_ROW:
        return a
    rows = (ZERO_ROW >> k for k in range(5) if ZERO_ROW >> k)
    row = next((row for row in rows if size % row == 0), None)
    return a if row is None else a.reshape(a.shape[:-1] + (size // row, row))


class LeakyReLU(Function):
    """y = x for x > 0, else slope * x.  Backward: dL/dx = g * (1 if x > 0 else slope)."""

    @staticmethod
    def forward(ctx, x, negative_slope):
        xp = get_array_module(x)
        factor = xp.where(x > 0, x.dtype.type(1), x.dtype.type(negative_slope))
        ctx.save_for_backward(factor)
        return x * factor

    @staticmethod
    def backward(ctx, g):
        (factor,) = ctx.saved_arrays
        return g * factor


class Sigmoid(Function):
    """s = 1 / (1 + e^-x).  Backward: ds/dx = s (1 - s), so dL/dx = g * s * (1 - s).

    Computed from e = e^-|x| <= 1, which never overflows: s = 1/(1+e) for x >= 0 and
    e/(1+e) for x < 0 (the same value, rearranged).
    """

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        e = xp.exp(-xp.abs(x))
        s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_arrays
        return g * s * (1 - s)


class Tanh(Function):
    """t = tanh x.  Backward: dt/dx = 1 - t^2, so dL/dx = g * (1 - t^2)."""

    @staticmethod
    def forward(ctx, x):
        t = get_array_module(x).tanh(x)
        ctx.save_for_backward(t)
        return t

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_arrays
        return g * (1 - t * t)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class GELU(Function):
    """y = x * Phi(x), Phi the standard normal CDF (``approximate="none"``), or its tanh form.

    Backward, exact: dy/dx = Phi(x) + x * phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi).
    Backward, tanh: y = x/2 (1 + t), t = tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3), so
    dy/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
    """

    @staticmethod
    def forward(ctx, x, approximate):
        xp = get_array_module(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
            ctx.save_for_backward(x, t)      # t serves the backward too: one tanh, not two
            return 0.5 * x * (1 + t)
        cdf = 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
        ctx.save_for_backward(x, cdf)        # Phi(x) serves the backward too: one erf, not two
        return x * cdf

    @staticmethod
    def backward(ctx, g):
        x, saved = ctx.saved_arrays
        xp = get_array_module(x)
        if ctx.approximate == "tanh":
            t = saved
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        else:
            slope = saved + x * xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return g * slope


class Softmax(Function):
    """y_i = e^(x_i - m) / sum_j e^(x_j - m) along ``dim``; m = max_j x_j keeps e^ below 1.

    Backward: dy_i/dx_k = y_i (delta_ik - y_k), so
    dL/dx_k = sum_i g_i y_i (delta_ik - y_k) = y_k (g_k - sum_i g_i y_i): the Jacobian is applied
    without being formed, one reduction and two products.
    """

    @staticmethod
    def forward(ctx, x, dim):
        xp = get_array_module(x)
        y = xp.exp(x - x.max(axis=dim, keepdims=True))
        y /= y.sum(axis=dim, keepdims=True)
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_arrays
        gy = g * y
        return gy - y * gy.sum(axis=ctx.dim, keepdims=True)


class LogSoftmax(Function):
    """y_i = x_i - logsumexp(x) along ``dim``, with logsumexp(x) = m + ln sum_j e^(x_j - m).

    Backward: dy_i/dx_k = delta_ik - softmax(x)_k, so dL/dx_k = g_k - softmax(x)_k * sum_i g_i,
    and softmax(x) = e^y, recomputed from the saved output.
    """

    @staticmethod
    def forward(ctx, x, dim):
        xp = get_array_module(x)
        shifted = x - x.max(axis=dim, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_arrays
        return g - get_array_module(y).exp(y) * g.sum(axis=ctx.dim, keepdims=True)


class Dropout(Function):
    """y = x * m / (1 - p), m ~ Bernoulli(1 - p) per element.  Backward: dL/dx = g * m / (1 - p)."""

    @staticmethod
    def forward(ctx, x, p):
        xp = get_array_module(x)
        scaled_mask = (random_uniform(xp, x.shape, x.dtype) >= p) * x.dtype.type(1 / (1 - p))
        ctx.save_for_backward(scaled_mask)
        return x * scaled_mask

    @staticmethod
    def backward(ctx, g):
        (scaled_mask,) = ctx.saved_arrays
        return g * scaled_mask


def _dim(dim, ndim):
    bound = max(ndim, 1)                # a 0-d tensor takes dim 0 or -1, as in torch
    if not -bound <= dim < bound:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-bound}, {bound - 1}], but got {dim}).")
    return dim % bound


def relu(input, inplace=False):
    """max(input, 0). ``inplace`` is accepted and computes out of place (see the README's "unlike PyTorch")."""
    return ReLU.apply(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """input where positive, else negative_slope * input. ``inplace`` is accepted and computes out of place."""
    return LeakyReLU.apply(input, negative_slope=negative_slope)


def sigmoid(input):
    return Sigmoid.apply(input)


def tanh(input):
    return Tanh.apply(input)


def gelu(input, approximate="none"):
    """GELU; ``approximate`` is "none" (x * Phi(x), via erf) or "tanh" (the tanh formula)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}.")
    return GELU.apply(input, approximate=approximate)


def softmax(input, dim):
    if input.ndim == 0:                 # one element: softmax 1, log_softmax 0 (torch)
        return softmax(input.reshape(1), _dim(dim, 0)).reshape(())
    return Softmax.apply(input, dim=_dim(dim, input.ndim))


def log_softmax(input, dim):
    if input.ndim == 0:
        return log_softmax(input.reshape(1), _dim(dim, 0)).reshape(())
    return LogSoftmax.apply(input, dim=_dim(dim, input.ndim))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p); identity in eval.

    ``inplace`` is accepted and computes out of place.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}.")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    return Dropout.apply(input, p=p)


# ---- added for torch's surface: PReLU and channel dropout ---------------------------------------------
class PReLU(Function):
    """y = x for x > 0, else w * x, with a learned slope w per channel (dim 1) or one for all.

    ``w`` arrives reshaped to broadcast against x ((1, C, 1, ...) or a single element).
    Backward: dy/dx = 1 where x > 0 else w, so dL/dx = g * (1 if x > 0 else w);
    dy/dw = x where x <= 0 else 0, so dL/dw = sum of g * x over x <= 0, summed to w's shape
    (over the batch and spatial dims). At x = 0 the slope side is taken, as torch.
    """

    @staticmethod
    def forward(ctx, x, w):
        xp = get_array_module(x, w)
        positive = x > 0
        ctx.save_for_backward(x, w, positive)
        return xp.where(positive, x, w * x)

    @staticmethod
    def backward(ctx, g):
        from ..autograd import sum_to_shape
        x, w, positive = ctx.saved_arrays
        xp = get_array_module(g)
        need_x, need_w = ctx.needs_input_grad
        zero = g.dtype.type(0)
        grad_x = xp.where(positive, g, g * w) if need_x else None
        grad_w = sum_to_shape(xp.where(positive, zero, g * x), w.shape) if need_w else None
        return grad_x, grad_w


def prelu(input, weight):
    """PReLU with ``weight`` of one element (shared) or C elements (one per channel, dim 1), as torch."""
    if weight.ndim != 1 and weight.numel() != 1:
        raise ValueError(f"prelu: weight must be 1-D (one slope or one per channel), got shape {weight.shape}.")
    channels = weight.numel()
    if channels != 1:
        if input.ndim < 2 or input.shape[1] != channels:
            raise ValueError(f"prelu: {channels} slopes need an input with {channels} channels in dim 1, "
                             f"got shape {input.shape}.")
        weight = weight.reshape([1, channels] + [1] * (input.ndim - 2))
    elif input.ndim > 0:
        weight = weight.reshape([1] * input.ndim)
    else:
        weight = weight.reshape(())
    return PReLU.apply(input, weight)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels: each (sample, channel) plane with probability ``p``, the rest scaled by 1/(1-p).

    Input (N, C, H, W), or (C, H, W) treated as one sample. y = x * m with m ~ Bernoulli(1 - p)
    / (1 - p) of shape (N, C, 1, 1), a constant, so dL/dx = g * m (the Mul's backward).
    ``inplace`` is accepted and computes out of place.
    """
    from ..tensor import Tensor
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}.")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d expects a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {input.shape}.")
    if not training or p == 0:
        return input
    xp = get_array_module(input.data)
    shape = input.shape[:-2] + (1, 1)
    if p == 1:
        mask = xp.zeros(shape, dtype=input.dtype)
    else:
        mask = (random_uniform(xp, shape, input.dtype) >= p) * input.dtype.type(1 / (1 - p))
    return input * Tensor(mask)
