"""Lesson 8's exercises: window partition and reverse, and the windowed attention."""
import numpy
from hypothesis import strategies as st

from .. import functional as F
from ..creation import tensor
from ..functional.windows import mask_value
from ..tensor import Tensor
from ..testing import arguments, tensors, window_configs
from .registry import Exercise, register


def _window(config, draw):
    wh, ww = config["window_size"]
    as_int = draw(st.booleans())          # drawn always: hypothesis shrinks toward fewer draws
    return wh if wh == ww and as_int else (wh, ww)


@st.composite
def _partition_inputs(draw):
    c = draw(window_configs(max_batch=2, max_windows=3, max_window=4, max_channels=3))
    return draw(arguments(tensors(c["x_shape"]), _window(c, draw)))


@st.composite
def _reverse_inputs(draw):
    c = draw(window_configs(max_batch=2, max_windows=3, max_window=4, max_channels=3))
    (b, h, w, ch), (wh, ww) = c["x_shape"], c["window_size"]
    windows = tensors((b * (h // wh) * (w // ww), wh * ww, ch))
    return draw(arguments(windows, _window(c, draw), h, w))


@st.composite
def _attention_inputs(draw):
    images, per_image = draw(st.integers(1, 2)), draw(st.integers(1, 3))     # q holds images * per_image windows
    heads, n, d = draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    q, k, v = (draw(tensors((images * per_image, heads, n, d))) for _ in range(3))
    bias = draw(st.none() | tensors((heads, n, n)))
    if bias is not None and draw(st.booleans()):   # scores past 709: exp overflows unless the row max is taken off
        bias = Tensor(bias.data + 1000.0, requires_grad=True)
    mask = None
    if draw(st.booleans()):      # blocked pairs as a shift mask has them; each query still sees itself
        rng = numpy.random.default_rng(draw(st.integers(0, 2 ** 16)))
        blocked = rng.random((per_image, n, n)) < 0.4
        blocked[:, numpy.arange(n), numpy.arange(n)] = False
        mask = tensor(numpy.where(blocked, mask_value(numpy.float64), 0.0))   # (nW, N, N): window w of each image
    scale = draw(st.sampled_from([None, None, 0.5, 2.0]))
    return draw(arguments(q, k, v, bias=bias, mask=mask, scale=scale))


register(Exercise(
    name="window_partition", lesson="08_swin", reference=F.window_partition, inputs=_partition_inputs,
    task="Write window_partition(x, window_size): a channels-last map (B, H, W, C), H and W multiples of the "
         "window (Wh, Ww) (an int or a pair), to windows (B*nW, Wh*Ww, C), batch-major, windows and their "
         "tokens in raster order. Reshapes and one permute: autograd derives the backward.",
    drawn="batches 1-2, 1-3 windows per side, windows 1-4 per side (non-square too), channels 1-3."))

register(Exercise(
    name="window_reverse", lesson="08_swin", reference=F.window_reverse, inputs=_reverse_inputs,
    task="Write window_reverse(windows, window_size, H, W): the inverse of window_partition, "
         "(B*nW, Wh*Ww, C) back to (B, H, W, C). Reshapes and one permute: autograd derives the backward.",
    drawn="batches 1-2, 1-3 windows per side (non-square maps), windows 1-4 per side, channels 1-3."))

register(Exercise(
    name="window_attention", lesson="08_swin", reference=F.window_attention, inputs=_attention_inputs,
    task="Write window_attention(q, k, v, bias=None, mask=None, scale=None): q, k, v (B*nW, heads, N, d); "
         "softmax(q k^T scale + bias + mask) v per window and head, scale d**-0.5 by default, bias (heads, N, N) "
         "for every window, mask (nW, N, N) for window w of every image. The backward: gradients of q, k, v "
         "and bias (the softmax's Jacobian applied without forming it).",
    drawn="1-2 images of 1-3 windows each, 1-2 heads, 1-5 tokens, head dims 1-3, bias absent or drawn (sometimes 1000 "
          "higher: scores past exp's range), mask "
          "absent or a random (nW, N, N) pattern of blocked pairs (each query sees itself), scale absent (d**-0.5) "
          "or given."))
