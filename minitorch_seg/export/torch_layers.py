"""The torch pieces the twins share: conv-BN-ReLU, bilinear upsampling, BasicBlock, Bottleneck.

Each mirrors ``minitorch_seg.models.common`` (the same child names, so a state_dict maps one to
one); only the twins in this package import it.
"""

from .torch_imports import F, nn, torch


def conv_bn_relu(in_channels, out_channels, kernel_size=3, stride=1, dilation=1, relu=True):
    """Conv (no bias, 'same' padding for odd kernels) + BN (+ ReLU), as ``models.common.conv_bn_relu``."""
    padding = dilation * (kernel_size - 1) // 2
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=False),
              nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


def upsample(x, size, align_corners=False):
    """Bilinear resize of (N, C, h, w) to ``size`` (H, W)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), as ``models.common.BasicBlock``."""

    def __init__(self, in_channels, out_channels, stride=1, dilation=1, dilation2=None):
        super().__init__()
        dilation2 = dilation if dilation2 is None else dilation2
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, dilation2, dilation2, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + shortcut)


class Bottleneck(nn.Module):
    """1x1, 3x3, 1x1 (to 4 planes) convs with BN, residual, as ``models.common.Bottleneck``."""

    expansion = 4

    def __init__(self, in_channels, planes, stride=1):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(in_channels, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        return torch.relu(self.bn3(self.conv3(y)) + shortcut)
