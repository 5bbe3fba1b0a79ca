"""The benchmark U-Net written with PyTorch, parameter for parameter the same as ``models.UNet``,
so one state_dict loads into both (the step benchmark copies our initial weights over): the
package's own twin, ``minitorch_seg.export.torch_unet.UNet``."""
from minitorch_seg.export.torch_unet import UNet as TorchUNet

__all__ = ["TorchUNet"]
