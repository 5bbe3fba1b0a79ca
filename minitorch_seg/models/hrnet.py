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

The default ``HRNet()`` is small, so that it trains on two CPU cores: BasicBlocks in the first
stage too, fewer blocks and modules, a narrower stem. ``hrnet_w18``, ``hrnet_w32`` and
``hrnet_w48`` build the official HRNetV2-W18/W32/W48 of ``seg_hrnet.py`` (HRNet/HRNet-Semantic-
Segmentation, the Cityscapes configs): the stem of two stride-2 3x3 convs to 64 channels, stage 1
of four Bottlenecks to 256 channels (``stage1_block="bottleneck"``), four BasicBlocks per branch,
1, 4 and 3 modules in stages 2 to 4. Parameter names follow ``seg_hrnet.py`` in every
configuration, so official weights load by name (``fuse_layers[i][i]`` and unchanged
transitions, None there, are parameter-free Identity modules here). Like the official model, the
network computes logits at 1/4 of the input; unlike it, ``forward`` also upsamples them to the
input size (the official code does so in its loss and its evaluation), with the same
``align_corners``.

>>> import minitorch_seg as mt
>>> model = HRNet(num_classes=19)
>>> model(mt.zeros(1, 3, 64, 96)).shape
(1, 19, 64, 96)
>>> [module.num_branches for module in model.stage4]
[4]
>>> sum(p.numel() for p in hrnet_w18(num_classes=19).parameters())     # as counted on the official code
9641119
"""
from .. import functional as F
from .. import nn
from .common import BasicBlock, Bottleneck, check_input, conv_bn_relu

STAGE1_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


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
    the same shapes (the input list is not modified). ``align_corners`` for the upsampling.
    """

    def __init__(self, channels, num_blocks, align_corners=False):
        super().__init__()
        self.num_branches, self.channels, self.align_corners = len(channels), list(channels), align_corners
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
                    y = F.interpolate(y, size=size, mode="bilinear", align_corners=self.align_corners)
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
        depth: BasicBlocks per branch in each module, and blocks of stage 1 (the official networks use 4).
        num_branches: branches in the last stage (2 to 4; the official networks use 4).
        num_modules: HighResolutionModules in each of stages 2, 3, ... (default one each; official W18: 1, 4, 3).
        stem_width: channels of the stem (the official 64) and the planes of stage 1's blocks.
        stage1_block: "basic" (``depth`` BasicBlocks keeping ``stem_width`` channels) or "bottleneck"
            (``depth`` Bottlenecks to ``4 * stem_width`` channels, as the official networks).
        align_corners: of every bilinear upsampling (fusion, head, logits). The official code reads
            it from its config (default True); its shipped Cityscapes configs, and ours, use False.

    Shapes: x (N, in_channels, H, W), H and W multiples of 32 -> logits (N, num_classes, H, W).
    """

    def __init__(self, num_classes=19, in_channels=3, width=16, depth=2, num_branches=4, num_modules=None,
                 stem_width=32, stage1_block="basic", align_corners=False):
        super().__init__()
        num_modules = (1,) * (num_branches - 1) if num_modules is None else tuple(num_modules)
        if not 2 <= num_branches <= 4 or len(num_modules) != num_branches - 1:
            raise ValueError(f"HRNet: num_branches must be 2 to 4 with one entry of num_modules per stage after "
                             f"the first, got num_branches={num_branches} and num_modules={tuple(num_modules)}.")
        if stage1_block not in STAGE1_BLOCKS:
            raise ValueError(f"HRNet: stage1_block must be 'basic' or 'bottleneck', got {stage1_block!r}.")
        self.config = dict(num_classes=num_classes, in_channels=in_channels, width=width, depth=depth,
                           num_branches=num_branches, num_modules=num_modules, stem_width=stem_width,
                           stage1_block=stage1_block, align_corners=align_corners)
        self.num_classes, self.in_channels, self.align_corners = num_classes, in_channels, align_corners
        self.conv1 = nn.Conv2d(in_channels, stem_width, 3, stride=2, padding=1, bias=False)   # 1/2
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.conv2 = nn.Conv2d(stem_width, stem_width, 3, stride=2, padding=1, bias=False)    # 1/4
        self.bn2 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU()
        block = STAGE1_BLOCKS[stage1_block]
        out = stem_width * getattr(block, "expansion", 1)
        self.layer1 = nn.Sequential(*[block(stem_width if k == 0 else out, stem_width) for k in range(depth)])
        previous = [out]
        for stage, modules in enumerate(num_modules, start=2):   # transition1, stage2, transition2, stage3, ...
            channels = branch_channels(width, stage)
            setattr(self, f"transition{stage - 1}", transition(previous, channels))
            setattr(self, f"stage{stage}", nn.Sequential(*[HighResolutionModule(channels, depth, align_corners)
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
        ups = [xs[0]] + [F.interpolate(y, size=top, mode="bilinear", align_corners=self.align_corners)
                         for y in xs[1:]]
        logits = self.last_layer(F.cat(ups, dim=1))                        # (N, num_classes, H/4, W/4)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=self.align_corners)


OFFICIAL = dict(depth=4, num_branches=4, num_modules=(1, 4, 3), stem_width=64, stage1_block="bottleneck")


def hrnet_w18(num_classes=19, **options):
    """The official HRNetV2-W18 (9,641,119 parameters with 19 classes); ``options`` as ``HRNet``'s."""
    return HRNet(num_classes, **{**OFFICIAL, "width": 18, **options})


def hrnet_w32(num_classes=19, **options):
    """The official HRNetV2-W32; ``options`` as ``HRNet``'s."""
    return HRNet(num_classes, **{**OFFICIAL, "width": 32, **options})


def hrnet_w48(num_classes=19, **options):
    """The official HRNetV2-W48; ``options`` as ``HRNet``'s."""
    return HRNet(num_classes, **{**OFFICIAL, "width": 48, **options})
