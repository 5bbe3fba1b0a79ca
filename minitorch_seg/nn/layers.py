"""Basic layers with torch's names: Linear, Identity, ReLU, LeakyReLU, GELU, Sigmoid, Tanh, Dropout,
Softmax, Flatten, CrossEntropyLoss."""
from .. import backend, creation, dtypes
from .. import functional as F
from . import init
from .module import Module, Parameter


def _parameter(*shape):
    """An uninitialised float parameter on the current backend, in the default dtype."""
    return Parameter(backend.current_module().zeros(shape, dtype=dtypes.get_default_dtype()))


class Linear(Module):
    """y = x W^T + b with W (out_features, in_features), initialised as torch does."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _parameter(out_features, in_features)
        self.bias = _parameter(out_features) if bias else None
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)      # before drawing: float64 weights get float64 draws
        init.default_weight_and_bias_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    def forward(self, x):
        return x


class ReLU(Module):
    """max(x, 0). ``inplace=True`` is accepted and computes out of place (the same values and gradients;
    torch overwrites the input to save memory)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """``inplace=True`` is accepted and computes out of place, as ``ReLU``."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Softmax(Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Zeroes elements with probability ``p`` in training (scaling the rest); identity in eval.

    ``inplace=True`` is accepted and computes out of place. Unlike PyTorch, the repr shows
    ``inplace`` only when it is True.
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}.")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}" + (", inplace=True" if self.inplace else "")


class Dropout2d(Dropout):
    """Zeroes whole channels of (N, C, H, W) inputs with probability ``p`` in training (``F.dropout2d``)."""

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class PReLU(Module):
    """x for x > 0, else a * x with a learned slope ``a``: one shared (``num_parameters=1``) or one per channel."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = _parameter(num_parameters)
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)
        self.weight.data[...] = init

    def forward(self, x):
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class CrossEntropyLoss(Module):
    """``F.cross_entropy`` as a module; ``ignore_index`` defaults to -100 as in torch (Cityscapes: pass 255)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__()
        self.register_buffer("weight", None if weight is None else creation.tensor(weight))  # moved by .to, as in torch
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction)

    def extra_repr(self):
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
