"""Lesson 9's exercises: the relative position bias and the windowed attention."""
import numpy
from hypothesis import strategies as st

from .. import functional as F
from ..creation import tensor
from ..functional.windows import mask_value, relative_position_bias
from ..tensor import Tensor
from ..testing import arguments, tensors
from .registry import Exercise, register


def _int_or_pair(draw, pair):
    as_int = draw(st.booleans())          # drawn always: hypothesis shrinks toward fewer draws
    return pair[0] if pair[0] == pair[1] and as_int else pair


@st.composite
def _bias_inputs(draw):
    window = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    larger = draw(st.booleans())              # a table made for a larger window, or for this one
    table = tuple(n + draw(st.integers(0, 2)) for n in window) if larger else window
    heads = draw(st.integers(1, 3))
    rows = (2 * table[0] - 1) * (2 * table[1] - 1)
    given = draw(st.booleans())               # None means the window: only right when the table is its size
    table_size = _int_or_pair(draw, table) if larger or given else None
    return draw(arguments(tensors((rows, heads)), _int_or_pair(draw, window), table_size))


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
    name="relative_position_bias", lesson="09_swin", reference=relative_position_bias, inputs=_bias_inputs,
    task="Write relative_position_bias(table, window_size, table_size=None): the table ((2Th-1)(2Tw-1), heads) "
         "of a Th x Tw window (table_size; None: the window) gathered into the (heads, N, N) bias of a Wh x Ww "
         "window, bias[h, i, j] = table[(dy + Th - 1)(2Tw - 1) + (dx + Tw - 1), h], (dy, dx) query i's place "
         "minus key j's. The index is a constant; the gather is a Function whose backward you derive (a "
         "scatter-add).",
    drawn="windows 1-4 per side (non-square too, an int when square), tables of the window's size or up to 2 "
          "larger per side (table_size given or None), 1-3 heads."))

register(Exercise(
    name="window_attention", lesson="09_swin", reference=F.window_attention, inputs=_attention_inputs,
    task="Write window_attention(q, k, v, bias=None, mask=None, scale=None): q, k, v (B*nW, heads, N, d); "
         "softmax(q k^T scale + bias + mask) v per window and head, scale d**-0.5 by default, bias (heads, N, N) "
         "for every window, mask (nW, N, N) for window w of every image. The backward: gradients of q, k, v "
         "and bias (the softmax's Jacobian applied without forming it).",
    drawn="1-2 images of 1-3 windows each, 1-2 heads, 1-5 tokens, head dims 1-3, bias absent or drawn (sometimes 1000 "
          "higher: scores past exp's range), mask "
          "absent or a random (nW, N, N) pattern of blocked pairs (each query sees itself), scale absent (d**-0.5) "
          "or given."))
