"""``minitorch_seg.functional`` (import as ``F``): every op, with torch.nn.functional's names.

One file per family; each op is a ``Function`` with its backward derived in its docstring.
"""
from .conv import conv2d, conv_transpose2d
from .activation import dropout, gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .elementwise import abs, add, cast, clone, div, exp, log, mul, neg, pow, sqrt, sub
from .linear import linear, matmul
from .loss import cross_entropy
from .norm import batch_norm, group_norm, layer_norm
from .pool import avg_pool2d, max_pool2d, max_unpool2d
from .upsample import interpolate
from .movement import (cat, expand, flatten, getitem, pad, permute, reshape, roll, squeeze, stack,
                       transpose, unsqueeze)
from .reduce import amax, argmax, max, mean, sum
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
]
