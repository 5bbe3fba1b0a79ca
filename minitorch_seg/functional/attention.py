"""Attention inside windows: ``window_attention``, one fused Function with a hand-derived backward.

A composed twin built from matmul, add and softmax lives in ``minitorch_seg.reference.attention``;
the tests check that the two agree in value and gradient.
"""
from ..autograd import Function
from ..backend import get_array_module


class WindowAttention(Function):
    """softmax(q k^T * scale + bias + mask) v, for every window and head at once.

    Notation: a = B*nW windows (batch-major: window w of image b is a = b*nW + w), h heads,
    N tokens per window, d channels per head. Per window and head, with row i a query, column j
    a key:
        S = scale * Q K^T + bias + mask          (N, N) scores
        P = softmax(S) along j                    (N, N) attention weights, rows sum to 1
        O = P V                                   (N, d)
    Shapes: q, k, v (a, h, N, d); bias (h, N, N), the same for every window; mask (nW, N, N),
    window w's mask shared by every image (S viewed as (B, nW, h, N, N) + mask[:, None]);
    -> O (a, h, N, d).

    Backward: given G = dL/dO (N, d) per window and head,
    1. O = P V is a matrix product:  dL/dV = P^T G,  dL/dP = G V^T.
    2. Softmax, row by row: P_ij = e^S_ij / sum_l e^S_il has dP_ij/dS_ik = P_ij (delta_jk - P_ik),
       so  dL/dS_ik = sum_j dL/dP_ij P_ij (delta_jk - P_ik) = P_ik (dL/dP_ik - D_i),
       D_i = sum_j dL/dP_ij P_ij. The N x N Jacobian of each row is never formed: one row sum
       and two elementwise products apply it. And D_i needs no N x N product either:
       D_i = sum_j (G_i . V_j) P_ij = G_i . (sum_j P_ij V_j) = G_i . O_i, a dot product of
       length d (the trick FlashAttention uses), from the saved output.
    3. S is linear in each of its terms:  dL/dbias = sum over windows of dL/dS;
       dL/dmask[w] = sum over images and heads of dL/dS (zero unless the mask is learned);
       dL/dQ = scale dL/dS K,  dL/dK = scale dL/dS^T Q.
    So, with dS = P * (G V^T - rowdot(G, O)):
        dQ = dS (K scale),  dK = dS^T (Q scale),  dV = P^T G,  dbias = sum_a dS,
        dmask = sum_{b, h} dS.
    Masked scores have P = 0 exactly (``windows.mask_value``), so dS = 0 there as well. A row
    whose keys are all masked (only a padded query can have one) has equal scores, uniform finite
    weights, and an output nobody reads.

    Saved for backward: Q scale, K, V (for dQ, dK, dV), P (the N x N weights: recomputing them
    would cost the forward's product and softmax again) and O (for D).

    Speed: every window and head at once, as batched matrix products over (windows, heads);
    the softmax runs in place on the scores (S becomes P), its row sums as BLAS matrix-vector
    products; bias and mask are added together in one pass. float32 stays float32 (the scale is
    a number of the inputs' dtype).

    Unlike PyTorch's ``scaled_dot_product_attention``: the mask is additive and broadcast over
    the images of the batch (Swin's layout), and there is no dropout on the weights.
    """

    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale):
        xp = get_array_module(q, k, v, bias, mask)
        a, h, n, d = q.shape
        nw = 1 if mask is None else mask.shape[0]
        q_scaled = q * q.dtype.type(scale)                                     # (a, h, N, d)
        s = q_scaled @ k.swapaxes(-1, -2)                                      # (a, h, N, N)
        if mask is not None:    # bias + mask formed once (nW windows), then one pass over S
            additive = mask[:, None] if bias is None else bias + mask[:, None]  # (nW, h or 1, N, N)
            s4 = s.reshape(a // nw, nw, h, n, n)                               # (B, nW, h, N, N), a view
            s4 += additive
        elif bias is not None:
            s += bias
        s -= s.max(axis=-1, keepdims=True)                                     # e^(S - rowmax) <= 1
        p = xp.exp(s, out=s)                                                   # in place: S becomes P
        p /= (p @ xp.ones(n, dtype=p.dtype))[..., None]                        # row sums, as BLAS products
        o = p @ v                                                              # (a, h, N, d)
        ctx.save_for_backward(q_scaled, k, v, p, o)
        ctx.scale, ctx.nw = scale, nw
        return o

    @staticmethod
    def backward(ctx, g):
        q_scaled, k, v, p, o = ctx.saved_arrays
        need_q, need_k, need_v, need_bias, need_mask = ctx.needs_input_grad
        xp = get_array_module(g)
        a, h, n, d = q_scaled.shape
        grad_v = p.swapaxes(-1, -2) @ g if need_v else None                   # (a, h, N, d): P^T G
        if not (need_q or need_k or need_bias or need_mask):
            return None, None, grad_v, None, None
        ds = g @ v.swapaxes(-1, -2)                                            # (a, h, N, N): dL/dP = G V^T
        ds -= xp.einsum("ahnd,ahnd->ahn", g, o)[..., None]                    # - D, D_i = G_i . O_i
        ds *= p                                                                # dL/dS = P (dL/dP - D)
        grad_q = grad_k = grad_bias = grad_mask = None
        if need_q:
            grad_q = ds @ k                                                    # (a, h, N, d)
            grad_q *= q_scaled.dtype.type(ctx.scale)                           # dQ = dS K scale
        if need_k:
            grad_k = ds.swapaxes(-1, -2) @ q_scaled                            # (a, h, N, d): dS^T (Q scale)
        if need_bias:
            grad_bias = ds.sum(axis=0)                                         # (h, N, N)
        if need_mask:
            grad_mask = ds.reshape(a // ctx.nw, ctx.nw, h, n, n).sum(axis=(0, 2))   # (nW, N, N)
        return grad_q, grad_k, grad_v, grad_bias, grad_mask


def window_attention(q, k, v, bias=None, mask=None, scale=None):
    """Attention inside each window: softmax(q k^T * scale + bias + mask) v.

    Args:
        q, k, v: (B*nW, heads, N, d), windows ordered batch-major (``F.window_partition``).
        bias: optional (heads, N, N), added for every window (the relative position bias).
        mask: optional (nW, N, N) of 0 and a large negative value (``windows.window_mask``),
            window w's mask added to that window of every image.
        scale: the factor on q k^T; default d**-0.5.
    Returns:
        (B*nW, heads, N, d).

    >>> import minitorch_seg as mt
    >>> q = k = mt.zeros(1, 1, 2, 1)                   # equal scores: the weights are uniform
    >>> v = mt.tensor([[[[1.0], [3.0]]]])
    >>> window_attention(q, k, v).numpy().ravel().tolist()
    [2.0, 2.0]
    """
    if q.ndim != 4:
        raise ValueError(f"window_attention expects q, k, v of shape (B*nW, heads, N, d), got q of shape {q.shape}.")
    if k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"window_attention: q, k and v must have the same shape (B*nW, heads, N, d), got "
                         f"q {q.shape}, k {k.shape}, v {v.shape}.")
    windows, heads, n, d = q.shape
    if bias is not None and tuple(bias.shape) != (heads, n, n):
        raise ValueError(f"window_attention: bias must have shape (heads, N, N) = {(heads, n, n)}, "
                         f"got {tuple(bias.shape)}.")
    if mask is not None and (mask.ndim != 3 or tuple(mask.shape[1:]) != (n, n) or mask.shape[0] == 0
                             or windows % mask.shape[0]):
        raise ValueError(f"window_attention: mask must have shape (nW, N, N) = (nW, {n}, {n}) with nW dividing "
                         f"the {windows} windows of q, got {tuple(mask.shape)}.")
    dtypes = {t.dtype for t in (q, k, v, bias, mask) if t is not None}
    if len(dtypes) > 1:
        raise TypeError(f"window_attention: q, k, v, bias and mask must share one dtype, got "
                        f"{', '.join(sorted(str(t) for t in dtypes))}.")
    if scale is None:
        scale = d ** -0.5
    return WindowAttention.apply(q, k, v, bias, mask, scale=float(scale))
