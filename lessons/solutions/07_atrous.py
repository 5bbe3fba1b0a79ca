# Solutions to lesson 7's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks); the last cells answer its
# "predict first" questions. Try first.

# %% {"exercise": "image_pooling"}
class GlobalAveragePool(Function):
    """(N, C, H, W) -> (N, C, 1, 1): the mean of each channel over the map.

    Backward: x[n, c, h, w] enters the mean of its channel once, with weight 1 / HW, so
    dL/dx[n, c, h, w] = g[n, c, 0, 0] / HW, the same at every pixel of the channel.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.hw = x.shape[2:]
        return x.sum(axis=(2, 3), keepdims=True) / (x.shape[2] * x.shape[3])

    @staticmethod
    def backward(ctx, g):
        h, w = ctx.hw
        return numpy.broadcast_to(g / (h * w), g.shape[:2] + (h, w)).copy()


class CopyToMap(Function):
    """(N, C, 1, 1) -> (N, C, H, W): each value copied to every position.

    Backward: one value feeds HW outputs (a fan-out), so its gradient is the sum of theirs.
    """

    @staticmethod
    def forward(ctx, y, size):
        return numpy.broadcast_to(y, y.shape[:2] + tuple(size)).copy()

    @staticmethod
    def backward(ctx, g):
        return g.sum(axis=(2, 3), keepdims=True)


def image_pooling(input, weight, bias=None):
    pooled = GlobalAveragePool.apply(input)                              # (N, C, 1, 1)
    y = F.relu(F.conv2d(pooled, weight, bias))                           # (N, O, 1, 1)
    return CopyToMap.apply(y, size=input.shape[2:])                      # (N, O, H, W)

# %% {"exercise": "atrous_pyramid"}
def atrous_pyramid(input, weight, bias=None, rates=(1, 2, 3)):
    branches = []
    for k, rate in enumerate(rates):
        b = None if bias is None else bias[k]
        branches.append(F.conv2d(input, weight[k], b, padding=rate, dilation=rate))   # (N, O, H, W)
    return F.cat(branches, dim=1)                                                     # (N, R*O, H, W)

# %% {"prediction": "dilated_receptive_field"}
answer = 15                      # 1 + 2 (1 + 2 + 4)

# %% {"prediction": "flop_ratio_os8_os16"}
answer = 3.3                     # 1 + 3 x (the share of layer3, layer4, ASPP and head at OS 16, about 3/4)
