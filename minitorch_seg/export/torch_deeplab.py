"""DeepLabV3 in torch: the twin of ``models.DeepLabV3``, the same parameter names and order."""

from .torch_imports import nn, torch
from .torch_layers import BasicBlock, conv_bn_relu, upsample


class DilatedResNet(nn.Module):
    def __init__(self, in_channels=3, width=32, depth=2, output_stride=16):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        dilate = {8: (False, True, True), 16: (False, False, True)}[output_stride]
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
        blocks = [BasicBlock(in_channels, out_channels, stride, dilation=previous_dilation, dilation2=dilation)]
        return nn.Sequential(*blocks, *[BasicBlock(out_channels, out_channels, dilation=dilation)
                                        for _ in range(depth - 1)])

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ImagePooling(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.ReLU())

    def forward(self, x):
        return self.conv(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, x.shape[2], x.shape[3])


class ASPP(nn.Module):
    def __init__(self, in_channels, atrous_rates, out_channels, dropout=0.5):
        super().__init__()
        self.convs = nn.ModuleList([conv_bn_relu(in_channels, out_channels, 1)] +
                                   [conv_bn_relu(in_channels, out_channels, 3, dilation=r) for r in atrous_rates] +
                                   [ImagePooling(in_channels, out_channels)])
        self.project = nn.Sequential(*conv_bn_relu(len(self.convs) * out_channels, out_channels, 1),
                                     nn.Dropout(dropout))

    def forward(self, x):
        return self.project(torch.cat([conv(x) for conv in self.convs], 1))


class DeepLabV3(nn.Module):
    """The arguments of ``models.DeepLabV3``."""

    def __init__(self, num_classes=19, in_channels=3, width=32, depth=2, output_stride=16, atrous_rates=None,
                 aspp_channels=None, dropout=0.5):
        super().__init__()
        rates = atrous_rates or {16: (1, 2, 3), 8: (2, 4, 6)}[output_stride]
        channels = aspp_channels or 4 * width
        self.backbone = DilatedResNet(in_channels, width, depth, output_stride)
        self.classifier = nn.Sequential(ASPP(self.backbone.out_channels, rates, channels, dropout),
                                        *conv_bn_relu(channels, channels, 3), nn.Conv2d(channels, num_classes, 1))

    def forward(self, x):
        return upsample(self.classifier(self.backbone(x)), x.shape[2:])
