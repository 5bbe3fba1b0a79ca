"""``minitorch_seg.functional`` (import as ``F``): every op, with torch.nn.functional's names.

One file per family; each op is a ``Function`` with its backward derived in its docstring.
"""
from .conv import conv2d, conv_transpose2d
from .activation import dropout, dropout2d, gelu, leaky_relu, log_softmax, prelu, relu, sigmoid, softmax, tanh
from .bce import binary_cross_entropy_with_logits
from .logical import (bitwise_and, bitwise_not, bitwise_or, bitwise_xor, isfinite, isinf, isnan, logical_not,
                      one_hot)
from .select import clamp, clip, where
from .elementwise import abs, add, cast, clone, div, exp, log, mul, neg, pow, sqrt, sub
from .linear import linear, matmul
from .loss import cross_entropy
from .norm import batch_norm
from .sample_norm import group_norm, layer_norm
from .pool import max_pool2d, max_unpool2d
from .avg_pool import avg_pool2d
from .upsample import interpolate
from .movement import cat, expand, flatten, pad, permute, reshape, roll, squeeze, stack, t, transpose, unsqueeze
from .indexing import getitem
from .reduce import all, amax, amin, any, argmax, argmin, max, mean, min, sum
from .windows import window_partition, window_reverse
from .attention import window_attention

__all__ = [
    "abs", "add", "amax", "argmax", "cast", "cat", "clone", "conv2d", "conv_transpose2d", "cross_entropy", "div", "dropout", "exp",
    "expand", "flatten", "gelu", "getitem", "leaky_relu", "linear", "log", "log_softmax", "matmul", "max",
    "mean", "mul", "neg", "pad", "permute", "pow", "relu", "reshape", "roll", "sigmoid", "softmax", "sqrt",
    "squeeze", "stack", "sub", "sum", "tanh", "transpose", "unsqueeze",
    "batch_norm", "group_norm", "layer_norm",
    "avg_pool2d", "max_pool2d", "max_unpool2d", "interpolate",
    "window_attention", "window_partition", "window_reverse",
    "all", "amin", "any", "argmin", "min", "t", "clamp", "clip", "where", "isnan", "isinf", "isfinite",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "logical_not", "one_hot",
    "dropout2d", "prelu", "binary_cross_entropy_with_logits",
]
