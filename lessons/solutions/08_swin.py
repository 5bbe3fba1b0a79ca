# Solutions to lesson 8's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks); the last cells answer its
# "predict first" questions. Try first.

# %% {"exercise": "window_partition"}
def window_partition(x, window_size):
    """(B, H, W, C) -> (B*nW, Wh*Ww, C): split H as (H/Wh, Wh) and W as (W/Ww, Ww), bring the two
    window-grid axes before the two within-window axes, and flatten each group."""
    wh, ww = (window_size, window_size) if isinstance(window_size, int) else window_size
    b, h, w, c = x.shape
    x = x.reshape(b, h // wh, wh, w // ww, ww, c)          # (B, H/Wh, Wh, W/Ww, Ww, C)
    x = x.permute(0, 1, 3, 2, 4, 5)                        # (B, H/Wh, W/Ww, Wh, Ww, C)
    return x.reshape(-1, wh * ww, c)                       # (B*nW, Wh*Ww, C)

# %% {"exercise": "window_reverse"}
def window_reverse(windows, window_size, H, W):
    """(B*nW, Wh*Ww, C) -> (B, H, W, C): window_partition's movements, undone in reverse order
    (the permute swaps two axes, so it is its own inverse)."""
    wh, ww = (window_size, window_size) if isinstance(window_size, int) else window_size
    c = windows.shape[2]
    x = windows.reshape(-1, H // wh, W // ww, wh, ww, c)   # (B, H/Wh, W/Ww, Wh, Ww, C)
    x = x.permute(0, 1, 3, 2, 4, 5)                        # (B, H/Wh, Wh, W/Ww, Ww, C)
    return x.reshape(-1, H, W, c)                          # (B, H, W, C)

# %% {"exercise": "window_attention"}
class WindowAttention(Function):
    """O = softmax(S) V per window and head, S = scale Q K^T + bias + mask; q, k, v (a, h, N, d).

    Backward, with G = dL/dO: dV = P^T G, dP = G V^T; through each row's softmax
    dS = P (dP - D), D_i = sum_j dP_ij P_ij; dQ = scale dS K, dK = scale dS^T Q; the bias is
    added to every window, so dbias = dS summed over the windows. The mask is a constant.
    """

    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale):
        a, h, n, d = q.shape
        s = q @ k.swapaxes(-1, -2) * scale                                   # (a, h, N, N)
        if bias is not None:
            s = s + bias                                                     # (h, N, N): every window
        if mask is not None:
            nw = mask.shape[0]                                               # window a = b*nW + w gets mask[w]
            s = (s.reshape(a // nw, nw, h, n, n) + mask[:, None]).reshape(a, h, n, n)
        p = numpy.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)                                   # P: rows sum to 1
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        return p @ v                                                         # (a, h, N, d)

    @staticmethod
    def backward(ctx, g):
        q, k, v, p = ctx.saved_arrays
        grad_v = p.swapaxes(-1, -2) @ g                                      # P^T G
        grad_p = g @ v.swapaxes(-1, -2)                                      # G V^T
        ds = p * (grad_p - (grad_p * p).sum(axis=-1, keepdims=True))         # P (dP - D)
        grad_q = ds @ k * ctx.scale
        grad_k = ds.swapaxes(-1, -2) @ q * ctx.scale
        grad_bias = ds.sum(axis=0)                                           # (h, N, N)
        return grad_q, grad_k, grad_v, grad_bias, None


def window_attention(q, k, v, bias=None, mask=None, scale=None):
    if scale is None:
        scale = q.shape[-1] ** -0.5
    return WindowAttention.apply(q, k, v, bias, mask, scale=scale)

# %% {"prediction": "swin_reach"}
answer = 64                      # rows 0-7, columns 4-11
