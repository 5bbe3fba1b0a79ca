"""Lesson 8's exercises: window partition and its reverse."""
from hypothesis import strategies as st

from .. import functional as F
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


register(Exercise(
    name="window_partition", lesson="08_transformers", reference=F.window_partition, inputs=_partition_inputs,
    task="Write window_partition(x, window_size): a channels-last map (B, H, W, C), H and W multiples of the "
         "window (Wh, Ww) (an int or a pair), to windows (B*nW, Wh*Ww, C), batch-major, windows and their "
         "tokens in raster order. Reshapes and one permute: autograd derives the backward.",
    drawn="batches 1-2, 1-3 windows per side, windows 1-4 per side (non-square too), channels 1-3."))

register(Exercise(
    name="window_reverse", lesson="08_transformers", reference=F.window_reverse, inputs=_reverse_inputs,
    task="Write window_reverse(windows, window_size, H, W): the inverse of window_partition, "
         "(B*nW, Wh*Ww, C) back to (B, H, W, C). Reshapes and one permute: autograd derives the backward.",
    drawn="batches 1-2, 1-3 windows per side (non-square maps), windows 1-4 per side, channels 1-3."))
