"""``minitorch_seg.nn``: Module, Parameter and layers with torch's names."""
from . import init, utils
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (GELU, CrossEntropyLoss, Dropout, Flatten, Identity, LeakyReLU, Linear, ReLU, Sigmoid,
                     Softmax, Tanh)
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear", "Identity", "ReLU",
           "LeakyReLU", "GELU", "Sigmoid", "Tanh", "Softmax", "Flatten", "Dropout", "CrossEntropyLoss",
           "init", "utils"]
