"""minitorch_seg: a NumPy-from-scratch deep-learning framework for semantic segmentation.

Torch's names and conventions (NCHW, ``torch.nn.functional``'s signatures); every op's backward is
derived by hand and checked against finite differences; the same code runs on CuPy.
"""
__version__ = "0.1.0"

from . import backend, dtypes  # noqa: E402
from .autograd import Function, is_grad_enabled, no_grad
from .backend import get_array_module, get_backend, manual_seed, set_backend, to_numpy, use_backend
from .creation import arange, empty, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from .dtypes import (bool, double, float, float16, float32, float64, get_default_dtype, half, int32, int64,  # noqa: A004
                     long, set_default_dtype, uint8)
from .tensor import Tensor
from . import functional, nn, optim  # noqa: E402,I001 - after Tensor, which they use
from .functional import cat, stack  # noqa: E402
from .gradient_check import GradcheckError, gradcheck  # noqa: E402
