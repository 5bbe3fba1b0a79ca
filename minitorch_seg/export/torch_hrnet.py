"""HRNetV2 in torch, written from the official ``seg_hrnet.py`` (HRNet/HRNet-Semantic-Segmentation):
the twin of ``models.HRNet`` in every configuration, the same parameter names and order.

Its structure is the official one (``None`` where the official code has None: unchanged
transitions and the diagonal of the fuse table; fusion sums branch 0 first), so the same class
serves as the oracle in the tests and as ``export.to_torch``'s HRNet.
"""

from .torch_imports import nn, torch
from .torch_layers import BasicBlock, Bottleneck, conv_bn_relu, upsample

STAGE1_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then fusion: fuse_layers[i][j] takes branch j to branch i."""

    def __init__(self, channels, num_blocks, align_corners=False):
        super().__init__()
        self.align_corners = align_corners
        self.branches = nn.ModuleList([nn.Sequential(*[BasicBlock(c, c) for _ in range(num_blocks)])
                                       for c in channels])
        rows = []
        for i in range(len(channels)):
            row = []
            for j in range(len(channels)):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, bias=False),
                                             nn.BatchNorm2d(channels[i])))
                elif j == i:
                    row.append(None)
                else:
                    last = i - j - 1
                    row.append(nn.Sequential(*[conv_bn_relu(channels[j], channels[i] if k == last else channels[j],
                                                            3, 2, relu=k < last) for k in range(i - j)]))
            rows.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(rows)

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                if j == i:
                    y = y + xs[j]
                elif j > i:
                    y = y + upsample(row[j](xs[j]), xs[i].shape[2:], self.align_corners)
                else:
                    y = y + row[j](xs[j])
            out.append(torch.relu(y))
        return out


class HRNet(nn.Module):
    """The arguments of ``models.HRNet``; logits upsampled to the input as ours are."""

    def __init__(self, num_classes=19, in_channels=3, width=16, depth=2, num_branches=4, num_modules=None,
                 stem_width=32, stage1_block="basic", align_corners=False):
        super().__init__()
        num_modules = (1,) * (num_branches - 1) if num_modules is None else tuple(num_modules)
        self.align_corners, self.stages = align_corners, num_branches
        s = stem_width
        self.conv1, self.bn1 = nn.Conv2d(in_channels, s, 3, 2, 1, bias=False), nn.BatchNorm2d(s)
        self.conv2, self.bn2 = nn.Conv2d(s, s, 3, 2, 1, bias=False), nn.BatchNorm2d(s)
        block = STAGE1_BLOCKS[stage1_block]
        out = s * getattr(block, "expansion", 1)
        self.layer1 = nn.Sequential(*[block(s if k == 0 else out, s) for k in range(depth)])
        previous = [out]
        for stage, modules in zip(range(2, num_branches + 1), num_modules):
            ch = [width * 2 ** b for b in range(stage)]
            kept = [None if p == c else conv_bn_relu(p, c) for p, c in zip(previous, ch)]
            new = [nn.Sequential(*[conv_bn_relu(previous[-1], c if k == b - len(previous) else previous[-1], 3, 2)
                                   for k in range(b + 1 - len(previous))])
                   for b, c in enumerate(ch) if b >= len(previous)]
            setattr(self, f"transition{stage - 1}", nn.ModuleList(kept + new))
            setattr(self, f"stage{stage}", nn.Sequential(*[HighResolutionModule(ch, depth, align_corners)
                                                           for _ in range(modules)]))
            previous = ch
        c = sum(previous)
        self.last_layer = nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, num_classes, 1))

    def forward(self, x):
        size = x.shape[2:]
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        xs = [self.layer1(x)]
        for stage in range(2, self.stages + 1):
            layers = getattr(self, f"transition{stage - 1}")
            xs = [y if layer is None else layer(y) for layer, y in zip(layers, xs + [xs[-1]])]
            for module in getattr(self, f"stage{stage}"):
                xs = module(xs)
        top = xs[0].shape[2:]
        x = torch.cat([xs[0]] + [upsample(y, top, self.align_corners) for y in xs[1:]], 1)
        return upsample(self.last_layer(x), size, self.align_corners)
