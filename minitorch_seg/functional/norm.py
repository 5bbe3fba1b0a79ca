"""Normalisation: the derivation and core that batch_norm, group_norm and layer_norm share; batch_norm.

All three standardise sets of values and then scale and shift them. They differ only in which
values form a set and in the shape of the affine parameters gamma (weight) and beta (bias):

    batch_norm  x (N, C, *)  a set per channel c: every n and position     gamma, beta (C,)
    group_norm  x (N, C, *)  a set per (n, group of C/G channels)           gamma, beta (C,)
    layer_norm  x (*, D...)  a set per leading index: the trailing D...     gamma, beta (D...)

Each Function views x so that its sets lie along the last axis (batch norm: and along axis 0).
Batch norm is here; group norm and layer norm, which standardise within each sample, are in
``sample_norm.py``, on the same core.

The derivation, once (each Function's docstring specialises it). For one set S of m values:

    mu = (1/m) sum_i x_i        var = (1/m) sum_i (x_i - mu)^2 (biased)      sigma = sqrt(var + eps)
    x_hat_i = (x_i - mu) / sigma                      y_i = gamma_i x_hat_i + beta_i

1. y is affine in gamma and beta: dL/dbeta = sum g,  dL/dgamma = sum g x_hat, each summed over
   every place the parameter was used.
2. Through the scale: g_hat_i = dL/dx_hat_i = g_i gamma_i.
3. d mu/dx_j = 1/m.  d var/dx_j = (2/m) sum_i (x_i - mu)(delta_ij - 1/m) = (2/m)(x_j - mu), the
   1/m term vanishing because sum_i (x_i - mu) = 0.  So d sigma/dx_j = (x_j - mu) / (m sigma)
   = x_hat_j / m.
4. Quotient rule on x_hat_i = (x_i - mu) / sigma:
       d x_hat_i/dx_j = (delta_ij - 1/m) / sigma - (x_i - mu)/sigma^2 * x_hat_j/m
                      = (1/sigma) (delta_ij - 1/m - x_hat_i x_hat_j / m).
5. Contract with g_hat:
       dL/dx_j = sum_i g_hat_i d x_hat_i/dx_j = (1/sigma) (g_hat_j - mean(g_hat) - x_hat_j mean(g_hat x_hat)),
   means over S: g_hat with its components along 1 and along x_hat removed (shifting or
   scaling the values of a set does not change its x_hat).
6. In the code, with xc = x - mu (so x_hat = xc / sigma):
       dL/dx = s (h - k0 - k1 xc),   s = 1/sigma,  h = g_hat,  k0 = mean(g_hat),
                                     k1 = mean(g_hat xc) / sigma^2,
   constants per set, which ``input_grad`` applies in four passes with no temporary.

Speed (BatchNorm's training step is the hot path of a U-Net):
- float32 stays float32: every constant is a Python number (a "weak" scalar to NumPy and CuPy)
  or an array of the input's dtype, never a NumPy float64 scalar.
- Statistics: per-row sums (``row_sums``), then mu, then xc = x - mu written once, then its sums
  of squares (``row_dots``), each one pass. "Sum and sum of squares" would save writing xc, but
  var = E[x^2] - mu^2 cancels catastrophically in float32 when |mu| >> sigma; xc is needed below
  anyway. The sums are ``einsum``s (the dot products ``vecdot``s) over chunks of a row, whose sums
  are then added: both let go of the GIL while they run, so the tiles on the host threads sum at
  the same time, and chunks keep float32 as accurate as BLAS (``row_dots``).
- Saved: xc and 1/sigma, neither x_hat nor x. x_hat = xc / sigma only ever appears multiplied
  by a per-set constant (in y, in sum g x_hat, in dL/dx), where 1/sigma folds into that
  constant, so forming x_hat would be a wasted pass; recomputing xc from x in backward would
  cost a pass too. Keeping xc costs the memory of keeping x, which nothing else holds (the conv
  before saves its own input, the ReLU after a boolean mask).
- Backward reads g in two reductions, sum g and sum g xc, which give dL/dbeta, dL/dgamma and
  both means of step 5 at once; then four passes for dL/dx, written into xc's memory when this
  is the graph's last use of it (``Context.last_use``).
- Batch norm's channels are independent sets, so forward and backward run in tiles of whole
  channels on the host threads (``channel_tiles``; group and layer norm run whole).

>>> import minitorch_seg as mt
>>> import minitorch_seg.functional as F
>>> x = mt.tensor([[1.0, 10.0], [3.0, 30.0]])            # (N=2, C=2)
>>> F.batch_norm(x, None, None, training=True).numpy().round(4).tolist()
[[-1.0, -1.0], [1.0, 1.0]]
>>> F.layer_norm(x, 2).numpy().round(4).tolist()
[[-1.0, 1.0], [-1.0, 1.0]]
>>> F.group_norm(mt.tensor([[[1.0, 3.0], [5.0, 9.0]]]), 2).numpy().round(4).tolist()   # (N=1, C=2, L=2)
[[[-1.0, 1.0], [-1.0, 1.0]]]
"""
import math

from .. import parallel
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .activation import relu_into


# ---- the shared core ------------------------------------------------------------------------
# Rows are summed in chunks of this many values (``row_dots``): rows contiguous in memory, which
# einsum adds up in SIMD lanes, and other rows (a channels-last batch), which it adds one value
# after another.
CHUNK, STRIDED_CHUNK = 1024, 64


def row_sums(a):
    """Sums over the last axis of a float array, (..., L) -> (...): one pass (``row_dots``)."""
    return row_dots(a)


def row_dots(a, b=None):
    """sum_l a[..., l] b[..., l], (..., L) twice -> (...), one pass; without b, sum_l a[..., l].

    Each row in chunks (``CHUNK``), by ``einsum`` (with b: ``vecdot``, below), then the chunks'
    sums added (pairwise, NumPy's way for a contiguous axis). einsum lets go of the GIL while it
    runs, so tiles on the host threads sum at the same time; NumPy's products a @ 1 and (1, L) @
    (L, 1), as fast on one thread, held it there, and batch norm's two channel tiles took turns (5
    ms of the U-Net step on the 2-core Xeon). But one einsum adds a whole contiguous row up in a
    few dozen SIMD lanes, L/64 values each in turn: in float32 a relative error of 1e-6 at L = 32768
    and 7e-5 at L = 2^20 for a sum of squares, 10-50x OpenBLAS's. In chunks of 1024 it is 1e-7 at any L tried, as good
    as OpenBLAS, for the same time. A strided row is added one value after another, so its chunks
    are shorter (64: 1e-7 again, where 1024 gave 1.6e-6 at L = 1024).

    With b, each chunk's dot product by ``vecdot`` (NumPy 2), which lets go of the GIL too (two
    threads made 200 calls each in the time one took for its 200, NumPy 2.4.6) and is 3-4x faster
    than einsum's two-operand loop: on a 2-core Zen 4 EPYC, half the channels of 4x16x128x256 in
    56 us against 201, of 4x64x32x64 in 25 against 57; as accurate (1e-7 of the sum of squares at
    L = 2^12 to 2^20, float32, against float64).
    """
    xp = get_array_module(a)
    operands = (a,) if b is None else (a, b)
    size = a.shape[-1]
    chunk = CHUNK if all(op.strides[-1] == op.itemsize for op in operands) else STRIDED_CHUNK
    whole = size - size % chunk
    if not whole:                                      # shorter than a chunk: each row at once
        return _last_axis_sums(xp, operands)
    chunks = [op[..., :whole].reshape(op.shape[:-1] + (whole // chunk, chunk)) for op in operands]  # views
    total = xp.ascontiguousarray(_last_axis_sums(xp, chunks)).sum(axis=-1)
    if whole < size:                                   # each row's rest
        total += _last_axis_sums(xp, [op[..., whole:] for op in operands])
    return total


def _last_axis_sums(xp, operands):
    """sum over the last axis of the one operand, or of the two operands' products (``vecdot``, or
    einsum where the array module has none: NumPy 1)."""
    if len(operands) == 2 and hasattr(xp, "vecdot"):
        return xp.vecdot(*operands)
    return xp.einsum("...l->..." if len(operands) == 1 else "...l,...l->...", *operands)


def centre(x, eps, over_batch=False, out=None):
    """The sets along the last axis of x (..., K) (with ``over_batch``, along axis 0 as well).

    Returns xc = x - mu (shaped like x; written to ``out`` if given), and mu, the biased var and
    1/sigma, each shaped like x without the pooled axes.
    """
    xp = get_array_module(x)
    pool = (lambda sums: sums.sum(axis=0)) if over_batch else (lambda sums: sums)  # noqa: E731
    m = x.shape[-1] * (x.shape[0] if over_batch else 1)
    mean = pool(row_sums(x)) / m
    centred = xp.subtract(x, mean[..., None], out=out)
    var = pool(row_dots(centred, centred)) / m
    return centred, mean, var, 1 / xp.sqrt(var + eps)


def scale_shift(centred, scale, shift, in_place, out=None):
    """y = centred * scale + shift (broadcast; shift may be None): in centred's memory if
    ``in_place``, else in ``out`` if given, else in a new array."""
    y = get_array_module(centred).multiply(centred, scale, out=centred if in_place else out)
    if shift is not None:
        y += shift
    return y


def input_grad(h, centred, scale, k1, k0, out=None):
    """dL/dx = scale (h - k0 - k1 centred), step 6: four passes, no array but the result (``out`` if given)."""
    dx = get_array_module(centred).multiply(centred, k1, out=out)
    dx += k0
    get_array_module(dx).subtract(h, dx, out=dx)
    dx *= scale
    return dx


def channel_tiles(x3):
    """Tiles of whole channels of x3 (N, C, L), [(channels,), ...]: a channel's values are one set,
    so each tile is a whole batch norm of its own (``parallel.NORM_TILES``)."""
    n, channels, size = x3.shape
    return parallel.tiles(get_array_module(x3), parallel.NORM_TILES, (channels,), n * size * x3.dtype.itemsize)


def column(p):
    return None if p is None else p[:, None]                                   # (C,) -> (C, 1)


# ---- batch norm -----------------------------------------------------------------------------
class BatchNorm(Function):
    """Batch normalisation: each channel standardised over the batch and every position.

    Notation: x (N, C, *) viewed as X (N, C, L), L the product of the spatial sizes (1 for
    (N, C)); the set of channel c holds its m = N L values; gamma, beta (C,); g = dL/dy.
    Shapes: x (N, C, *) -> y (N, C, *).

    Forward, training: y = gamma (x - mu_c) / sqrt(var_c + eps) + beta with the batch mean and
    biased variance; in place, running <- (1 - momentum) running + momentum statistic, with
    the *unbiased* variance var_c m / (m - 1) for running_var.
    Forward, eval: the same with the running statistics, an affine map y = s x + t,
    s = gamma / sqrt(running_var + eps), t = beta - running_mean s.

    Backward, training (the module docstring's derivation with S = channel c): gamma is one
    number on S, so it leaves the means, mean(g_hat) = gamma mean(g) and
    mean(g_hat xc) = gamma mean(g xc), and step 6 holds with h = g, s = gamma/sigma. With the two
    per-channel sums
        Sg = sum_{n,l} g,   Sgc = sum_{n,l} g xc:
        dL/dbeta = Sg,   dL/dgamma = Sgc / sigma,
        dL/dx = (gamma/sigma) (g - k0 - k1 xc),   k0 = Sg/m,   k1 = Sgc / (m sigma^2).

    Backward, eval: mu and sigma are constants now, not functions of x, so steps 3-5 vanish and
    y = s x + t is elementwise affine in x, dy/dx = s:
        dL/dx = s g,   dL/dbeta = sum g,   dL/dgamma = sum g (x - running_mean) / sigma,
    the last from the saved x, which is kept only when dL/dgamma is wanted.

    With ``relu`` (``batch_norm_relu``): z = max(y, 0) by ReLU's own kernel (``relu_into``), in
    y's memory and in the same channel tile, with its mask y != 0; backward, the chain rule through
    z first, g <- g * mask (ReLU's backward), then all of the above with that g. The same
    operations as the two Functions one after the other, so the same bits; one pass over the
    activation fewer (z is written where y was) and each tile's passes while it is still in the
    cache.

    With ``scratch`` (training): x is a temporary of the caller's that nothing reads afterwards (a
    conv's output inside ``nn.Sequential``), and xc is written into x's own memory, which the conv
    has just written: no new array of x's size, and one whose memory is still in the cache. On the
    2-core Xeon that took 4.1 ms off the U-Net step (of 232, 24 rounds, quartiles -7.1 / -0.7).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps, relu=False, scratch=False):
        xp = get_array_module(x)
        n, channels = x.shape[:2]
        x3 = x.reshape(n, channels, -1)                  # (N, C, L): a view when x is contiguous
        saving = any(ctx.needs_input_grad)
        ctx.training, ctx.shape = training, x.shape
        ctx.mask = xp.empty(x3.shape, dtype=bool) if relu and saving else None     # ReLU's, (N, C, L)

        if not training:
            mean, inv_std = running_mean.astype(x.dtype), 1 / xp.sqrt(running_var.astype(x.dtype) + eps)
            scale = inv_std if weight is None else weight * inv_std
            shift = -mean * scale if bias is None else bias - mean * scale
            if saving:
                ctx.save_for_backward(scale, x3 if ctx.needs_input_grad[1] else None, mean, inv_std)
            y = scale_shift(x3, scale[:, None], shift[:, None], in_place=False)
            if relu:                                      # row-major, as ReLU's output is
                y = xp.ascontiguousarray(y)
                relu_into(y, y, ctx.mask)
            return y.reshape(x.shape)

        centred = x3 if scratch and x.flags.c_contiguous else xp.empty_like(x3)     # (N, C, L); x3 a view then
        mean, var, inv_std = xp.empty((3, channels), dtype=x.dtype)                  # (C,)
        y = xp.empty_like(x3) if saving else centred
        if relu and not y.flags.c_contiguous:             # row-major, as ReLU's output is (x channels-last)
            y = xp.empty(x3.shape, dtype=x3.dtype)

        def normalise(tile):  # channels are independent sets: each tile is a whole BatchNorm
            (cs,) = tile
            _, mean[cs], var[cs], inv_std[cs] = centre(x3[:, cs], eps, over_batch=True, out=centred[:, cs])
            scale = inv_std[cs] if weight is None else weight[cs] * inv_std[cs]
            scale_shift(centred[:, cs], scale[:, None], column(None if bias is None else bias[cs]),
                        in_place=y is centred, out=y[:, cs])
            if relu:
                relu_into(y[:, cs], y[:, cs], None if ctx.mask is None else ctx.mask[:, cs])
        parallel.map_tiles(xp, normalise, channel_tiles(x3))
        m = n * x3.shape[2]
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += (momentum * m / (m - 1)) * var                      # the unbiased variance
        if saving:
            ctx.save_for_backward(centred, inv_std, weight)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        need_x, need_w, need_b = ctx.needs_input_grad
        n, channels = ctx.shape[:2]
        g3 = g.reshape(n, channels, -1)                                         # (N, C, L)
        xp = get_array_module(g3)
        # through ReLU first (with ``relu``): g * mask, as ReLU's backward makes it (into g's memory where
        # g is nobody else's, else a new row-major array), so that the sums below add the same values
        # in the same order
        free = ctx.free_grads[:1] == (True,)
        masked = None if ctx.mask is None else (g3 if free else xp.empty(g3.shape, dtype=g3.dtype))
        if not ctx.training:
            if masked is not None:
                g3 = xp.multiply(g3, ctx.mask, out=masked)
            scale, x3, mean, inv_std = ctx.saved_arrays
            grad_x = (g3 * scale[:, None]).reshape(ctx.shape) if need_x else None
            grad_w = inv_std * row_dots(g3, x3 - mean[:, None]).sum(axis=0) if need_w else None
            grad_b = row_sums(g3).sum(axis=0) if need_b else None
            return grad_x, grad_w, grad_b

        centred, inv_std, weight = ctx.saved_arrays
        m = n * g3.shape[2]
        sum_g, sum_gc = xp.empty((2, channels), dtype=g3.dtype)                     # (C,) Sg, Sgc
        # dL/dx into xc's own memory where nothing needs xc after this backward: its passes then read
        # and write one array, not two (on the 2-core Xeon, 0.9-4.4 ms off the U-Net step in three A/Bs)
        grad_x = (centred if ctx.last_use else xp.empty_like(centred)) if need_x else None
        scale = inv_std if weight is None else weight * inv_std

        def differentiate(tile):
            (cs,) = tile
            g_tile, centred_tile = g3[:, cs], centred[:, cs]
            if masked is not None:
                g_tile = xp.multiply(g_tile, ctx.mask[:, cs], out=masked[:, cs])
            if need_x or need_b:
                sum_g[cs] = row_sums(g_tile).sum(axis=0)
            if need_x or need_w:
                sum_gc[cs] = row_dots(g_tile, centred_tile).sum(axis=0)
            if need_x:
                k1, k0 = sum_gc[cs] * inv_std[cs] * inv_std[cs] / m, sum_g[cs] / m
                input_grad(g_tile, centred_tile, scale[cs, None], k1[:, None], k0[:, None], out=grad_x[:, cs])
        parallel.map_tiles(xp, differentiate, channel_tiles(g3))
        grad_x = None if grad_x is None else grad_x.reshape(ctx.shape)
        return grad_x, (sum_gc * inv_std if need_w else None), (sum_g if need_b else None)


# ---- the functions (torch.nn.functional's signatures) ----------------------------------------
def data(t):
    return t.data if isinstance(t, Tensor) else t


def check_per_channel(name, tensor, channels, what="elements"):
    if tensor is not None and tensor.data.size != channels:
        raise ValueError(f"{name} should contain {channels} {what} not {tensor.data.size}: "
                         f"one per channel of the input.")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise each channel of ``input`` (N, C, *) over the batch and positions, then scale and shift.

    ``training``: normalise with the batch's mean and biased variance, and update
    ``running_mean`` / ``running_var`` in place (when given) with ``momentum`` and the unbiased
    variance. Otherwise normalise with the running statistics. ``momentum`` is a number, or the
    0-d array 1/num_batches_tracked that ``BatchNorm2d(momentum=None)`` passes (a cumulative
    average that keeps the count on the device); ``None`` raises, as in torch's functional form.
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu=False)


def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                    eps=1e-5, scratch=False):
    """``relu(batch_norm(...))`` in one Function (``BatchNorm`` with ``relu``): the same values and
    gradients, bit for bit, in fewer passes. Not in torch.nn.functional: ``nn.Sequential`` calls it
    for a ``BatchNorm2d`` followed by a ``ReLU`` (``nn/containers.py``). ``scratch=True`` says that
    nothing reads ``input`` afterwards: in training its memory then holds input - mean (``BatchNorm``)."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu=True,
                       scratch=scratch)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu, scratch=False):
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects an input of shape (N, C, *), got shape {input.shape}.")
    if momentum is None:
        raise TypeError("batch_norm: momentum must be a number; momentum=None (a cumulative average) needs the "
                        "batch count that BatchNorm2d(momentum=None) keeps.")
    channels = input.shape[1]
    check_per_channel("running_mean", running_mean, channels)
    check_per_channel("running_var", running_var, channels)
    check_per_channel("weight", weight, channels)
    check_per_channel("bias", bias, channels)
    if training and math.prod(input.shape) // channels == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}.")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("running_mean and running_var must be given in evaluation mode (training=False).")
    running = [data(t) for t in (running_mean, running_var)]
    get_array_module(data(input), data(weight), data(bias), *running)  # one clear error on mixed backends
    return BatchNorm.apply(input, weight, bias, running_mean=running[0], running_var=running[1],
                           training=training, momentum=data(momentum), eps=eps, relu=relu, scratch=scratch)
