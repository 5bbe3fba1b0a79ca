"""Segmentation models, one short file each, and a registry: ``build(name, num_classes=19, **options)``.

Every model maps images (N, 3, H, W), H and W multiples of 32, to logits (N, num_classes, H, W);
``width`` (and ``depth``, or Swin's ``depths``) make it larger. ``summary(model, input_size)``
prints each layer's output shape, parameters and FLOPs. ``unet``, ``hrnet``, ``swin``,
``deeplab`` and ``segnet`` are small, to train on two CPU cores; ``hrnet_w18``, ``hrnet_w32``,
``hrnet_w48`` and ``swin_t`` are the official architectures (their names, so official weights
load by name: ``minitorch_seg.convert``). Each model keeps its constructor's arguments in
``model.config``.

>>> available()
['deeplab', 'hrnet', 'hrnet_w18', 'hrnet_w32', 'hrnet_w48', 'segnet', 'swin', 'swin_t', 'unet']
>>> build("unet").num_classes
19
"""
from .deeplab import DeepLabV3
from .hrnet import HRNet, hrnet_w18, hrnet_w32, hrnet_w48
from .segnet import SegNet
from .summary import summary
from .swin import SwinSeg, SwinTransformer, swin_t
from .unet import UNet

_REGISTRY = {"unet": UNet, "hrnet": HRNet, "swin": SwinSeg, "deeplab": DeepLabV3, "segnet": SegNet,
             "hrnet_w18": hrnet_w18, "hrnet_w32": hrnet_w32, "hrnet_w48": hrnet_w48, "swin_t": swin_t}


def available():
    """The names ``build`` knows, sorted."""
    return sorted(_REGISTRY)


def build(name, num_classes=19, **options):
    """A new model by name, with ``num_classes`` output channels and model-specific ``options``."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}; known models: {', '.join(available())}.")
    return _REGISTRY[name](num_classes=num_classes, **options)
