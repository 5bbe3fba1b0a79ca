"""U-Net: the notes' "sequence of deconvolutions and concatenations with high-resolution features
from the contracting path" (Ronneberger et al., 2015), small enough to train on two CPU cores.

The default (width 16, depth 4: channels 16-32-64-128) is the network of the spatial-ops benchmark.

It halves the map depth - 1 times (to 1/8 by default) and takes, as every model here, sides that
are multiples of 32 (``common.MULTIPLE``), so each halving is exact unless depth is 7 or more.
Then a side such as 96 reaches an odd size (96 -> ... -> 3 -> 1), the transposed conv gives it back
one pixel short (2, not 3), and ``Up`` pads it to the skip's size.

>>> import minitorch_seg as mt
>>> model = UNet(num_classes=19)
>>> model(mt.zeros(1, 3, 32, 64)).shape
(1, 19, 32, 64)
>>> UNet(num_classes=19, width=2, depth=7).eval()(mt.zeros(1, 3, 96, 160)).shape   # 3 -> 1 -> 2, padded to 3
(1, 19, 96, 160)
"""
from .. import functional as F
from .. import nn
from .common import check_input


class DoubleConv(nn.Sequential):
    """Two 3x3 conv + BatchNorm + ReLU; the convs have no bias (BatchNorm's shift replaces it)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(),
        )


class Up(nn.Module):
    """2x2 stride-2 transposed conv (exactly doubles H and W), concat the skip, DoubleConv."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels)

    def forward(self, x, skip):
        x = self.up(x)                                                       # (N, C_out, 2h, 2w)
        dh, dw = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        if dh or dw:  # odd sizes upstream: pad (or crop, negative) to the skip's size
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return self.conv(F.cat([skip, x], dim=1))                            # (N, 2 C_out, H, W) -> (N, C_out, H, W)


class UNet(nn.Module):
    """Contracting path of ``depth`` levels (channels width * 2**level), expanding path of Up blocks."""

    def __init__(self, num_classes=19, in_channels=3, width=16, depth=4):
        super().__init__()
        channels = [width * 2 ** level for level in range(depth)]
        self.config = dict(num_classes=num_classes, in_channels=in_channels, width=width, depth=depth)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.down = nn.ModuleList([DoubleConv(in_channels, channels[0])] +
                                  [DoubleConv(a, b) for a, b in zip(channels, channels[1:])])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([Up(a, b) for a, b in zip(channels[::-1], channels[-2::-1])])
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x):
        check_input("UNet", x, self.in_channels)
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)
