"""``to_torch``: one of our models as a ``torch.nn.Module`` of the same architecture, holding the same weights.

The torch classes are the twins in this package (``torch_unet``, ``torch_hrnet``, ``torch_swin``,
``torch_deeplab``, ``torch_segnet``): written with torch from the official code's structure,
built from the model's ``config`` (its constructor's arguments), with our parameter names, so
our state_dict loads into them unchanged and theirs back into ours
(``model.load_state_dict(twin.state_dict())``). The tests check that outputs and every gradient
agree in float64.
"""
import importlib

import numpy

from .errors import ExportError

TWINS = {"UNet": ("torch_unet", "UNet"), "HRNet": ("torch_hrnet", "HRNet"), "SwinSeg": ("torch_swin", "SwinSeg"),
         "DeepLabV3": ("torch_deeplab", "DeepLabV3"), "SegNet": ("torch_segnet", "SegNet")}


def twin_class(name):
    """The torch twin of our model class ``name`` (``"HRNet"``, ...)."""
    module, cls = TWINS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def to_torch(model):
    """A ``torch.nn.Module`` twin of ``model`` with its weights and buffers, dtype and train/eval mode.

    The twin lives on torch's CPU; move it with ``.to(device)``. Its state_dict has our names,
    so ``model.load_state_dict(twin.state_dict())`` brings trained weights back.
    """
    import torch

    name = type(model).__name__
    if name not in TWINS or not isinstance(getattr(model, "config", None), dict):
        raise ExportError(f"to_torch converts the registry's models ({', '.join(TWINS)}), got {name}.")
    twin = twin_class(name)(**model.config)
    floating = [p for p in model.parameters() if numpy.issubdtype(p.dtype, numpy.floating)]
    if floating:
        twin.to(getattr(torch, numpy.dtype(floating[0].dtype).name))
    state = {key: torch.from_numpy(numpy.array(value.numpy())) for key, value in model.state_dict().items()}
    twin.load_state_dict(state)
    return twin.train(model.training)
