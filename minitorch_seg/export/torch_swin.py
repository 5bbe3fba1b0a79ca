"""Swin + UPerHead in torch: the twin of ``models.SwinSeg``, the same parameter names and order.

The backbone follows the official segmentation backbone's rules, as ours does: the normed map is
zero-padded up to a multiple of the window (a map smaller than the window up to one window),
the window and the shift stay the same at every size, and only the shift regions are masked
(also the padded keys with ``mask_padding=True``). The mask and the relative position index are
computed per resolution, so there are no buffers beyond our state_dict's.
"""
from collections import OrderedDict

from .torch_imports import F, nn, torch
from .torch_layers import conv_bn_relu, upsample


def partition(x, ws):
    """(B, H, W, C) -> (B*nW, ws*ws, C), windows in raster order."""
    b, h, w, c = x.shape
    return x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)


def reverse(windows, ws, h, w):
    """(B*nW, ws*ws, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    return windows.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def blocked(h, w, ws, shift, mask_padding, device):
    """(nW, N, N) True where query i may not see key j: the official regions over the padded map
    (none without a shift), and the padded keys with ``mask_padding``."""
    hp, wp = h + (-h) % ws, w + (-w) % ws
    region, padded = torch.zeros(1, hp, wp, 1, device=device), torch.zeros(1, hp, wp, 1, device=device)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)) if shift else (slice(None),)
    for label, (rows, cols) in enumerate((r, c) for r in cuts for c in cuts):
        region[:, rows, cols] = label
    if mask_padding:
        padded[:, h:], padded[:, :, w:] = 1, 1
    padded = torch.roll(padded, (-shift, -shift), (1, 2))
    region, padded = partition(region, ws)[..., 0], partition(padded, ws)[..., 0]
    return (region[:, :, None] != region[:, None, :]) | (padded[:, None, :] > 0)


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability p in training, scale by 1/(1-p)."""

    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device) >= self.p)
        return x * keep.to(x.dtype) / (1 - self.p)


class WindowAttention(nn.Module):
    def __init__(self, dim, window, heads):
        super().__init__()
        self.window, self.heads, self.scale = window, heads, (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x, mask):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        ws = self.window
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = coords[:, :, None] - coords[:, None, :]
        index = ((rel[0] + ws - 1) * (2 * ws - 1) + rel[1] + ws - 1).to(x.device)
        attn = attn + self.relative_position_bias_table[index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b // nw, nw, self.heads, n, n)
            attn = attn.masked_fill(mask[None, :, None], -torch.finfo(x.dtype).max / 4).view(b, self.heads, n, n)
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class SwinTransformerBlock(nn.Module):
    def __init__(self, dim, heads, window, shift, mlp_ratio=4.0, drop_path=0.0, mask_padding=False):
        super().__init__()
        self.window, self.shift, self.mask_padding = window, shift, mask_padding
        self.norm1, self.attn = nn.LayerNorm(dim), WindowAttention(dim, window, heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(OrderedDict(fc1=nn.Linear(dim, hidden), act=nn.GELU(), fc2=nn.Linear(hidden, dim)))

    def forward(self, x, h, w):
        b, _, c = x.shape
        ws, shift = self.window, self.shift
        y = F.pad(self.norm1(x).view(b, h, w, c), (0, 0, 0, (-w) % ws, 0, (-h) % ws))
        hp, wp = y.shape[1:3]
        mask = blocked(h, w, ws, shift, self.mask_padding, x.device)
        y = torch.roll(y, (-shift, -shift), (1, 2))
        y = reverse(self.attn(partition(y, ws), mask if mask.any() else None), ws, hp, wp)
        x = x + self.drop_path(torch.roll(y, (shift, shift), (1, 2))[:, :h, :w].reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.reduction, self.norm = nn.Linear(4 * dim, 2 * dim, bias=False), nn.LayerNorm(4 * dim)

    def forward(self, x, h, w):
        b, _, c = x.shape
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.reshape(b, -1, 4 * c)))


class SwinTransformer(nn.Module):
    """The arguments of ``models.SwinTransformer``: (N, 3, H, W) -> four maps, finest first."""

    def __init__(self, in_chans=3, embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=8,
                 mlp_ratio=4.0, drop_path_rate=0.0, patch_size=4, mask_padding=False):
        super().__init__()
        self.patch = patch_size
        self.patch_embed = nn.ModuleDict(dict(proj=nn.Conv2d(in_chans, embed_dim, patch_size, patch_size),
                                              norm=nn.LayerNorm(embed_dim)))
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.layers = nn.ModuleList()
        for s, (depth, heads) in enumerate(zip(depths, num_heads)):
            dim, first = embed_dim * 2 ** s, sum(depths[:s])
            layer = nn.ModuleDict(dict(blocks=nn.ModuleList([
                SwinTransformerBlock(dim, heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio,
                                     rates[first + i], mask_padding) for i in range(depth)])))
            if s < len(depths) - 1:
                layer["downsample"] = PatchMerging(dim)
            self.layers.append(layer)
            self.add_module(f"norm{s}", nn.LayerNorm(dim))

    def forward(self, x):
        x = F.pad(x, (0, (-x.shape[3]) % self.patch, 0, (-x.shape[2]) % self.patch))
        x = self.patch_embed["proj"](x)
        h, w = x.shape[2:]
        x = self.patch_embed["norm"](x.flatten(2).transpose(1, 2))
        outs = []
        for s, layer in enumerate(self.layers):
            for block in layer["blocks"]:
                x = block(x, h, w)
            out = getattr(self, f"norm{s}")(x)
            outs.append(out.view(-1, h, w, out.shape[-1]).permute(0, 3, 1, 2))
            if "downsample" in layer:
                x, h, w = layer["downsample"](x, h, w), (h + 1) // 2, (w + 1) // 2
        return outs


class UPerHead(nn.Module):
    def __init__(self, in_channels, channels, num_classes):
        super().__init__()
        self.lateral_convs = nn.ModuleList([conv_bn_relu(c, channels, 1) for c in in_channels])
        self.fpn_convs = nn.ModuleList([conv_bn_relu(channels, channels) for _ in in_channels[:-1]])
        self.fpn_bottleneck = conv_bn_relu(len(in_channels) * channels, channels)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats):
        lat = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        for s in range(len(lat) - 1, 0, -1):
            lat[s - 1] = lat[s - 1] + upsample(lat[s], lat[s - 1].shape[2:])
        outs = [conv(x) for conv, x in zip(self.fpn_convs, lat)] + [lat[-1]]
        outs = [outs[0]] + [upsample(x, outs[0].shape[2:]) for x in outs[1:]]
        return self.conv_seg(self.fpn_bottleneck(torch.cat(outs, 1)))


class SwinSeg(nn.Module):
    """The arguments of ``models.SwinSeg``."""

    def __init__(self, num_classes=19, in_channels=3, width=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
                 window_size=8, mlp_ratio=4.0, drop_path_rate=0.0, decoder_channels=64, mask_padding=False):
        super().__init__()
        self.backbone = SwinTransformer(in_channels, width, depths, num_heads, window_size, mlp_ratio,
                                        drop_path_rate, mask_padding=mask_padding)
        self.decode_head = UPerHead([width * 2 ** s for s in range(len(depths))], decoder_channels, num_classes)

    def forward(self, x):
        return upsample(self.decode_head(self.backbone(x)), x.shape[2:])
