"""``Module`` and ``Parameter``: the containers every layer and model is built from, as in torch.

Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, so ``parameters()``,
``state_dict()``, ``to()`` and ``train()/eval()`` reach everything inside without being told.

>>> from minitorch_seg import nn
>>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
>>> [name for name, _ in net.named_parameters()]
['0.weight', '0.bias']
>>> net
Sequential(
  (0): Linear(in_features=3, out_features=4, bias=True)
  (1): ReLU()
)
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

from .. import backend, dtypes
from ..tensor import Tensor, parse_to

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A tensor that is a module's learnable weight: a leaf that requires grad."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: subclasses set attributes in ``__init__`` and write ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration -----------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}.")
        if isinstance(value, Parameter):
            target = self._parameters
        elif isinstance(value, Module):
            target = self._modules
        elif name in self.__dict__.get("_buffer_names", ()):
            target = self._buffers
        else:
            target = None
        # Leave the name in one place only (a plain attribute would shadow a registered one), and
        # keep its position when it is re-assigned in the same registry, as torch does.
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not target:
                registry.pop(name, None)
        if target is None:
            object.__setattr__(self, name, value)
        else:
            self.__dict__.pop(name, None)
            target[name] = value

    def __getattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry, {})
            if name in found:
                return found[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor):
        """State that is saved and moved with the module but not learned (e.g. running means)."""
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        self._buffers[name] = tensor

    def register_parameter(self, name, parameter):
        if parameter is None:   # an absent optional parameter (bias=False): a plain None attribute
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, parameter)

    def add_module(self, name, module):
        self._modules[name] = module

    # ---- calling ----------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward().")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- walking the tree -------------------------------------------------------------------
    def named_modules(self, prefix="", memo=None, remove_duplicate=True):
        """Every module in the tree by dotted name; a shared module once, unless ``remove_duplicate=False``."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:  # a child registered twice is one child
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry):
        seen = set()
        for module_prefix, module in self.named_modules():
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self):
        yield from self._named_members("_parameters")

    def parameters(self):
        for _, parameter in self.named_parameters():
            yield parameter

    def named_buffers(self):
        yield from self._named_members("_buffers")

    def buffers(self):
        for _, buffer in self.named_buffers():
            yield buffer

    def apply(self, fn):
        """Call ``fn(module)`` on every submodule, children first, then self (torch's order)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes, moves, gradients ------------------------------------------------------------
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for parameter in self.parameters():
            if set_to_none:
                parameter.grad = None
            elif parameter.grad is not None:
                parameter.grad.zero_()

    def to(self, *args, **kwargs):
        """Move every parameter and buffer to a device and/or cast the floating ones to a dtype, in place.

        torch's forms: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``,
        ``to(device=..., dtype=..., non_blocking=..., memory_format=...)``; a device is "cpu" (NumPy),
        "cuda" (CuPy), a ``device`` or a backend name ("numpy", "cupy", "strict"). Returns the module.
        """
        target, dtype, _ = parse_to(args, kwargs)
        if dtype is not None and not dtypes.is_floating(dtype):
            raise TypeError(f"Module.to only accepts floating point dtypes, but got desired dtype={dtype.name}.")

        def convert(array):
            if target is not None:
                array = backend.to_backend(array, target)
            if dtype is not None and dtypes.is_floating(array.dtype):
                array = array.astype(dtype)
            return array

        for module in self.modules():
            for parameter in module._parameters.values():
                if parameter is not None:
                    parameter.data = convert(parameter.data)
                    if parameter.grad is not None:
                        parameter.grad.data = convert(parameter.grad.data)
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    buffer.data = convert(buffer.data)
        return self

    def cuda(self, device=None):
        """Every parameter and buffer to the GPU (CuPy); one sentence saying why where CuPy or the GPU is missing."""
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` on every parameter (e.g. False to freeze a backbone); returns the module."""
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    def half(self):
        return self.to(dtypes.float16)

    def double(self):
        return self.to(dtypes.float64)

    def float(self):
        return self.to(dtypes.float32)

    # ---- saving and loading -----------------------------------------------------------------
    def state_dict(self):
        """Every parameter and buffer by dotted name, as detached tensors sharing the module's data.

        As in torch, a shared module or tensor is saved under every name it can be reached by.
        """
        state = OrderedDict()
        for prefix, module in self.named_modules(remove_duplicate=False):
            for registry in (module._parameters, module._buffers):
                for name, value in registry.items():
                    if value is not None:
                        state[f"{prefix}.{name}" if prefix else name] = value.detach()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into this module's parameters and buffers by name (keeping their backend and dtype).

        Values may be tensors or arrays of any backend. Size mismatches always raise; missing
        and unexpected names raise when ``strict`` and are returned either way.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for key, target in own.items():
            if key in state_dict:
                value = state_dict[key]
                shape = tuple(value.shape)
                if shape != target.shape:
                    mismatched.append(f"{key} (checkpoint {shape}, model {target.shape})")
        problems = []
        if mismatched:
            problems.append("size mismatch for " + ", ".join(mismatched))
        if strict and missing:
            problems.append("missing keys " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys " + ", ".join(unexpected))
        if problems:
            raise RuntimeError(f"Error loading state_dict into {type(self).__name__}: " + "; ".join(problems) + ".")
        for key, target in own.items():
            if key in state_dict:
                value = state_dict[key]
                target.copy_(value.data if isinstance(value, Tensor) else value)
        return IncompatibleKeys(missing, unexpected)

    # ---- printing ---------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + _indent(repr(child)) for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _indent(text):
    return text.replace("\n", "\n  ")
