"""SegNet (Badrinarayanan et al., 2017), small: max-unpooling with the encoder's switches.

The notes' max unpooling, used as designed: each encoder level's 2x2 max pool keeps its
*switches*, the position of the maximum in every window (``max_pool2d(..., return_indices=True)``);
the mirrored decoder level puts each value back at that position and zeros elsewhere
(``max_unpool2d``), e.g. 2 -> [[0, 2], [0, 0]], then densifies the sparse map with
conv-BN-ReLUs. Unlike U-Net, no feature maps cross from encoder to decoder, only the switches
(int64 indices, a quarter of the map): boundaries come back where the encoder found its maxima.

Levels: ``encoders[l]``: ``depth`` conv-BN-ReLUs to ``width * 2**l`` channels, then the pool;
``decoders[l]`` (applied deepest first, after unpooling with level l's switches):
``depth`` conv-BN-ReLUs, the last one down to level l-1's channels; ``classifier``: a 3x3 conv,
as SegNet's last decoder conv.

>>> import minitorch_seg as mt
>>> model = SegNet(num_classes=19)
>>> model(mt.zeros(1, 3, 64, 96)).shape
(1, 19, 64, 96)
"""
from .. import nn
from .common import check_input, conv_bn_relu


def _convs(in_channels, out_channels, depth, last_channels=None):
    """``depth`` 3x3 conv-BN-ReLUs: in -> out, out -> out, ..., the last to ``last_channels`` if given."""
    last_channels = out_channels if last_channels is None else last_channels
    layers = []
    for k in range(depth):
        cin = in_channels if k == 0 else out_channels
        layers.extend(conv_bn_relu(cin, last_channels if k == depth - 1 else out_channels))
    return nn.Sequential(*layers)


class SegNet(nn.Module):
    """Encoder of ``levels`` conv-BN-ReLU + max-pool levels; decoder of unpool + conv-BN-ReLU levels.

    Args:
        num_classes, in_channels: output and image channels.
        width: channels of the first level (level l has width * 2**l; SegNet's VGG-16 has 64).
        depth: conv-BN-ReLUs per level (VGG-16 has 2, 2, 3, 3, 3).
        levels: encoder levels, each halving the map (4: the map is 1/16 at the bottom).

    Shapes: x (N, in_channels, H, W), H and W multiples of 32 -> logits (N, num_classes, H, W).
    """

    def __init__(self, num_classes=19, in_channels=3, width=16, depth=2, levels=4):
        super().__init__()
        self.config = dict(num_classes=num_classes, in_channels=in_channels, width=width, depth=depth, levels=levels)
        self.num_classes, self.in_channels = num_classes, in_channels
        channels = [width * 2 ** level for level in range(levels)]
        self.encoders = nn.ModuleList([_convs(cin, cout, depth)
                                       for cin, cout in zip([in_channels] + channels, channels)])
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.decoders = nn.ModuleList([_convs(c, c, depth, channels[max(level - 1, 0)])
                                       for level, c in enumerate(channels)])
        self.classifier = nn.Conv2d(channels[0], num_classes, 3, padding=1)

    def forward(self, x):
        check_input("SegNet", x, self.in_channels)
        switches = []
        for encoder in self.encoders:
            x = encoder(x)                                                 # (N, C_l, h, w)
            size = x.shape[2:]
            x, indices = self.pool(x)                                      # (N, C_l, h/2, w/2), switches alike
            switches.append((indices, size))
        for level in reversed(range(len(self.decoders))):
            indices, size = switches[level]
            x = self.unpool(x, indices, output_size=size)                  # (N, C_l, h, w), zeros off the switches
            x = self.decoders[level](x)                                    # (N, C_{l-1}, h, w)
        return self.classifier(x)
