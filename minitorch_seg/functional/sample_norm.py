"""Per-sample normalisation: group_norm and layer_norm, on ``norm.py``'s derivation and shared core.

Both standardise sets of values inside each sample, unlike batch norm, which pools the batch:
group norm a set per (sample, group of C/G channels), layer norm a set per leading index over
the trailing ``normalized_shape`` dims. ``norm.py``'s module docstring derives the backward once;
each Function below specialises it.

>>> import minitorch_seg as mt
>>> layer_norm(mt.tensor([[1.0, 10.0], [3.0, 30.0]]), 2).numpy().round(4).tolist()
[[-1.0, 1.0], [-1.0, 1.0]]
>>> group_norm(mt.tensor([[[1.0, 3.0], [5.0, 9.0]]]), 2).numpy().round(4).tolist()   # (N=1, C=2, L=2)
[[[-1.0, 1.0], [-1.0, 1.0]]]
"""
import math

from ..autograd import Function
from ..backend import get_array_module
from .norm import centre, check_per_channel, column, input_grad, row_dots, row_sums, scale_shift


# ---- group norm -----------------------------------------------------------------------------
class GroupNorm(Function):
    """Group normalisation: each sample's channels split into G groups, each group standardised.

    Notation: x (N, C, *) viewed as X (N, G, K), K = (C/G) L, a set per (n, group k) of m = K
    values; the same memory viewed as (N, C, L) for the per-channel gamma, beta (C,).
    Shapes: x (N, C, *) -> y (N, C, *).

    Forward: y[n, c] = gamma_c (x[n, c] - mu[n, k(c)]) / sigma[n, k(c)] + beta_c.

    Backward (the module docstring's derivation with S = (n, k)): gamma varies inside a set, so
    h = g_hat = gamma g is formed. The means of step 6 are sums over the group's channels of
    per-(n, c) sums, which also give the parameter gradients:
        Sg[n, c] = sum_l g,   Sgc[n, c] = sum_l g xc
        dL/dbeta_c = sum_n Sg[n, c],   dL/dgamma_c = sum_n Sgc[n, c] / sigma[n, k(c)]
        k0[n, k] = (1/m) sum_{c in k} gamma_c Sg[n, c],   k1[n, k] = (1/(m sigma^2)) sum_{c in k} gamma_c Sgc[n, c]
        dL/dx = (1/sigma) (gamma g - k0 - k1 xc)   on the (N, G, K) view.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, num_groups, eps):
        xp = get_array_module(x)
        n, channels = x.shape[:2]
        per_group = channels // num_groups
        centred, _, _, inv_std = centre(x.reshape(n, num_groups, -1), eps)     # (N, G, K), (N, G)
        saving = any(ctx.needs_input_grad)
        if saving:
            ctx.shape, ctx.groups = x.shape, num_groups
            ctx.save_for_backward(centred, inv_std, weight)
        scale = xp.repeat(inv_std, per_group, axis=1)                           # (N, C): 1/sigma per channel
        if weight is not None:
            scale *= weight
        y = scale_shift(centred.reshape(n, channels, -1), scale[..., None], column(bias), in_place=not saving)
        return y.reshape(x.shape)                                               # (N, C, L) -> (N, C, *)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        need_x, need_w, need_b = ctx.needs_input_grad
        centred, inv_std, weight = ctx.saved_arrays                             # (N, G, K), (N, G)
        n, channels = ctx.shape[:2]
        groups, per_group = ctx.groups, channels // ctx.groups
        g3 = g.reshape(n, channels, -1)                                         # (N, C, L)
        sum_g = row_sums(g3) if (need_x or need_b) else None                   # (N, C) Sg
        sum_gc = row_dots(g3, centred.reshape(g3.shape)) if (need_x or need_w) else None  # (N, C) Sgc
        grad_x = grad_w = None
        if need_x:
            m = centred.shape[2]
            gamma = 1 if weight is None else weight
            k0 = (gamma * sum_g).reshape(n, groups, per_group).sum(axis=2) / m                       # (N, G)
            k1 = (gamma * sum_gc).reshape(n, groups, per_group).sum(axis=2) * (inv_std * inv_std) / m
            h = g3 if weight is None else g3 * weight[:, None]                 # (N, C, L) g_hat
            dx = input_grad(h.reshape(centred.shape), centred, inv_std[..., None], k1[..., None], k0[..., None],
                            out=_reusable(ctx, centred, h))     # xc's memory, when nothing needs xc after
            grad_x = dx.reshape(ctx.shape)                                      # (N, G, K) -> (N, C, *)
        if need_w:
            grad_w = (sum_gc * xp.repeat(inv_std, per_group, axis=1)).sum(axis=0)
        return grad_x, grad_w, (sum_g.sum(axis=0) if need_b else None)


def _reusable(ctx, centred, h):
    """The saved xc, for dL/dx to be written into, where this backward is its last use and dL/dx has
    its dtype (a float64 gradient of a float32 input gives a float64 dL/dx, with or without
    ``retain_graph``); else None."""
    return centred if ctx.last_use and h.dtype == centred.dtype else None


# ---- layer norm -----------------------------------------------------------------------------
class LayerNorm(Function):
    """Layer normalisation: each sample standardised over its trailing ``normalized_shape`` dims.

    Notation: x (*, D...) viewed as X (R, D), R the product of the leading sizes and D of the
    normalised ones; a set per row r of m = D values; gamma, beta have the normalised shape
    (viewed as (D,)) and act elementwise.
    Shapes: x (*, D...) -> y (*, D...).

    Forward: y[r, d] = gamma_d (x[r, d] - mu_r) / sigma_r + beta_d.

    Backward (the module docstring's derivation with S = row r): gamma varies along the set, so
    h = g_hat = g gamma is formed and step 6 applies row by row:
        dL/dx = (1/sigma_r) (h - k0 - k1 xc),  k0 = mean_d(h),  k1 = mean_d(h xc) / sigma_r^2;
        dL/dgamma_d = sum_r g xc / sigma_r  (a matrix-vector product (1/sigma) @ (g xc)),
        dL/dbeta_d = sum_r g.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_ndim, eps):
        size = math.prod(x.shape[x.ndim - normalized_ndim:])
        centred, _, _, inv_std = centre(x.reshape(-1, size), eps)              # (R, D), (R,)
        saving = any(ctx.needs_input_grad)
        if saving:
            ctx.shape, ctx.param_shape = x.shape, x.shape[x.ndim - normalized_ndim:]
            ctx.save_for_backward(centred, inv_std, None if weight is None else weight.reshape(size))
        y = scale_shift(centred, inv_std[:, None], None, in_place=not saving)
        if weight is not None:
            y *= weight.reshape(size)
        if bias is not None:
            y += bias.reshape(size)
        return y.reshape(x.shape)                                               # (R, D) -> (*, D...)

    @staticmethod
    def backward(ctx, g):
        need_x, need_w, need_b = ctx.needs_input_grad
        centred, inv_std, gamma = ctx.saved_arrays                              # (R, D), (R,), (D,)
        size = centred.shape[1]
        g2 = g.reshape(-1, size)                                                # (R, D)
        grad_x = grad_w = grad_b = None
        if need_w:                                                              # first: dL/dx may take xc's memory
            grad_w = (inv_std @ (g2 * centred)).reshape(ctx.param_shape)
        if need_x:
            h = g2 if gamma is None else g2 * gamma                             # (R, D) g_hat
            k0 = row_sums(h) / size
            k1 = row_dots(h, centred) * (inv_std * inv_std) / size
            grad_x = input_grad(h, centred, inv_std[:, None], k1[:, None], k0[:, None],
                                out=_reusable(ctx, centred, h)).reshape(ctx.shape)          # as in GroupNorm
        if need_b:
            grad_b = g2.sum(axis=0).reshape(ctx.param_shape)
        return grad_x, grad_w, grad_b


# ---- the functions (torch.nn.functional's signatures) ----------------------------------------
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each group of ``C / num_groups`` channels of each sample of ``input`` (N, C, *)."""
    if input.ndim < 2:
        raise ValueError(f"group_norm expects an input of shape (N, C, *), got shape {input.shape}.")
    n, channels = input.shape[:2]
    if num_groups < 1 or channels % num_groups:
        raise ValueError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                         f"shape {input.shape} and num_groups={num_groups}.")
    check_per_channel("weight", weight, channels)
    check_per_channel("bias", bias, channels)
    if n * (channels // num_groups) * math.prod(input.shape[2:]) == 1:  # torch's check, word for word
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}.")
    return GroupNorm.apply(input, weight, bias, num_groups=num_groups, eps=eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise ``input`` over its trailing dims ``normalized_shape`` (an int or a tuple)."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or k > input.ndim or input.shape[input.ndim - k:] != normalized_shape:
        raise ValueError(f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, normalized_shape))}], but got input of size {list(input.shape)}.")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != normalized_shape:
            raise ValueError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                             f"{list(p.shape)} and normalized_shape = {list(normalized_shape)}.")
    return LayerNorm.apply(input, weight, bias, normalized_ndim=k, eps=eps)
