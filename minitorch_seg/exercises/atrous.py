"""Lesson 7's exercises: DeepLab's image-pooling branch and its atrous branches, as functions of their weights.

Neither is a library function, so each reference is defined here, composed from library ops
(its gradients are autograd's) and equal to the corresponding part of ``models.deeplab.ASPP``:

- ``image_pooling(input, weight, bias=None)``: ``ImagePooling``, the global mean of each channel,
  a 1x1 conv and a ReLU, copied back to every position;
- ``atrous_pyramid(input, weight, bias=None, rates=(1, 2, 3))``: ASPP's 3x3 atrous branches (before
  their BatchNorm), one per rate, concatenated along the channels.
"""
from hypothesis import strategies as st

from .. import functional as F
from ..testing import Arguments, make
from .registry import Exercise, register

MAX_SIDE, MAX_CHANNELS, MAX_BATCH = 7, 4, 3


def image_pooling(input, weight, bias=None):
    """ASPP's image-level branch: the global mean of each channel, a 1x1 conv, a ReLU, copied back to the map.

    Shapes: input (N, C, H, W), weight (O, C, 1, 1), bias (O,) or None -> (N, O, H, W), with

        y[n, o, h, w] = relu(b[o] + sum_c weight[o, c, 0, 0] * mean over (h', w') of input[n, c, h', w'])

    the same value at every (h, w): the context of the whole map, at every pixel. It is
    ``models.deeplab.ImagePooling`` with its conv's weight and bias as arguments.

    >>> import numpy
    >>> import minitorch_seg as mt
    >>> from minitorch_seg.models.deeplab import ImagePooling
    >>> branch, x = ImagePooling(3, 2), mt.randn(2, 3, 4, 5)
    >>> y = image_pooling(x, branch.conv[0].weight, branch.conv[0].bias)
    >>> y.shape, numpy.allclose(y.numpy(), branch(x).numpy())
    ((2, 2, 4, 5), True)
    """
    n, _, h, w = input.shape
    pooled = input.mean(dim=(2, 3), keepdim=True)                        # (N, C, 1, 1)
    y = F.relu(F.conv2d(pooled, weight, bias))                           # (N, O, 1, 1)
    return y.expand(n, y.shape[1], h, w)                                 # (N, O, H, W)


def atrous_pyramid(input, weight, bias=None, rates=(1, 2, 3)):
    """ASPP's atrous branches: one 3x3 conv per rate r, dilation r and padding r, concatenated along channels.

    Shapes: input (N, C, H, W), weight (R, O, C, 3, 3) (one filter bank per rate), bias (R, O) or
    None, ``rates`` R positive ints -> (N, R*O, H, W): channels k*O to (k+1)*O - 1 are branch k,

        conv2d(input, weight[k], bias[k], padding=rates[k], dilation=rates[k])

    which keeps the map's size (padding r = d(k - 1)/2 for k = 3), whatever the rate: at r >= H
    every off-centre tap of a row reads the zero padding. It is ``models.deeplab.ASPP``'s
    ``convs[1:1 + R]`` without their BatchNorm and ReLU.

    >>> import numpy
    >>> import minitorch_seg as mt
    >>> x, w = mt.randn(1, 2, 5, 6), mt.randn(2, 4, 2, 3, 3)
    >>> y = atrous_pyramid(x, w, rates=(1, 3))
    >>> y.shape
    (1, 8, 5, 6)
    >>> numpy.allclose(y[:, 4:].numpy(), F.conv2d(x, w[1], padding=3, dilation=3).numpy())
    True
    """
    branches = []
    for k, rate in enumerate(rates):
        branches.append(F.conv2d(input, weight[k], None if bias is None else bias[k],
                                 padding=rate, dilation=rate))           # (N, O, H, W)
    return F.cat(branches, dim=1)                                        # (N, R*O, H, W)


# ---- what the checks draw ---------------------------------------------------------------------------
_sides = st.integers(1, MAX_SIDE)
_channels = st.integers(1, MAX_CHANNELS)
_seeds = st.integers(0, 2 ** 16)


@st.composite
def _image_pooling_inputs(draw):
    n, c, o = draw(st.integers(1, MAX_BATCH)), draw(_channels), draw(_channels)
    h, w = draw(_sides), draw(_sides)
    seed, with_bias = draw(_seeds), draw(st.booleans())
    bias = make((o,), seed + 2) if with_bias else None
    return Arguments(make((n, c, h, w), seed), make((o, c, 1, 1), seed + 1), bias)


register(Exercise(
    name="image_pooling", lesson="07_atrous", reference=image_pooling, inputs=_image_pooling_inputs,
    task="Write image_pooling(input, weight, bias=None), ASPP's image-pooling branch: input (N, C, H, W), "
         "weight (O, C, 1, 1), bias (O,) or None -> (N, O, H, W), relu(conv2d(the mean of each channel over the "
         "map, weight, bias)) copied to every position. Write the pooling (N, C, H, W) -> (N, C, 1, 1) and the "
         "copy back (N, O, 1, 1) -> (N, O, H, W) as Functions, forward and backward; F.conv2d and F.relu may "
         "do the rest.",
    drawn="batches 1-3, channels 1-4 in and out, every map from 1 x 1 to 7 x 7 (odd and even, square and "
          "not), bias present or None."))


@st.composite
def _atrous_pyramid_inputs(draw):
    n, c, o = draw(st.integers(1, MAX_BATCH)), draw(_channels), draw(_channels)
    h, w = draw(_sides), draw(_sides)
    rates = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True)))     # in any order
    seed, with_bias = draw(_seeds), draw(st.booleans())
    bias = make((len(rates), o), seed + 2) if with_bias else None
    return Arguments(make((n, c, h, w), seed), make((len(rates), o, c, 3, 3), seed + 1), bias, rates=rates)


register(Exercise(
    name="atrous_pyramid", lesson="07_atrous", reference=atrous_pyramid, inputs=_atrous_pyramid_inputs,
    task="Write atrous_pyramid(input, weight, bias=None, rates=(1, 2, 3)), ASPP's atrous branches with the "
         "library's F.conv2d: input (N, C, H, W), weight (R, O, C, 3, 3), bias (R, O) or None -> (N, R*O, H, W), "
         "branch k a 3x3 conv at dilation rates[k] that keeps the map's size, the branches concatenated along "
         "the channels in the order of the rates.",
    drawn="batches 1-3, channels 1-4 in and out, maps from 1 x 1 to 7 x 7 (odd and even, square and not), "
          "1-3 distinct rates from 1 to 4 (larger than the map too), bias present or None."))
