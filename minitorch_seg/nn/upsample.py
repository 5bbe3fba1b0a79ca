"""Upsample: ``functional.interpolate`` as a layer, with torch's arguments and repr.

>>> from minitorch_seg import nn
>>> import minitorch_seg as mt
>>> up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
>>> up
Upsample(scale_factor=2.0, mode='bilinear')
>>> up(mt.zeros(1, 8, 16, 32)).shape
(1, 8, 32, 64)
"""
from .. import functional as F
from .module import Module


class Upsample(Module):
    """Resize H and W to ``size`` or by ``scale_factor`` (exactly one), by "nearest" or "bilinear"."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(s) for s in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor is not None else None
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self):
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"
