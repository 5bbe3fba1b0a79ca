"""U-Net in torch: the twin of ``models.UNet``, the same parameter names and order."""

from .torch_imports import F, nn, torch


class DoubleConv(nn.Sequential):
    def __init__(self, in_channels, out_channels):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(),
                         nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels)

    def forward(self, x, skip):
        x = self.up(x)
        dh, dw = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        if dh or dw:                     # odd sizes only: even ones (the benchmarks') pay no copy
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return self.conv(torch.cat([skip, x], 1))


class UNet(nn.Module):
    """The arguments of ``models.UNet``."""

    def __init__(self, num_classes=19, in_channels=3, width=16, depth=4):
        super().__init__()
        channels = [width * 2 ** level for level in range(depth)]
        self.down = nn.ModuleList([DoubleConv(in_channels, channels[0])] +
                                  [DoubleConv(a, b) for a, b in zip(channels, channels[1:])])
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
