"""Swin: our backbone computes what the OFFICIAL segmentation backbone computes, at any input size.

``official_swin`` below is the logic of ``mmseg/models/backbones/swin_transformer.py`` of
SwinTransformer/Swin-Transformer-Semantic-Segmentation, written out in torch as that file writes
it (class by class, the same names, the same order of operations): the patch embedding pads the
image up to the patch, every block zero-pads its normed map up to a multiple of the window (a
map smaller than the window up to one window) and attends over the padded tokens too; odd blocks
shift by window // 2 at every size; ``BasicLayer`` builds the -100 shift mask over the padded map
per forward; ``PatchMerging`` pads odd sides. Only what training adds is left out (dropout and
drop path at rate 0, checkpointing, ``init_weights``, ``frozen_stages``), and the
``relative_position_index`` buffers, which our state_dict does not hold (we compute them).

Our weights load into it by name; in float64 the four feature maps and the gradients of the
input and of every parameter agree to 1e-10 of each one's largest value, at sizes that are not
multiples of the window (64x128 and 70x100: stage maps 16x32 ... 2x4 and 18x25 ... 3x4, all
padded) and at 224x224 (Swin-T's 7x7 last stage: one window, shifted onto itself).
"""
import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg.models import SwinTransformer
from helpers import host

pytestmark = pytest.mark.models

SWIN_T = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7)
SMALL = dict(embed_dim=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=7)   # Swin-T's rules, smaller


def official_swin(torch):
    """The official segmentation backbone's classes, in torch (see the module docstring)."""
    nn, F = torch.nn, torch.nn.functional  # noqa: N806 - the official file's names

    class Mlp(nn.Module):
        def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
            super().__init__()
            out_features = out_features or in_features
            hidden_features = hidden_features or in_features
            self.fc1 = nn.Linear(in_features, hidden_features)
            self.act = act_layer()
            self.fc2 = nn.Linear(hidden_features, out_features)
            self.drop = nn.Dropout(drop)

        def forward(self, x):
            x = self.fc1(x)
            x = self.act(x)
            x = self.drop(x)
            x = self.fc2(x)
            x = self.drop(x)
            return x

    def window_partition(x, window_size):
        B, H, W, C = x.shape  # noqa: N806
        x = x.view(B, H // window_size, window_size, W // window_size, window_size, C)
        windows = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, C)
        return windows

    def window_reverse(windows, window_size, H, W):  # noqa: N803
        B = int(windows.shape[0] / (H * W / window_size / window_size))  # noqa: N806
        x = windows.view(B, H // window_size, W // window_size, window_size, window_size, -1)
        x = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)
        return x

    class WindowAttention(nn.Module):
        def __init__(self, dim, window_size, num_heads, qkv_bias=True, qk_scale=None, attn_drop=0.0, proj_drop=0.0):
            super().__init__()
            self.dim = dim
            self.window_size = window_size  # Wh, Ww
            self.num_heads = num_heads
            head_dim = dim // num_heads
            self.scale = qk_scale or head_dim ** -0.5
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros((2 * window_size[0] - 1) * (2 * window_size[1] - 1), num_heads))
            coords_h = torch.arange(self.window_size[0])
            coords_w = torch.arange(self.window_size[1])
            coords = torch.stack(torch.meshgrid([coords_h, coords_w], indexing="ij"))  # 2, Wh, Ww
            coords_flatten = torch.flatten(coords, 1)  # 2, Wh*Ww
            relative_coords = coords_flatten[:, :, None] - coords_flatten[:, None, :]  # 2, Wh*Ww, Wh*Ww
            relative_coords = relative_coords.permute(1, 2, 0).contiguous()  # Wh*Ww, Wh*Ww, 2
            relative_coords[:, :, 0] += self.window_size[0] - 1  # shift to start from 0
            relative_coords[:, :, 1] += self.window_size[1] - 1
            relative_coords[:, :, 0] *= 2 * self.window_size[1] - 1
            relative_position_index = relative_coords.sum(-1)  # Wh*Ww, Wh*Ww
            self.register_buffer("relative_position_index", relative_position_index)
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
            self.attn_drop = nn.Dropout(attn_drop)
            self.proj = nn.Linear(dim, dim)
            self.proj_drop = nn.Dropout(proj_drop)
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x, mask=None):
            B_, N, C = x.shape  # noqa: N806
            qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            q = q * self.scale
            attn = (q @ k.transpose(-2, -1))
            relative_position_bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(
                self.window_size[0] * self.window_size[1], self.window_size[0] * self.window_size[1], -1)
            relative_position_bias = relative_position_bias.permute(2, 0, 1).contiguous()  # nH, Wh*Ww, Wh*Ww
            attn = attn + relative_position_bias.unsqueeze(0)
            if mask is not None:
                nW = mask.shape[0]  # noqa: N806
                attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.num_heads, N, N)
                attn = self.softmax(attn)
            else:
                attn = self.softmax(attn)
            attn = self.attn_drop(attn)
            x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
            x = self.proj(x)
            x = self.proj_drop(x)
            return x

    class SwinTransformerBlock(nn.Module):
        def __init__(self, dim, num_heads, window_size=7, shift_size=0, mlp_ratio=4.0, qkv_bias=True,
                     qk_scale=None):
            super().__init__()
            self.dim = dim
            self.num_heads = num_heads
            self.window_size = window_size
            self.shift_size = shift_size
            self.mlp_ratio = mlp_ratio
            assert 0 <= self.shift_size < self.window_size, "shift_size must in 0-window_size"
            self.norm1 = nn.LayerNorm(dim)
            self.attn = WindowAttention(dim, window_size=(self.window_size, self.window_size), num_heads=num_heads,
                                        qkv_bias=qkv_bias, qk_scale=qk_scale)
            self.drop_path = nn.Identity()
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))
            self.H = None
            self.W = None

        def forward(self, x, mask_matrix):
            B, L, C = x.shape  # noqa: N806
            H, W = self.H, self.W  # noqa: N806
            assert L == H * W, "input feature has wrong size"
            shortcut = x
            x = self.norm1(x)
            x = x.view(B, H, W, C)
            # pad feature maps to multiples of window size
            pad_l = pad_t = 0
            pad_r = (self.window_size - W % self.window_size) % self.window_size
            pad_b = (self.window_size - H % self.window_size) % self.window_size
            x = F.pad(x, (0, 0, pad_l, pad_r, pad_t, pad_b))
            _, Hp, Wp, _ = x.shape  # noqa: N806
            # cyclic shift
            if self.shift_size > 0:
                shifted_x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
                attn_mask = mask_matrix
            else:
                shifted_x = x
                attn_mask = None
            x_windows = window_partition(shifted_x, self.window_size)  # nW*B, window_size, window_size, C
            x_windows = x_windows.view(-1, self.window_size * self.window_size, C)
            attn_windows = self.attn(x_windows, mask=attn_mask)  # nW*B, window_size*window_size, C
            attn_windows = attn_windows.view(-1, self.window_size, self.window_size, C)
            shifted_x = window_reverse(attn_windows, self.window_size, Hp, Wp)  # B H' W' C
            if self.shift_size > 0:
                x = torch.roll(shifted_x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
            else:
                x = shifted_x
            if pad_r > 0 or pad_b > 0:
                x = x[:, :H, :W, :].contiguous()
            x = x.view(B, H * W, C)
            x = shortcut + self.drop_path(x)
            x = x + self.drop_path(self.mlp(self.norm2(x)))
            return x

    class PatchMerging(nn.Module):
        def __init__(self, dim, norm_layer=nn.LayerNorm):
            super().__init__()
            self.dim = dim
            self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
            self.norm = norm_layer(4 * dim)

        def forward(self, x, H, W):  # noqa: N803
            B, L, C = x.shape  # noqa: N806
            assert L == H * W, "input feature has wrong size"
            x = x.view(B, H, W, C)
            pad_input = (H % 2 == 1) or (W % 2 == 1)
            if pad_input:
                x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
            x0 = x[:, 0::2, 0::2, :]  # B H/2 W/2 C
            x1 = x[:, 1::2, 0::2, :]  # B H/2 W/2 C
            x2 = x[:, 0::2, 1::2, :]  # B H/2 W/2 C
            x3 = x[:, 1::2, 1::2, :]  # B H/2 W/2 C
            x = torch.cat([x0, x1, x2, x3], -1)  # B H/2 W/2 4*C
            x = x.view(B, -1, 4 * C)  # B H/2*W/2 4*C
            x = self.norm(x)
            x = self.reduction(x)
            return x

    class BasicLayer(nn.Module):
        def __init__(self, dim, depth, num_heads, window_size=7, mlp_ratio=4.0, downsample=None):
            super().__init__()
            self.window_size = window_size
            self.shift_size = window_size // 2
            self.depth = depth
            self.blocks = nn.ModuleList([
                SwinTransformerBlock(dim=dim, num_heads=num_heads, window_size=window_size,
                                     shift_size=0 if (i % 2 == 0) else window_size // 2, mlp_ratio=mlp_ratio)
                for i in range(depth)])
            self.downsample = downsample(dim=dim) if downsample is not None else None

        def forward(self, x, H, W):  # noqa: N803
            # calculate attention mask for SW-MSA
            Hp = int(numpy.ceil(H / self.window_size)) * self.window_size  # noqa: N806
            Wp = int(numpy.ceil(W / self.window_size)) * self.window_size  # noqa: N806
            img_mask = torch.zeros((1, Hp, Wp, 1), device=x.device)  # 1 Hp Wp 1
            h_slices = (slice(0, -self.window_size),
                        slice(-self.window_size, -self.shift_size),
                        slice(-self.shift_size, None))
            w_slices = (slice(0, -self.window_size),
                        slice(-self.window_size, -self.shift_size),
                        slice(-self.shift_size, None))
            cnt = 0
            for h in h_slices:
                for w in w_slices:
                    img_mask[:, h, w, :] = cnt
                    cnt += 1
            mask_windows = window_partition(img_mask, self.window_size)  # nW, window_size, window_size, 1
            mask_windows = mask_windows.view(-1, self.window_size * self.window_size)
            attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
            attn_mask = attn_mask.masked_fill(attn_mask != 0, float(-100.0)).masked_fill(attn_mask == 0, float(0.0))
            for blk in self.blocks:
                blk.H, blk.W = H, W
                x = blk(x, attn_mask)
            if self.downsample is not None:
                x_down = self.downsample(x, H, W)
                Wh, Ww = (H + 1) // 2, (W + 1) // 2  # noqa: N806
                return x, H, W, x_down, Wh, Ww
            return x, H, W, x, H, W

    class PatchEmbed(nn.Module):
        def __init__(self, patch_size=4, in_chans=3, embed_dim=96, norm_layer=None):
            super().__init__()
            self.patch_size = (patch_size, patch_size)
            self.in_chans = in_chans
            self.embed_dim = embed_dim
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
            self.norm = norm_layer(embed_dim) if norm_layer is not None else None

        def forward(self, x):
            _, _, H, W = x.size()  # noqa: N806
            if W % self.patch_size[1] != 0:
                x = F.pad(x, (0, self.patch_size[1] - W % self.patch_size[1]))
            if H % self.patch_size[0] != 0:
                x = F.pad(x, (0, 0, 0, self.patch_size[0] - H % self.patch_size[0]))
            x = self.proj(x)  # B C Wh Ww
            if self.norm is not None:
                Wh, Ww = x.size(2), x.size(3)  # noqa: N806
                x = x.flatten(2).transpose(1, 2)
                x = self.norm(x)
                x = x.transpose(1, 2).view(-1, self.embed_dim, Wh, Ww)
            return x

    class SwinTransformer(nn.Module):
        def __init__(self, patch_size=4, in_chans=3, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                     window_size=7, mlp_ratio=4.0, out_indices=(0, 1, 2, 3)):
            super().__init__()
            self.num_layers = len(depths)
            self.embed_dim = embed_dim
            self.out_indices = out_indices
            self.patch_embed = PatchEmbed(patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
                                          norm_layer=nn.LayerNorm)
            self.pos_drop = nn.Dropout(p=0.0)
            self.layers = nn.ModuleList()
            for i_layer in range(self.num_layers):
                layer = BasicLayer(dim=int(embed_dim * 2 ** i_layer), depth=depths[i_layer],
                                   num_heads=num_heads[i_layer], window_size=window_size, mlp_ratio=mlp_ratio,
                                   downsample=PatchMerging if (i_layer < self.num_layers - 1) else None)
                self.layers.append(layer)
            num_features = [int(embed_dim * 2 ** i) for i in range(self.num_layers)]
            self.num_features = num_features
            for i_layer in out_indices:
                layer = nn.LayerNorm(num_features[i_layer])
                layer_name = f"norm{i_layer}"
                self.add_module(layer_name, layer)

        def forward(self, x):
            x = self.patch_embed(x)
            Wh, Ww = x.size(2), x.size(3)  # noqa: N806
            x = x.flatten(2).transpose(1, 2)
            x = self.pos_drop(x)
            outs = []
            for i in range(self.num_layers):
                layer = self.layers[i]
                x_out, H, W, x, Wh, Ww = layer(x, Wh, Ww)  # noqa: N806
                if i in self.out_indices:
                    norm_layer = getattr(self, f"norm{i}")
                    x_out = norm_layer(x_out)
                    out = x_out.view(-1, H, W, self.num_features[i]).permute(0, 3, 1, 2).contiguous()
                    outs.append(out)
            return tuple(outs)

    return SwinTransformer


def perturbed(model, seed, scale=0.05):
    """Generic weights: every parameter plus normal noise (nonzero biases, so the padded tokens'
    keys and values are not zero, and LayerNorms off their ones and zeros)."""
    rng = numpy.random.default_rng(seed)
    for p in model.parameters():
        p.data = shim.to_backend(host(p) + rng.normal(0, scale, p.shape), p.backend)
    return model


def relative_error(ours, theirs):
    """max |ours - theirs| over max |theirs|: the error on the scale of the quantity."""
    return float(numpy.abs(ours - theirs).max() / numpy.abs(theirs).max())


def compare_with_official(torch, config, size, seed=0, mask_padding=False):
    """Our backbone and the official one with our weights, in float64: the largest relative error of
    the outputs, the input gradient and the parameter gradients (one number each)."""
    ours = perturbed(SwinTransformer(**config, mask_padding=mask_padding).double(), seed)
    theirs = official_swin(torch)(**config)
    missing, unexpected = theirs.load_state_dict({k: torch.from_numpy(host(v)) for k, v in ours.state_dict().items()},
                                                 strict=False)
    assert not unexpected and all(k.endswith("relative_position_index") for k in missing), (missing, unexpected)
    rng = numpy.random.default_rng(seed)
    image = rng.standard_normal((2, 3) + size)
    x = mt.tensor(image, requires_grad=True)
    tx = torch.from_numpy(image.copy()).requires_grad_(True)
    outs, touts = ours(x), theirs(tx)
    errors = {"output": max(relative_error(host(o), t.detach().numpy()) for o, t in zip(outs, touts))}
    upstream = [rng.standard_normal(t.shape) for t in touts]
    sum((o * mt.tensor(u)).sum() for o, u in zip(outs, upstream)).backward()
    sum((t * torch.from_numpy(u)).sum() for t, u in zip(touts, upstream)).backward()
    errors["input gradient"] = relative_error(host(x.grad), tx.grad.numpy())
    official = dict(theirs.named_parameters())
    errors["parameter gradients"] = max(relative_error(host(p.grad), official[name].grad.numpy())
                                        for name, p in ours.named_parameters())
    return errors


CASES = [(SMALL, (64, 128)), (SMALL, (70, 100)), (SMALL, (224, 224)), (SMALL, (36, 52))]


@pytest.mark.parametrize("config, size", CASES, ids=[f"{c['embed_dim']}-{s[0]}x{s[1]}" for c, s in CASES])
def test_backbone_matches_the_official_segmentation_backbone(torch, config, size):
    """Outputs and gradients to 1e-10 (measured: at most 6e-15). 36x52 makes stage maps of 9x13,
    5x7, 3x4 and 2x2: every stage from the second is smaller than one window."""
    errors = compare_with_official(torch, config, size)
    assert max(errors.values()) <= 1e-10, errors


@pytest.mark.slow
@pytest.mark.parametrize("size", [(70, 100), (224, 224)])
def test_swin_t_matches_the_official_segmentation_backbone(torch, size):
    """Swin-T itself (the 7x7 last stage at 224x224: one window, shifted onto itself and masked).
    Measured: at most 8e-15 (the parameter gradients)."""
    errors = compare_with_official(torch, SWIN_T, size)
    assert max(errors.values()) <= 1e-10, errors


def test_mask_padding_is_unlike_the_official_code(torch):
    """The option does what it says: at a size that needs padding it changes the features (by far
    more than rounding), at multiples of the window (and larger) it changes nothing."""
    assert compare_with_official(torch, SMALL, (64, 128), mask_padding=True)["output"] > 1e-3
    assert max(compare_with_official(torch, SMALL, (448, 448), mask_padding=True).values()) <= 1e-10


def test_swin_t_has_the_official_parameter_count():
    """27,520,698: the official Swin-T segmentation backbone (its classifier's 28,288,354 less the
    1000-class head and final norm, plus the four output norms)."""
    model = SwinTransformer(**SWIN_T)
    assert sum(p.numel() for p in model.parameters()) == 27_520_698
