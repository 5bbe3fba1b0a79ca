"""DeepLabV3 (Chen et al., 2017), small: a dilated ResNet-like backbone and atrous spatial pyramid pooling.

Atrous (dilated) convolution: a 3x3 kernel with its taps ``rate`` pixels apart sees a
(2 rate + 1)^2 window at the cost of nine taps. DeepLab uses it twice:

- In the backbone, the last stage (or two) trades its stride for dilation: ``layer4`` keeps the
  1/16 resolution of ``layer3`` instead of halving it, and doubles its dilation so that its
  receptive field grows as if it had halved ("output stride" 16; with ``output_stride=8``,
  ``layer3`` is dilated too, dilation 2 and 4). Finer features, the same pretrained-shaped weights.
- ASPP on top: five branches read the same map in parallel, a 1x1 conv, three 3x3 convs at
  different rates, and image pooling (the global mean, a 1x1 conv, broadcast back), then are
  concatenated and projected by a 1x1 conv: context at several scales at once.

The rates. The paper's (6, 12, 18) are for the 33x33 map of a 513x513 crop at output stride 16.
Our default input, 128x256, gives an 8x16 map; a 3x3 kernel at rate r spans 2r + 1 pixels, and
taps that fall outside the map read only zero padding. At r = 18 every off-centre tap is
outside, wherever the output pixel is (the branch degenerates to a 1x1 conv); at r = 12 the six
with a vertical offset are. So the default rates are spread up to the largest whose kernel fits,
2 r + 1 <= min(map side) = 8, r <= 3: (1, 2, 3) at output stride 16, and twice those, (2, 4, 6),
at output stride 8, where the map is 16x32 (as the paper doubles its rates to (12, 24, 36)).
For larger inputs, pass ``atrous_rates``.

Names follow torchvision's ``deeplabv3_resnet*``: ``backbone`` (conv1 bn1 maxpool layer1..4) and
``classifier`` (ASPP, 3x3 conv-BN-ReLU, 1x1 conv).

>>> import minitorch_seg as mt
>>> model = DeepLabV3(num_classes=19)
>>> model(mt.zeros(1, 3, 64, 96)).shape
(1, 19, 64, 96)
>>> [conv[0].dilation for conv in model.classifier[0].convs[1:4]]
[(1, 1), (2, 2), (3, 3)]
"""
from .. import functional as F
from .. import nn
from .common import BasicBlock, check_input, conv_bn_relu


class DilatedResNet(nn.Module):
    """A small ResNet of BasicBlocks whose last stages replace stride by dilation.

    Stem: 3x3 conv stride 2 + BN + ReLU + 3x3 max pool stride 2 (1/4). Then ``layer1..4`` with
    ``width * (1, 2, 4, 8)`` channels and ``depth`` blocks each; ``layer2`` halves (1/8);
    ``layer3`` halves (1/16) or, at output stride 8, dilates by 2; ``layer4`` dilates by 2 (or 4).
    forward: (N, C, H, W) -> (N, 8 width, H / os, W / os).
    """

    def __init__(self, in_channels=3, width=32, depth=2, output_stride=16):
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"DilatedResNet: output_stride must be 8 or 16, got {output_stride}.")
        self.output_stride = output_stride
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        dilate = {8: (False, True, True), 16: (False, False, True)}[output_stride]   # layers 2, 3, 4
        channels, dilation = width, 1
        layers = [self._layer(width, width, depth, 1, 1, 1)]
        for out, dilated in zip((2 * width, 4 * width, 8 * width), dilate):
            previous = dilation
            dilation, stride = (2 * dilation, 1) if dilated else (dilation, 2)
            layers.append(self._layer(channels, out, depth, stride, previous, dilation))
            channels = out
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.out_channels = channels

    @staticmethod
    def _layer(in_channels, out_channels, depth, stride, previous_dilation, dilation):
        """``depth`` BasicBlocks; the first one's first conv carries the stride, or the dilation before it."""
        blocks = [BasicBlock(in_channels, out_channels, stride, dilation=previous_dilation, dilation2=dilation)]
        blocks += [BasicBlock(out_channels, out_channels, dilation=dilation) for _ in range(depth - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))               # (N, width, H/4, W/4)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))       # (N, 8 width, H/os, W/os)


class ImagePooling(nn.Module):
    """ASPP's image-level branch: global mean, 1x1 conv (with bias) + ReLU, broadcast back to the map's size.

    Unlike torchvision's ASPPPooling: no BatchNorm. On the pooled 1x1 map its batch statistics
    would come from N numbers per channel, none at all at batch size 1 (where torch raises).
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.ReLU())

    def forward(self, x):
        n, _, h, w = x.shape
        y = self.conv(x.mean(dim=(2, 3), keepdim=True))                    # (N, C_out, 1, 1)
        return y.expand(n, y.shape[1], h, w)                               # (N, C_out, h, w)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1 conv, one 3x3 conv per rate, image pooling; concat; 1x1 project.

    ``convs[0]`` the 1x1 branch, ``convs[1 : 1 + len(rates)]`` the atrous branches (conv-BN-ReLU,
    dilation = padding = rate, so the map keeps its size), ``convs[-1]`` image pooling.
    forward: (N, in_channels, h, w) -> (N, out_channels, h, w).
    """

    def __init__(self, in_channels, atrous_rates, out_channels, dropout=0.5):
        super().__init__()
        self.atrous_rates = tuple(atrous_rates)
        self.convs = nn.ModuleList([conv_bn_relu(in_channels, out_channels, 1)] +
                                   [conv_bn_relu(in_channels, out_channels, 3, dilation=r) for r in atrous_rates] +
                                   [ImagePooling(in_channels, out_channels)])
        self.project = nn.Sequential(*conv_bn_relu(len(self.convs) * out_channels, out_channels, 1),
                                     nn.Dropout(dropout))

    def forward(self, x):
        return self.project(F.cat([conv(x) for conv in self.convs], dim=1))   # (N, 5 C_out, h, w) -> (N, C_out, h, w)

    def extra_repr(self):
        return f"atrous_rates={self.atrous_rates}"


class DeepLabV3(nn.Module):
    """DeepLabV3: dilated backbone, ASPP, 3x3 conv-BN-ReLU, 1x1 classifier, logits upsampled to the input.

    Args:
        num_classes, in_channels: output and image channels.
        width: channels of the backbone's first stage (stages: width * 1, 2, 4, 8; ResNet-18 has 64).
            At output stride 16 most of the work is at 1/16, so 32 costs a third of the U-Net's step.
        depth: BasicBlocks per stage (ResNet-18 has 2).
        output_stride: 16 (default) or 8; 8 quadruples the cost of the last two stages and ASPP.
        atrous_rates: ASPP's three rates; default (1, 2, 3) at output stride 16, (2, 4, 6) at 8
            (see the module docstring: the largest that fit the map at a 128x256 input).
        aspp_channels: channels of ASPP and the head (default 4 width).
        dropout: after ASPP's projection (torchvision: 0.5).

    Shapes: x (N, in_channels, H, W), H and W multiples of 32 -> logits (N, num_classes, H, W).
    """

    def __init__(self, num_classes=19, in_channels=3, width=32, depth=2, output_stride=16, atrous_rates=None,
                 aspp_channels=None, dropout=0.5):
        super().__init__()
        self.config = dict(num_classes=num_classes, in_channels=in_channels, width=width, depth=depth,
                           output_stride=output_stride, atrous_rates=atrous_rates, aspp_channels=aspp_channels,
                           dropout=dropout)
        self.num_classes, self.in_channels = num_classes, in_channels
        rates = atrous_rates or {16: (1, 2, 3), 8: (2, 4, 6)}.get(output_stride, (1, 2, 3))
        channels = aspp_channels or 4 * width
        self.backbone = DilatedResNet(in_channels, width, depth, output_stride)
        self.classifier = nn.Sequential(ASPP(self.backbone.out_channels, rates, channels, dropout),
                                        *conv_bn_relu(channels, channels, 3),
                                        nn.Conv2d(channels, num_classes, 1))

    def forward(self, x):
        check_input("DeepLabV3", x, self.in_channels)
        logits = self.classifier(self.backbone(x))                         # (N, num_classes, H/os, W/os)
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)
