# Solutions to lesson 10's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks). Try first.

# %% {"exercise": "fuse_up"}
class FuseUp(Function):
    """y = high + nearest_upsample(z, r), z = 1x1 conv of low: a lower branch fused into a higher one.

    Backward: the sum passes g to high unchanged. Each z[n, o, u, v] is copied to the r x r block
    of outputs above it (a fan-out), so its gradient is the block's *sum* of g. Then the 1x1 conv,
    z[n, o] = sum_c w[o, c] low[n, c], is a matrix product at every pixel:
    dL/dlow[n, c] = sum_o w[o, c] g_z[n, o], and dL/dw[o, c] = sum over n, u, v of g_z[n, o] low[n, c].
    """

    @staticmethod
    def forward(ctx, high, low, weight):
        r = high.shape[2] // low.shape[2]                                      # 2 ** (j - i)
        w = weight[:, :, 0, 0]                                                  # (C_i, C_j)
        z = numpy.einsum("oc,nchw->nohw", w, low)                              # (N, C_i, h, w)
        ctx.save_for_backward(low, w)
        ctx.r = r
        return high + z.repeat(r, axis=2).repeat(r, axis=3)                     # (N, C_i, r h, r w)

    @staticmethod
    def backward(ctx, g):
        low, w = ctx.saved_arrays
        r, (n, c, height, width) = ctx.r, g.shape
        blocks = g.reshape(n, c, height // r, r, width // r, r)                 # (N, C_i, h, r, w, r)
        g_z = blocks.sum(axis=(3, 5))                                           # (N, C_i, h, w)
        grad_low = numpy.einsum("oc,nohw->nchw", w, g_z)                       # (N, C_j, h, w)
        grad_weight = numpy.einsum("nohw,nchw->oc", g_z, low)                  # (C_i, C_j)
        return g, grad_low, grad_weight[:, :, None, None]


def fuse_up(high, low, weight):
    return FuseUp.apply(high, low, weight)

# %% {"exercise": "fuse_down"}
def fuse_down(x, weight, weight2=None):
    """i - j stride-2 3x3 convs (padding 1, no bias), a ReLU between two of them, none after the last."""
    y = F.conv2d(x, weight, stride=2, padding=1)                                # (N, C, ceil(H/2), ceil(W/2))
    if weight2 is not None:
        y = F.relu(y)
        y = F.conv2d(y, weight2, stride=2, padding=1)                           # (N, C_i, ceil(H/4), ceil(W/4))
    return y
