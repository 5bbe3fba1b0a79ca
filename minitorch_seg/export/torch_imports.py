"""``torch``, ``nn`` and ``F`` for the twins, or stand-ins where PyTorch is not installed.

The twins' modules import these names instead of torch itself, so every module of the package
imports without the optional extra (as ``pytest --doctest-modules`` and ``pkgutil`` walks do);
building a twin without PyTorch raises ``ExportError``, naming the extra to install.
"""
try:
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812 - torch's name

    from .. import gemm
    gemm.torch_arrived()            # after our MKL: it warns (two MKLs in one process)
except ImportError:
    from .errors import ExportError

    class _Unavailable:
        def __init__(self, *args, **kwargs):
            raise ExportError("The torch twins need PyTorch; install it with pip install 'minitorch-seg[torch]'.")

    class _Namespace:
        """Every attribute is a class that raises when built: a base class the twins can name."""

        def __getattr__(self, name):
            return _Unavailable

    torch = nn = F = _Namespace()

__all__ = ["F", "nn", "torch"]
