# Solutions to lesson 9's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks); the last cells answer its
# "predict first" questions. Try first.

# %% {"exercise": "relative_position_bias"}
class RelativePositionBias(Function):
    """bias[h, i, j] = table[index[i, j], h]: a (T, heads) table gathered into (heads, N, N).

    Backward: table row t is copied to every pair (i, j) with index[i, j] = t (every pair at that
    offset), so by the chain rule for fan-out dL/dtable[t, h] = sum of g[h, i, j] over those
    pairs: a scatter-add of g's entries into a zero table.
    """

    @staticmethod
    def forward(ctx, table, index):
        ctx.index, ctx.rows = index.reshape(-1), table.shape[0]
        heads, n = table.shape[1], index.shape[0]
        return table[ctx.index].T.reshape(heads, n, n)                      # (heads, N, N)

    @staticmethod
    def backward(ctx, g):
        heads = g.shape[0]
        grad = numpy.zeros((ctx.rows, heads), dtype=g.dtype)
        numpy.add.at(grad, ctx.index, g.reshape(heads, -1).T)               # repeated rows add up
        return grad


def relative_position_bias(table, window_size, table_size=None):
    wh, ww = (window_size, window_size) if isinstance(window_size, int) else window_size
    if table_size is None:
        th, tw = wh, ww
    else:
        th, tw = (table_size, table_size) if isinstance(table_size, int) else table_size
    rows, cols = numpy.divmod(numpy.arange(wh * ww), ww)                 # each token's place in the window
    dy = rows[:, None] - rows[None, :]                                   # (N, N): query i's row minus key j's
    dx = cols[:, None] - cols[None, :]
    index = (dy + th - 1) * (2 * tw - 1) + (dx + tw - 1)                 # offsets shifted to start at 0
    return RelativePositionBias.apply(table, index=index)

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
