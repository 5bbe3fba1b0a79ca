"""The segmentation models: shapes, parameter counts by formula, state_dict, printing, summary, torch twins,
learning, gradients, and what makes each model what it is (HRNet's resolution, DeepLab's taps,
SegNet's switches).

Parameter counts are recomputed here from each architecture's description, layer by layer, not
read from the model. The torch twins of HRNet and Swin are written here from the official code's
structure with the same parameter names: our state_dict loads into them unchanged, and outputs
and every parameter's gradient agree in float64.
"""
import io
import re
from collections import OrderedDict

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import functional as F
from minitorch_seg import models, optim
from minitorch_seg.models.summary import layer_table, trace
from minitorch_seg.testing import make

pytestmark = pytest.mark.models

NAMES = models.available()
# Tiny widths for the float64 gradient checks (Swin's window 4 shifts at a 32x32 input).
TINY = {
    "unet": dict(width=4, depth=3),
    "hrnet": dict(width=4, depth=1, stem_width=8),
    "swin": dict(width=8, depths=(2, 2, 1, 1), num_heads=(1, 2, 2, 4), window_size=4, decoder_channels=8),
    "deeplab": dict(width=4, depth=1, dropout=0.0),
    "segnet": dict(width=4, depth=1),
}


def host(t):
    return numpy.array(shim.to_numpy(t.data))


def assert_one_sentence(message):
    text = str(message)
    assert text.endswith(".") and "\n" not in text, text
    assert not re.search(r"\.\s+[A-Z]", text), f"more than one sentence: {text}"


def count(model):
    return sum(p.numel() for p in model.parameters())


# ---- shapes, names, bad input -------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_logits_have_the_input_size_at_two_sizes(backend, name):
    model = models.build(name, num_classes=5)
    for shape in [(2, 3, 64, 64), (1, 3, 32, 96)]:
        y = model(mt.randn(*shape))
        assert y.shape == (shape[0], 5) + shape[2:]
        assert y.backend == backend


def test_the_registry_lists_every_model():
    assert models.available() == ["deeplab", "hrnet", "segnet", "swin", "unet"]
    with pytest.raises(ValueError, match="known models: deeplab, hrnet, segnet, swin, unet") as error:
        models.build("resnet")
    assert_one_sentence(error.value)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_clear_sentence(name):
    model = models.build(name, **TINY[name])
    for shape in [(1, 4, 64, 64), (1, 1, 64, 64), (1, 3, 60, 64), (1, 3, 64, 48), (3, 64, 64)]:
        with pytest.raises(ValueError, match=r"expects images \(N, 3, H, W\) with H and W multiples of 32") as error:
            model(mt.zeros(*shape))
        assert_one_sentence(error.value)
        assert str(shape) in str(error.value)


@pytest.mark.parametrize("name", NAMES)
def test_print_shows_the_structure(name):
    model = models.build(name)
    text = repr(model)
    assert text.startswith(type(model).__name__ + "(")
    for child in model._modules:
        assert f"({child}): " in text
    assert "Conv2d(" in text and "BatchNorm2d(" in text


# ---- parameter counts, from the architectures' descriptions --------------------------------------
def conv(cin, cout, k, bias=False):
    return cin * cout * k * k + (cout if bias else 0)


def bn(c):
    return 2 * c            # weight and bias (running statistics are buffers)


ln = bn


def linear(cin, cout, bias=True):
    return cin * cout + (cout if bias else 0)


def basic_block(cin, cout, stride=1):
    shortcut = conv(cin, cout, 1) + bn(cout) if cin != cout or stride != 1 else 0
    return conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3) + bn(cout) + shortcut


def unet_params(classes, width=16, depth=4):
    ch = [width * 2 ** level for level in range(depth)]
    double = lambda a, b: conv(a, b, 3) + bn(b) + conv(b, b, 3) + bn(b)  # noqa: E731
    down = double(3, ch[0]) + sum(double(a, b) for a, b in zip(ch, ch[1:]))
    up = sum(a * b * 2 * 2 + b + double(2 * b, b) for a, b in zip(ch[::-1], ch[-2::-1]))   # 2x2 transposed conv
    return down + up + conv(ch[0], classes, 1, bias=True)


def hrnet_params(classes, width=16, depth=2, num_branches=4, num_modules=(1, 1, 1), stem_width=32):
    stem = conv(3, stem_width, 3) + bn(stem_width) + conv(stem_width, stem_width, 3) + bn(stem_width)
    total = stem + depth * basic_block(stem_width, stem_width)
    previous = [stem_width]
    for branches, modules in zip(range(2, num_branches + 1), num_modules):
        ch = [width * 2 ** b for b in range(branches)]
        total += sum(conv(p, c, 3) + bn(c) for p, c in zip(previous, ch) if p != c)   # kept branches
        total += conv(previous[-1], ch[-1], 3) + bn(ch[-1])                            # the new one, one halving
        module = sum(depth * basic_block(c, c) for c in ch)
        for i in range(branches):
            for j in range(branches):
                if j > i:     # up: 1x1 conv + BN
                    module += conv(ch[j], ch[i], 1) + bn(ch[i])
                elif j < i:   # down: i - j strided 3x3 convs, all but the last keeping branch j's width
                    module += (i - j - 1) * (conv(ch[j], ch[j], 3) + bn(ch[j])) + conv(ch[j], ch[i], 3) + bn(ch[i])
        total += modules * module
        previous = ch
    c = sum(previous)
    return total + conv(c, c, 1, bias=True) + bn(c) + conv(c, classes, 1, bias=True)


def swin_params(classes, width=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=8, mlp_ratio=4,
                decoder_channels=64):
    dims = [width * 2 ** s for s in range(len(depths))]
    total = conv(3, width, 4, bias=True) + ln(width)                               # patch embedding
    for s, (c, depth, heads) in enumerate(zip(dims, depths, num_heads)):
        table = (2 * window_size - 1) ** 2 * heads                                 # relative position bias
        block = ln(c) + linear(c, 3 * c) + table + linear(c, c) + ln(c) + linear(c, mlp_ratio * c) + \
            linear(mlp_ratio * c, c)
        total += depth * block + ln(c)                                              # + the stage's output norm
        if s < len(depths) - 1:
            total += ln(4 * c) + linear(4 * c, 2 * c, bias=False)                    # patch merging
    d = decoder_channels
    head = sum(conv(c, d, 1) + bn(d) for c in dims) + (len(dims) - 1) * (conv(d, d, 3) + bn(d))
    head += conv(len(dims) * d, d, 3) + bn(d) + conv(d, classes, 1, bias=True)
    return total + head


def deeplab_params(classes, width=32, depth=2, rates=3, aspp_channels=None):
    a = aspp_channels or 4 * width
    total = conv(3, width, 3) + bn(width)
    previous = width
    for c in (width, 2 * width, 4 * width, 8 * width):
        total += basic_block(previous, c) + (depth - 1) * basic_block(c, c)
        previous = c
    aspp = conv(previous, a, 1) + bn(a) + rates * (conv(previous, a, 3) + bn(a)) + conv(previous, a, 1, bias=True)
    aspp += conv((2 + rates) * a, a, 1) + bn(a)
    return total + aspp + conv(a, a, 3) + bn(a) + conv(a, classes, 1, bias=True)


def segnet_params(classes, width=16, depth=2, levels=4):
    ch = [width * 2 ** level for level in range(levels)]
    cbr = lambda a, b: conv(a, b, 3) + bn(b)  # noqa: E731
    encoder = sum(cbr(a, b) + (depth - 1) * cbr(b, b) for a, b in zip([3] + ch, ch))
    decoder = sum((depth - 1) * cbr(c, c) + cbr(c, ch[max(level - 1, 0)]) for level, c in enumerate(ch))
    return encoder + decoder + conv(ch[0], classes, 3, bias=True)


FORMULAS = {"unet": unet_params, "hrnet": hrnet_params, "swin": swin_params, "deeplab": deeplab_params,
            "segnet": segnet_params}
OTHER_OPTIONS = {
    "unet": dict(width=8, depth=3),
    "hrnet": dict(width=8, depth=1, num_branches=3, num_modules=(2, 1), stem_width=16),
    "swin": dict(width=16, depths=(2, 2, 4, 2), num_heads=(2, 2, 4, 4), window_size=4, decoder_channels=32),
    "deeplab": dict(width=8, depth=1, aspp_channels=24),
    "segnet": dict(width=8, depth=3, levels=3),
}


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_match_the_formulas(name):
    assert count(models.build(name, num_classes=19)) == FORMULAS[name](19)
    options = OTHER_OPTIONS[name]
    assert count(models.build(name, num_classes=7, **options)) == FORMULAS[name](7, **options)


# ---- state_dict --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    model = models.build(name, **TINY[name])
    model(mt.randn(2, 3, 32, 64))                         # training: BatchNorm's running statistics move
    saved = {k: host(v).copy() for k, v in model.state_dict().items()}   # as a checkpoint file holds them
    mt.manual_seed(1)
    other = models.build(name, **TINY[name])
    assert any(not numpy.array_equal(saved[k], host(v)) for k, v in other.state_dict().items())
    other.load_state_dict(saved)
    for key, value in other.state_dict().items():
        numpy.testing.assert_array_equal(host(value), saved[key], err_msg=key)
    x = mt.randn(1, 3, 32, 64)
    model.eval(), other.eval()
    numpy.testing.assert_array_equal(host(model(x)), host(other(x)))


# ---- summary -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_summary_rows_totals_and_conv_flops(name):
    model = models.build(name)
    size = (1, 3, 64, 128)
    out = io.StringIO()
    models.summary(model, size, file=out)
    text = out.getvalue()
    rows = layer_table(model, size)
    assert len(text.splitlines()) == len(rows) + 3
    assert f"Total params: {count(model):,}" in text and "Total FLOPs: " in text
    assert sum(row.params for row in rows) == count(model)
    assert model.training                                  # the mode is restored
    conv_rows = [row for row in rows if row.type == "Conv2d"]
    assert conv_rows and all(row.flops > 0 for row in conv_rows)
    first = conv_rows[0]
    module = dict(model.named_modules())[first.name]
    n, c_out, h, w = eval(first.output_shape)
    kh, kw = module.kernel_size
    assert first.flops == 2 * kh * kw * module.in_channels * c_out * h * w * n


def test_summary_flops_by_hand():
    rows = {row.name: row for row in layer_table(models.build("hrnet"), (1, 3, 64, 128))}
    assert rows["conv1"].flops == 2 * 3 * 3 * 3 * 32 * 32 * 64                     # 3 -> 32 channels at 32x64
    assert rows["conv1"].output_shape == "(1, 32, 32, 64)"
    rows = {row.name: row for row in layer_table(models.build("unet"), (2, 3, 64, 64))}
    assert rows["up.0.up"].flops == 2 * 2 * 2 * 128 * 64 * 8 * 8 * 2              # 2x2 transposed conv from 8x8
    rows = {row.name: row for row in layer_table(models.build("swin"), (1, 3, 64, 64))}
    attention = rows["backbone.layers.0.blocks.0.attn"]                          # 16x16 map: 4 windows of 64
    assert attention.flops == 4 * 4 * 64 * 64 * 32 and attention.output_shape == "(4, 64, 32)"
    assert rows["backbone.layers.0.blocks.0.attn.qkv"].flops == 2 * 32 * 96 * 256


# ---- torch twins -------------------------------------------------------------------------------
def torch_twins(torch):
    """HRNet and Swin written with torch from the official code's structure; the same parameter names."""
    nn, tf = torch.nn, torch.nn.functional

    def cbr(cin, cout, k=3, stride=1, relu=True):
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)

    def up(x, size):
        return tf.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)

    class BasicBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            return tf.relu(self.bn2(self.conv2(tf.relu(self.bn1(self.conv1(x))))) + x)

    class HighResolutionModule(nn.Module):     # seg_hrnet.py's, None on the diagonal as there
        def __init__(self, ch, blocks):
            super().__init__()
            self.branches = nn.ModuleList([nn.Sequential(*[BasicBlock(c) for _ in range(blocks)]) for c in ch])
            rows = []
            for i in range(len(ch)):
                row = []
                for j in range(len(ch)):
                    if j > i:
                        row.append(nn.Sequential(nn.Conv2d(ch[j], ch[i], 1, bias=False), nn.BatchNorm2d(ch[i])))
                    elif j == i:
                        row.append(None)
                    else:
                        last = i - j - 1
                        row.append(nn.Sequential(*[cbr(ch[j], ch[i] if k == last else ch[j], 3, 2, relu=k < last)
                                                   for k in range(i - j)]))
                rows.append(nn.ModuleList(row))
            self.fuse_layers = nn.ModuleList(rows)

        def forward(self, xs):
            xs = [branch(x) for branch, x in zip(self.branches, xs)]
            out = []
            for i, row in enumerate(self.fuse_layers):
                y = xs[i]
                for j, layer in enumerate(row):
                    if j > i:
                        y = y + up(layer(xs[j]), xs[i].shape[2:])
                    elif j < i:
                        y = y + layer(xs[j])
                out.append(tf.relu(y))
            return out

    class HRNet(nn.Module):
        def __init__(self, classes=19, width=16, depth=2, num_branches=4, num_modules=(1, 1, 1), stem_width=32):
            super().__init__()
            s = stem_width
            self.conv1, self.bn1 = nn.Conv2d(3, s, 3, 2, 1, bias=False), nn.BatchNorm2d(s)
            self.conv2, self.bn2 = nn.Conv2d(s, s, 3, 2, 1, bias=False), nn.BatchNorm2d(s)
            self.layer1 = nn.Sequential(*[BasicBlock(s) for _ in range(depth)])
            previous = [s]
            for stage, modules in zip(range(2, num_branches + 1), num_modules):
                ch = [width * 2 ** b for b in range(stage)]
                kept = [None if p == c else cbr(p, c) for p, c in zip(previous, ch)]
                new = nn.Sequential(cbr(previous[-1], ch[-1], 3, 2))
                setattr(self, f"transition{stage - 1}", nn.ModuleList(kept + [new]))
                stage_modules = [HighResolutionModule(ch, depth) for _ in range(modules)]
                setattr(self, f"stage{stage}", nn.Sequential(*stage_modules))
                previous = ch
            c = sum(previous)
            self.last_layer = nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, classes, 1))
            self.stages = num_branches

        def forward(self, x):
            size = x.shape[2:]
            x = tf.relu(self.bn2(self.conv2(tf.relu(self.bn1(self.conv1(x))))))
            xs = [self.layer1(x)]
            for stage in range(2, self.stages + 1):
                layers = getattr(self, f"transition{stage - 1}")
                xs = [y if layer is None else layer(y) for layer, y in zip(layers, xs + [xs[-1]])]
                for module in getattr(self, f"stage{stage}"):
                    xs = module(xs)
            top = xs[0].shape[2:]
            return up(self.last_layer(torch.cat([xs[0]] + [up(y, top) for y in xs[1:]], 1)), size)

    # ---- Swin: the official classes' names; the window rules and padding mask of nn.swin ----
    def effective_window(h, w, window, shift):
        if h <= window and w <= window:
            return (h, w), 0
        if min(h, w) <= window:
            return (min(h, w),) * 2, 0
        return (window, window), shift

    def partition(x, wh, ww):                                           # (B, H, W, C) -> (B*nW, wh*ww, C)
        b, h, w, c = x.shape
        return x.view(b, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, wh * ww, c)

    def reverse(windows, wh, ww, h, w):                                 # (B*nW, wh*ww, C) -> (B, H, W, C)
        c = windows.shape[-1]
        return windows.view(-1, h // wh, w // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)

    def blocked(h, w, wh, ww, shift):
        """(nW, N, N) True where query i may not see key j: the official region slices, plus padded keys."""
        hp, wp = h + (-h) % wh, w + (-w) % ww
        region, padded = torch.zeros(1, hp, wp, 1), torch.zeros(1, hp, wp, 1)

        def slices(n):
            return (slice(0, -n), slice(-n, -shift), slice(-shift, None)) if shift else (slice(None),)
        label = 0
        for rows in slices(wh):
            for cols in slices(ww):
                region[:, rows, cols] = label
                label += 1
        padded[:, h:], padded[:, :, w:] = 1, 1
        padded = torch.roll(padded, (-shift, -shift), (1, 2))
        region, padded = partition(region, wh, ww)[..., 0], partition(padded, wh, ww)[..., 0]
        return (region[:, :, None] != region[:, None, :]) | (padded[:, None, :] > 0)

    class WindowAttention(nn.Module):
        def __init__(self, dim, window, heads):
            super().__init__()
            self.window, self.heads, self.scale = window, heads, (dim // heads) ** -0.5
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

        def forward(self, x, wh, ww, mask):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = (q * self.scale) @ k.transpose(-2, -1)
            coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
            rel = coords[:, :, None] - coords[:, None, :]
            index = (rel[0] + self.window - 1) * (2 * self.window - 1) + rel[1] + self.window - 1
            attn = attn + self.relative_position_bias_table[index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
            if mask is not None:
                nw = mask.shape[0]
                attn = attn.view(b // nw, nw, self.heads, n, n)
                attn = attn.masked_fill(mask[None, :, None], -torch.finfo(x.dtype).max / 4).view(b, self.heads, n, n)
            return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))

    class SwinTransformerBlock(nn.Module):
        def __init__(self, dim, heads, window, shift):
            super().__init__()
            self.window, self.shift = window, shift
            self.norm1, self.attn = nn.LayerNorm(dim), WindowAttention(dim, window, heads)
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(OrderedDict(fc1=nn.Linear(dim, 4 * dim), act=nn.GELU(),
                                                 fc2=nn.Linear(4 * dim, dim)))

        def forward(self, x, h, w):
            b, _, c = x.shape
            (wh, ww), shift = effective_window(h, w, self.window, self.shift)
            y = tf.pad(self.norm1(x).view(b, h, w, c), (0, 0, 0, (-w) % ww, 0, (-h) % wh))
            hp, wp = y.shape[1:3]
            mask = blocked(h, w, wh, ww, shift)
            y = torch.roll(y, (-shift, -shift), (1, 2))
            y = reverse(self.attn(partition(y, wh, ww), wh, ww, mask if mask.any() else None), wh, ww, hp, wp)
            x = x + torch.roll(y, (shift, shift), (1, 2))[:, :h, :w].reshape(b, h * w, c)
            return x + self.mlp(self.norm2(x))

    class PatchMerging(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.reduction, self.norm = nn.Linear(4 * dim, 2 * dim, bias=False), nn.LayerNorm(4 * dim)

        def forward(self, x, h, w):
            b, _, c = x.shape
            x = tf.pad(x.view(b, h, w, c), (0, 0, 0, w % 2, 0, h % 2))
            x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
            return self.reduction(self.norm(x.reshape(b, -1, 4 * c)))

    class SwinTransformer(nn.Module):
        def __init__(self, embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=8):
            super().__init__()
            self.patch_embed = nn.ModuleDict(dict(proj=nn.Conv2d(3, embed_dim, 4, 4), norm=nn.LayerNorm(embed_dim)))
            self.layers = nn.ModuleList()
            for s, (depth, heads) in enumerate(zip(depths, num_heads)):
                dim = embed_dim * 2 ** s
                layer = nn.ModuleDict(dict(blocks=nn.ModuleList([
                    SwinTransformerBlock(dim, heads, window_size, 0 if i % 2 == 0 else window_size // 2)
                    for i in range(depth)])))
                if s < len(depths) - 1:
                    layer["downsample"] = PatchMerging(dim)
                self.layers.append(layer)
                self.add_module(f"norm{s}", nn.LayerNorm(dim))

        def forward(self, x):
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
        def __init__(self, in_channels, d, classes):
            super().__init__()
            self.lateral_convs = nn.ModuleList([cbr(c, d, 1) for c in in_channels])
            self.fpn_convs = nn.ModuleList([cbr(d, d) for _ in in_channels[:-1]])
            self.fpn_bottleneck = cbr(len(in_channels) * d, d)
            self.conv_seg = nn.Conv2d(d, classes, 1)

        def forward(self, feats):
            lat = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
            for s in range(len(lat) - 1, 0, -1):
                lat[s - 1] = lat[s - 1] + up(lat[s], lat[s - 1].shape[2:])
            outs = [conv(x) for conv, x in zip(self.fpn_convs, lat)] + [lat[-1]]
            outs = [outs[0]] + [up(x, outs[0].shape[2:]) for x in outs[1:]]
            return self.conv_seg(self.fpn_bottleneck(torch.cat(outs, 1)))

    class SwinSeg(nn.Module):
        def __init__(self, classes=19, width=32, decoder_channels=64, **options):
            super().__init__()
            self.backbone = SwinTransformer(width, **options)
            self.decode_head = UPerHead([width * 2 ** s for s in range(4)], decoder_channels, classes)

        def forward(self, x):
            return up(self.decode_head(self.backbone(x)), x.shape[2:])

    return {"hrnet": HRNet, "swin": SwinSeg}


TWIN_CASES = [("hrnet", (1, 3, 64, 64)), ("hrnet", (1, 3, 32, 64)), ("hrnet", (2, 3, 32, 32)),
              ("swin", (1, 3, 64, 64)), ("swin", (1, 3, 32, 64)), ("swin", (1, 3, 96, 96))]


def assert_close_to_scale(actual, expected, scale, rel, what):
    """|actual - expected| <= rel * scale everywhere: errors measured against the largest value of the
    quantity (BatchNorm over a 1x1 or 1x2 map is ill-conditioned, so entries near zero carry the
    rounding of large ones)."""
    error = numpy.abs(actual - expected).max() / scale
    assert error <= rel, f"{what}: error {error:.2e} of the scale {scale:.3g}, allowed {rel:.0e}"


@pytest.mark.parametrize("name, shape", TWIN_CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in TWIN_CASES])
def test_torch_twin_loads_our_state_dict_and_agrees_in_float64(torch, name, shape):
    """Same names, same outputs, same gradients for the input and every parameter (training mode:
    BatchNorm on batch statistics), to 1e-7 of the largest gradient (measured: at most 3e-9 for
    HRNet, whose lowest branch is 1x1 or 1x2 at these sizes, 1e-14 for Swin). 64x64 shifts Swin's
    first stage; 32x64 shrinks its windows to the map; 96x96 pads its second stage (12x12 in
    windows of 8) and masks the padding."""
    ours = models.build(name).double()
    theirs = torch_twins(torch)[name]()
    assert list(theirs.state_dict()) == list(ours.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(host(v).copy()) for k, v in ours.state_dict().items()})
    x = make(shape, seed=1)
    tx = torch.from_numpy(host(x)).requires_grad_(True)
    out, expected = ours(x), theirs(tx)
    expected_out = expected.detach().numpy()
    assert_close_to_scale(host(out), expected_out, numpy.abs(expected_out).max(), 1e-10, "output")
    upstream = numpy.random.default_rng(0).standard_normal(out.shape)
    (out * mt.tensor(upstream)).sum().backward()
    (expected * torch.from_numpy(upstream)).sum().backward()
    assert_close_to_scale(host(x.grad), tx.grad.numpy(), numpy.abs(tx.grad.numpy()).max(), 1e-7, "input gradient")
    theirs_parameters = dict(theirs.named_parameters())
    scale = max(numpy.abs(p.grad.numpy()).max() for p in theirs_parameters.values())
    for key, p in ours.named_parameters():
        assert_close_to_scale(host(p.grad), theirs_parameters[key].grad.numpy(), scale, 1e-7, key)
    for key, buffer in theirs.state_dict().items():          # the running statistics moved alike
        numpy.testing.assert_allclose(host(ours.state_dict()[key]), buffer.numpy(), rtol=1e-9, atol=1e-12, err_msg=key)


# ---- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_whole_model_gradcheck_in_float64(name):
    """Every layer's hand-derived backward composed: the input gradient along 16 random directions
    (the parameters' gradients are checked against torch's by the twins)."""
    model = models.build(name, **TINY[name]).double()
    x = make((2, 3, 32, 32), seed=3)
    assert mt.gradcheck(model, (x,))


# ---- learning ----------------------------------------------------------------------------------
def toy_batch(classes=19, n=2, size=64, block=16, seed=0):
    """Images whose colour (plus noise) tells the class, constant on 16x16 blocks: learnable by every model."""
    rng = numpy.random.default_rng(seed)
    labels = rng.integers(0, classes, (n, size // block, size // block)).repeat(block, 1).repeat(block, 2)
    colours = rng.uniform(-1, 1, (classes, 3))
    images = colours[labels].transpose(0, 3, 1, 2) + 0.1 * rng.standard_normal((n, 3, size, size))
    return mt.tensor(images.astype(numpy.float32)), mt.tensor(labels)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_small_batch(name):
    """The default model, seed 0, float32, Adam: the loss falls below 20% of its first value within
    100 steps (measured: 5 to 25 steps; U-Net takes 30 at lr 1e-2, 17 at 3e-2)."""
    model = models.build(name)
    x, y = toy_batch()
    optimizer = optim.Adam(model.parameters(), lr=3e-2 if name == "unet" else 1e-2)
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if losses[-1] < 0.2 * losses[0]:
            break
    assert losses[-1] < 0.2 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses)} steps"


# ---- what makes each model itself --------------------------------------------------------------
def test_hrnet_highest_resolution_branch_never_drops_below_a_quarter():
    model = models.build("hrnet")
    h, w = 64, 128
    with mt.no_grad():
        _, calls = trace(model, mt.randn(1, 3, h, w))
    sizes = {call.name: call.output for call in calls}
    assert sizes["conv2"].shape[2:] == (h // 4, w // 4) and sizes["layer1"].shape[2:] == (h // 4, w // 4)
    stages = [call for call in calls if re.fullmatch(r"stage\d\.\d+", call.name)]
    assert [len(call.output) for call in stages] == [2, 3, 4]          # branches added in parallel
    for call in stages:                                                  # branch b at 1/2**(b+2), branch 0 at 1/4
        assert [y.shape[2:] for y in call.output] == [(h >> (b + 2), w >> (b + 2)) for b in range(len(call.output))]
    branch0 = [call for call in calls if re.match(r"stage\d\.\d+\.branches\.0(\.|$)", call.name)]
    assert branch0 and all(call.output.shape[2:] == (h // 4, w // 4) for call in branch0)
    assert sizes["last_layer"].shape[2:] == (h // 4, w // 4)
    assert model.stage4[0].fuse_layers[0][3][0].kernel_size == (1, 1)    # up: 1x1 conv (+ upsample)
    assert [step[0].stride for step in model.stage4[0].fuse_layers[3][0]] == [(2, 2)] * 3   # down: strided 3x3


def test_deeplab_rates_fit_the_map_and_every_off_centre_tap_is_read():
    """At the default 128x256 input the ASPP map is 8x16; for each atrous branch, the gradient of one
    output pixel reaches exactly its nine taps, rate apart, all inside the map. At the paper's
    rate 18 it would reach only the centre: a 1x1 conv."""
    model = models.build("deeplab").eval()
    with mt.no_grad():
        feature = host(model.backbone(mt.randn(1, 3, 128, 256)))
    assert feature.shape[2:] == (8, 16)
    aspp = model.classifier[0]
    assert aspp.atrous_rates == (1, 2, 3)

    def taps_read(conv, probe):
        x = mt.tensor(feature, requires_grad=True)
        conv(x)[0, :, probe[0], probe[1]].sum().backward()
        return {tuple(p) for p in numpy.argwhere(numpy.abs(host(x.grad)).sum(axis=(0, 1)) > 0)}

    for branch, rate in zip(aspp.convs[1:4], aspp.atrous_rates):
        conv = branch[0]
        assert conv.dilation == (rate, rate) and 2 * rate + 1 <= min(feature.shape[2:])
        probe = (rate, rate)
        assert taps_read(conv, probe) == {(rate + dy, rate + dx) for dy in (-rate, 0, rate) for dx in (-rate, 0, rate)}
    paper = mt.nn.Conv2d(feature.shape[1], 4, 3, padding=18, dilation=18)
    assert taps_read(paper, (4, 8)) == {(4, 8)}
    assert models.build("deeplab", output_stride=8).classifier[0].atrous_rates == (2, 4, 6)


def test_segnet_unpools_at_the_encoders_switches():
    model = models.build("segnet")
    with mt.no_grad():
        _, calls = trace(model, mt.randn(1, 3, 64, 64))
    pools = [call for call in calls if call.name == "pool"]
    unpools = [call for call in calls if call.name == "unpool"]
    assert len(pools) == len(unpools) == 4
    for pool, unpool in zip(pools, reversed(unpools)):
        before, (pooled, switches) = host(pool.inputs[0]), pool.output
        assert unpool.inputs[1] is switches                              # the decoder got this level's switches
        n, c, h, w = before.shape
        flat = host(switches).reshape(n, c, -1)
        # the switches are the argmax positions of the pooled windows
        numpy.testing.assert_array_equal(numpy.take_along_axis(before.reshape(n, c, -1), flat, 2),
                                         host(pooled).reshape(n, c, -1))
        # the unpooled map holds its input exactly at the switches and zeros everywhere else
        values, unpooled = host(unpool.inputs[0]).reshape(n, c, -1), host(unpool.output).reshape(n, c, -1)
        numpy.testing.assert_array_equal(numpy.take_along_axis(unpooled, flat, 2), values)
        elsewhere = numpy.ones_like(unpooled, dtype=bool)
        numpy.put_along_axis(elsewhere, flat, False, 2)
        assert not unpooled[elsewhere].any()


def test_swin_blocks_alternate_regular_and_shifted_windows():
    model = models.build("swin")
    for layer in model.backbone.layers:
        assert [block.shift_size for block in layer.blocks] == [(0, 0), (4, 4)] * (len(layer.blocks) // 2)
    assert [layer.downsample is not None for layer in model.backbone.layers] == [True, True, True, False]
    with mt.no_grad():
        feats = model.backbone(mt.randn(1, 3, 128, 256))
    assert [f.shape for f in feats] == [(1, 32 * 2 ** s, 32 >> s, 64 >> s) for s in range(4)]
