# Solutions to lesson 6's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks). Try first.

# %% {"exercise": "copy_and_crop"}
class CopyAndCrop(Function):
    """y = cat([skip cropped at (top, left) to x's size, x]) along the channels.

    Backward: output channel c < C_s at (u, v) is a copy of skip[c, top + u, left + v], channel
    C_s + c a copy of x[c, u, v]; a copy passes its gradient on unchanged. So split g by channels
    (the first C_s to the skip, the rest to x) and put the skip's part back where the crop came
    from, inside zeros: the cropped-away pixels reached no output.
    """

    @staticmethod
    def forward(ctx, skip, x):
        h, w = x.shape[2:]
        top, left = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2
        ctx.skip_shape, ctx.top, ctx.left = skip.shape, top, left
        cropped = skip[:, :, top:top + h, left:left + w]                      # (N, C_s, H, W)
        return numpy.concatenate([cropped, x], axis=1)                         # (N, C_s + C_x, H, W)

    @staticmethod
    def backward(ctx, g):
        c_skip, (h, w) = ctx.skip_shape[1], g.shape[2:]
        grad_skip = numpy.zeros(ctx.skip_shape, dtype=g.dtype)
        grad_skip[:, :, ctx.top:ctx.top + h, ctx.left:ctx.left + w] = g[:, :c_skip]
        grad_x = g[:, c_skip:]
        return grad_skip, grad_x


def copy_and_crop(skip, x):
    return CopyAndCrop.apply(skip, x)

# %% {"exercise": "unet_up"}
def unet_up(x, skip, up_weight, up_bias, weight, bias, padding=0):
    """Up-convolve x (2x2, stride 2), crop the skip's centre to that size, concatenate (skip first), 3x3 conv, ReLU."""
    up = F.conv_transpose2d(x, up_weight, up_bias, stride=2)                  # (N, C_up, 2h, 2w)
    h, w = up.shape[2:]
    top, left = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2
    joined = F.cat([skip[:, :, top:top + h, left:left + w], up], dim=1)       # (N, C_s + C_up, 2h, 2w)
    return F.relu(F.conv2d(joined, weight, bias, padding=padding))
