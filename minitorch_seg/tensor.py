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

import builtins

import numpy

from . import autograd, backend, devices, dtypes, inplace


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

    def to(self, *args, **kwargs):
        """torch's forms: ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)``,
        ``to(device=..., dtype=..., non_blocking=False, copy=False, memory_format=...)``.

        A device is a ``device``, "cpu" (the NumPy backend), "cuda" (CuPy) or a backend name
        ("numpy", "cupy", "strict"); a dtype is a dtype or its name. Returns ``self`` when nothing
        changes (unless ``copy=True``). Unlike PyTorch: a move between devices is not recorded in
        the graph (the moved tensor is a new leaf with the same ``requires_grad``); move leaves (data,
        parameters), not intermediate results. A dtype change is differentiable. ``non_blocking``
        and ``memory_format`` are accepted and change nothing.
        """
        target_backend, dtype, copy = parse_to(args, kwargs)
        result = self
        if target_backend is not None and target_backend != self.backend:
            result = Tensor(backend.to_backend(self.data, target_backend), requires_grad=self.requires_grad)
        if dtype is not None and dtype != result.dtype:
            result = F.cast(result, dtype)
        if copy and result is self:
            result = F.clone(self)
        return result

    @property
    def device(self):
        """Where the array lives: ``device('cpu')`` on NumPy, ``device('cuda', 0)`` on CuPy (``device('strict')`` for the test backend)."""
        return devices.of_backend(self.backend)

    is_cuda = property(lambda self: self.backend == "cupy")

    def cpu(self, memory_format=None):
        """This tensor on the NumPy backend (itself if it is there already)."""
        return self.to("cpu", memory_format=memory_format)

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        """This tensor on the GPU (CuPy); one sentence saying why where CuPy or the GPU is missing."""
        return self.to("cuda" if device is None else devices.device("cuda", device) if isinstance(device, int)
                       else device, memory_format=memory_format)

    def contiguous(self, memory_format=None):
        """Itself when its array is row-major contiguous, else a contiguous copy (differentiable).

        ``memory_format`` (e.g. ``channels_last``) is accepted and changes nothing.
        """
        dtypes.check_memory_format(memory_format)
        return self if self.data.flags.c_contiguous else F.clone(self)

    def is_contiguous(self, memory_format=None):
        return bool(self.data.flags.c_contiguous)

    def type_as(self, other):
        return self.to(other.dtype)

    def is_floating_point(self):
        return dtypes.is_floating(self.dtype)

    def double(self):
        return self.to(dtypes.float64)

    def float(self):
        return self.to(dtypes.float32)

    def long(self):
        return self.to(dtypes.int64)

    def int(self):
        return self.to(dtypes.int32)

    def half(self):
        return self.to(dtypes.float16)

    def bool(self):
        return self.to(dtypes.bool)

    def clone(self):
        return F.clone(self)

    # ---- in-place ops: see inplace.py ------------------------------------------------------
    add_ = inplace.add_
    sub_ = inplace.sub_
    mul_ = inplace.mul_
    div_ = inplace.div_
    clamp_ = clip_ = inplace.clamp_
    zero_ = inplace.zero_
    fill_ = inplace.fill_
    copy_ = inplace.copy_
    __iadd__ = inplace.add_
    __isub__ = inplace.sub_
    __imul__ = inplace.mul_
    __itruediv__ = inplace.div_

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
    def __setitem__(self, index, value): inplace.setitem(self, index, value)

    # Logical and bitwise operators on bool (and integer) tensors, outside the graph, as in torch.
    def __and__(self, other): return F.bitwise_and(self, other)
    def __rand__(self, other): return F.bitwise_and(other, self)
    def __or__(self, other): return F.bitwise_or(self, other)
    def __ror__(self, other): return F.bitwise_or(other, self)
    def __xor__(self, other): return F.bitwise_xor(self, other)
    def __rxor__(self, other): return F.bitwise_xor(other, self)
    def __invert__(self): return F.bitwise_not(self)

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
    def min(self, dim=None, keepdim=False): return F.min(self, dim, keepdim)
    def amin(self, dim=None, keepdim=False): return F.amin(self, dim, keepdim)
    def argmin(self, dim=None, keepdim=False): return F.argmin(self, dim, keepdim)
    def any(self, dim=None, keepdim=False): return F.any(self, dim, keepdim)
    def all(self, dim=None, keepdim=False): return F.all(self, dim, keepdim)
    def clamp(self, min=None, max=None): return F.clamp(self, min, max)  # noqa: A002 - torch's names
    clip = clamp
    def isnan(self): return F.isnan(self)
    def isinf(self): return F.isinf(self)
    def t(self): return F.t(self)
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


def parse_to(args, kwargs):
    """(backend name or None, dtype or None, copy) from torch's ``to`` arguments (see ``Tensor.to``)."""
    kwargs = dict(kwargs)
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    dtypes.check_memory_format(kwargs.pop("memory_format", None))
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {', '.join(map(repr, kwargs))}.")
    if len(args) > 3:
        raise TypeError(f"to() takes at most a device, a dtype and non_blocking, got {len(args)} positional arguments.")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, builtins.bool):
            continue                                   # to(dtype, non_blocking) / to(device, dtype, non_blocking)
        elif devices.is_device(arg):
            device = arg
        else:
            dtype = arg
    target = None if device is None else devices.backend_of(device)
    return target, None if dtype is None else dtypes.resolve(dtype), copy


def _array_from_python(data, dtype):
    """Python numbers and nested lists as an array on the current backend, torch's dtype rules:
    floats take the default dtype, ints int64, bools bool; NumPy arrays keep theirs."""
    if dtype is None and not isinstance(data, (numpy.ndarray, numpy.generic)):
        kind = numpy.asarray(data).dtype.kind
        dtype = dtypes.get_default_dtype() if kind == "f" else dtypes.int64 if kind in "iu" else None
    return backend.asarray(data, dtype=dtype)


from . import functional as F  # noqa: E402 - the ops import Tensor; Tensor's methods call the ops
