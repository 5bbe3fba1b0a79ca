"""Lesson 5's exercises: convolution and transposed convolution (stride, padding, dilation)."""
from hypothesis import strategies as st

from .. import functional as F
from ..testing import arguments, conv_configs, tensors
from .registry import Exercise, register


def _conv_inputs(transposed):
    @st.composite
    def inputs(draw):
        c = draw(conv_configs(transposed=transposed, max_batch=3, max_channels=4, max_side=7, max_kernel=3,
                              max_stride=3, max_padding=2, max_dilation=3, max_groups=1))
        bias = draw(st.none() | tensors((c["out_channels"],)))
        kwargs = {k: c[k] for k in ("stride", "padding", "dilation") + (("output_padding",) if transposed else ())}
        return draw(arguments(tensors(c["x_shape"]), tensors(c["weight_shape"]), bias, **kwargs))
    return inputs


DRAWN = ("batches 1-3, channels 1-4, odd and even non-square sides up to 7, kernels 1-3 (non-square too), "
         "stride 1-3, padding 0-2, dilation 1-3 per side (groups 1), bias present or None")

register(Exercise(
    name="conv2d", lesson="05_convolution", reference=F.conv2d, inputs=_conv_inputs(False),
    task="Write conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) for groups=1: "
         "out[n, o, i, j] = b[o] + sum over c, u, v of w[o, c, u, v] x[n, c, i s + u d - p, j s + v d - p] (zero "
         "outside the image). Its backward gives the gradients of input, weight and bias; stride and "
         "dilation (ints or pairs) appear in all of them.",
    drawn=DRAWN + "."))

register(Exercise(
    name="conv_transpose2d", lesson="05_convolution", reference=F.conv_transpose2d, inputs=_conv_inputs(True),
    task="Write conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, "
         "dilation=1) for groups=1: the adjoint of conv2d, each input pixel stamping weight[c] (C_in, C_out, "
         "kh, kw) scaled by its value at (i s, j s) with taps d apart, then cropping padding from each side; "
         "output_padding adds rows and columns at the bottom and right. Its backward: input and weight "
         "gradients through conv2d, bias by summing.",
    drawn=DRAWN + ", output_padding below max(stride, dilation)."))
