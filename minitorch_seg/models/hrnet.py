"""HRNetV2 (Wang et al., 2019), small: high resolution kept throughout, lower ones added in parallel.

The notes' three differences from a classification network, and where each is in the code:

1. Parallel, not in series: stage s runs s branches side by side (``HighResolutionModule.branches``),
   branch b at 1/2**(b+2) of the input with ``width * 2**b`` channels; a transition adds the next,
   lower-resolution branch from the current lowest one (``transition``), it never replaces one.
2. High resolution throughout: branch 0 stays at 1/4 of the input (after the stem's two stride-2
   convs) from the first stage to the head; nothing upsamples back to it from a bottleneck.
3. Repeated fusion: every module ends by exchanging information among all branches through the
   fuse table ``fuse_layers[i][j]``, which takes branch j to branch i's resolution and width:
   j > i (up): 1x1 conv + BN, then bilinear upsampling; j == i: identity; j < i (down): i - j
   strided 3x3 convs (+ BN, ReLU between). Branch i's output is relu(sum over j).

The HRNetV2 head upsamples every branch to branch 0's size, concatenates them, applies a 1x1
conv-BN-ReLU and a 1x1 classifier (``last_layer``, the official name), then upsamples the logits
to the input size.

Unlike the official HRNet-W18/W48: BasicBlocks in the first stage too (the official one uses four
Bottlenecks to 256 channels), fewer blocks and modules, and a narrower stem, so that the default
trains on two CPU cores. Parameter names follow the official ``seg_hrnet.py``.

>>> import minitorch_seg as mt
>>> model = HRNet(num_classes=19)
>>> model(mt.zeros(1, 3, 64, 96)).shape
(1, 19, 64, 96)
>>> [module.num_branches for module in model.stage4]
[4]
"""
from .. import functional as F
from .. import nn
from .common import BasicBlock, check_input, conv_bn_relu


def branch_channels(width, num_branches):
    """Channels of branches 0..n-1: width, 2 width, 4 width, ... (HRNet-W<width>)."""
    return [width * 2 ** b for b in range(num_branches)]


def transition(in_channels, out_channels):
    """From the branches of one stage (``in_channels``) to those of the next (``out_channels``).

    A kept branch gets a 3x3 conv-BN-ReLU if its width changes, else the identity; each new branch
    is made from the last (lowest-resolution) input branch by strided 3x3 conv-BN-ReLUs, one per
    halving. Returns a ModuleList with one entry per output branch.
    """
    layers = []
    for i, channels in enumerate(out_channels):
        if i < len(in_channels):
            same = in_channels[i] == channels
            layers.append(nn.Identity() if same else conv_bn_relu(in_channels[i], channels))
        else:
            halvings = i + 1 - len(in_channels)
            steps = [conv_bn_relu(in_channels[-1], channels if k == halvings - 1 else in_channels[-1], stride=2)
                     for k in range(halvings)]
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then multi-resolution fusion through ``fuse_layers[i][j]``.

    forward(xs): a list of branch maps, xs[b] (N, channels[b], H / 2**b, W / 2**b) -> a new list of
    the same shapes (the input list is not modified).
    """

    def __init__(self, channels, num_blocks):
        super().__init__()
        self.num_branches, self.channels = len(channels), list(channels)
        self.branches = nn.ModuleList([nn.Sequential(*[BasicBlock(c, c) for _ in range(num_blocks)])
                                       for c in channels])
        self.fuse_layers = nn.ModuleList([nn.ModuleList([self._fuse(j, i) for j in range(self.num_branches)])
                                          for i in range(self.num_branches)])
        self.relu = nn.ReLU()

    def _fuse(self, j, i):
        """The layer that takes branch j to branch i (the upsampling itself is in forward)."""
        c = self.channels
        if j > i:   # up: match the width at the low resolution, where it is cheaper
            return nn.Sequential(nn.Conv2d(c[j], c[i], 1, bias=False), nn.BatchNorm2d(c[i]))
        if j == i:
            return nn.Identity()
        steps = [conv_bn_relu(c[j], c[j], stride=2) for _ in range(i - j - 1)]   # down: halve i - j times
        steps.append(conv_bn_relu(c[j], c[i], stride=2, relu=False))             # the last without ReLU
        return nn.Sequential(*steps)

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for i, row in enumerate(self.fuse_layers):
            size = xs[i].shape[2:]
            total = None
            for j, layer in enumerate(row):
                y = layer(xs[j])
                if j > i:
                    y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
                total = y if total is None else total + y                  # (N, channels[i], H_i, W_i)
            fused.append(self.relu(total))
        return fused

    def extra_repr(self):
        return f"channels={self.channels}"


class HRNet(nn.Module):
    """HRNetV2 for segmentation: stem, stage 1, then stages with 2, 3, ... parallel branches, V2 head.

    Args:
        num_classes: output channels.
        in_channels: image channels.
        width: channels of the highest-resolution branch (W in "HRNet-W18"); branch b has width * 2**b.
        depth: BasicBlocks per branch in each module (the official networks use 4).
        num_branches: branches in the last stage (2 to 4; the official networks use 4).
        num_modules: HighResolutionModules in each of stages 2, 3, ... (default one each; official W18: 1, 4, 3).
        stem_width: channels of the stem and of stage 1.

    Shapes: x (N, in_channels, H, W), H and W multiples of 32 -> logits (N, num_classes, H, W).
    """

    def __init__(self, num_classes=19, in_channels=3, width=16, depth=2, num_branches=4, num_modules=None,
                 stem_width=32):
        super().__init__()
        num_modules = (1,) * (num_branches - 1) if num_modules is None else tuple(num_modules)
        if not 2 <= num_branches <= 4 or len(num_modules) != num_branches - 1:
            raise ValueError(f"HRNet: num_branches must be 2 to 4 with one entry of num_modules per stage after "
                             f"the first, got num_branches={num_branches} and num_modules={tuple(num_modules)}.")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.conv1 = nn.Conv2d(in_channels, stem_width, 3, stride=2, padding=1, bias=False)   # 1/2
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.conv2 = nn.Conv2d(stem_width, stem_width, 3, stride=2, padding=1, bias=False)    # 1/4
        self.bn2 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(*[BasicBlock(stem_width, stem_width) for _ in range(depth)])
        previous = [stem_width]
        for stage, modules in enumerate(num_modules, start=2):   # transition1, stage2, transition2, stage3, ...
            channels = branch_channels(width, stage)
            setattr(self, f"transition{stage - 1}", transition(previous, channels))
            setattr(self, f"stage{stage}", nn.Sequential(*[HighResolutionModule(channels, depth)
                                                           for _ in range(modules)]))
            previous = channels
        self.num_stages = num_branches
        total = sum(previous)
        self.last_layer = nn.Sequential(nn.Conv2d(total, total, 1), nn.BatchNorm2d(total), nn.ReLU(),
                                        nn.Conv2d(total, num_classes, 1))

    def forward(self, x):
        check_input("HRNet", x, self.in_channels)
        size = x.shape[2:]
        x = self.relu(self.bn1(self.conv1(x)))                             # (N, stem, H/2, W/2)
        x = self.relu(self.bn2(self.conv2(x)))                             # (N, stem, H/4, W/4)
        xs = [self.layer1(x)]
        for stage in range(2, self.num_stages + 1):
            layers = getattr(self, f"transition{stage - 1}")
            # kept branches pass through their layer; new ones grow from the lowest-resolution one
            xs = [layer(xs[i] if i < len(xs) else xs[-1]) for i, layer in enumerate(layers)]
            for module in getattr(self, f"stage{stage}"):
                xs = module(xs)                                            # xs[b]: (N, width 2^b, H/2^(b+2), W/2^(b+2))
        top = xs[0].shape[2:]
        ups = [xs[0]] + [F.interpolate(y, size=top, mode="bilinear", align_corners=False) for y in xs[1:]]
        logits = self.last_layer(F.cat(ups, dim=1))                        # (N, num_classes, H/4, W/4)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
