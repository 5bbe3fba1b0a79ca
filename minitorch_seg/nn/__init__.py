"""``minitorch_seg.nn``: Module, Parameter and layers with torch's names.

``nn.functional`` is ``minitorch_seg.functional`` itself, also importable as
``import minitorch_seg.nn.functional as F`` (as torch's ``torch.nn.functional``).
"""
import sys

from .. import functional
from . import init, utils
from .containers import ModuleDict, ModuleList, Sequential
from .conv import Conv2d, ConvTranspose2d
from .layers import (GELU, CrossEntropyLoss, Dropout, Dropout2d, Flatten, Identity, LeakyReLU, Linear, PReLU, ReLU,
                     Sigmoid, Softmax, Tanh)
from .loss import BCEWithLogitsLoss
from .module import Module, Parameter
from .norm import BatchNorm2d, GroupNorm, LayerNorm
from .pool import AvgPool2d, MaxPool2d, MaxUnpool2d
from .swin import DropPath, PatchEmbed, PatchMerging, SwinTransformerBlock, WindowAttention
from .upsample import Upsample

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear", "Identity", "ReLU",
           "LeakyReLU", "GELU", "Sigmoid", "Tanh", "Softmax", "Flatten", "Dropout", "CrossEntropyLoss",
           "init", "utils", "Conv2d", "ConvTranspose2d", "BatchNorm2d", "LayerNorm", "GroupNorm",
           "WindowAttention", "SwinTransformerBlock", "PatchEmbed", "PatchMerging", "DropPath",
           "MaxPool2d", "MaxUnpool2d", "AvgPool2d", "Upsample", "Dropout2d", "PReLU", "BCEWithLogitsLoss",
           "functional"]

sys.modules[__name__ + ".functional"] = functional      # import minitorch_seg.nn.functional as F
