"""The benchmark U-Net written with PyTorch, parameter for parameter the same as ``models.UNet``,
so one state_dict loads into both (the step benchmark copies our initial weights over)."""
import torch
from torch import nn


def double_conv(a, b):
    return nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(),
                         nn.Conv2d(b, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU())


class Up(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.up = nn.ConvTranspose2d(a, b, 2, stride=2)
        self.conv = double_conv(2 * b, b)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class TorchUNet(nn.Module):
    def __init__(self, num_classes=19, in_channels=3, width=16, depth=4):
        super().__init__()
        channels = [width * 2 ** level for level in range(depth)]
        self.down = nn.ModuleList([double_conv(in_channels, channels[0])] +
                                  [double_conv(a, b) for a, b in zip(channels, channels[1:])])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([Up(a, b) for a, b in zip(channels[::-1], channels[-2::-1])])
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x):
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)
