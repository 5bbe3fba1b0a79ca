"""``Tensor``: an array of one backend plus what autograd needs (``requires_grad``, ``grad``, its node).

Operators and methods are thin calls into ``minitorch_seg.functional``, where the ops and their
backward passes live.

>>> import minitorch_seg as mt
>>> x = mt.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
>>> x.relu().sum()
tensor(8., grad_fn=<Sum>)
>>> (x @ x).shape
(2, 2)
"""
from __future__ import annotations

import numpy

from . import autograd, backend, dtypes


class Tensor:
    """An n-dimensional array with a gradient. ``Tensor(array)`` wraps an array of any backend."""

    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_output_index", "__weakref__")
    __array_priority__ = 1000  # numpy_scalar * tensor calls Tensor.__rmul__, not NumPy's

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        elif backend.backend_name_or_none(data) is None:
            data = _array_from_python(data, None)
        self.data = data
        self.grad = None
        self._ctx = None
        self._output_index = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---- what it is -------------------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    backend = property(lambda self: backend.backend_name(self.data))
    is_leaf = property(lambda self: self._ctx is None)
    grad_fn = property(lambda self: self._ctx, doc="The graph node that made this tensor (None for leaves).")

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def __len__(self):
        return self.shape[0]

    # ---- autograd ---------------------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        if requires_grad and not dtypes.is_floating(self.data.dtype):
            raise RuntimeError(f"Only floating-point tensors can require gradients, not {self.data.dtype}.")
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``, contracted with ``gradient``.

        ``gradient`` defaults to 1 for a one-element tensor; any other shape needs it given.
        Unlike PyTorch: ``create_graph=True`` (higher-order gradients) is not supported.
        """
        if create_graph:
            raise NotImplementedError("create_graph=True is not supported: minitorch_seg computes first-order "
                                      "gradients only (backward passes are not themselves recorded).")
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad and has no grad_fn.")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element output, got shape {self.shape}; "
                                   "pass gradient= of the same shape.")
            gradient = backend.get_array_module(self.data).ones_like(self.data)
        else:
            gradient = gradient.data if isinstance(gradient, Tensor) else gradient
            if tuple(gradient.shape) != self.shape:
                raise RuntimeError(f"backward() got a gradient of shape {tuple(gradient.shape)} for an output of shape {self.shape}.")
        autograd.run_backward(self, gradient, retain_graph=retain_graph)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if self._ctx is not None:
            autograd.retain(self)
        return self

    def _accumulate_grad(self, grad):
        if self.grad is None:
            self.grad = Tensor(grad.copy())  # own it: backward may hand the same array to several inputs
        else:
            self.grad.data += grad

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    # ---- leaving and moving -----------------------------------------------------------------
    def numpy(self):
        """A host NumPy array: shares memory on the NumPy backend, a copy from the GPU.

        Unlike PyTorch: no error for tensors on the GPU or tensors that require grad.
        """
        return backend.to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}.")
        return backend.to_numpy(self.data).reshape(()).item()

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def to(self, target):
        """A backend name ("numpy", "cupy") or a dtype.

        Unlike PyTorch: a move between backends is not recorded in the graph; move leaves (data,
        parameters), not intermediate results. A dtype change is differentiable.
        """
        if isinstance(target, str) and target in backend.BACKENDS:
            if target == self.backend:
                return self
            return Tensor(backend.to_backend(self.data, target), requires_grad=self.requires_grad)
        dtype = dtypes.resolve(target)
        return self if dtype == self.dtype else F.cast(self, dtype)

    def double(self):
        return self.to(dtypes.float64)

    def float(self):
        return self.to(dtypes.float32)

    def long(self):
        return self.to(dtypes.int64)

    def clone(self):
        return F.clone(self)

    # ---- in-place, outside the graph (initialisation, optimizers) ---------------------------
    def zero_(self):
        self.data[...] = 0
        return self

    def fill_(self, value):
        self.data[...] = value
        return self

    def copy_(self, source):
        source = source.data if isinstance(source, Tensor) else source
        self.data[...] = backend.to_backend(source, self.backend)
        return self

    # ---- operators --------------------------------------------------------------------------
    def __add__(self, other): return F.add(self, other)
    def __radd__(self, other): return F.add(other, self)
    def __sub__(self, other): return F.sub(self, other)
    def __rsub__(self, other): return F.sub(other, self)
    def __mul__(self, other): return F.mul(self, other)
    def __rmul__(self, other): return F.mul(other, self)
    def __truediv__(self, other): return F.div(self, other)
    def __rtruediv__(self, other): return F.div(other, self)
    def __pow__(self, other): return F.pow(self, other)
    def __rpow__(self, other): return F.pow(other, self)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __neg__(self): return F.neg(self)
    def __abs__(self): return F.abs(self)
    def __getitem__(self, index): return F.getitem(self, index)

    # Comparisons give boolean tensors outside the graph, as in torch.
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))

    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)
    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    __hash__ = object.__hash__

    def __bool__(self):
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    # ---- methods (torch's names) ------------------------------------------------------------
    def sum(self, dim=None, keepdim=False): return F.sum(self, dim, keepdim)
    def mean(self, dim=None, keepdim=False): return F.mean(self, dim, keepdim)
    def max(self, dim=None, keepdim=False): return F.max(self, dim, keepdim)
    def amax(self, dim=None, keepdim=False): return F.amax(self, dim, keepdim)
    def argmax(self, dim=None, keepdim=False): return F.argmax(self, dim, keepdim)
    def reshape(self, *shape): return F.reshape(self, *shape)
    def view(self, *shape): return F.reshape(self, *shape)
    def flatten(self, start_dim=0, end_dim=-1): return F.flatten(self, start_dim, end_dim)
    def permute(self, *dims): return F.permute(self, *dims)
    def transpose(self, dim0, dim1): return F.transpose(self, dim0, dim1)
    def unsqueeze(self, dim): return F.unsqueeze(self, dim)
    def squeeze(self, dim=None): return F.squeeze(self, dim)
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def sqrt(self): return F.sqrt(self)
    def pow(self, exponent): return F.pow(self, exponent)
    def relu(self): return F.relu(self)
    def sigmoid(self): return F.sigmoid(self)
    def tanh(self): return F.tanh(self)
    def softmax(self, dim): return F.softmax(self, dim)
    def log_softmax(self, dim): return F.log_softmax(self, dim)
    def matmul(self, other): return F.matmul(self, other)
    def roll(self, shifts, dims=None): return F.roll(self, shifts, dims)
    def expand(self, *shape): return F.expand(self, *shape)
    def abs(self): return F.abs(self)

    @property
    def T(self):  # noqa: N802 - torch's name
        return F.permute(self, *reversed(range(self.ndim)))

    def __repr__(self):
        host = backend.to_numpy(self.data)
        style = {}
        if host.dtype.kind == "f":  # torch: "1." for whole numbers, else 4 decimals ("0.5000", "1.0000e-08")
            finite = host[numpy.isfinite(host)]
            if finite.size and not (numpy.all(finite == numpy.round(finite)) and numpy.abs(finite).max() < 1e8):
                style = {"precision": 4, "floatmode": "fixed"}
        text = numpy.array2string(host, separator=", ", prefix="tensor(", **style)
        extras = []
        if self.dtype not in (dtypes.get_default_dtype(), dtypes.int64, dtypes.bool):
            extras.append(f"dtype={self.dtype.name}")
        if self.backend != "numpy":
            extras.append(f"backend={self.backend!r}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([text] + extras) + ")"


def _array_from_python(data, dtype):
    """Python numbers and nested lists as an array on the current backend, torch's dtype rules:
    floats take the default dtype, ints int64, bools bool; NumPy arrays keep theirs."""
    if dtype is None and not isinstance(data, (numpy.ndarray, numpy.generic)):
        kind = numpy.asarray(data).dtype.kind
        dtype = dtypes.get_default_dtype() if kind == "f" else dtypes.int64 if kind in "iu" else None
    return backend.asarray(data, dtype=dtype)


from . import functional as F  # noqa: E402 - the ops import Tensor; Tensor's methods call the ops
