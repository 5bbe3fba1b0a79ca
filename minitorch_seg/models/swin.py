"""Swin Transformer (Liu et al., 2021) as a drop-in segmentation backbone, with a light UPerNet-style head.

The notes: "Swin transformer can be used as a drop-in replacement of CNN backbones for the encoder
part of standard semantic segmentation networks". ``SwinTransformer`` is that encoder: like a
ResNet it returns four maps at 1/4, 1/8, 1/16 and 1/32 of the input with C, 2C, 4C, 8C channels,
so any CNN decoder takes it. Inside:

- ``patch_embed``: 4x4 patches -> tokens (a stride-4 conv + LayerNorm), an (H/4, W/4) map of C.
- ``layers[s]`` (stage s): ``depths[s]`` SwinTransformerBlocks; even blocks attend within regular
  windows (W-MSA), odd ones within windows shifted by half a window (SW-MSA), so information
  crosses window borders; then ``downsample`` (PatchMerging: 2x2 neighbours -> 2C channels,
  half the resolution), except after the last stage.
- ``norm{s}``: a LayerNorm on each stage's output, as the official segmentation backbone has.

``SwinSeg`` puts ``UPerHead`` on it (mmsegmentation's names; its pyramid pooling module left out
to stay light): 1x1 lateral convs bring every stage to ``decoder_channels``; a top-down pathway
adds each upsampled coarser map to the next finer one (FPN); 3x3 convs smooth them; all four are
upsampled to 1/4, concatenated and fused by a 3x3 conv; a 1x1 conv classifies; the logits are
upsampled to the input size.

Initialisation as the official ``_init_weights``: Linear weights trunc_normal(std=0.02), biases 0,
LayerNorm 1 and 0 (the head's convs keep torch's defaults). Parameter names follow the official
code (``layers.0.blocks.1.attn.relative_position_bias_table``), so weights map one to one, and
the backbone computes what the official segmentation backbone computes at any input size (zero
padding up to the window, padded keys unmasked, the full shifted window on small maps); see
``nn.swin`` for what differs (no fixed buffers, ``mask_padding`` as an option).

>>> import minitorch_seg as mt
>>> model = SwinSeg(num_classes=19)
>>> model(mt.zeros(1, 3, 64, 96)).shape
(1, 19, 64, 96)
>>> [layer.depth for layer in model.backbone.layers]
[2, 2, 2, 2]
"""
from .. import functional as F
from .. import nn
from ..nn import init
from .common import check_input, conv_bn_relu


class BasicLayer(nn.Module):
    """One Swin stage: blocks alternating regular (shift 0) and shifted (shift window // 2) windows,
    then an optional PatchMerging.

    forward(x, hw_shape): x (B, H*W, C) -> (stage output (B, H*W, C), (H, W),
    downsampled (B, H/2*W/2, 2C) or the stage output, its (h, w)).
    """

    def __init__(self, dim, depth, num_heads, window_size, mlp_ratio=4.0, drop_path=(), downsample=True,
                 mask_padding=False):
        super().__init__()
        self.dim, self.depth = dim, depth
        drop_path = list(drop_path) or [0.0] * depth
        self.blocks = nn.ModuleList([
            nn.SwinTransformerBlock(dim, num_heads, window_size, shift_size=0 if i % 2 == 0 else window_size // 2,
                                    mlp_ratio=mlp_ratio, drop_path=drop_path[i], mask_padding=mask_padding)
            for i in range(depth)])
        self.downsample = nn.PatchMerging(dim) if downsample else None

    def forward(self, x, hw_shape):
        for block in self.blocks:
            x = block(x, hw_shape)                                         # (B, H*W, C)
        if self.downsample is None:
            return x, hw_shape, x, hw_shape
        down, down_shape = self.downsample(x, hw_shape)                    # (B, H/2*W/2, 2C)
        return x, hw_shape, down, down_shape


class SwinTransformer(nn.Module):
    """The Swin encoder: (N, in_chans, H, W) -> four maps (N, embed_dim * 2**s, H / 2**(s+2), W / 2**(s+2)).

    Args:
        in_chans: image channels.
        embed_dim: C, the channels of the first stage.
        depths: blocks per stage.
        num_heads: attention heads per stage (C / heads channels each).
        window_size: the attention window (Swin-T uses 7; 8 tiles our maps, which are multiples of 8).
        mlp_ratio: the MLP's hidden width over the channels.
        drop_path_rate: stochastic depth, rising linearly from 0 at the first block to this at the last.
        patch_size: the patch side of the embedding.
        mask_padding: mask the keys of the padding that fills maps up to the window (unlike the
            official code, which attends to them; off by default, so official weights give
            official features).
    """

    def __init__(self, in_chans=3, embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=8,
                 mlp_ratio=4.0, drop_path_rate=0.0, patch_size=4, mask_padding=False):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"SwinTransformer: depths {tuple(depths)} and num_heads {tuple(num_heads)} need one "
                             "entry per stage each.")
        self.num_layers = len(depths)
        self.num_features = [embed_dim * 2 ** s for s in range(self.num_layers)]
        self.patch_embed = nn.PatchEmbed(patch_size, in_chans, embed_dim)
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.layers = nn.ModuleList([
            BasicLayer(self.num_features[s], depths[s], num_heads[s], window_size, mlp_ratio,
                       drop_path=rates[sum(depths[:s]):sum(depths[:s + 1])], downsample=s < self.num_layers - 1,
                       mask_padding=mask_padding)
            for s in range(self.num_layers)])
        for s, channels in enumerate(self.num_features):
            setattr(self, f"norm{s}", nn.LayerNorm(channels))
        self.apply(_init_weights)

    def forward(self, x):
        x, hw_shape = self.patch_embed(x)                                  # (B, H/4*W/4, C)
        outs = []
        for s, layer in enumerate(self.layers):
            out, out_shape, x, hw_shape = layer(x, hw_shape)
            out = getattr(self, f"norm{s}")(out)                           # (B, h*w, C_s)
            h, w = out_shape
            outs.append(out.reshape(-1, h, w, out.shape[2]).permute(0, 3, 1, 2))   # (B, C_s, h, w)
        return outs


def _init_weights(module):
    """The official Swin initialisation: trunc_normal(0.02) Linear weights, zero biases, LayerNorm 1 and 0."""
    if isinstance(module, nn.Linear):
        init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)


class UPerHead(nn.Module):
    """FPN fusion of all stages (UPerNet without its pyramid pooling): maps -> logits at the finest map's size.

    forward(feats): feats[s] (N, in_channels[s], H_s, W_s), finest first -> (N, num_classes, H_0, W_0).
    """

    def __init__(self, in_channels, channels, num_classes):
        super().__init__()
        self.lateral_convs = nn.ModuleList([conv_bn_relu(c, channels, 1) for c in in_channels])
        self.fpn_convs = nn.ModuleList([conv_bn_relu(channels, channels) for _ in in_channels[:-1]])
        self.fpn_bottleneck = conv_bn_relu(len(in_channels) * channels, channels)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats):
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, feats)]   # each (N, D, H_s, W_s)
        for s in range(len(laterals) - 1, 0, -1):                           # top-down: coarse into fine
            up = F.interpolate(laterals[s], size=laterals[s - 1].shape[2:], mode="bilinear", align_corners=False)
            laterals[s - 1] = laterals[s - 1] + up
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals)] + [laterals[-1]]
        size = outs[0].shape[2:]
        outs = [outs[0]] + [F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in outs[1:]]
        return self.conv_seg(self.fpn_bottleneck(F.cat(outs, dim=1)))     # (N, num_classes, H_0, W_0)


class SwinSeg(nn.Module):
    """Swin backbone + UPerHead, logits upsampled to the input size.

    Args:
        num_classes, in_channels: output and image channels.
        width: embed_dim, the first stage's channels C (32 by default; Swin-T has 96).
        depths, num_heads, window_size, mlp_ratio, drop_path_rate, mask_padding: as ``SwinTransformer``.
        decoder_channels: the head's channels.

    ``config`` holds the constructor's arguments (``export.to_torch`` builds the same model from it).

    Shapes: x (N, in_channels, H, W), H and W multiples of 32 -> logits (N, num_classes, H, W).
    """

    def __init__(self, num_classes=19, in_channels=3, width=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
                 window_size=8, mlp_ratio=4.0, drop_path_rate=0.0, decoder_channels=64, mask_padding=False):
        super().__init__()
        self.config = dict(num_classes=num_classes, in_channels=in_channels, width=width, depths=tuple(depths),
                           num_heads=tuple(num_heads), window_size=window_size, mlp_ratio=mlp_ratio,
                           drop_path_rate=drop_path_rate, decoder_channels=decoder_channels,
                           mask_padding=mask_padding)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.backbone = SwinTransformer(in_channels, width, depths, num_heads, window_size, mlp_ratio,
                                        drop_path_rate, mask_padding=mask_padding)
        self.decode_head = UPerHead(self.backbone.num_features, decoder_channels, num_classes)

    def forward(self, x):
        check_input("SwinSeg", x, self.in_channels)
        logits = self.decode_head(self.backbone(x))                        # (N, num_classes, H/4, W/4)
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)


def swin_t(num_classes=19, **options):
    """Swin-T (the official tiny backbone, 27,520,698 parameters, drop path 0.3 as the official
    UPerNet config) with our UPerHead at 512 channels; ``options`` as ``SwinSeg``'s.

    Official weights fill the backbone (from a segmentation or a classification checkpoint); our
    head has no pyramid pooling module, so from an mmsegmentation UPerNet checkpoint its lateral
    conv of the last stage stays as initialised and the PPM's weights go unused
    (``minitorch_seg.convert`` lists both)."""
    return SwinSeg(num_classes, **{**SWIN_T, **options})


SWIN_T = dict(width=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, drop_path_rate=0.3,
              decoder_channels=512)
