"""Swin Transformer layers: WindowAttention, SwinTransformerBlock, PatchEmbed, PatchMerging, DropPath.

Parameter names and shapes follow the official implementation (``models/swin_transformer.py`` of
microsoft/Swin-Transformer), so a state_dict maps one to one: ``attn.qkv``, ``attn.proj``,
``attn.relative_position_bias_table``, ``norm1``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``,
``patch_embed.proj``, ``patch_embed.norm``, ``downsample.reduction``, ``downsample.norm``.

As the official segmentation backbone (``mmseg/models/backbones/swin_transformer.py`` of
SwinTransformer/Swin-Transformer-Semantic-Segmentation), so official weights give official
features at any input size: the normed map is zero-padded right and below up to a multiple of
the window (also when it is smaller than the window), the window and the shift stay the same at
every resolution, and the padded tokens are keys like any other: only the shift regions are
masked.

Unlike the official code:
- No ``input_resolution``: blocks take tokens (B, L, C) and their map size ``hw_shape = (H, W)``
  (as the segmentation code does), and build the shift mask and relative index per resolution,
  cached (``functional.windows.cached_window_mask``). The official ``relative_position_index``
  and ``attn_mask`` buffers are therefore not in the state_dict; drop them from an official
  checkpoint (or load it with ``strict=False``).
- ``mask_padding=True`` (an option, off by default; unlike the official code) also masks the
  padded keys, so outputs at real tokens do not depend on the padding at all.
- Masked scores use a large finite negative (``functional.windows.mask_value``), not -100.
- No dropout on the attention weights (``attn_drop``; 0 in every Swin config): the fused
  ``F.window_attention`` has none.
- Linear layers keep torch's default initialisation; Swin's trunc_normal(0.02) for Linear weights
  is applied by a model (``init.trunc_normal_``), as the official model's ``_init_weights`` does.

>>> import minitorch_seg as mt
>>> from minitorch_seg import nn
>>> embed = nn.PatchEmbed(patch_size=4, in_chans=3, embed_dim=32)
>>> block = nn.SwinTransformerBlock(32, num_heads=2, window_size=4, shift_size=2)
>>> tokens, hw = embed(mt.zeros(1, 3, 40, 64))          # a 10x16 map: padded to 12x16 inside the block
>>> tokens.shape, hw
((1, 160, 32), (10, 16))
>>> block(tokens, hw).shape
(1, 160, 32)
>>> merged, hw = nn.PatchMerging(32)(tokens, hw)
>>> merged.shape, hw
((1, 40, 64), (5, 8))
"""
from .. import functional as F
from ..backend import get_array_module
from ..functional.windows import cached_window_mask, padded_size, relative_position_bias
from ..random import random_uniform
from ..shapes import pair
from ..tensor import Tensor
from . import init
from .conv import Conv2d
from .layers import GELU, Dropout, Identity, Linear, _parameter
from .module import Module
from .norm import LayerNorm


class DropPath(Module):
    """Stochastic depth: in training, zero a sample's whole residual branch with probability ``p``.

    y = x * m_b / (1 - p), one m_b ~ Bernoulli(1 - p) per sample b (broadcast over the other
    dims), so the expected output is x; identity in eval. Used on residual branches
    (x + drop_path(f(x))), it drops whole blocks for some samples: a random shallower network.
    The backward is Mul's: dL/dx = g * m_b / (1 - p).
    """

    def __init__(self, p=0.0):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"drop path probability has to be between 0 and 1, but got {p}.")
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * 0.0
        xp = get_array_module(x.data)
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)                       # (B, 1, ..., 1): one draw per sample
        keep = (random_uniform(xp, shape, x.dtype) >= self.p) * x.dtype.type(1 / (1 - self.p))
        return x * Tensor(keep)

    def extra_repr(self):
        return f"p={self.p}"


class Mlp(Module):
    """The block's feed-forward network: fc1 (C -> hidden), GELU, dropout, fc2 (hidden -> C), dropout."""

    def __init__(self, in_features, hidden_features=None, out_features=None, drop=0.0):
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = Linear(in_features, hidden_features)
        self.act = GELU()
        self.fc2 = Linear(hidden_features, out_features)
        self.drop = Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(Module):
    """Multi-head self-attention inside each window, with a learned relative position bias.

    Args:
        dim: channels C; num_heads must divide it (d = C / heads per head).
        window_size: the window (an int or a (Wh, Ww) pair) the bias table is made for.
        num_heads: heads.
        qkv_bias: whether the q, k, v projection has a bias.
        qk_scale: the factor on q k^T (default d**-0.5).
        proj_drop: dropout after the output projection.

    Parameters: ``qkv`` Linear(C, 3C) (q, k, v in that order, heads contiguous within each),
    ``proj`` Linear(C, C), ``relative_position_bias_table`` ((2Wh-1)(2Ww-1), heads),
    trunc_normal(std=0.02).

    forward(x, mask=None, window_size=None): x (B*nW, N, C) -> (B*nW, N, C); ``mask`` (nW, N, N)
    or None; ``window_size`` the window the tokens come from (default: the module's; a smaller
    one reads the centre of the bias table, ``functional.windows.relative_position_index``).
    """

    def __init__(self, dim, window_size, num_heads, qkv_bias=True, qk_scale=None, proj_drop=0.0):
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"WindowAttention: dim {dim} must be divisible by num_heads {num_heads}.")
        self.dim, self.num_heads = dim, num_heads
        self.window_size = pair(window_size, "window_size")                # (Wh, Ww)
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5
        wh, ww = self.window_size
        self.relative_position_bias_table = _parameter((2 * wh - 1) * (2 * ww - 1), num_heads)
        self.qkv = Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = Linear(dim, dim)
        self.proj_drop = Dropout(proj_drop)
        init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x, mask=None, window_size=None):
        window = self.window_size if window_size is None else pair(window_size, "window_size")
        windows, n, c = x.shape
        if n != window[0] * window[1] or c != self.dim:
            raise ValueError(f"WindowAttention expects windows (B*nW, {window[0] * window[1]}, {self.dim}) for a "
                             f"{window[0]}x{window[1]} window, got shape {x.shape}.")
        heads = self.num_heads
        qkv = self.qkv(x)                                                  # (B*nW, N, 3C)
        qkv = qkv.reshape(windows, n, 3, heads, c // heads)                # (B*nW, N, 3, heads, d)
        qkv = qkv.permute(2, 0, 3, 1, 4)                                   # (3, B*nW, heads, N, d)
        q, k, v = qkv[0], qkv[1], qkv[2]                                   # each (B*nW, heads, N, d)
        bias = relative_position_bias(self.relative_position_bias_table, window, self.window_size)  # (heads, N, N)
        x = F.window_attention(q, k, v, bias, mask, self.scale)            # (B*nW, heads, N, d)
        x = x.transpose(1, 2).reshape(windows, n, c)                       # (B*nW, N, C)
        return self.proj_drop(self.proj(x))

    def extra_repr(self):
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}"


class SwinTransformerBlock(Module):
    """One Swin block: windowed attention, then an MLP, each pre-normed and residual.

        x = x + drop_path(reverse(W-MSA(partition(shift(norm1(x))))))     (the shift undone after)
        x = x + drop_path(mlp(norm2(x)))

    Args:
        dim: channels C.
        num_heads: attention heads.
        window_size: the window (an int or a pair).
        shift_size: 0 for W-MSA; half the window for SW-MSA (the cyclic shift), per axis in
            [0, window).
        mlp_ratio: the MLP's hidden width over C.
        qkv_bias, qk_scale: as ``WindowAttention``.
        drop: dropout in the MLP and after the attention's projection.
        drop_path: stochastic depth probability on both residual branches.
        mask_padding: also mask the padded keys (unlike the official code, which lets queries
            attend to the zero-padded tokens of their window).

    forward(x, hw_shape): x (B, H*W, C), tokens in raster order of an (H, W) = ``hw_shape`` map
    -> (B, H*W, C). Any H, W: the normed map is zero-padded up to a multiple of the window (a map
    smaller than the window up to one window), with the same window and shift at every size.
    """

    def __init__(self, dim, num_heads, window_size=7, shift_size=0, mlp_ratio=4.0, qkv_bias=True, qk_scale=None,
                 drop=0.0, drop_path=0.0, mask_padding=False):
        super().__init__()
        self.dim, self.num_heads, self.mlp_ratio, self.mask_padding = dim, num_heads, mlp_ratio, mask_padding
        self.window_size, self.shift_size = pair(window_size, "window_size"), pair(shift_size, "shift_size")
        if not all(0 <= s < n for s, n in zip(self.shift_size, self.window_size)):
            raise ValueError(f"SwinTransformerBlock: shift_size {self.shift_size} must be in [0, window_size) per "
                             f"axis, window_size {self.window_size}.")
        self.norm1 = LayerNorm(dim)
        self.attn = WindowAttention(dim, self.window_size, num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale,
                                    proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else Identity()
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x, hw_shape):
        H, W = hw_shape  # noqa: N806 - the paper's names
        B, L, C = x.shape  # noqa: N806
        if L != H * W or C != self.dim:
            raise ValueError(f"SwinTransformerBlock expects tokens (B, H*W, {self.dim}) = (B, {H * W}, {self.dim}) "
                             f"for hw_shape {tuple(hw_shape)}, got shape {x.shape}.")
        window, shift = self.window_size, self.shift_size
        hp, wp = padded_size(H, W, window)
        shortcut = x
        x = self.norm1(x).reshape(B, H, W, C)                              # (B, H, W, C)
        if (hp, wp) != (H, W):
            x = F.pad(x, (0, 0, 0, wp - W, 0, hp - H))                     # (B, Hp, Wp, C), zeros right and below
        if shift != (0, 0):
            x = F.roll(x, (-shift[0], -shift[1]), (1, 2))                  # (B, Hp, Wp, C), cyclic shift
        windows = F.window_partition(x, window)                            # (B*nW, Wh*Ww, C)
        mask = cached_window_mask(H, W, window, shift, str(x.dtype), x.backend, self.mask_padding)  # (nW, N, N)
        windows = self.attn(windows, mask)                                 # (B*nW, Wh*Ww, C)
        x = F.window_reverse(windows, window, hp, wp)                      # (B, Hp, Wp, C)
        if shift != (0, 0):
            x = F.roll(x, shift, (1, 2))                                   # (B, Hp, Wp, C), shift undone
        if (hp, wp) != (H, W):
            x = x[:, :H, :W, :]                                            # (B, H, W, C), padding cropped
        x = shortcut + self.drop_path(x.reshape(B, H * W, C))              # (B, H*W, C)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self):
        padding = ", mask_padding=True" if self.mask_padding else ""
        return (f"dim={self.dim}, num_heads={self.num_heads}, window_size={self.window_size}, "
                f"shift_size={self.shift_size}, mlp_ratio={self.mlp_ratio}{padding}")


class PatchEmbed(Module):
    """Image to patch tokens: a patch_size x patch_size conv with the same stride, then LayerNorm.

    forward(x): x (B, in_chans, H, W) -> (tokens (B, Hp*Wp, embed_dim), (Hp, Wp)), Hp = ceil(H /
    patch); H and W are padded with zeros up to multiples of the patch first (right and below,
    as the segmentation ports do). Parameters: ``proj`` Conv2d, ``norm`` LayerNorm (or None).
    """

    def __init__(self, patch_size=4, in_chans=3, embed_dim=96, patch_norm=True):
        super().__init__()
        self.patch_size = pair(patch_size, "patch_size")
        self.in_chans, self.embed_dim = in_chans, embed_dim
        self.proj = Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.norm = LayerNorm(embed_dim) if patch_norm else None

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"PatchEmbed expects images (B, {self.in_chans}, H, W), got shape {x.shape}.")
        ph, pw = self.patch_size
        h, w = x.shape[2:]
        if h % ph or w % pw:
            x = F.pad(x, (0, (-w) % pw, 0, (-h) % ph))                     # (B, C, ceil(H/ph) ph, ceil(W/pw) pw)
        x = self.proj(x)                                                   # (B, embed_dim, Hp, Wp)
        hw_shape = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)                                   # (B, Hp*Wp, embed_dim)
        if self.norm is not None:
            x = self.norm(x)
        return x, hw_shape

    def extra_repr(self):
        return f"patch_size={self.patch_size}, in_chans={self.in_chans}, embed_dim={self.embed_dim}"


class PatchMerging(Module):
    """Halve the map, double the channels: concatenate each 2x2 neighbourhood, LayerNorm, Linear 4C -> 2C.

    The four neighbours are concatenated in the official order x0 = (0, 0), x1 = (1, 0),
    x2 = (0, 1), x3 = (1, 1) as (row, column) offsets, so ``reduction.weight`` maps one to one.
    An odd side is padded with a zero row or column first (as the segmentation ports do).

    forward(x, hw_shape): x (B, H*W, C) -> (x (B, ceil(H/2) ceil(W/2), 2C), (ceil(H/2), ceil(W/2))).
    Parameters: ``reduction`` Linear(4C, 2C, bias=False), ``norm`` LayerNorm(4C).
    """

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.reduction = Linear(4 * dim, 2 * dim, bias=False)
        self.norm = LayerNorm(4 * dim)

    def forward(self, x, hw_shape):
        H, W = hw_shape  # noqa: N806
        B, L, C = x.shape  # noqa: N806
        if L != H * W or C != self.dim:
            raise ValueError(f"PatchMerging expects tokens (B, H*W, {self.dim}) = (B, {H * W}, {self.dim}) "
                             f"for hw_shape {tuple(hw_shape)}, got shape {x.shape}.")
        x = x.reshape(B, H, W, C)                                          # (B, H, W, C)
        if H % 2 or W % 2:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))                       # (B, H', W', C), even sides
        h2, w2 = (H + 1) // 2, (W + 1) // 2
        x = x.reshape(B, h2, 2, w2, 2, C)                                  # (B, H/2, dh, W/2, dw, C)
        x = x.permute(0, 1, 3, 4, 2, 5)                                    # (B, H/2, W/2, dw, dh, C)
        x = x.reshape(B, h2 * w2, 4 * C)                                   # (B, H/2*W/2, 4C): [x0, x1, x2, x3]
        return self.reduction(self.norm(x)), (h2, w2)

    def extra_repr(self):
        return f"dim={self.dim}"
