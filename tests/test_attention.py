"""Windowed attention (Swin): partition/reverse, the shift mask, the relative position bias,
``F.window_attention`` and the Swin layers.

Gradient checks in float64 on drawn sizes (the fused attention with and without bias and mask,
partition/reverse, roll, the bias gather, a whole block along random directions); the
properties the design rests on (partition then reverse is the identity; a window the size of the
map is global attention; the shifted-window mask is the official one, padded maps included, and
with ``mask_padding`` equals attention inside each region; no shift, no mask); the fused Function
against its composed twin; torch twins written the official way that take our state_dict by
name (the whole official segmentation backbone: tests/test_official_swin.py); and the errors, one
sentence each.
"""
import math

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import functional as F
from minitorch_seg import nn
from minitorch_seg.functional.windows import (cached_window_mask, mask_value, padded_size, relative_position_bias,
                                              relative_position_index, window_mask)
from minitorch_seg.reference.attention import window_attention_composed, window_attention_loops
from minitorch_seg.testing import make
from helpers import assert_one_sentence, host

pytestmark = pytest.mark.attention

GRAD_EXAMPLES = 10
PROPERTY_EXAMPLES = 12
BLOCK_EXAMPLES = 6
seeds = st.integers(0, 2**16)
windows = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))


def pair(w):
    return (w, w) if isinstance(w, int) else tuple(w)


@st.composite
def attention_cases(draw):
    """(B, nW, heads, N, d, seed): small windows of attention."""
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 5)),
            draw(st.integers(1, 3)), draw(seeds))


def random_mask(nw, n, seed, value=None):
    """(nW, N, N) of 0 and ``value`` (default mask_value) with the diagonal always open, so every
    query sees at least itself (as every real token does); a host array."""
    rng = numpy.random.default_rng(seed)
    blocked = rng.random((nw, n, n)) < 0.4
    blocked[:, numpy.arange(n), numpy.arange(n)] = False
    return numpy.where(blocked, mask_value(numpy.float64) if value is None else value, 0.0)


def qkv(b, nw, heads, n, d, seed, dtype="float64"):
    shape = (b * nw, heads, n, d)
    return [make(shape, seed=seed + i, dtype=dtype) for i in range(3)]


# ---- window_attention: a hand-computed case, gradients, the twin --------------------------------
def test_window_attention_hand_computed(backend):
    # One window, one head, two tokens, d = 1, scale 1: scores [[1, 0], [0, 0]].
    q = mt.tensor([[[[1.0], [0.0]]]], dtype="float64")
    v = mt.tensor([[[[1.0], [0.0]]]], dtype="float64")
    out = F.window_attention(q, q, v, scale=1.0)
    e = math.e
    numpy.testing.assert_allclose(out.numpy().ravel(), [e / (1 + e), 0.5], rtol=1e-12)
    # Masked, query 0 may not see key 1: it takes key 0's value alone; query 1 is unchanged.
    mask = mt.tensor([[[0.0, mask_value(numpy.float64)], [0.0, 0.0]]], dtype="float64")
    out = F.window_attention(q, q, v, mask=mask, scale=1.0)
    numpy.testing.assert_allclose(out.numpy().ravel(), [1.0, 0.5], rtol=1e-12)


@settings(max_examples=GRAD_EXAMPLES)
@given(case=attention_cases(), use_bias=st.booleans(), use_mask=st.booleans(), scale=st.sampled_from([None, 0.7]))
def test_window_attention_gradcheck(backend, case, use_bias, use_mask, scale):
    b, nw, heads, n, d, seed = case
    q, k, v = qkv(b, nw, heads, n, d, seed)
    bias = make((heads, n, n), seed=seed + 3) if use_bias else None
    mask = mt.Tensor(shim.to_backend(random_mask(nw, n, seed))) if use_mask else None
    assert mt.gradcheck(lambda *t: F.window_attention(*t, mask=mask, scale=scale), (q, k, v, bias) if use_bias
                        else (q, k, v))


@settings(max_examples=GRAD_EXAMPLES)
@given(case=attention_cases())
def test_window_attention_gradcheck_of_a_learned_mask(backend, case):
    """The mask is an additive input like the bias: with moderate values, its gradient too."""
    b, nw, heads, n, d, seed = case
    q, k, v = qkv(b, nw, heads, n, d, seed)
    mask = make((nw, n, n), seed=seed + 4)
    assert mt.gradcheck(lambda *t: F.window_attention(*t), (q, k, v, None, mask))


@pytest.mark.parametrize("wanted", [(0,), (1,), (2,), (3,), (0, 2)])
def test_gradients_only_where_wanted(backend, wanted):
    q, k, v = qkv(2, 2, 2, 4, 3, seed=1)
    bias = make((2, 4, 4), seed=5)
    inputs = [q, k, v, bias]
    for i, t in enumerate(inputs):
        t.requires_grad_(i in wanted)
    F.window_attention(*inputs, mask=shim.to_backend(random_mask(2, 4, 1))).sum().backward()
    assert [t.grad is not None for t in inputs] == [i in wanted for i in range(4)]


@settings(max_examples=PROPERTY_EXAMPLES)
@given(case=attention_cases(), use_bias=st.booleans(), use_mask=st.booleans())
def test_fused_agrees_with_composed_twin_and_loops(backend, case, use_bias, use_mask):
    b, nw, heads, n, d, seed = case
    q, k, v = qkv(b, nw, heads, n, d, seed)
    bias = make((heads, n, n), seed=seed + 3) if use_bias else None
    mask = mt.Tensor(shim.to_backend(random_mask(nw, n, seed))) if use_mask else None
    fused = F.window_attention(q, k, v, bias, mask)
    u = make(fused.shape, seed=seed + 9, requires_grad=False)
    (fused * u).sum().backward()
    grads = [t.grad.numpy().copy() for t in (q, k, v) + ((bias,) if use_bias else ())]
    for t in (q, k, v, bias):
        if t is not None:
            t.grad = None
    composed = window_attention_composed(q, k, v, bias, mask)
    (composed * u).sum().backward()
    numpy.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-10, atol=1e-12)
    for grad, t in zip(grads, (q, k, v, bias)):
        numpy.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-9, atol=1e-11)
    loops = window_attention_loops(host(q), host(k), host(v), None if bias is None else host(bias),
                                   None if mask is None else host(mask))
    numpy.testing.assert_allclose(fused.numpy(), loops, rtol=1e-10, atol=1e-12)


def test_fully_masked_rows_give_finite_outputs_and_gradients(backend):
    """Only padded queries can have every key masked; their outputs must stay finite (no NaN)."""
    for dtype in ("float32", "float64"):
        q, k, v = qkv(1, 1, 1, 4, 2, seed=3, dtype=dtype)
        mask = numpy.zeros((1, 4, 4))
        mask[0, 1, :] = mask_value(numpy.dtype(dtype))                   # query 1 sees nothing
        mask = mt.Tensor(shim.to_backend(mask.astype(dtype)))
        out = F.window_attention(q, k, v, mask=mask)
        out.sum().backward()
        assert out.dtype == numpy.dtype(dtype)
        for array in (out, q.grad, k.grad, v.grad):
            assert numpy.isfinite(host(array)).all()


def test_masked_keys_get_exactly_zero_weight_in_float32_and_float64(backend):
    """mask_value, unlike -100, makes e^(masked score) exactly 0: changing a masked key or value
    changes nothing, to the last bit."""
    for dtype in ("float32", "float64"):
        q, k, v = qkv(1, 1, 1, 3, 2, seed=4, dtype=dtype)
        mask = numpy.zeros((1, 3, 3))
        mask[0, :, 2] = mask_value(numpy.dtype(dtype))                   # nobody may look at key 2
        mask = shim.to_backend(mask.astype(dtype))
        before = host(F.window_attention(q, k, v, mask=mask))
        k.data[0, 0, 2] += 50.0
        v.data[0, 0, 2] -= 1e6
        after = host(F.window_attention(q, k, v, mask=mask))
        numpy.testing.assert_array_equal(before, after)
        assert mask_value(numpy.dtype(dtype)) > -numpy.inf


def test_float32_stays_float32(backend):
    q, k, v = qkv(1, 4, 2, 4, 3, seed=1, dtype="float32")
    bias = make((2, 4, 4), seed=5, dtype="float32")
    mask = cached_window_mask(4, 4, (2, 2), (1, 1), "float32", backend)     # (4, 4, 4)
    out = F.window_attention(q, k, v, bias, mask)
    out.sum().backward()
    assert out.dtype == numpy.float32
    assert all(t.grad.dtype == numpy.float32 for t in (q, k, v, bias))

    block = nn.SwinTransformerBlock(8, 2, window_size=3, shift_size=1)
    x = make((2, 20, 8), seed=3, dtype="float32")
    y = block(x, (4, 5))
    y.sum().backward()
    assert y.dtype == x.grad.dtype == numpy.float32
    assert all(p.grad.dtype == numpy.float32 for p in block.parameters())


def test_float32_erf_is_accurate_and_stays_float32(backend):
    """The block's GELU runs erf in float32 through a rational approximation (SciPy's float32 erf
    was half the block's time): within 5e-7 of the float64 erf, saturating to +-1, NaN kept."""
    x = numpy.concatenate([numpy.linspace(-6, 6, 20001), [numpy.inf, -numpy.inf, 0.0, 1e-30]]).astype(numpy.float32)
    y = shim.erf(shim.to_backend(x))
    assert y.dtype == numpy.float32 and shim.backend_name(y) == backend
    expected = numpy.vectorize(math.erf)(x.astype(numpy.float64))
    numpy.testing.assert_allclose(host(y), expected, rtol=0, atol=5e-7)
    assert numpy.isnan(host(shim.erf(shim.to_backend(numpy.array([numpy.nan], dtype=numpy.float32))))).all()


# ---- partition, reverse, roll: gradients and the identity ---------------------------------------
@st.composite
def map_cases(draw):
    """(B, H, W, C, window (int or pair), seed) with H, W multiples of the window."""
    window = draw(windows)
    wh, ww = pair(window)
    return (draw(st.integers(1, 2)), wh * draw(st.integers(1, 3)), ww * draw(st.integers(1, 3)),
            draw(st.integers(1, 3)), window, draw(seeds))


@settings(max_examples=PROPERTY_EXAMPLES)
@given(case=map_cases())
def test_partition_then_reverse_is_the_identity(backend, case):
    b, h, w, c, window, seed = case
    x = make((b, h, w, c), seed=seed)
    wh, ww = pair(window)
    windows = F.window_partition(x, window)
    assert windows.shape == (b * (h // wh) * (w // ww), wh * ww, c)
    numpy.testing.assert_array_equal(F.window_reverse(windows, window, h, w).numpy(), host(x))
    numpy.testing.assert_array_equal(F.window_partition(F.window_reverse(windows, window, h, w), window).numpy(),
                                     host(windows))
    # Batch-major: window w of image i is row i*nW + w, tokens in raster order.
    nw_w = w // ww
    for row in (0, windows.shape[0] - 1):
        i, rest = divmod(row, (h // wh) * nw_w)
        top, left = (rest // nw_w) * wh, (rest % nw_w) * ww
        numpy.testing.assert_array_equal(host(windows)[row], host(x)[i, top:top + wh, left:left + ww].reshape(-1, c))


@settings(max_examples=GRAD_EXAMPLES)
@given(case=map_cases())
def test_partition_reverse_and_roll_gradcheck(backend, case):
    b, h, w, c, window, seed = case
    wh, ww = pair(window)
    x = make((b, h, w, c), seed=seed)
    assert mt.gradcheck(lambda t: F.window_partition(t, window), (x,))
    windows = make((b * (h // wh) * (w // ww), wh * ww, c), seed=seed + 1)
    assert mt.gradcheck(lambda t: F.window_reverse(t, window, h, w), (windows,))
    shifts = (seed % h, -(seed % w))
    assert mt.gradcheck(lambda t: F.roll(t, shifts, (1, 2)), (x,))


# ---- the relative position bias ------------------------------------------------------------------
def test_relative_position_index_is_the_official_one():
    """The official construction, on a 3x2 window, and every offset appears exactly where it should."""
    index = relative_position_index((3, 2))
    assert index.shape == (6, 6) and index.min() == 0 and index.max() == 5 * 3 - 1
    coords = [(y, x) for y in range(3) for x in range(2)]
    for i, (yi, xi) in enumerate(coords):
        for j, (yj, xj) in enumerate(coords):
            assert index[i, j] == (yi - yj + 2) * 3 + (xi - xj + 1)
    # A smaller window reads the rows of its own offsets, the centre of a bigger table.
    small = relative_position_index(2, table_size=3)
    assert small[0, 3] == (0 - 1 + 2) * 5 + (0 - 1 + 2)


@settings(max_examples=GRAD_EXAMPLES)
@given(window=windows, heads=st.integers(1, 3), extra=st.integers(0, 1), seed=seeds)
def test_relative_position_bias_gather_and_gradcheck(backend, window, heads, extra, seed):
    wh, ww = pair(window)
    table_size = (wh + extra, ww + extra)
    table = make(((2 * table_size[0] - 1) * (2 * table_size[1] - 1), heads), seed=seed)
    bias = relative_position_bias(table, window, table_size)
    index = relative_position_index(window, table_size)
    numpy.testing.assert_array_equal(bias.numpy(), host(table)[index].transpose(2, 0, 1))
    assert mt.gradcheck(lambda t: relative_position_bias(t, window, table_size), (table,))


# ---- the shift mask ------------------------------------------------------------------------------
@settings(max_examples=PROPERTY_EXAMPLES)
@given(case=map_cases())
def test_no_shift_no_padding_means_an_all_zero_mask(backend, case):
    _, h, w, _, window, _ = case
    mask = window_mask(h, w, window, 0)
    wh, ww = pair(window)
    assert mask.shape == ((h // wh) * (w // ww), wh * ww, wh * ww)
    assert (mask == 0).all()
    assert cached_window_mask(h, w, pair(window), (0, 0), "float64", backend) is None


def test_mask_is_the_official_one():
    """Our default mask blocks exactly where the official segmentation code's -100 does: its
    regions over the padded map, padded keys not blocked (maps smaller than the window included)."""
    for h, w, window, shift in ((8, 8, 4, 2), (6, 9, 3, 1), (4, 8, 2, 1), (5, 11, 4, 2), (2, 3, 7, 3), (9, 4, 7, 3)):
        ours = window_mask(h, w, window, shift) != 0
        h, w = padded_size(h, w, window)                                       # the official code's Hp, Wp
        img = numpy.zeros((1, h, w, 1))
        cnt = 0
        for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                img[:, hs, ws, :] = cnt
                cnt += 1
        mw = img.reshape(1, h // window, window, w // window, window, 1).transpose(0, 1, 3, 2, 4, 5)
        mw = mw.reshape(-1, window * window)
        official = (mw[:, None, :] - mw[:, :, None]) != 0
        numpy.testing.assert_array_equal(ours, official)


@st.composite
def shifted_cases(draw):
    """(B, H, W, heads, d, window, shift, seed): any H, W (padding included), 0 <= shift < window."""
    window = draw(st.one_of(st.integers(2, 4), st.tuples(st.integers(2, 4), st.integers(2, 4))))
    wh, ww = pair(window)
    shift = (draw(st.integers(0, wh - 1)), draw(st.integers(0, ww - 1)))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2 * wh + 1)), draw(st.integers(1, 2 * ww + 1)),
            draw(st.integers(1, 2)), draw(st.integers(1, 2)), window, shift, draw(seeds))


def shifted_window_attention(q, k, v, H, W, window, shift, garbage_seed):  # noqa: N803
    """Our pipeline on maps (B, H, W, heads*d): pad (with garbage), roll, partition, attend with the
    mask, reverse, roll back, crop. Returns the (B, H, W, heads, d) host result."""
    b, _, _, heads, d = q.shape
    hp, wp = padded_size(H, W, window)
    rng = numpy.random.default_rng(garbage_seed)
    windows = []
    for t in (q, k, v):
        padded = rng.standard_normal((b, hp, wp, heads * d)) * 100          # what sits in the padding must not matter
        padded[:, :H, :W] = t.reshape(b, H, W, heads * d)
        x = mt.Tensor(shim.to_backend(padded))
        x = F.roll(x, (-shift[0], -shift[1]), (1, 2))
        x = F.window_partition(x, window)                                    # (B*nW, N, heads*d)
        x = x.reshape(x.shape[0], x.shape[1], heads, d).permute(0, 2, 1, 3)  # (B*nW, heads, N, d)
        windows.append(x)
    mask = cached_window_mask(H, W, pair(window), shift, "float64", shim.get_backend(), mask_padding=True)
    out = F.window_attention(*windows, mask=mask)                            # (B*nW, heads, N, d)
    out = out.permute(0, 2, 1, 3).reshape(out.shape[0], -1, heads * d)      # (B*nW, N, heads*d)
    out = F.roll(F.window_reverse(out, window, hp, wp), shift, (1, 2))       # (B, Hp, Wp, heads*d)
    return out.numpy()[:, :H, :W].reshape(b, H, W, heads, d)


def region_attention(q, k, v, H, W, window, shift):  # noqa: N803
    """The paper's shifted partition without the cyclic trick: the window grid offset by the shift,
    with smaller windows at the borders, over the padded map; each token attends only to the real
    tokens of its own (possibly partial) window. Plain loops on host arrays."""
    wh, ww = pair(window)
    b, _, _, heads, d = q.shape
    groups = {}
    for r in range(H):
        for c in range(W):
            groups.setdefault(((r - shift[0]) // wh, (c - shift[1]) // ww), []).append((r, c))
    out = numpy.empty(q.shape)
    for members in groups.values():
        rows, cols = numpy.array(members).T
        for i in range(b):
            for h in range(heads):
                qs, ks, vs = (t[i, rows, cols, h] for t in (q, k, v))          # (M, d) each
                scores = qs @ ks.T * d ** -0.5
                weights = numpy.exp(scores - scores.max(axis=1, keepdims=True))
                out[i, rows, cols, h] = (weights / weights.sum(axis=1, keepdims=True)) @ vs
    return out


@settings(max_examples=PROPERTY_EXAMPLES)
@given(case=shifted_cases())
def test_shifted_window_attention_equals_attention_inside_each_region(backend, case):
    """The mask's purpose, tested directly: after the cyclic shift, a window mixes tokens from
    up to four regions that were not neighbours; with the mask, each token attends exactly as if
    the regions were separate windows. With ``mask_padding``, padded keys count for nothing,
    whatever they hold."""
    b, h, w, heads, d, window, shift, seed = case
    rng = numpy.random.default_rng(seed)
    q, k, v = (rng.standard_normal((b, h, w, heads, d)) for _ in range(3))
    expected = region_attention(q, k, v, h, w, window, shift)
    for garbage_seed in (seed, seed + 1):
        got = shifted_window_attention(q, k, v, h, w, window, shift, garbage_seed)
        numpy.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


# ---- the whole-map window ----------------------------------------------------------------------
def numpy_global_block(block, x, H, W):  # noqa: N803
    """A Swin block whose attention is plain global attention over all H*W tokens, in NumPy:
    the reference for a window that covers the whole map."""
    p = {name: host(t) for name, t in block.state_dict().items()}

    def layer_norm(t, prefix):
        mean, var = t.mean(-1, keepdims=True), t.var(-1, keepdims=True)
        return (t - mean) / numpy.sqrt(var + 1e-5) * p[prefix + ".weight"] + p[prefix + ".bias"]

    b, L, C = x.shape
    heads, d = block.num_heads, C // block.num_heads
    th, tw = block.window_size
    coords = [(r, c) for r in range(H) for c in range(W)]
    bias = numpy.empty((heads, L, L))
    for i, (ri, ci) in enumerate(coords):
        for j, (rj, cj) in enumerate(coords):
            bias[:, i, j] = p["attn.relative_position_bias_table"][(ri - rj + th - 1) * (2 * tw - 1) + ci - cj + tw - 1]
    t = layer_norm(x, "norm1") @ p["attn.qkv.weight"].T + p["attn.qkv.bias"]            # (B, L, 3C)
    q, k, v = t.reshape(b, L, 3, heads, d).transpose(2, 0, 3, 1, 4)                      # (B, heads, L, d) each
    scores = q @ k.transpose(0, 1, 3, 2) * d ** -0.5 + bias
    weights = numpy.exp(scores - scores.max(-1, keepdims=True))
    attended = (weights / weights.sum(-1, keepdims=True)) @ v                           # (B, heads, L, d)
    y = x + attended.transpose(0, 2, 1, 3).reshape(b, L, C) @ p["attn.proj.weight"].T + p["attn.proj.bias"]
    hidden = layer_norm(y, "norm2") @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"]
    hidden = 0.5 * hidden * (1 + numpy.vectorize(math.erf)(hidden / math.sqrt(2)))
    return y + hidden @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]


@pytest.mark.parametrize("hw, window, mask_padding", [((4, 4), 4, False), ((3, 5), (3, 5), False), ((4, 6), 7, True)])
def test_a_window_covering_the_map_is_global_attention(backend, hw, window, mask_padding):
    """Unshifted, one window over the whole map is global attention; a map smaller than the window
    is padded up to it, and then only with ``mask_padding`` (the official code attends to the
    padding too)."""
    block = nn.SwinTransformerBlock(6, 2, window_size=window, mlp_ratio=2, mask_padding=mask_padding).double()
    x = make((2, hw[0] * hw[1], 6), seed=1)
    numpy.testing.assert_allclose(block(x, hw).numpy(), numpy_global_block(block, host(x), *hw), rtol=1e-10,
                                  atol=1e-12)


# ---- a whole block: gradients along random directions ----------------------------------------------
def directional_gradcheck(fn, tensors, directions=2, eps=1e-6, atol=1e-6, rtol=1e-5, seed=0):
    """Backward against central differences of <fn(), u> along a few random unit directions per tensor.

    ``gradcheck`` would sweep every element of each small parameter; for a whole block a few
    directions per tensor catch a wrong or missing gradient as surely, at a fraction of the cost.
    """
    rng = numpy.random.default_rng(seed)
    out = fn()
    u = shim.to_backend(rng.standard_normal(out.shape), out.backend)
    for t in tensors:
        t.grad = None
    (out * mt.Tensor(u)).sum().backward()

    def value():
        with mt.no_grad():
            return float((host(fn()) * shim.to_numpy(u)).sum())

    for index, t in enumerate(tensors):
        assert t.grad is not None, f"tensor {index} of shape {t.shape} got no gradient"
        analytic, start = host(t.grad), host(t).copy()
        for _ in range(directions):
            direction = rng.standard_normal(t.shape)
            direction /= numpy.linalg.norm(direction)
            t.data = shim.to_backend(start + eps * direction, t.backend)
            plus = value()
            t.data = shim.to_backend(start - eps * direction, t.backend)
            minus = value()
            t.data = shim.to_backend(start, t.backend)
            numeric, expected = (plus - minus) / (2 * eps), float((analytic * direction).sum())
            assert abs(expected - numeric) <= atol + rtol * abs(numeric), (index, t.shape, expected, numeric)


@st.composite
def block_cases(draw):
    window = draw(st.one_of(st.integers(2, 3), st.tuples(st.integers(2, 3), st.integers(2, 3))))
    wh, ww = pair(window)
    shift = draw(st.sampled_from([0, (wh // 2, ww // 2)]))
    return (draw(st.integers(1, 2)), draw(st.integers(2, 2 * wh + 1)), draw(st.integers(2, 2 * ww + 1)), window,
            shift, draw(seeds))


@settings(max_examples=BLOCK_EXAMPLES)
@given(case=block_cases(), mask_padding=st.booleans())
def test_swin_block_gradients_along_random_directions(backend, case, mask_padding):
    b, h, w, window, shift, seed = case
    block = randomized(nn.SwinTransformerBlock(4, 2, window_size=window, shift_size=shift, mlp_ratio=2,
                                               mask_padding=mask_padding).double(), seed)
    x = make((b, h * w, 4), seed=seed)
    directional_gradcheck(lambda: block(x, (h, w)), [x] + list(block.parameters()), seed=seed)


@settings(max_examples=BLOCK_EXAMPLES)
@given(case=block_cases())
def test_with_mask_padding_outputs_do_not_depend_on_what_the_padding_holds(backend, monkeypatch, case):
    """The block pads the map up to a multiple of the window; with ``mask_padding``, whatever the
    padding holds, the outputs at the real tokens are the same, to the last bit (masked keys get
    weight exactly 0)."""
    b, h, w, window, shift, seed = case
    block = nn.SwinTransformerBlock(4, 2, window_size=window, shift_size=shift, mlp_ratio=2,
                                    mask_padding=True).double()
    x = make((b, h * w, 4), seed=seed)
    pad = F.pad
    outputs = []
    for value in (0.0, 1e3, -7.5):
        monkeypatch.setattr(F, "pad", lambda t, amounts, value=value: pad(t, amounts, value=value))
        outputs.append(block(x, (h, w)).numpy())
    for other in outputs[1:]:
        numpy.testing.assert_array_equal(other, outputs[0])


@pytest.mark.parametrize("shift", [0, 2])
def test_by_default_the_padding_is_attended_to_as_the_official_code_does(backend, monkeypatch, shift):
    """Without ``mask_padding`` the padded tokens are keys (the official segmentation backbone), so
    what the padding holds reaches the real tokens' outputs."""
    block = nn.SwinTransformerBlock(4, 2, window_size=4, shift_size=shift, mlp_ratio=2).double()
    x = make((1, 3 * 5, 4), seed=0)
    pad = F.pad
    outputs = []
    for value in (0.0, 1e3):
        monkeypatch.setattr(F, "pad", lambda t, amounts, value=value: pad(t, amounts, value=value))
        outputs.append(block(x, (3, 5)).numpy())
    assert numpy.abs(outputs[1] - outputs[0]).max() > 1e-3


# ---- DropPath ---------------------------------------------------------------------------------------
def test_drop_path_is_per_sample_scaled_and_identity_in_eval(backend):
    x = make((64, 3, 5), seed=1, low=0.5, high=1.5)
    drop = nn.DropPath(0.25)
    y = host(drop(x))
    kept = numpy.abs(y).reshape(64, -1).max(axis=1) > 0
    assert 0 < kept.sum() < 64                                   # some samples dropped, some kept, whole
    numpy.testing.assert_allclose(y[kept], host(x)[kept] / 0.75, rtol=1e-12)
    assert (y[~kept] == 0).all()
    drop.eval()
    assert drop(x) is x
    assert nn.DropPath(0.0)(x) is x
    block = nn.SwinTransformerBlock(4, 2, window_size=2, drop_path=0.1)
    assert isinstance(block.drop_path, nn.DropPath) and "p=0.1" in repr(block)
    with pytest.raises(ValueError) as error:
        nn.DropPath(1.5)
    assert_one_sentence(error, "1.5")


# ---- PatchEmbed, PatchMerging, names ------------------------------------------------------------------
def test_parameter_names_and_shapes_are_the_official_ones(backend):
    block = nn.SwinTransformerBlock(8, 2, window_size=(3, 4), shift_size=1)
    assert {k: v.shape for k, v in block.state_dict().items()} == {
        "norm1.weight": (8,), "norm1.bias": (8,),
        "attn.relative_position_bias_table": (5 * 7, 2),
        "attn.qkv.weight": (24, 8), "attn.qkv.bias": (24,), "attn.proj.weight": (8, 8), "attn.proj.bias": (8,),
        "norm2.weight": (8,), "norm2.bias": (8,),
        "mlp.fc1.weight": (32, 8), "mlp.fc1.bias": (32,), "mlp.fc2.weight": (8, 32), "mlp.fc2.bias": (8,)}
    assert list(nn.PatchEmbed(4, 3, 8).state_dict()) == ["proj.weight", "proj.bias", "norm.weight", "norm.bias"]
    assert list(nn.PatchMerging(8).state_dict()) == ["reduction.weight", "norm.weight", "norm.bias"]
    assert nn.PatchMerging(8).reduction.bias is None


def test_patch_merging_concatenates_in_the_official_order(backend):
    x = mt.arange(4 * 6 * 2, dtype="float64").reshape(1, 24, 2)          # a 4x6 map, 2 channels
    merging = nn.PatchMerging(2).double()
    captured = {}
    merging.norm.forward = lambda t: captured.setdefault("x", t)          # see the concatenation
    merging(x, (4, 6))
    grid = host(x).reshape(4, 6, 2)
    official = numpy.concatenate([grid[0::2, 0::2], grid[1::2, 0::2], grid[0::2, 1::2], grid[1::2, 1::2]], -1)
    numpy.testing.assert_array_equal(host(captured["x"]), official.reshape(1, 6, 8))


def test_patch_embed_and_merging_pad_odd_sizes(backend):
    tokens, hw = nn.PatchEmbed(4, 3, 8)(make((1, 3, 13, 18), seed=0, dtype="float32"))
    assert tokens.shape == (1, 4 * 5, 8) and hw == (4, 5)
    merged, hw2 = nn.PatchMerging(8)(tokens, hw)
    assert merged.shape == (1, 2 * 3, 16) and hw2 == (2, 3)
    x = make((1, 20, 8), seed=1)
    merging = nn.PatchMerging(8).double()
    assert mt.gradcheck(lambda t: merging(t, (4, 5))[0], (x,))


# ---- torch twins, written as the official code writes them --------------------------------------------
def torch_twins(torch):
    """WindowAttention, Mlp and SwinTransformerBlock of the official Swin classification code
    (input_resolution fixed at construction, the -100 mask, the shrink rule for small maps), in
    plain PyTorch."""
    tnn = torch.nn

    def window_partition(x, ws):
        b, h, w, c = x.shape
        x = x.view(b, h // ws, ws, w // ws, ws, c)
        return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, c)

    def window_reverse(windows, ws, h, w):
        b = int(windows.shape[0] / (h * w / ws / ws))
        x = windows.view(b, h // ws, w // ws, ws, ws, -1)
        return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)

    class WindowAttention(tnn.Module):
        def __init__(self, dim, window_size, num_heads, qkv_bias=True):
            super().__init__()
            self.window_size, self.num_heads = window_size, num_heads
            self.scale = (dim // num_heads) ** -0.5
            self.relative_position_bias_table = tnn.Parameter(
                torch.zeros((2 * window_size[0] - 1) * (2 * window_size[1] - 1), num_heads))
            coords = torch.stack(torch.meshgrid([torch.arange(window_size[0]), torch.arange(window_size[1])],
                                                indexing="ij"))
            coords_flatten = torch.flatten(coords, 1)
            relative_coords = (coords_flatten[:, :, None] - coords_flatten[:, None, :]).permute(1, 2, 0).contiguous()
            relative_coords[:, :, 0] += window_size[0] - 1
            relative_coords[:, :, 1] += window_size[1] - 1
            relative_coords[:, :, 0] *= 2 * window_size[1] - 1
            self.register_buffer("relative_position_index", relative_coords.sum(-1))
            self.qkv = tnn.Linear(dim, dim * 3, bias=qkv_bias)
            self.proj = tnn.Linear(dim, dim)
            self.softmax = tnn.Softmax(dim=-1)

        def forward(self, x, mask=None):
            b_, n, c = x.shape
            qkv = self.qkv(x).reshape(b_, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = (q * self.scale) @ k.transpose(-2, -1)
            bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
            attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
            if mask is not None:
                nw = mask.shape[0]
                attn = attn.view(b_ // nw, nw, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.num_heads, n, n)
            x = (self.softmax(attn) @ v).transpose(1, 2).reshape(b_, n, c)
            return self.proj(x)

    class Mlp(tnn.Module):
        def __init__(self, in_features, hidden_features):
            super().__init__()
            self.fc1, self.act, self.fc2 = tnn.Linear(in_features, hidden_features), tnn.GELU(), \
                tnn.Linear(hidden_features, in_features)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class SwinTransformerBlock(tnn.Module):
        def __init__(self, dim, input_resolution, num_heads, window_size=7, shift_size=0, mlp_ratio=4.0):
            super().__init__()
            self.input_resolution, self.window_size, self.shift_size = input_resolution, window_size, shift_size
            if min(self.input_resolution) <= self.window_size:
                self.shift_size = 0
                self.window_size = min(self.input_resolution)
            self.norm1 = tnn.LayerNorm(dim)
            self.attn = WindowAttention(dim, (self.window_size, self.window_size), num_heads)
            self.norm2 = tnn.LayerNorm(dim)
            self.mlp = Mlp(dim, int(dim * mlp_ratio))
            attn_mask = None
            if self.shift_size > 0:
                h, w = self.input_resolution
                img_mask = torch.zeros((1, h, w, 1))
                cuts = (slice(0, -self.window_size), slice(-self.window_size, -self.shift_size),
                        slice(-self.shift_size, None))
                cnt = 0
                for hs in cuts:
                    for ws in cuts:
                        img_mask[:, hs, ws, :] = cnt
                        cnt += 1
                mask_windows = window_partition(img_mask, self.window_size).view(-1, self.window_size ** 2)
                attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
                attn_mask = attn_mask.masked_fill(attn_mask != 0, float(-100.0)).masked_fill(attn_mask == 0, 0.0)
            self.register_buffer("attn_mask", attn_mask)

        def forward(self, x):
            h, w = self.input_resolution
            b, _, c = x.shape
            shortcut = x
            x = self.norm1(x).view(b, h, w, c)
            if self.shift_size > 0:
                x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
            x_windows = window_partition(x, self.window_size).view(-1, self.window_size ** 2, c)
            attn_windows = self.attn(x_windows, mask=self.attn_mask).view(-1, self.window_size, self.window_size, c)
            x = window_reverse(attn_windows, self.window_size, h, w)
            if self.shift_size > 0:
                x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
            x = shortcut + x.view(b, h * w, c)
            return x + self.mlp(self.norm2(x))

    return WindowAttention, SwinTransformerBlock


FIXED_BUFFERS = {"relative_position_index", "attn_mask"}   # official buffers we compute per resolution


def load_into_torch(torch, ours, theirs):
    """Copy our state_dict into the twin by name; only the official fixed buffers may be missing."""
    state = {k: torch.from_numpy(host(v)) for k, v in ours.state_dict().items()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    assert not unexpected and {k.rsplit(".", 1)[-1] for k in missing} <= FIXED_BUFFERS, (missing, unexpected)
    assert set(dict(theirs.named_parameters())) == set(ours.state_dict())


def assert_same_outputs_and_gradients(torch, ours, theirs, ours_call, theirs_call, x_shape, seed=0):
    rng = numpy.random.default_rng(seed)
    x_host = rng.standard_normal(x_shape)
    x = mt.Tensor(shim.to_backend(x_host), requires_grad=True)
    tx = torch.from_numpy(x_host.copy()).requires_grad_(True)
    y, ty = ours_call(x), theirs_call(tx)
    u_host = rng.standard_normal(y.shape)
    numpy.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-11)
    y.backward(shim.to_backend(u_host))
    ty.backward(torch.from_numpy(u_host))
    numpy.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        numpy.testing.assert_allclose(host(p.grad), theirs_params[name].grad.numpy(), rtol=1e-9, atol=1e-11,
                                      err_msg=name)


def randomized(module, seed):
    """Give every parameter generic values (LayerNorm's ones and zeros, the zero-ish table)."""
    rng = numpy.random.default_rng(seed)
    for p in module.parameters():
        p.data = shim.to_backend(host(p) + rng.normal(0, 0.3, p.shape), p.backend)
    return module


@pytest.mark.parametrize("window, heads", [((3, 3), 2), ((2, 4), 1)])
def test_window_attention_matches_torch_twin(backend, torch, window, heads):
    twin_attention, _ = torch_twins(torch)
    ours = randomized(nn.WindowAttention(6, window, heads).double(), 1)
    theirs = twin_attention(6, window, heads)
    load_into_torch(torch, ours, theirs)
    n = window[0] * window[1]
    mask = window_mask(2 * window[0], 2 * window[1], window, (1, 1))          # 4 windows
    assert_same_outputs_and_gradients(torch, ours, theirs, lambda x: ours(x, shim.to_backend(mask)),
                                      lambda x: theirs(x, torch.from_numpy(numpy.maximum(mask, -100.0))), (8, n, 6))


@pytest.mark.parametrize("hw, window, shift", [((8, 8), 4, 0), ((8, 12), 4, 2), ((6, 9), 3, 1)])
def test_swin_block_matches_torch_twin(backend, torch, hw, window, shift):
    """Same state_dict by name, same outputs and gradients in float64, where the classification
    code and the segmentation code agree (maps multiples of the window and larger; the others are
    in tests/test_official_swin.py, against the segmentation backbone)."""
    _, twin_block = torch_twins(torch)
    ours = randomized(nn.SwinTransformerBlock(8, 2, window_size=window, shift_size=shift, mlp_ratio=2).double(), 2)
    theirs = twin_block(8, hw, 2, window_size=window, shift_size=shift, mlp_ratio=2)
    load_into_torch(torch, ours, theirs)
    assert_same_outputs_and_gradients(torch, ours, theirs, lambda x: ours(x, hw), theirs, (2, hw[0] * hw[1], 8))
    fresh = nn.SwinTransformerBlock(8, 2, window_size=window, shift_size=shift, mlp_ratio=2).double()
    official = {k: v.detach().numpy() for k, v in theirs.state_dict().items()   # and back: an official state_dict,
                if k.rsplit(".", 1)[-1] not in FIXED_BUFFERS}                   # less its fixed buffers, loads
    fresh.load_state_dict(official)
    x = make((1, hw[0] * hw[1], 8), seed=5)
    numpy.testing.assert_array_equal(fresh(x, hw).numpy(), ours(x, hw).numpy())


def test_patch_embed_and_merging_match_torch(backend, torch):
    embed = randomized(nn.PatchEmbed(4, 3, 8).double(), 3)
    t_embed = torch.nn.ModuleDict({"proj": torch.nn.Conv2d(3, 8, 4, 4), "norm": torch.nn.LayerNorm(8)})
    t_embed.load_state_dict({k: torch.from_numpy(host(v)) for k, v in embed.state_dict().items()})
    assert_same_outputs_and_gradients(torch, embed, t_embed, lambda x: embed(x)[0],
                                      lambda x: t_embed["norm"](t_embed["proj"](x).flatten(2).transpose(1, 2)),
                                      (2, 3, 16, 24))
    merging = randomized(nn.PatchMerging(4).double(), 4)
    t_merging = torch.nn.ModuleDict({"reduction": torch.nn.Linear(16, 8, bias=False), "norm": torch.nn.LayerNorm(16)})
    t_merging.load_state_dict({k: torch.from_numpy(host(v)) for k, v in merging.state_dict().items()})

    def official(x):
        x = x.view(2, 4, 6, 4)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1).view(2, -1, 16)
        return t_merging["reduction"](t_merging["norm"](x))

    assert_same_outputs_and_gradients(torch, merging, t_merging, lambda x: merging(x, (4, 6))[0], official,
                                      (2, 24, 4))


# ---- bad input: one sentence each ----------------------------------------------------------------------
def test_errors(backend):
    with pytest.raises(ValueError) as error:
        nn.WindowAttention(10, 4, 3)
    assert_one_sentence(error, "dim 10", "num_heads 3")
    with pytest.raises(ValueError) as error:
        nn.SwinTransformerBlock(10, 4, window_size=4)
    assert_one_sentence(error, "dim 10", "num_heads 4")
    with pytest.raises(ValueError) as error:
        nn.SwinTransformerBlock(8, 2, window_size=4, shift_size=4)
    assert_one_sentence(error, "shift_size", "(4, 4)")

    q, k, v = qkv(2, 3, 2, 4, 3, seed=0)
    with pytest.raises(ValueError) as error:
        F.window_attention(q, k, make((6, 2, 4, 2), seed=1))
    assert_one_sentence(error, "same shape", "(6, 2, 4, 2)")
    with pytest.raises(ValueError) as error:
        F.window_attention(q, k, v, bias=make((2, 4, 3), seed=1))
    assert_one_sentence(error, "bias", "(2, 4, 4)", "(2, 4, 3)")
    with pytest.raises(ValueError) as error:
        F.window_attention(q, k, v, mask=make((4, 4, 4), seed=1))
    assert_one_sentence(error, "mask", "(4, 4, 4)", "6 windows")
    with pytest.raises(ValueError) as error:
        F.window_attention(q, k, v, mask=make((3, 4, 5), seed=1))
    assert_one_sentence(error, "mask", "(3, 4, 5)")
    with pytest.raises(TypeError) as error:
        F.window_attention(q, k, v, bias=make((2, 4, 4), seed=1, dtype="float32"))
    assert_one_sentence(error, "float32", "float64")

    with pytest.raises(ValueError) as error:
        F.window_partition(make((1, 5, 4, 2), seed=0), 2)
    assert_one_sentence(error, "5x4", "2x2")
    with pytest.raises(ValueError) as error:
        F.window_reverse(make((3, 4, 2), seed=0), 2, 4, 4)
    assert_one_sentence(error, "3 windows")
    with pytest.raises(ValueError) as error:
        nn.SwinTransformerBlock(8, 2, window_size=2)(make((1, 12, 8), seed=0), (3, 5))
    assert_one_sentence(error, "hw_shape (3, 5)", "(1, 12, 8)")
    with pytest.raises(ValueError) as error:
        relative_position_bias(make((9, 2), seed=0), 3)
    assert_one_sentence(error, "(25, heads)", "(9, 2)")
