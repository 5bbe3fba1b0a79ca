"""ONNX for our layers: ``emit(g, module, x)`` adds ``module``'s eval-mode forward to graph ``g``.

One emitter per layer class (``@emitter(nn.Conv2d)``), found along the class's MRO, so a
subclass (U-Net's ``DoubleConv`` is a ``Sequential``) needs none of its own. The models' own
classes register theirs in ``onnx_models`` and ``onnx_swin``. Weights become float32
initializers; BatchNorm uses its running statistics; dropout and drop path vanish (eval).

Each emitter computes what the layer's forward computes, op for op: Conv/ConvTranspose with
torch's padding, BatchNormalization, LayerNormalization, MatMul + Add for Linear, the exact GELU
through Erf, Resize (linear, ``pytorch_half_pixel`` or ``align_corners``) for bilinear
interpolation to another map's size.
"""
import math

import numpy

from .. import nn
from ..shapes import pair
from .errors import ExportError

EMITTERS = {}


def emitter(cls):
    """Register the decorated ``fn(g, module, *inputs)`` as the ONNX emitter of ``cls``."""
    def register(fn):
        EMITTERS[cls] = fn
        return fn
    return register


def emit(g, module, *inputs):
    """Add ``module``'s eval forward on ``inputs`` (value names) to ``g``; returns its output name(s)."""
    for cls in type(module).__mro__:
        if cls in EMITTERS:
            return EMITTERS[cls](g, module, *inputs)
    raise ExportError(f"to_onnx cannot export the module {type(module).__name__}; it knows "
                      f"{', '.join(sorted(c.__name__ for c in EMITTERS))}.")


def weight(g, tensor, hint="weight"):
    """A parameter or buffer as a float initializer."""
    return g.const(tensor.numpy(), hint)


def interpolate(g, x, like, align_corners=False):
    """Bilinear resize of x (N, C, h, w) to the spatial size of ``like`` (torch's coordinates)."""
    sizes = g.shape_of(g.op("Shape", x, start=0, end=2), g.op("Shape", like, start=2, end=4))
    mode = "align_corners" if align_corners else "pytorch_half_pixel"
    return g.op("Resize", x, "", "", sizes, mode="linear", coordinate_transformation_mode=mode)


# ---- containers and parameter-free layers --------------------------------------------------------
@emitter(nn.Sequential)
def sequential(g, module, x):
    for child in module:
        x = emit(g, child, x)
    return x


@emitter(nn.Identity)
@emitter(nn.Dropout)
@emitter(nn.Dropout2d)
@emitter(nn.DropPath)
def identity(g, module, x):
    return x


@emitter(nn.ReLU)
def relu(g, module, x):
    return g.op("Relu", x)


@emitter(nn.GELU)
def gelu(g, module, x):
    """0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation when the layer uses it."""
    if module.approximate == "tanh":
        cube = g.op("Mul", g.op("Mul", x, x), x)
        inner = g.op("Mul", g.const(math.sqrt(2 / math.pi)), g.op("Add", x, g.op("Mul", g.const(0.044715), cube)))
        gate = g.op("Add", g.const(1.0), g.op("Tanh", inner))
    else:
        gate = g.op("Add", g.const(1.0), g.op("Erf", g.op("Div", x, g.const(math.sqrt(2.0)))))
    return g.op("Mul", g.op("Mul", x, g.const(0.5)), gate)


# ---- layers with weights -------------------------------------------------------------------------
def _pads(module):
    """ONNX pads [top, left, bottom, right] of a conv's ``padding`` (ints, a pair, 'valid' or 'same')."""
    if module.padding == "valid":
        return [0, 0, 0, 0]
    if module.padding == "same":
        totals = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size)]
        return [t // 2 for t in totals] + [t - t // 2 for t in totals]
    return list(module.padding) * 2


@emitter(nn.Conv2d)
def conv2d(g, module, x):
    if module.padding_mode != "zeros":
        raise ExportError(f"to_onnx exports convolutions with zero padding only, got padding_mode "
                          f"{module.padding_mode!r}.")
    inputs = [x, weight(g, module.weight)] + ([weight(g, module.bias, "bias")] if module.bias is not None else [])
    return g.op("Conv", *inputs, kernel_shape=list(module.kernel_size), strides=list(module.stride),
                pads=_pads(module), dilations=list(module.dilation), group=module.groups)


@emitter(nn.ConvTranspose2d)
def conv_transpose2d(g, module, x):
    inputs = [x, weight(g, module.weight)] + ([weight(g, module.bias, "bias")] if module.bias is not None else [])
    return g.op("ConvTranspose", *inputs, kernel_shape=list(module.kernel_size), strides=list(module.stride),
                pads=list(module.padding) * 2, dilations=list(module.dilation), group=module.groups,
                output_padding=list(module.output_padding))


@emitter(nn.BatchNorm2d)
def batch_norm2d(g, module, x):
    if module.running_mean is None:
        raise ExportError("to_onnx needs BatchNorm2d layers with running statistics (track_running_stats=True).")
    c = module.num_features
    scale = weight(g, module.weight) if module.weight is not None else g.const(numpy.ones(c))
    shift = weight(g, module.bias, "bias") if module.bias is not None else g.const(numpy.zeros(c))
    return g.op("BatchNormalization", x, scale, shift, weight(g, module.running_mean, "mean"),
                weight(g, module.running_var, "var"), epsilon=float(module.eps))


@emitter(nn.LayerNorm)
def layer_norm(g, module, x):
    shape = tuple(module.normalized_shape)
    scale = weight(g, module.weight) if module.weight is not None else g.const(numpy.ones(shape))
    shift = weight(g, module.bias, "bias") if module.bias is not None else g.const(numpy.zeros(shape))
    return g.op("LayerNormalization", x, scale, shift, axis=-len(shape), epsilon=float(module.eps))


@emitter(nn.Linear)
def linear(g, module, x):
    y = g.op("MatMul", x, g.const(module.weight.numpy().T, "weight_t"))
    return y if module.bias is None else g.op("Add", y, weight(g, module.bias, "bias"))


@emitter(nn.MaxPool2d)
def max_pool2d(g, module, x):
    """MaxPool; with ``return_indices`` also ONNX's indices (flat over the whole N*C*H*W tensor,
    unlike ours, per (n, c) plane): only ever fed to MaxUnpool, which reads them so."""
    kernel = pair(module.kernel_size, "kernel_size")
    stride = pair(module.stride, "stride")
    padding = pair(module.padding, "padding")
    attributes = dict(kernel_shape=list(kernel), strides=list(stride), pads=list(padding) * 2,
                      dilations=list(pair(module.dilation, "dilation")), ceil_mode=int(module.ceil_mode))
    return g.op("MaxPool", x, outputs=2 if module.return_indices else 1, **attributes)
