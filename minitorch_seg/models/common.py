"""What several models share: the input check, conv-BN-ReLU, and the ResNet BasicBlock and Bottleneck.

>>> import minitorch_seg as mt
>>> check_input("hrnet", mt.zeros(1, 3, 64, 96))
>>> check_input("hrnet", mt.zeros(1, 3, 60, 96))
Traceback (most recent call last):
    ...
ValueError: hrnet expects images (N, 3, H, W) with H and W multiples of 32, got shape (1, 3, 60, 96).
"""
from .. import nn

# One input rule for every model, so predict.py pads every image the same way: HRNet's lowest branch
# and Swin's last stage are at 1/32 (five halvings), the most any model here downsamples by default;
# SegNet and DeepLab go to 1/16, U-Net to 1/8 (2**(depth - 1)), so for them 32 is more than enough.
MULTIPLE = 32


def check_input(name, x, channels=3, multiple=MULTIPLE):
    """Raise ValueError (one sentence naming the model and the expected shape) unless x is
    (N, channels, H, W) with H and W multiples of ``multiple``."""
    shape = tuple(x.shape)
    if len(shape) != 4 or shape[1] != channels or shape[2] % multiple or shape[3] % multiple or 0 in shape[2:]:
        raise ValueError(f"{name} expects images (N, {channels}, H, W) with H and W multiples of {multiple}, "
                         f"got shape {shape}.")


def conv_bn_relu(in_channels, out_channels, kernel_size=3, stride=1, dilation=1, relu=True):
    """Conv (no bias: BatchNorm's shift replaces it, 'same' padding for odd kernels) + BN (+ ReLU)."""
    padding = dilation * (kernel_size - 1) // 2
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                        bias=False), nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet's basic block (He et al., 2016): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    Two 3x3 convs; the first may be strided or dilated (``dilation`` for the first conv,
    ``dilation2`` for the second, as torchvision does when a stride becomes a dilation). The
    shortcut is the identity, or ``downsample`` (1x1 conv + BN) when the stride or the channels
    change. Names as torchvision and HRNet: conv1 bn1 conv2 bn2 downsample.
    """

    def __init__(self, in_channels, out_channels, stride=1, dilation=1, dilation2=None):
        super().__init__()
        dilation2 = dilation if dilation2 is None else dilation2
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=dilation2, dilation=dilation2, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + shortcut)


class Bottleneck(nn.Module):
    """ResNet's bottleneck block: 1x1 conv to ``planes``, 3x3 conv (may be strided), 1x1 conv to
    ``planes * expansion`` (4), each with BN, ReLU after the first two and after the residual sum.

    The shortcut is the identity, or ``downsample`` (1x1 conv + BN) when the stride or the
    channels change. Names as torchvision and HRNet: conv1 bn1 conv2 bn2 conv3 bn3 downsample.
    """

    expansion = 4

    def __init__(self, in_channels, planes, stride=1):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + shortcut)
