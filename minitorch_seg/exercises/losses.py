"""Lesson 2's exercises: the per-pixel cross-entropy and the stable log-softmax."""
import inspect

from hypothesis import strategies as st

from .. import functional as F
from ..testing import arguments, segmentation_targets, shapes, tensors
from .registry import Exercise, register


DEFAULT_IGNORE = inspect.signature(F.cross_entropy).parameters["ignore_index"].default


@st.composite
def _cross_entropy_inputs(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(2, 5))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    ignore_index = draw(st.sampled_from([DEFAULT_IGNORE, 255, -1, c]))   # the default is then not passed
    logits = draw(tensors((n, c, h, w), low=-3.0, high=3.0))
    target = draw(segmentation_targets((n, h, w), c, void=True, min_kept=1, ignore_index=ignore_index))
    weight = draw(st.none() | tensors((c,), low=0.2, high=2.0, requires_grad=False))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    given = {} if ignore_index == DEFAULT_IGNORE else {"ignore_index": ignore_index}
    return draw(arguments(logits, target, weight=weight, reduction=reduction, **given))


register(Exercise(
    name="cross_entropy", lesson="02_cross_entropy", reference=F.cross_entropy, inputs=_cross_entropy_inputs,
    task="Write cross_entropy(input, target, weight=None, ignore_index=-100, reduction='mean'): logits "
         "(N, C, H, W) and class indices (N, H, W); the loss -w[y] log softmax(x)[y] per pixel, 0 where the "
         "target is ignore_index; 'mean' divides the sum by the total weight w[y] of the kept pixels, 'sum' "
         "does not, 'none' returns the (N, H, W) map. Its backward: w[y] (softmax - one-hot), scaled as the forward.",
    drawn="batches 1-3, 2-5 classes, sides 1-6, void pixels from none to all but one, labelled with the default "
          "ignore_index or with 255, -1 or C passed as ignore_index, weight absent or drawn (no gradient: a "
          "constant, as in torch), every reduction."))


@st.composite
def _log_softmax_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=4, max_side=5))
    scale = draw(st.sampled_from([3.0, 1000.0]))            # logits of +-1000: exp overflows, the trick does not
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return draw(arguments(tensors(shape, low=-scale, high=scale), dim))


register(Exercise(
    name="log_softmax", lesson="02_cross_entropy", reference=F.log_softmax, inputs=_log_softmax_inputs,
    task="Write log_softmax(input, dim): x - m - log sum_k exp(x_k - m) along dim, m the maximum along dim "
         "(no overflow at logits of 1000), and its backward, derived on paper first (the lesson's hint: the "
         "softmax comes back from the output).",
    drawn="1-4 dimensions of sides 1-5, every dim (negative too), logits in [-3, 3) or [-1000, 1000)."))
