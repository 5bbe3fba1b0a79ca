"""Lesson 6's exercises: the original U-Net's skip connection ("copy and crop") and its up step.

Both are lesson-specific: the library's ``Up`` pads its convolutions and so never crops, so the
references are defined here, composed from library ops (their gradients are autograd's).

>>> import minitorch_seg as mt
>>> skip, x = mt.zeros(1, 2, 7, 6), mt.ones(1, 3, 4, 4)
>>> copy_and_crop(skip, x).shape                        # 2 + 3 channels at x's size
(1, 5, 4, 4)
>>> unet_up(mt.zeros(1, 4, 3, 2), mt.zeros(1, 2, 7, 5), mt.zeros(4, 2, 2, 2), mt.zeros(2),
...         mt.zeros(3, 4, 3, 3), mt.zeros(3)).shape   # up to 6 x 4, crop the skip to 6 x 4, 3x3 valid conv
(1, 3, 4, 2)
"""
from hypothesis import strategies as st

from .. import functional as F
from ..testing import arguments, make
from .registry import Exercise, register


def crop_offset(skip_size, size):
    """Where a centred crop of ``size`` pixels starts in ``skip_size`` pixels: (skip_size - size) // 2.

    When the difference is odd the extra pixel is cut from the bottom (right): 7 -> 4 keeps rows 1..4.
    """
    return (skip_size - size) // 2


def copy_and_crop(skip, x):
    """The original U-Net's skip connection: crop the centre of ``skip`` to ``x``'s size, then concatenate.

    Shapes: skip (N, C_s, H_s, W_s) from the contracting path, x (N, C_x, H, W) from the expanding
    path, with H <= H_s and W <= W_s -> y (N, C_s + C_x, H, W).

    The crop starts at top = (H_s - H) // 2, left = (W_s - W) // 2 (``crop_offset``; an odd
    difference leaves the extra row at the bottom, the extra column at the right), and the skip
    comes first along the channels, as in the library's ``Up``:

        y = cat([skip[:, :, top:top + H, left:left + W], x], dim=1)

    Equal sizes crop nothing (the padded U-Net of ``models.unet``).
    """
    h, w = x.shape[2:]
    top, left = crop_offset(skip.shape[2], h), crop_offset(skip.shape[3], w)
    return F.cat([skip[:, :, top:top + h, left:left + w], x], dim=1)            # (N, C_s + C_x, H, W)


def unet_up(x, skip, up_weight, up_bias, weight, bias, padding=0):
    """One step of the original U-Net's expanding path: up-convolve, copy and crop, convolve, ReLU.

    Shapes: x (N, C_in, h, w) from the level below; skip (N, C_s, H_s, W_s) with H_s >= 2h and
    W_s >= 2w; up_weight (C_in, C_up, 2, 2) and up_bias (C_up,) of the 2x2 stride-2 transposed
    convolution; weight (C_out, C_s + C_up, 3, 3) and bias (C_out,) of the 3x3 convolution;
    padding 0 (the paper's valid convolution, 2h >= 3 and 2w >= 3) or 1 (the padded one of
    ``models.unet``) -> (N, C_out, 2h - 2 + 2 padding, 2w - 2 + 2 padding).

        up = conv_transpose2d(x, up_weight, up_bias, stride=2)         # (N, C_up, 2h, 2w)
        y = relu(conv2d(copy_and_crop(skip, up), weight, bias, padding=padding))

    (The paper then applies a second 3x3 conv + ReLU; ``models.unet.Up`` adds BatchNorm and pads.)
    """
    up = F.conv_transpose2d(x, up_weight, up_bias, stride=2)                    # (N, C_up, 2h, 2w)
    return F.relu(F.conv2d(copy_and_crop(skip, up), weight, bias, padding=padding))


# ---- what the checks draw -------------------------------------------------------------------------
@st.composite
def _copy_and_crop_inputs(draw):
    n, c_skip, c_x = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    # the crop per side: none, odd or even; odd differences with odd sizes are where a crop placed
    # "by halves" (H_s // 2 - H // 2) or rounded up is one pixel off
    dh, dw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2 ** 16))
    return draw(arguments(make((n, c_skip, h + dh, w + dw), seed), make((n, c_x, h, w), seed + 1)))


register(Exercise(
    name="copy_and_crop", lesson="06_unet", reference=copy_and_crop, inputs=_copy_and_crop_inputs,
    task="Write copy_and_crop(skip, x) as a Function: skip (N, C_s, H_s, W_s) cropped to x's (H, W) starting at "
         "top = (H_s - H) // 2, left = (W_s - W) // 2, then concatenated with x (N, C_x, H, W) along the "
         "channels, skip first: (N, C_s + C_x, H, W). Its backward returns the gradients of skip (its full "
         "shape) and of x.",
    drawn="batches 1-2, C_s and C_x 1-3, x sides 1-4, skip larger by 0-3 rows and 0-3 columns independently "
          "(no crop, odd and even crops, non-square)."))


@st.composite
def _unet_up_inputs(draw):
    n = draw(st.integers(1, 2))
    c_in, c_up, c_skip, c_out = (draw(st.integers(1, 3)) for _ in range(4))
    padding = draw(st.sampled_from([0, 1]))
    low = 2 if padding == 0 else 1                       # a valid 3x3 conv needs the 2h x 2w map to be >= 3
    h, w = draw(st.integers(low, 3)), draw(st.integers(low, 3))
    dh, dw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2 ** 16))                  # one seed for all six tensors: a short shrink
    shapes = [(n, c_in, h, w), (n, c_skip, 2 * h + dh, 2 * w + dw), (c_in, c_up, 2, 2), (c_up,),
              (c_out, c_skip + c_up, 3, 3), (c_out,)]
    return draw(arguments(*[make(shape, seed + i) for i, shape in enumerate(shapes)], padding=padding))


register(Exercise(
    name="unet_up", lesson="06_unet", reference=unet_up, inputs=_unet_up_inputs,
    task="Write unet_up(x, skip, up_weight, up_bias, weight, bias, padding=0) from library ops (F.conv_transpose2d, "
         "F.conv2d, F.relu, slicing, F.cat): the 2x2 stride-2 transposed conv of x (up_weight (C_in, C_up, 2, 2), "
         "up_bias), copy and crop of skip to its size (skip first), a 3x3 conv (weight (C_out, C_s + C_up, 3, 3), "
         "bias, padding), then ReLU. Autograd gives the backward.",
    drawn="batches 1-2, channels 1-3 each, x sides 1-3 (2-3 for padding 0), skip larger than the 2h x 2w "
          "up-map by 0-3 rows and 0-3 columns independently, padding 0 or 1."))
