"""Containers: Sequential, ModuleList, ModuleDict (children registered under their keys)."""
import functools

from ..backend import get_array_module
from ..functional.norm import batch_norm_relu
from .conv import Conv2d
from .layers import ReLU
from .module import Module
from .norm import BatchNorm2d


class Sequential(Module):
    """Calls its modules in order, each on the previous one's output.

    A ``BatchNorm2d`` followed by a ``ReLU`` (those classes themselves, their ``forward`` not
    replaced on the class or the instance) runs as one Function, ``batch_norm_relu``: the same
    values and gradients, bit for bit, with the ReLU in each of batch norm's channel tiles and in
    the memory batch norm wrote. On the U-Net's step (14 such pairs, 2-core Xeon, 2026-12-03, fused and not
    taking turns in one process) it took 8.0 ms off about 370, and 6.9 off 240 at the training
    job's size: small against that VM's noise, but the median of every run was lower
    (``benchmarks/results/2026-12-03-xeon-job.md``). Where a ``Conv2d`` (likewise unpatched) comes
    right before the pair, its output is a temporary nothing else reads, and batch norm may keep
    its centred values in that memory (``batch_norm_relu``'s ``scratch``).
    """

    def __init__(self, *modules):
        super().__init__()
        for index, module in enumerate(modules):
            self.add_module(str(index), module)

    def __getitem__(self, index):
        modules = list(self._modules.values())
        return Sequential(*modules[index]) if isinstance(index, slice) else modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        modules, i, before = list(self._modules.values()), 0, None      # before: the last module's input
        while i < len(modules):
            if _fuses(modules[i:i + 2]):
                scratch = i > 0 and _fresh(modules[i - 1], before, x)
                x, i = modules[i]._normalise(x, functools.partial(batch_norm_relu, scratch=scratch)), i + 2
            else:
                before, (x, i) = x, (modules[i](x), i + 1)
        return x


_FORWARDS = {cls: cls.forward for cls in (BatchNorm2d, ReLU, Conv2d)}   # as defined: one patched later is not


def _as_defined(module, cls):
    """Whether ``module`` is a ``cls`` itself (no subclass) whose forward is not replaced on the class or on it."""
    return type(module) is cls and cls.forward is _FORWARDS[cls] and "forward" not in vars(module)


def _fuses(pair):
    """Whether ``pair`` is a BatchNorm2d then a ReLU that run as ``batch_norm_relu``."""
    return len(pair) == 2 and _as_defined(pair[0], BatchNorm2d) and _as_defined(pair[1], ReLU)


def _fresh(module, given, made):
    """Whether ``made``, what ``module`` made of ``given``, is a new array that only the next module reads:
    ``module`` a Conv2d as defined, and (should a conv path ever hand back a view) not in given's memory."""
    return _as_defined(module, Conv2d) and not get_array_module(made.data).may_share_memory(made.data, given.data)


class ModuleList(Module):
    """A list of modules whose parameters the parent sees (a plain list would hide them)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        return ModuleList(modules[index]) if isinstance(index, slice) else modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules whose parameters the parent sees, in insertion order."""

    def __init__(self, modules=None):
        super().__init__()
        for key, module in (modules or {}).items():
            self[key] = module

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
