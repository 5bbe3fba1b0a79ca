"""ONNX for Swin: patch embedding, shifted-window blocks and patch merging at dynamic map sizes; UPerHead.

The map size (h, w) of each stage is a graph value, so everything that depends on it is
computed in the graph as the block computes it on the host: the zero padding up to the window
(``Pad``, amounts ``(window - h % window) % window``), the cyclic shift (``torch.roll``: two
``Slice`` and a ``Concat`` per axis), the window partition (``Reshape``/``Transpose`` with the
window counts), and the shift mask of ``functional.windows.window_mask`` (the three official
bands per axis from ``Range`` and comparisons; padded keys too with ``mask_padding``). The
relative position bias depends only on the window: it is gathered once, at export, into a
(heads, N, N) constant.
"""
import numpy

from ..functional.windows import mask_value, relative_position_index
from ..models.swin import SwinSeg, SwinTransformer, UPerHead
from ..nn.swin import Mlp, PatchEmbed, PatchMerging, WindowAttention
from .onnx_graph import INT_MAX
from .onnx_layers import emit, emitter, interpolate


def pad_amount(g, n, multiple):
    """(multiple - n % multiple) % multiple, as a shape value."""
    return g.arith("Mod", g.arith("Sub", multiple, g.arith("Mod", n, multiple)), multiple)


def roll(g, x, shifts, axes=(1, 2)):
    """torch.roll(x, shifts, axes) for constant shifts: y = cat(x[-s:], x[:-s]) along each axis."""
    for s, axis in zip(shifts, axes):
        if s:
            tail = g.op("Slice", x, g.ints(-s), g.ints(INT_MAX), g.ints(axis))
            head = g.op("Slice", x, g.ints(0), g.ints(-s), g.ints(axis))
            x = g.op("Concat", tail, head, axis=axis)
    return x


def partition(g, x, hp, wp, window, channels=None):
    """(B, Hp, Wp, C) -> (B*nW, Wh*Ww, C); without ``channels`` a (Hp, Wp) map -> (nW, Wh*Ww)."""
    wh, ww = window
    rows, cols = g.arith("Div", hp, wh), g.arith("Div", wp, ww)
    if channels is None:
        x = g.reshape(x, rows, wh, cols, ww)                                  # (Hp/Wh, Wh, Wp/Ww, Ww)
        return g.reshape(g.op("Transpose", x, perm=[0, 2, 1, 3]), -1, wh * ww)
    x = g.reshape(x, -1, rows, wh, cols, ww, channels)                        # (B, Hp/Wh, Wh, Wp/Ww, Ww, C)
    return g.reshape(g.op("Transpose", x, perm=[0, 1, 3, 2, 4, 5]), -1, wh * ww, channels)


def reverse(g, windows, hp, wp, window, channels):
    """(B*nW, Wh*Ww, C) -> (B, Hp, Wp, C)."""
    wh, ww = window
    x = g.reshape(windows, -1, g.arith("Div", hp, wh), g.arith("Div", wp, ww), wh, ww, channels)
    return g.reshape(g.op("Transpose", x, perm=[0, 1, 3, 2, 4, 5]), -1, hp, wp, channels)


def shift_mask(g, h, w, hp, wp, window, shift, mask_padding):
    """The (nW, N, N) additive mask of ``window_mask`` for a padded (hp, wp) map, or None when
    nothing is masked (no shift and no padding masked)."""
    if shift == (0, 0) and not mask_padding:
        return None
    zero, one = g.const(numpy.int64(0), "zero", numpy.int64), g.const(numpy.int64(1), "one", numpy.int64)
    bands, padded = [], []
    for n, real, size, s in ((hp, h, window[0], shift[0]), (wp, w, window[1], shift[1])):
        index = g.op("Range", zero, g.op("Squeeze", n, g.ints(0)), one)                  # (n,)
        band = g.op("Mul", index, g.ints(0))
        for edge in ((g.arith("Sub", n, size), g.arith("Sub", n, s)) if s else ()):   # the official slices
            band = g.op("Add", band, g.op("Cast", g.op("GreaterOrEqual", index, edge), to=7))
        bands.append(band)
        padded.append(g.op("GreaterOrEqual", g.op("Mod", g.op("Add", index, g.ints(s)), n), real))   # after the roll
    region = g.op("Add", g.op("Mul", g.op("Unsqueeze", bands[0], g.ints(1)), g.ints(3)),
                  g.op("Unsqueeze", bands[1], g.ints(0)))                                 # (Hp, Wp)
    labels = partition(g, region, hp, wp, window)                                         # (nW, N)
    blocked = g.op("Not", g.op("Equal", g.op("Unsqueeze", labels, g.ints(2)), g.op("Unsqueeze", labels, g.ints(1))))
    if mask_padding:
        pads = g.op("Or", g.op("Unsqueeze", padded[0], g.ints(1)), g.op("Unsqueeze", padded[1], g.ints(0)))
        keys = g.op("Cast", partition(g, g.op("Cast", pads, to=7), hp, wp, window), to=9)   # (nW, N)
        blocked = g.op("Or", blocked, g.op("Unsqueeze", keys, g.ints(1)))                  # padded keys
    return g.op("Where", blocked, g.const(mask_value(g.dtype)), g.const(0.0))


# ---- the block's pieces --------------------------------------------------------------------------
@emitter(Mlp)
def mlp(g, m, x):
    return emit(g, m.fc2, emit(g, m.act, emit(g, m.fc1, x)))


@emitter(WindowAttention)
def window_attention(g, m, x, mask, windows_per_image):
    """softmax(q k^T scale + bias + mask) v per window and head, then the projection."""
    heads, c = m.num_heads, m.dim
    n = m.window_size[0] * m.window_size[1]
    qkv = g.op("Transpose", g.reshape(emit(g, m.qkv, x), -1, n, 3, heads, c // heads), perm=[2, 0, 3, 1, 4])
    q, k, v = (g.op("Gather", qkv, g.const(numpy.int64(i), "index", numpy.int64), axis=0) for i in range(3))
    scores = g.op("MatMul", g.op("Mul", q, g.const(m.scale, "scale")), g.op("Transpose", k, perm=[0, 1, 3, 2]))
    index = relative_position_index(m.window_size).reshape(-1)
    bias = m.relative_position_bias_table.numpy()[index].T.reshape(heads, n, n)
    scores = g.op("Add", scores, g.const(bias, "relative_position_bias"))                 # (B*nW, heads, N, N)
    if mask is not None:
        scores = g.reshape(scores, -1, windows_per_image, heads, n, n)
        scores = g.reshape(g.op("Add", scores, g.op("Unsqueeze", mask, g.ints(1))), -1, heads, n, n)
    out = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)                             # (B*nW, heads, N, d)
    return emit(g, m.proj, g.reshape(g.op("Transpose", out, perm=[0, 2, 1, 3]), -1, n, c))


def swin_block(g, m, x, h, w, masks):
    """One SwinTransformerBlock on tokens x (B, h*w, C); ``masks`` caches the stage's shift mask."""
    window, shift, c = m.window_size, m.shift_size, m.dim
    y = g.reshape(emit(g, m.norm1, x), 0, h, w, c)                                        # (B, h, w, C)
    pad_h, pad_w = pad_amount(g, h, window[0]), pad_amount(g, w, window[1])
    y = g.op("Pad", y, g.shape_of(0, 0, 0, 0, 0, pad_h, pad_w, 0))                       # (B, Hp, Wp, C), zeros
    hp, wp = g.op("Add", h, pad_h), g.op("Add", w, pad_w)
    key = (window, shift, m.mask_padding)
    if key not in masks:
        masks[key] = shift_mask(g, h, w, hp, wp, window, shift, m.mask_padding)
    count = g.op("Mul", g.arith("Div", hp, window[0]), g.arith("Div", wp, window[1]))   # nW
    y = partition(g, roll(g, y, (-shift[0], -shift[1])), hp, wp, window, c)              # (B*nW, N, C)
    y = window_attention(g, m.attn, y, masks[key], count)
    y = roll(g, reverse(g, y, hp, wp, window, c), shift)                                 # (B, Hp, Wp, C)
    y = g.op("Reshape", g.slice(y, (0, 0), (h, w), (1, 2)), g.op("Shape", x))            # (B, h*w, C)
    x = g.op("Add", x, y)
    return g.op("Add", x, emit(g, m.mlp, emit(g, m.norm2, x)))


@emitter(PatchEmbed)
def patch_embed(g, m, image):
    ph, pw = m.patch_size
    pads = g.shape_of(0, 0, 0, 0, 0, 0, pad_amount(g, g.dim(image, 2), ph), pad_amount(g, g.dim(image, 3), pw))
    x = emit(g, m.proj, g.op("Pad", image, pads))                                        # (B, C, h, w)
    h, w = g.dim(x, 2), g.dim(x, 3)
    x = g.op("Transpose", g.reshape(x, 0, 0, -1), perm=[0, 2, 1])                        # (B, h*w, C)
    return (x if m.norm is None else emit(g, m.norm, x)), h, w


@emitter(PatchMerging)
def patch_merging(g, m, x, h, w):
    c = m.dim
    y = g.reshape(x, 0, h, w, c)
    y = g.op("Pad", y, g.shape_of(0, 0, 0, 0, 0, g.arith("Mod", h, 2), g.arith("Mod", w, 2), 0))
    h2, w2 = g.arith("Div", g.arith("Add", h, 1), 2), g.arith("Div", g.arith("Add", w, 1), 2)
    y = g.op("Transpose", g.reshape(y, -1, h2, 2, w2, 2, c), perm=[0, 1, 3, 4, 2, 5])     # (B, h/2, w/2, dw, dh, C)
    y = g.reshape(y, -1, g.op("Mul", h2, w2), 4 * c)                                     # [x0, x1, x2, x3]
    return emit(g, m.reduction, emit(g, m.norm, y)), h2, w2


# ---- the backbone and the segmentation model -----------------------------------------------------
@emitter(SwinTransformer)
def swin_transformer(g, m, image):
    x, h, w = emit(g, m.patch_embed, image)
    outs = []
    for s, layer in enumerate(m.layers):
        masks = {}
        for block in layer.blocks:
            x = swin_block(g, block, x, h, w, masks)
        out = emit(g, getattr(m, f"norm{s}"), x)
        outs.append(g.op("Transpose", g.reshape(out, -1, h, w, layer.dim), perm=[0, 3, 1, 2]))   # (B, C_s, h, w)
        if layer.downsample is not None:
            x, h, w = emit(g, layer.downsample, x, h, w)
    return outs


@emitter(UPerHead)
def uper_head(g, m, feats):
    laterals = [emit(g, conv, f) for conv, f in zip(m.lateral_convs, feats)]
    for s in range(len(laterals) - 1, 0, -1):
        laterals[s - 1] = g.op("Add", laterals[s - 1], interpolate(g, laterals[s], laterals[s - 1]))
    outs = [emit(g, conv, x) for conv, x in zip(m.fpn_convs, laterals)] + [laterals[-1]]
    outs = [outs[0]] + [interpolate(g, x, outs[0]) for x in outs[1:]]
    return emit(g, m.conv_seg, emit(g, m.fpn_bottleneck, g.op("Concat", *outs, axis=1)))


@emitter(SwinSeg)
def swin_seg(g, m, image):
    return interpolate(g, emit(g, m.decode_head, emit(g, m.backbone, image)), image)
