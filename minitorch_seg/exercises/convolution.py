"""Lesson 4's exercises: convolution and transposed convolution (stride, padding, dilation)."""
from hypothesis import strategies as st

from .. import functional as F
from ..testing import Arguments, conv_configs, make
from .registry import Exercise, register


def _conv_inputs(transposed):
    # Built once: a strategy object made inside every draw costs hypothesis more than the draw itself.
    configs = conv_configs(transposed=transposed, max_batch=3, max_channels=4, max_side=7, max_kernel=3,
                           max_stride=3, max_padding=2, max_dilation=3, max_groups=1)
    keys = ("stride", "padding", "dilation") + (("output_padding",) if transposed else ())

    @st.composite
    def inputs(draw):
        c = draw(configs)
        seed, with_bias = draw(st.integers(0, 2 ** 16)), draw(st.booleans())
        kwargs = {}
        for key in keys:                 # an (h, w) pair; an int too where both are equal
            as_int = draw(st.booleans())     # drawn always: hypothesis shrinks toward fewer draws
            kwargs[key] = c[key][0] if c[key][0] == c[key][1] and as_int else c[key]
        bias = make((c["out_channels"],), seed + 2) if with_bias else None
        return Arguments(make(c["x_shape"], seed), make(c["weight_shape"], seed + 1), bias, **kwargs)
    return inputs


DRAWN = ("batches 1-3, channels 1-4, odd and even non-square sides up to 7, kernels 1-3 (non-square too), "
         "stride 1-3, padding 0-2, dilation 1-3 per side, as pairs or (when equal) ints (groups 1), bias present "
         "or None")

register(Exercise(
    name="conv2d", lesson="04_convolution", reference=F.conv2d, inputs=_conv_inputs(False),
    task="Write conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) for groups=1: "
         "y[n, o, u, v] = b[o] + sum over c, i, j of w[o, c, i, j] xpad[n, c, u s + i d, v s + j d], xpad the "
         "input with p zeros around each side, and its backward: the gradients of input, weight and bias. "
         "Stride, padding and dilation (ints or (h, w) pairs) appear in all three.",
    drawn=DRAWN + "."))

register(Exercise(
    name="conv_transpose2d", lesson="04_convolution", reference=F.conv_transpose2d, inputs=_conv_inputs(True),
    task="Write conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, "
         "dilation=1) for groups=1, weight (C_in, C_out, kh, kw): each input pixel (u, v) adds weight[c] times "
         "its value into a canvas, tap (i, j) at (u s + i d, v s + j d); the canvas, output_padding rows and "
         "columns longer at the bottom and right, is cropped by padding on each side; then the bias. And its "
         "backward: the gradients of input, weight and bias.",
    drawn=DRAWN + ", output_padding below max(stride, dilation)."))
