"""minitorch_seg: a NumPy-from-scratch deep-learning framework for semantic segmentation.

Torch's names and conventions (NCHW, ``torch.nn.functional``'s signatures); every op's backward is
derived by hand and checked against finite differences; the same code runs on CuPy.
"""
__version__ = "0.1.0"

from . import backend, dtypes  # noqa: E402
from .autograd import Function, is_grad_enabled, no_grad
from .backend import get_array_module, get_backend, set_backend, to_numpy, use_backend
from .devices import device
from .dtypes import (bool, channels_last, contiguous_format, double, float, float16, float32, float64,  # noqa: A004
                     get_default_dtype, half, int, int32, int64, long, memory_format, preserve_format,
                     set_default_dtype, uint8)
from .generator import Generator
from .grad_mode import enable_grad, inference_mode, set_grad_enabled
from .random import manual_seed
from .tensor import Tensor
from .creation import (arange, as_tensor, empty, from_numpy, full, full_like, ones, ones_like, rand, rand_like,  # noqa: E402
                       randint, randn, randn_like, randperm, tensor, zeros, zeros_like)
from . import functional, nn, optim  # noqa: E402,I001 - after Tensor, which they use
from .functional import (abs, all, amax, amin, any, argmax, argmin, cat, clamp, clip, exp, flatten, isfinite,  # noqa: E402,A004
                         isinf, isnan, log, logical_not, matmul, max, mean, min, permute, relu, reshape, sigmoid,
                         softmax, sqrt, squeeze, stack, sum, tanh, transpose, unsqueeze, where)
from .gradient_check import GradcheckError, gradcheck  # noqa: E402
from .serialization import load, save  # noqa: E402
from . import amp, cuda, utils  # noqa: E402,I001
