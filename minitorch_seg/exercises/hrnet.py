"""Lesson 10's exercises: the two kinds of term in HRNet's multi-resolution fusion.

``models.hrnet.HighResolutionModule`` fuses its branches as y_i = relu(sum_j f_ij(x_j)), with
``fuse_layers[i][j]`` taking branch j to branch i's resolution and width. The two non-identity
kinds of f_ij, as functions of their weights (BatchNorm left out: in eval mode it is a per-channel
affine map that folds into the conv before it):

- ``fuse_up`` (j > i, a lower-resolution branch): 1x1 conv to branch i's width, at the low
  resolution where it is cheaper, then upsampling by 2**(j - i), added to branch i. Nearest
  upsampling, as the original HRNet's ``fuse_layers`` (``nn.Upsample(mode="nearest")``); the
  library's segmentation model (like the official HRNetV2 for segmentation) upsamples bilinearly.
- ``fuse_down`` (j < i, a higher-resolution branch): i - j stride-2 3x3 convs (padding 1), ReLU
  between them but not after the last (the ReLU comes after the sum).

>>> import minitorch_seg as mt
>>> fuse_up(mt.zeros(1, 2, 8, 12), mt.ones(1, 3, 2, 3), mt.ones(2, 3, 1, 1)).shape    # ratio 4
(1, 2, 8, 12)
>>> fuse_down(mt.zeros(1, 2, 7, 8), mt.zeros(2, 2, 3, 3), mt.zeros(5, 2, 3, 3)).shape  # 7 -> 4 -> 2
(1, 5, 2, 2)
"""
from hypothesis import strategies as st

from .. import functional as F
from ..testing import arguments, make
from .registry import Exercise, register


def fuse_up(high, low, weight):
    """A lower-resolution branch j fused into branch i: high + nearest_upsample(conv1x1(low, weight), r).

    Shapes: high (N, C_i, H, W); low (N, C_j, H / r, W / r), r = 2**(j - i) = H // low's height;
    weight (C_i, C_j, 1, 1) -> y (N, C_i, H, W):

        y[n, o, u, v] = high[n, o, u, v] + sum_c weight[o, c] low[n, c, u // r, v // r]
    """
    ratio = high.shape[2] // low.shape[2]                                      # 2 ** (j - i)
    return high + F.interpolate(F.conv2d(low, weight), scale_factor=ratio, mode="nearest")


def fuse_down(x, weight, weight2=None):
    """A higher-resolution branch j brought down to branch i: stride-2 3x3 convs, padding 1, no bias.

    One halving (i = j + 1, ``weight2`` None): conv2d(x, weight, stride=2, padding=1), weight
    (C_i, C_j, 3, 3). Two halvings (i = j + 2): conv2d(relu(conv2d(x, weight, ...)), weight2, ...),
    weight (C_j, C_j, 3, 3) keeps branch j's width, weight2 (C_i, C_j, 3, 3) changes it; no ReLU
    after the last conv. Shapes: x (N, C_j, H, W) -> (N, C_i, ceil(H / 2**k), ceil(W / 2**k)) for k
    halvings (each halving of a side n gives (n - 1) // 2 + 1).
    """
    y = F.conv2d(x, weight, stride=2, padding=1)                                # (N, C, ceil(H/2), ceil(W/2))
    if weight2 is not None:
        y = F.conv2d(F.relu(y), weight2, stride=2, padding=1)                  # (N, C_i, ceil(H/4), ceil(W/4))
    return y


# ---- what the checks draw -------------------------------------------------------------------------
@st.composite
def _fuse_up_inputs(draw):
    n, c_high, c_low = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ratio = draw(st.sampled_from([2, 4]))                              # branch j one or two levels below i
    h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))           # the low branch's sides, odd or even
    seed = draw(st.integers(0, 2 ** 16))
    return draw(arguments(make((n, c_high, ratio * h, ratio * w), seed), make((n, c_low, h, w), seed + 1),
                          make((c_high, c_low, 1, 1), seed + 2)))


register(Exercise(
    name="fuse_up", lesson="10_hrnet", reference=fuse_up, inputs=_fuse_up_inputs,
    task="Write fuse_up(high, low, weight) as a Function: a 1x1 conv of low (N, C_j, h, w) with weight "
         "(C_i, C_j, 1, 1), upsampled by nearest neighbour by r = high's height // low's height (2 or 4), added "
         "to high (N, C_i, r h, r w). Its backward returns the gradients of high, low and weight.",
    drawn="batches 1-2, C_i and C_j 1-4, ratios 2 and 4, low branch sides 1-3 (odd and even, non-square)."))


@st.composite
def _fuse_down_inputs(draw):
    n, c_from, c_to = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2 ** 16))
    x = make((n, c_from, h, w), seed)
    if draw(st.booleans()):                                            # two halvings: ratio 4
        return draw(arguments(x, make((c_from, c_from, 3, 3), seed + 1), make((c_to, c_from, 3, 3), seed + 2)))
    return draw(arguments(x, make((c_to, c_from, 3, 3), seed + 1)))


register(Exercise(
    name="fuse_down", lesson="10_hrnet", reference=fuse_down, inputs=_fuse_down_inputs,
    task="Write fuse_down(x, weight, weight2=None) from library ops (F.conv2d, F.relu): a 3x3 conv of x "
         "(N, C_j, H, W) with stride 2 and padding 1, no bias; when weight2 is given, a ReLU and a second such "
         "conv with weight2. No ReLU after the last conv. Autograd gives the backward.",
    drawn="batches 1-2, C_j 1-3, C_i 1-4, sides 1-7 (odd and even, non-square), one halving (weight2 None) or "
          "two."))
