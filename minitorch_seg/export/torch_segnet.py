"""SegNet in torch: the twin of ``models.SegNet``, the same parameter names and order."""

from .torch_imports import nn
from .torch_layers import conv_bn_relu


def _convs(in_channels, out_channels, depth, last_channels=None):
    last_channels = out_channels if last_channels is None else last_channels
    layers = []
    for k in range(depth):
        layers.extend(conv_bn_relu(in_channels if k == 0 else out_channels,
                                   last_channels if k == depth - 1 else out_channels))
    return nn.Sequential(*layers)


class SegNet(nn.Module):
    """The arguments of ``models.SegNet``."""

    def __init__(self, num_classes=19, in_channels=3, width=16, depth=2, levels=4):
        super().__init__()
        channels = [width * 2 ** level for level in range(levels)]
        self.encoders = nn.ModuleList([_convs(cin, cout, depth)
                                       for cin, cout in zip([in_channels] + channels, channels)])
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.decoders = nn.ModuleList([_convs(c, c, depth, channels[max(level - 1, 0)])
                                       for level, c in enumerate(channels)])
        self.classifier = nn.Conv2d(channels[0], num_classes, 3, padding=1)

    def forward(self, x):
        switches = []
        for encoder in self.encoders:
            x = encoder(x)
            size = x.shape[2:]
            x, indices = self.pool(x)
            switches.append((indices, size))
        for level in reversed(range(len(self.decoders))):
            indices, size = switches[level]
            x = self.decoders[level](self.unpool(x, indices, output_size=size))
        return self.classifier(x)
