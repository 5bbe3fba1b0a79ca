"""Property-based checking for learners and for the project's own tests (needs hypothesis).

``strategies``: what to draw (float64 tensors of drawn shapes, valid conv/pool/upsample/window
geometries, segmentation targets with void pixels). ``checks``: ``check_gradients`` (your
backward against finite differences on every draw) and ``check_against`` (your function against
a reference, outputs and input gradients), each reporting the *smallest* failing input.

>>> import minitorch_seg as mt
>>> from minitorch_seg.testing import check_gradients, shapes, tensors
>>> check_gradients(lambda x: (x.exp() * x).sum(), tensors(shapes(max_dims=2)), max_examples=10)
"""
try:
    import hypothesis  # noqa: F401
except ImportError:  # pragma: no cover - the message is the point
    raise ImportError("minitorch_seg.testing needs hypothesis: pip install 'minitorch-seg[lessons]' "
                      "(or pip install hypothesis).") from None

from .checks import Arguments, CheckFailed, Mismatch, arguments, check_against, check_gradients, describe
from .strategies import (ConvConfig, PoolConfig, broadcastable_pair, conv_configs, distinct, layouts,
                         logits_and_targets, make, make_target, pool_configs, segmentation_targets, shapes,
                         tensors, upsample_configs, window_configs)

__all__ = ["Arguments", "CheckFailed", "ConvConfig", "Mismatch", "PoolConfig", "arguments", "broadcastable_pair",
           "check_against", "check_gradients", "conv_configs", "describe", "distinct", "layouts",
           "logits_and_targets", "make", "make_target", "pool_configs", "segmentation_targets", "shapes",
           "tensors", "upsample_configs", "window_configs"]
