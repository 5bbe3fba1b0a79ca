"""conv2d and conv_transpose2d, and the Conv2d / ConvTranspose2d layers.

Configurations are drawn by ``minitorch_seg.testing.conv_configs`` (non-square kernels 1-4, strides below and
above the kernel, padding, dilation, output_padding, groups 1-3, odd and even sides; never an
empty output). Each op is checked against finite differences in float64 on non-contiguous
inputs, against the plain-loop references, against torch, and for the properties the notes
state: the transposed conv is conv's adjoint, puts weighted copies of the filter into the output
and can give exactly 2x; a dilated kernel reads taps d apart.
"""
import itertools
import math
import re

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import functional as F
from minitorch_seg.functional import conv as conv_module, mec, sliding
from minitorch_seg import gemm, nn, parallel
from minitorch_seg.reference.conv import conv2d_im2col, conv2d_loops, conv_transpose2d_loops
from minitorch_seg.reference.conv import im2col as reference_im2col
from minitorch_seg.testing import conv_configs, layouts, make
from helpers import assert_one_sentence, host
from torch_compare import compare, to_torch

pytestmark = pytest.mark.conv

GRAD_EXAMPLES = 15
FORWARD_EXAMPLES = 15
TORCH_EXAMPLES = 8
# Set on every example, not only where a draw asks for a change: a test's monkeypatch is undone
# when the test ends, after all its hypothesis examples, so a change made once would stay.
SHIFTED_TILES, MEC_MAX_BYTES, MEC_MIN_PIXELS = parallel.SHIFTED_TILES, mec.MAX_BYTES, mec.MIN_PIXELS
seeds = st.integers(0, 2**16)
both_ops = pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])


@pytest.fixture(autouse=True)
def _mec_on_small_maps(monkeypatch):
    """The drawn maps are a few pixels, which the library gives im2col (``mec.MIN_PIXELS``): here MEC
    takes them as it takes the U-Net's larger maps, so that these tests run the paths training runs.
    ``test_mec_leaves_small_maps_to_im2col`` checks the rule itself."""
    monkeypatch.setattr(mec, "MIN_PIXELS", 0)


def drawn_inputs(config, seed, x_layout=None, w_layout=None, bias=True):
    """x, weight and bias for ``config`` on the current backend (x and weight maybe non-contiguous)."""
    x = make(config["x_shape"], seed=seed, layout=x_layout)
    weight = make(config["weight_shape"], seed=seed + 1, layout=w_layout)
    return x, weight, make((config["out_channels"],), seed=seed + 2) if bias else None


def ours(config):
    op = F.conv_transpose2d if config["transposed"] else F.conv2d
    return lambda x, w, b: op(x, w, b, **config.kwargs)


def reference(config, x, w, b):
    loops = conv_transpose2d_loops if config["transposed"] else conv2d_loops
    return loops(host(x), host(w), None if b is None else host(b), **config.kwargs)


def adjoint_output_padding(size, kernel, stride, padding, dilation):
    """The output_padding that takes conv's output size back to ``size``: the rows conv's floor dropped."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) % stride


# ---- gradients, references, torch ---------------------------------------------------------------
@both_ops
@settings(max_examples=GRAD_EXAMPLES)
@given(data=st.data(), seed=seeds, bias=st.booleans())
def test_gradcheck_every_input_on_noncontiguous_layouts(backend, transposed, data, seed, bias):
    config = data.draw(conv_configs(transposed=transposed), label="config")
    x, w, b = drawn_inputs(config, seed, data.draw(layouts(4)), data.draw(layouts(4)), bias)
    assert mt.gradcheck(ours(config), (x, w, b))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 3), o=st.integers(1, 4), h=st.integers(1, 40), w=st.integers(1, 70),
       layout=layouts(4), seed=seeds, step=st.integers(1, 2), first=st.integers(0, 1))
def test_bias_gradient_sums_every_sample_and_position_in_any_layout(n, o, h, w, layout, seed, step, first):
    # rows of h*w around norm's chunk (1024), strided views (a permuted or sliced g) and empty
    # batches (a slice of none keeps its strides): the sum over (0, 2, 3), to float64's precision
    g = make((n + first, o, h, w * step), seed, layout=layout).data[first:, ..., ::step]
    expected = numpy.asarray(host(g)).sum(axis=(0, 2, 3))
    numpy.testing.assert_allclose(host(conv_module._bias_gradient(g)), expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("view, fast", [(lambda g: g, True), (lambda g: g[1:], True),
                                        (lambda g: g.transpose(0, 1, 3, 2), False), (lambda g: g[..., ::2], False)])
def test_bias_gradient_sums_rows_in_place_where_they_are_contiguous(monkeypatch, view, fast):
    g = view(numpy.arange(2 * 3 * 4 * 6, dtype=numpy.float64).reshape(2, 3, 4, 6))
    seen = []
    monkeypatch.setattr(conv_module, "row_sums", lambda rows: seen.append(rows) or rows.sum(axis=-1))
    numpy.testing.assert_allclose(conv_module._bias_gradient(g), g.sum(axis=(0, 2, 3)))
    assert (len(seen) == 1 and numpy.shares_memory(seen[0], g)) if fast else not seen


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("kernel, size", [(1, 6), (3, 24)], ids=["1x1: im2col", "3x3, 24x24: MEC"])
def test_the_bias_after_im2cols_tiles_and_after_mecs(threads, kernel, size, monkeypatch):
    """The bias is added to y after im2col's tiles (a 1x1 conv, in tiles of one output row, on one host
    thread and on three) and after MEC's: the loops' values, float64."""
    monkeypatch.setattr(parallel, "CONV_TILES", parallel.CONV_TILES._replace(bytes=1))     # a row a tile
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    x, w, b = make((2, 4, size, size), seed=1), make((5, 4, kernel, kernel), seed=2), make((5,), seed=3)
    assert mec.applies(numpy, 1, sliding.windows((size, size), kernel, 1, kernel // 2)) == (kernel == 3)
    y = F.conv2d(x, w, b, padding=kernel // 2)
    expected = conv2d_loops(host(x), host(w), host(b), padding=kernel // 2)
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-12, atol=1e-12)


def test_bias_gradient_of_an_empty_batch_sliced_from_a_larger_one_is_zero():
    g = numpy.ones((2, 3, 4, 6))[:0]                  # keeps its strides: the row sums' path, on no rows
    numpy.testing.assert_array_equal(conv_module._bias_gradient(g), numpy.zeros(3))


@both_ops
@settings(max_examples=FORWARD_EXAMPLES)
@given(data=st.data(), seed=seeds, bias=st.booleans())
def test_forward_matches_the_loop_reference(backend, transposed, data, seed, bias):
    config = data.draw(conv_configs(transposed=transposed), label="config")
    x, w, b = drawn_inputs(config, seed, data.draw(layouts(4)), bias=bias)
    y = ours(config)(x, w, b)
    assert y.backend == backend
    numpy.testing.assert_allclose(host(y), reference(config, x, w, b), rtol=1e-12, atol=1e-12)


@both_ops
@settings(max_examples=TORCH_EXAMPLES)
@given(data=st.data(), seed=seeds, bias=st.booleans())
def test_forward_and_gradients_match_torch(torch, transposed, data, seed, bias):
    config = data.draw(conv_configs(transposed=transposed), label="config")
    x, w, b = drawn_inputs(config, seed, data.draw(layouts(4)), bias=bias)
    theirs = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    compare(torch, ours(config), lambda x, w, b: theirs(x, w, b, **config.kwargs), [x, w, b], seed=seed)


@st.composite
def same_padding_case(draw):
    """padding="same" or "valid" with any kernel 1-4 (even ones pad one more on the right) and dilation 1-3."""
    groups = draw(st.integers(1, 2))
    in_channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["same", "same", "valid"]))
    smallest = [1 if padding == "same" else d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    size = tuple(draw(st.integers(lo, max(lo, 7))) for lo in smallest)
    x_shape = (draw(st.integers(1, 2)), in_channels) + size
    return x_shape, (out_channels, in_channels // groups) + kernel, padding, dilation, groups


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")   # torch's own note
@settings(max_examples=TORCH_EXAMPLES)
@given(case=same_padding_case(), seed=seeds)
def test_string_padding_matches_torch_with_even_kernels_and_dilation(torch, case, seed):
    x_shape, w_shape, padding, dilation, groups = case
    x, w, b = make(x_shape, seed=seed), make(w_shape, seed=seed + 1), make(w_shape[:1], seed=seed + 2)
    kwargs = dict(padding=padding, dilation=dilation, groups=groups)
    y = compare(torch, lambda x, w, b: F.conv2d(x, w, b, **kwargs),
                lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **kwargs), [x, w, b], seed=seed)
    if padding == "same":
        assert y.shape[2:] == x_shape[2:]


@settings(max_examples=GRAD_EXAMPLES)
@given(data=st.data(), seed=seeds, bias=st.booleans())
def test_composed_im2col_twin_has_the_hand_derived_gradients(backend, data, seed, bias):
    config = data.draw(conv_configs(), label="config")
    layout = data.draw(layouts(4))
    x1, w1, b1 = drawn_inputs(config, seed, layout, bias=bias)
    x2, w2, b2 = drawn_inputs(config, seed, layout, bias=bias)
    twin, fast = conv2d_im2col(x1, w1, b1, **config.kwargs), F.conv2d(x2, w2, b2, **config.kwargs)
    numpy.testing.assert_allclose(host(twin), host(fast), rtol=1e-12, atol=1e-12)
    u = shim.to_backend(numpy.random.default_rng(seed).standard_normal(fast.shape))
    (twin * mt.Tensor(u)).sum().backward()
    (fast * mt.Tensor(u)).sum().backward()
    for composed, derived in [(x1, x2), (w1, w2)] + ([(b1, b2)] if bias else []):
        numpy.testing.assert_allclose(host(composed.grad), host(derived.grad), rtol=1e-10, atol=1e-12)


@both_ops
@settings(max_examples=GRAD_EXAMPLES)
@given(data=st.data(), seed=seeds)
def test_gradients_do_not_depend_on_the_upstream_gradients_layout(backend, transposed, data, seed):
    """The same loss through a permuted view (a non-contiguous upstream gradient) and through
    y.sum() (a broadcast one, all strides 0) gives the same gradients as with a contiguous one."""
    config = data.draw(conv_configs(transposed=transposed), label="config")
    order = data.draw(layouts(4))
    grads = []
    for way in ("contiguous", "permuted", "sum"):
        x, w, b = drawn_inputs(config, seed)
        y = ours(config)(x, w, b)
        u = numpy.random.default_rng(seed).standard_normal(y.shape) if way != "sum" else numpy.ones(y.shape)
        if way == "permuted":
            loss = (y.permute(*order) * mt.Tensor(shim.to_backend(u.transpose(order).copy()))).sum()
        elif way == "contiguous":
            loss = (y * mt.Tensor(shim.to_backend(u))).sum()
        else:
            loss = y.sum()
        loss.backward()
        grads.append([host(t.grad) for t in (x, w, b)])
        if way == "sum":   # compare with an explicit all-ones upstream gradient
            x, w, b = drawn_inputs(config, seed)
            (ours(config)(x, w, b) * mt.Tensor(shim.to_backend(u))).sum().backward()
            grads.append([host(t.grad) for t in (x, w, b)])
    for reference_grad, grad in zip(grads[0] + grads[3], grads[1] + grads[2]):
        numpy.testing.assert_allclose(grad, reference_grad, rtol=1e-12, atol=1e-12)


@both_ops
@settings(max_examples=GRAD_EXAMPLES)
@given(data=st.data(), seed=seeds)
def test_both_gradients_from_one_im2col_equal_each_gradient_alone(backend, transposed, data, seed):
    """dL/dx and dL/dw come from the same columns of g where dL/dx is a correlation of g: conv2d at
    stride 1 with padding at most d(k-1), conv_transpose2d at any stride unless an output_padding
    left rows of g no input reached. With the input or the weight frozen, each gradient comes from
    its own kernel. The two ways agree in float64."""
    config = data.draw(conv_configs(transposed=transposed, max_stride=3 if transposed else 1), label="config")
    u = make(ours(config)(*drawn_inputs(config, seed)).shape, seed=seed + 3, requires_grad=False)
    if not transposed:
        kernel, padding, dilation = config["weight_shape"][2:], config["padding"], config["dilation"]
        shared = all(p <= d * (k - 1) for k, p, d in zip(kernel, padding, dilation))
        assert conv_module._shares_columns(config["x_shape"], config["weight_shape"], (1, 1), padding, dilation,
                                           config["groups"]) == shared
    grads = []
    for frozen in (None, 0, 1):
        x, w, b = drawn_inputs(config, seed)
        if frozen is not None:
            (x, w)[frozen].requires_grad_(False)
        (ours(config)(x, w, b) * u).sum().backward()
        grads.append([None if t.grad is None else host(t.grad) for t in (x, w)])
    assert grads[1][0] is None and grads[2][1] is None
    numpy.testing.assert_allclose(grads[0][0], grads[2][0], rtol=1e-12, atol=1e-12)   # dL/dx, w frozen
    numpy.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-12, atol=1e-12)   # dL/dw, x frozen


@pytest.mark.parametrize("threads", [1, 3])
@settings(max_examples=3 * FORWARD_EXAMPLES)     # fast; the flat runs' edge cases need the draws
@given(data=st.data(), seed=seeds, one_row=st.booleans(), same_width=st.booleans())
def test_the_shifted_sum_is_the_im2col_correlation(backend, threads, data, seed, one_row, same_width, monkeypatch):
    """The forward where it has fewer output than input channels (``conv._correlate_shifted``: one
    GEMM of every tap's weights, then shifted adds) equals the im2col correlation in float64, at
    any kernel, padding and dilation, in tiles of one output row or whole, on 1 or 3 threads; with
    the output as wide as the input (one flat run per tap) or not (a rectangle per tap)."""
    config = data.draw(conv_configs(max_stride=1, max_groups=1), label="config")
    if same_width:   # a kernel row of 2-5 taps, the padding that keeps the width: shifted flat runs
        kw, dw = data.draw(st.sampled_from([(2, 2), (3, 1), (3, 2), (3, 3), (4, 2), (5, 1)]), label="kw, dw")
        pw = dw * (kw - 1) // 2                # rows up to that wide too, where runs would wrap twice
        config["weight_shape"] = config["weight_shape"][:3] + (kw,)
        config["x_shape"] = config["x_shape"][:3] + (data.draw(st.integers(1, pw + 5), label="W"),)
        config["padding"], config["dilation"] = (config["padding"][0], pw), (config["dilation"][0], dw)
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    monkeypatch.setattr(parallel, "SHIFTED_TILES", SHIFTED_TILES._replace(bytes=1) if one_row else SHIFTED_TILES)
    x, w, _ = drawn_inputs(config, seed, bias=False)
    geometry = sliding.windows(config["x_shape"][2:], config["weight_shape"][2:], (1, 1), config["padding"],
                               config["dilation"])
    shifted = conv_module._correlate_shifted(x.data, w.data, geometry)
    o = config["weight_shape"][0]
    im2col, _ = conv_module._im2col_products(x.data, geometry, 1, w.data)
    numpy.testing.assert_allclose(host(shifted), host(im2col).reshape(shifted.shape), rtol=1e-12, atol=1e-12)
    mec_applies = backend != "cupy" and config["dilation"][0] == 1 and config["weight_shape"][2] > 1
    assert conv_module._use_shifted_sum(x.data, config["weight_shape"], (1, 1), 1, geometry) == (
        o < config["x_shape"][1] and o <= 64 and not mec_applies)


@pytest.mark.parametrize("out_channels", [8, 3])
def test_a_conv_without_input_or_weight_gradient_pads_nothing(out_channels, monkeypatch):
    """Where neither x's nor the weight's gradient is wanted (``no_grad``: evaluation; or the bias's
    alone) a 3x3 "same" conv reads x unpadded, as in training: the padded copy is for a weight
    gradient without dL/dx. With more and with fewer outputs than inputs (MEC, the shifted sum),
    the plain loops' values, and the bias's gradient the sum of g."""
    x, w = make((2, 5, 7, 9), seed=0, requires_grad=False), make((out_channels, 5, 3, 3), seed=1, requires_grad=False)
    bias = make((out_channels,), seed=2)
    expected = conv2d_loops(x.numpy(), w.numpy(), bias.numpy(), stride=1, padding=1)
    pads = []
    original = sliding.pad
    monkeypatch.setattr(sliding, "pad", lambda *args: pads.append(1) or original(*args))
    with mt.no_grad():
        numpy.testing.assert_allclose(F.conv2d(x, w, bias, padding=1).numpy(), expected, rtol=1e-12, atol=1e-12)
    y = F.conv2d(x, w, bias, padding=1)
    g = make(y.shape, seed=3, requires_grad=False)
    y.backward(g)
    assert pads == []
    numpy.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(bias.grad.numpy(), g.numpy().sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("side", [(16, 32), (16, 33), (8, 64), (3, 200)])
def test_mec_leaves_small_maps_to_im2col(side, monkeypatch):
    """A 3x3 "same" conv takes MEC only where a sample's output has more than ``mec.MIN_PIXELS`` (512)
    pixels, whatever their shape, and im2col below; both give the loops' values and gradients."""
    monkeypatch.setattr(mec, "MIN_PIXELS", MEC_MIN_PIXELS)   # the library's own rule, not the fixture's
    taken = []
    for name in ("products", "correlate_rows"):
        original = getattr(mec, name)
        monkeypatch.setattr(mec, name, lambda *args, _f=original: taken.append(1) or _f(*args))
    x, w = make((2, 2) + side, seed=0), make((3, 2, 3, 3), seed=1)
    y = F.conv2d(x, w, padding=1)
    g = make(y.shape, seed=2, requires_grad=False)
    y.backward(g)
    assert MEC_MIN_PIXELS == 512 and bool(taken) == (side[0] * side[1] > 512)
    expected = conv2d_loops(x.numpy(), w.numpy(), None, stride=1, padding=1)
    numpy.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    grad_w = numpy.einsum("nohw,nchw->oc", g.numpy(), x.numpy())          # the centre tap of the loops
    numpy.testing.assert_allclose(w.grad.numpy()[:, :, 1, 1], grad_w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n, out_channels, path", [(8, 16, "rows"), (8, 32, "im2col"), (8, 48, "im2col"),
                                                  (1, 16, "shifted")])
def test_a_small_maps_forward_with_fewer_outputs_takes_the_row_band(n, out_channels, path, monkeypatch):
    """On maps of ``mec.MIN_PIXELS`` or fewer (8x16 here), the forward of a conv with fewer outputs than
    inputs (32) takes the row band where its batch has ``mec.SMALL_MAPS_MIN_PIXELS`` output pixels or
    more (8 samples: 1024), the shifted sum where it has fewer (1: 128); with as many outputs or more,
    im2col. The backward takes im2col in all four. The loops' values, and the composed twin's gradients."""
    monkeypatch.setattr(mec, "MIN_PIXELS", MEC_MIN_PIXELS)   # the library's own rule, not the fixture's
    taken = []
    for module, name in ((mec, "correlate_rows"), (mec, "products"), (conv_module, "_correlate_shifted"),
                         (conv_module, "_im2col_products")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args, _f=original, _n=name: taken.append(_n) or _f(*args))
    x, w = make((n, 32, 8, 16), seed=0), make((out_channels, 32, 3, 3), seed=1)
    y = F.conv2d(x, w, padding=1)
    forward = {"rows": ["products", "correlate_rows"], "shifted": ["_correlate_shifted"],
               "im2col": ["_im2col_products"]}
    assert taken == forward[path]
    taken.clear()
    u = make(y.shape, seed=2, requires_grad=False)
    (y * u).sum().backward()
    assert taken == ["_im2col_products"]
    numpy.testing.assert_allclose(host(y), conv2d_loops(host(x), host(w), None, padding=1), rtol=1e-12, atol=1e-12)
    z, v = make(x.shape, seed=0), make(w.shape, seed=1)
    (conv2d_im2col(z, v, None, padding=1) * u).sum().backward()
    for ours_, twin in ((x, z), (w, v)):
        numpy.testing.assert_allclose(host(ours_.grad), host(twin.grad), rtol=1e-12, atol=1e-12)


@settings(max_examples=200)
@given(n=st.integers(1, 9), out_h=st.integers(1, 300), out_w=st.integers(1, 300), row_bytes=st.integers(1, 1 << 22),
       max_bytes=st.sampled_from([1, 1 << 16, 1 << 20, 1 << 25]), split=st.integers(1, 8))
def test_mec_tiles_cover_the_map_once_within_the_byte_limit_in_even_runs(n, out_h, out_w, row_bytes, max_bytes,
                                                                        split, monkeypatch):
    """``mec._plan``: every (sample, output row) in exactly one tile; each tile a group of ``WIDE``
    side by side and a run of rows whose band holds at most ``MAX_BYTES`` (or a single row); a
    group's runs differ by one row at most, and there are ``SPLIT`` tiles or more where the rows allow."""
    monkeypatch.setattr(mec, "MAX_BYTES", max_bytes)
    monkeypatch.setattr(mec, "SPLIT", split)
    plan = mec._plan(n, out_h, out_w, row_bytes)
    covered = numpy.zeros((n, out_h), dtype=int)
    for samples, rows in plan:
        covered[samples, rows] += 1
        m, r = samples.stop - samples.start, rows.stop - rows.start
        assert m == min(-(-mec.WIDE // out_w), n - samples.start) and r >= 1
        assert r == 1 or r * m * row_bytes <= max_bytes
    assert (covered == 1).all()
    runs = {rows.stop - rows.start for _, rows in plan}
    assert max(runs) - min(runs) <= 1
    groups = -(-n // min(n, -(-mec.WIDE // out_w)))
    assert len(plan) >= min(split, groups * out_h)


@pytest.mark.parametrize("channels", [1, 3, 16, 21, 22, 32])
def test_the_correlation_alone_takes_the_row_band_only_where_its_products_are_deep_enough(channels, monkeypatch):
    """At stride 1 the correlation alone comes from the row band (``mec.correlate_rows``) where each
    of its GEMMs has kh*C >= ``mec.ROWS_MIN_DEPTH`` inner values; an RGB input's (9) and 16 channels'
    (48) take MEC's kw copies instead. Either way, the loops' values."""
    rows = []
    original = mec.correlate_rows
    monkeypatch.setattr(mec, "correlate_rows", lambda *args: rows.append(1) or original(*args))
    x, w = make((2, channels, 6, 7), seed=0, requires_grad=False), make((4, channels, 3, 3), seed=1, requires_grad=False)
    geometry = sliding.windows((6, 7), (3, 3), (1, 1), (1, 1), (1, 1))
    y, _ = mec.products(x.data, geometry, w.data)
    assert bool(rows) == (3 * channels >= mec.ROWS_MIN_DEPTH) == (channels >= 22)
    expected = conv2d_loops(x.numpy(), w.numpy(), None, stride=1, padding=1)
    numpy.testing.assert_allclose(host(y).reshape(expected.shape), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mkl", [False, True])
def test_the_shifted_sum_gives_way_to_mec_where_mec_applies(mkl, monkeypatch):
    """Convs from 32 to 16 channels: a 3x3 one takes MEC (its row band copies less than the shifted
    sum writes), under OpenBLAS and MKL alike; a 1x1 one and a 3x3 one dilated in height, where MEC
    does not apply, take the shifted sum."""
    monkeypatch.setattr(gemm, "active", lambda: mkl)
    taken = []
    y = numpy.zeros((2, 16, 6, 8))
    monkeypatch.setattr(conv_module, "_correlate_shifted", lambda *args: taken.append("shifted") or y)
    monkeypatch.setattr(mec, "products", lambda *args: taken.append("mec") or (y.reshape(2, 1, 16, 48), None))
    x = make((2, 32, 6, 8), seed=0)
    F.conv2d(x, make((16, 32, 3, 3), seed=1), padding=1)
    F.conv2d(x, make((16, 32, 1, 1), seed=2))
    F.conv2d(x, make((16, 32, 3, 3), seed=3), padding=(2, 1), dilation=(2, 1))
    assert taken == ["mec", "shifted", "shifted"]


@pytest.mark.parametrize("threads", [1, 3])
@settings(max_examples=FORWARD_EXAMPLES)
@given(data=st.data(), seed=seeds, one_row=st.booleans(), side_by_side=st.sampled_from([1, 2, 64]),
       all_taps=st.booleans(), flipped=st.booleans())
def test_mec_gives_the_im2col_products(backend, threads, data, seed, one_row, side_by_side, all_taps, flipped,
                                       monkeypatch):
    """MEC's lowered rows (``mec.products``: kw copies, the kernel's rows found by where each GEMM
    starts reading) give the same correlation and the same partner product (a weight gradient) as
    im2col's columns, in float64, at any kernel, stride, padding and dilation in width; in tiles of
    one output row or as few as possible, with 1, 2 or every sample side by side in a GEMM, on 1 or
    3 threads, lowered a tap at a time or all taps at once, from a contiguous weight or from a view
    with negative strides (the backward's flipped kernel). The correlation alone as well, from the kw
    copies and, at stride 1, from the row band (``mec.correlate_rows``: the padded rows copied once,
    a GEMM per kernel column, the columns between samples read and dropped), whatever
    ``ROWS_MIN_DEPTH`` would pick for the drawn channels. And it is used exactly
    where it applies: on the host, no groups, a kernel taller than one row, stride 1 and no dilation
    in height."""
    config = data.draw(conv_configs(max_batch=3, max_groups=1), label="config")
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    monkeypatch.setattr(mec, "WIDE", side_by_side)
    monkeypatch.setattr(mec, "ONE_COPY_WIDTH", 0 if all_taps else 1 << 30)
    monkeypatch.setattr(mec, "MAX_BYTES", 1 if one_row else MEC_MAX_BYTES)
    dilation = (1, config["dilation"][1])            # the kernel fits: it spans no more rows than drawn
    geometry = sliding.windows(config["x_shape"][2:], config["weight_shape"][2:], config["stride"],
                               config["padding"], dilation)
    x, w, _ = drawn_inputs(config, seed, bias=False)
    partner = make((config["x_shape"][0], 3) + geometry.out_hw, seed=seed + 3)
    weight = w.data[::-1, :, ::-1, ::-1].copy()[::-1, :, ::-1, ::-1] if flipped else w.data   # the same values
    ours = mec.products(x.data, geometry, weight, partner.data)
    theirs = conv_module._im2col_products(x.data, geometry, 1, weight, partner.data)
    alone = []
    for depth in (0, 1 << 30):             # the correlation alone from the row band (at stride 1), from the kw copies
        monkeypatch.setattr(mec, "ROWS_MIN_DEPTH", depth)
        alone.append(mec.products(x.data, geometry, weight)[0])
    for got, expected in zip(ours + tuple(alone), theirs + theirs[:1] * 2):
        assert got.shape == expected.shape
        numpy.testing.assert_allclose(host(got), host(expected), rtol=1e-12, atol=1e-12)
    xp = shim.get_array_module(x.data)
    shares_rows = config["stride"][0] == 1 < config["weight_shape"][2]
    assert mec.applies(xp, 1, geometry) == (shim.module_name(xp) != "cupy" and shares_rows)
    assert not mec.applies(xp, 2, geometry) and not mec.applies(xp, 1, geometry._replace(dilation=(2, 1)))


def test_mec_lowers_every_small_width_geometry_alike_a_tap_at_a_time_and_all_taps_at_once(monkeypatch):
    """Every kernel width 1-5, stride 1-3, dilation 1-3, padding 0-6 and input width 1-11 (where the
    kernel fits), a whole band and a band of rows inside: the one-copy lowering and the tap-at-a-time
    one write the same band, zeros included, down to widths where no column has every tap inside x."""
    rng = numpy.random.default_rng(0)
    for kw, sw, dw, pw, w in itertools.product(range(1, 6), range(1, 4), range(1, 4), range(7), range(1, 12)):
        if dw * (kw - 1) + 1 > w + 2 * pw:
            continue
        geometry = sliding.windows((5, w), (3, kw), (1, sw), (1, pw), (1, dw))
        x = rng.random((3, 2, 5, w))
        for samples, rows in [(slice(0, 3), slice(0, geometry.out_hw[0])), (slice(1, 2), slice(1, 3))]:
            bands = []
            for width in (0, 1 << 30):
                monkeypatch.setattr(mec, "ONE_COPY_WIDTH", width)
                bands.append(mec.lower(x, geometry, samples, rows))
            assert numpy.array_equal(*bands), (kw, sw, dw, pw, w)
            padded = numpy.pad(x[samples], ((0, 0), (0, 0), (1, 1), (pw, pw)))
            (a, c, j, m, v), top = numpy.indices(bands[0].shape), rows.start    # element (a, c, j, m, v) reads
            expected = padded[m, c, top + a, v * sw + j * dw]                  # padded row top + a, column v*sw + j*dw
            assert numpy.array_equal(bands[0], expected), (kw, sw, dw, pw, w)


def test_the_row_band_holds_the_padded_rows_of_every_small_geometry():
    """Every kernel 2-4 rows high, padding 0-3 in height and 0-6 in width and input width 1-9, a band of
    every output row, of the first, of the last and of rows inside, of all samples or one: the row
    band (``mec.lower_rows``) holds the padded input's rows, (A, C, M, Wp), zeros included."""
    rng = numpy.random.default_rng(0)
    for kh, ph, pw, w in itertools.product(range(2, 5), range(4), range(7), range(1, 10)):
        if kh > 5 + 2 * ph:
            continue
        geometry = sliding.windows((5, w), (kh, 1), 1, (ph, pw))
        x = rng.random((3, 2, 5, w))
        out_h = geometry.out_hw[0]
        padded = numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        for samples, rows in [(slice(0, 3), slice(0, out_h)), (slice(1, 2), slice(0, 1)),
                              (slice(0, 2), slice(out_h - 1, out_h)), (slice(2, 3), slice(min(1, out_h - 1), out_h))]:
            band = mec.lower_rows(x, geometry, samples, rows)
            expected = padded[samples, :, rows.start:rows.stop + kh - 1].transpose(2, 1, 0, 3)
            assert numpy.array_equal(band, expected), (kh, ph, pw, w, samples, rows)


@pytest.mark.parametrize("host_backend", ["numpy", "strict"])
@given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]))
@settings(max_examples=30)
def test_a_strided_view_is_as_strideds_on_the_same_memory(host_backend, data, dtype):
    """``sliding.strided``, MEC's views of its bands (host arrays): as_strided's values, base's type,
    base's memory (a write through the view shows in base), and no view that reads past base's end."""
    size = data.draw(st.integers(2, 120))
    with shim.use_backend(host_backend):
        base = shim.to_backend(numpy.arange(size, dtype=dtype).reshape(data.draw(st.sampled_from([(-1,), (1, -1)]))))
    item = base.itemsize
    offset = data.draw(st.integers(0, size - 1))
    rows = data.draw(st.integers(1, 4))
    cols = data.draw(st.integers(1, max(1, (size - offset) // rows)))
    step = data.draw(st.integers(0, (size - offset - cols) // max(rows - 1, 1))) if rows > 1 else 0
    shape, strides = (rows, cols), (step * item, item)                   # the last element read is in base
    view = sliding.strided(base, offset, shape, strides)
    expected = numpy.lib.stride_tricks.as_strided(host(base).reshape(-1)[offset:], shape=shape, strides=strides)
    assert type(view) is type(base) and view.shape == shape and view.dtype == base.dtype
    numpy.testing.assert_array_equal(host(view), expected)
    view[-1, -1] = -1                                                    # the same memory: base sees the write
    assert host(base).reshape(-1)[offset + (rows - 1) * step + cols - 1] == -1
    with pytest.raises(ValueError):                                      # one element past the end
        sliding.strided(base, size - cols + 1, (1, cols), (item, item))


@both_ops
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dilation, padding", [(1, 1), (2, 1)])
def test_feature_maps_large_enough_to_be_processed_in_tiles(backend, transposed, dilation, padding, threads,
                                                           monkeypatch):
    """Stride-1 convs on a 2x8x48x40 map (a column buffer of a few MB: several tiles of rows), on
    one host thread and spread over three: forward and gradients equal the composed twin's.

    The transposed conv meets the twin through adjointness: with s = <conv2d_im2col(u, v), x>,
    ds/du = conv_transpose(x, v) (its forward), conv2d_im2col(u, v) = its dL/dx for upstream u, and
    ds/dv = its dL/dw."""
    monkeypatch.setattr(parallel, "CONV_TILES", parallel.CONV_TILES._replace(bytes=1 << 18))   # several tiles of rows
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    x, b = make((2, 8, 48, 40), seed=1), make((4,), seed=3)
    geometry = sliding.windows((48, 40), 3, padding=padding, dilation=dilation)
    assert len(conv_module._row_tiles(x.data, geometry)) > threads
    assert len({samples.start for samples, _ in conv_module._sample_row_tiles(x.data, geometry)}) == 2
    assert len(conv_module._sample_row_tiles(x.data, geometry)) > 2 * threads
    w = make((8, 4, 3, 3) if transposed else (4, 8, 3, 3), seed=2)          # 8 channels in, 4 out
    kwargs = dict(padding=padding, dilation=dilation)
    op = F.conv_transpose2d if transposed else F.conv2d
    fast = op(x, w, b, **kwargs)
    u = make(fast.shape, seed=4)
    (fast * u.detach()).sum().backward()
    v = make(w.shape, seed=2)                                                # w's values, a fresh leaf
    if transposed:
        twin_dx = conv2d_im2col(u, v, **kwargs)
        (twin_dx * x.detach()).sum().backward()
        twin, twin_grads = u.grad + b.reshape(1, -1, 1, 1), [twin_dx, v.grad]
    else:
        z, c = make(x.shape, seed=1), make((4,), seed=3)
        twin = conv2d_im2col(z, v, c, **kwargs)
        (twin * u.detach()).sum().backward()
        twin_grads = [z.grad, v.grad]
    numpy.testing.assert_allclose(host(fast), host(twin), rtol=1e-10, atol=1e-10)
    for grad, expected in zip([x.grad, w.grad], twin_grads):
        numpy.testing.assert_allclose(host(grad), host(expected), rtol=1e-10, atol=1e-10)
    numpy.testing.assert_allclose(host(b.grad), host(u).sum(axis=(0, 2, 3)), rtol=1e-10)


@pytest.mark.parametrize("threads", [1, 3])
def test_the_tiles_are_exact_at_any_stride_dilation_and_groups(backend, threads, monkeypatch):
    """Each kernel has one tiled path. At stride (2, 3), dilation (2, 1) and groups 2, in tiles of
    one output row (of one sample, for the correlation), on one host thread and on three: conv2d's
    forward equals the loops and its gradients the composed twin's; conv_transpose2d's forward (the
    adjoint's col2im tiles, whose windows overlap from one tile to the next) equals the loops,
    output_padding included."""
    monkeypatch.setattr(parallel, "CONV_TILES", parallel.CONV_TILES._replace(bytes=1))     # one row a tile
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    kwargs = dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=2)
    x, w, b = make((2, 4, 23, 19), seed=1), make((6, 2, 3, 2), seed=2), make((6,), seed=3)
    geometry = sliding.windows((23, 19), (3, 2), (2, 3), (1, 2), (2, 1))
    assert len(conv_module._row_tiles(x.data, geometry)) == geometry.out_hw[0] == 11
    assert len(conv_module._sample_row_tiles(x.data, geometry)) == 2 * 11
    y = F.conv2d(x, w, b, **kwargs)
    numpy.testing.assert_allclose(host(y), conv2d_loops(host(x), host(w), host(b), **kwargs), rtol=1e-12, atol=1e-12)
    u = make(y.shape, seed=4, requires_grad=False)
    (y * u).sum().backward()
    z, v, c = make(x.shape, seed=1), make(w.shape, seed=2), make((6,), seed=3)            # the same values
    (conv2d_im2col(z, v, c, **kwargs) * u).sum().backward()
    for ours, twin in ((x, z), (w, v), (b, c)):
        numpy.testing.assert_allclose(host(ours.grad), host(twin.grad), rtol=1e-12, atol=1e-12)

    x_t, w_t = make((2, 6, 7, 5), seed=5), make((6, 2, 3, 2), seed=6)       # 6 channels in, 2 * 2 out
    y_t = F.conv_transpose2d(x_t, w_t, output_padding=(1, 2), **kwargs)
    expected = conv_transpose2d_loops(host(x_t), host(w_t), output_padding=(1, 2), **kwargs)
    numpy.testing.assert_allclose(host(y_t), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 3])
def test_the_upsampling_stamp_runs_in_tiles_of_rows(backend, threads, monkeypatch):
    """The transposed conv whose filter copies tile its output (kernel = stride, ``conv._stamp_disjoint``)
    in tiles of one input row, on one host thread and on three: the loops' values. And on the host
    the U-Net's deepest one (4x128x16x32 -> 64 channels, 2 MiB of columns) takes two tiles
    (``parallel.STAMP_TILES``), where ``CONV_TILES`` would keep it whole."""
    monkeypatch.setattr(parallel, "STAMP_TILES", parallel.STAMP_TILES._replace(bytes=1))   # one row a tile
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    handed = []
    monkeypatch.setattr(parallel, "map_tiles", lambda xp, work, tiles, run=parallel.map_tiles: handed.append(len(tiles))
                        or run(xp, work, tiles))
    x, w, b = make((2, 6, 5, 3), seed=1), make((6, 4, 2, 3), seed=2), make((4,), seed=3)
    y = F.conv_transpose2d(x, w, b, stride=(2, 3))
    assert handed == [5]                                                    # x's 5 rows
    expected = conv_transpose2d_loops(host(x), host(w), host(b), stride=(2, 3))
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-12, atol=1e-12)
    monkeypatch.undo()
    image, geometry = numpy.empty((4, 64, 32, 64), numpy.float32), sliding.Windows((32, 64), (16, 32), (2, 2), (2, 2),
                                                                                    (0, 0), (1, 1))
    assert len(conv_module._row_tiles(image, geometry, parallel.STAMP_TILES)) == 2
    assert len(conv_module._row_tiles(image, geometry)) == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("groups", [1, 2])
def test_the_stamp_copies_each_pixels_taps_as_one_unit(backend, dtype, groups, monkeypatch):
    """The stamp's pixel-major GEMM holds each input pixel's kw taps side by side: with kw = 2 in float32
    (8 bytes) they are copied as one uint64, in float64 a kernel column at a time. Both give the loops'
    values, with a bias and in groups, in tiles of one input row on three threads."""
    monkeypatch.setattr(parallel, "STAMP_TILES", parallel.STAMP_TILES._replace(bytes=1))   # one row a tile
    monkeypatch.setattr(parallel, "host_threads", lambda: 3)
    x = make((2, 4, 3, 5), seed=1, dtype=dtype)
    w, b = make((4, 6 // groups, 3, 2), seed=2, dtype=dtype), make((6,), seed=3, dtype=dtype)
    y = F.conv_transpose2d(x, w, b, stride=(3, 2), groups=groups)
    expected = conv_transpose2d_loops(*(host(t).astype("float64") for t in (x, w, b)), stride=(3, 2), groups=groups)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    numpy.testing.assert_allclose(host(y), expected, rtol=tolerance, atol=tolerance)


# ---- im2col and col2im, public ------------------------------------------------------------------
@settings(max_examples=FORWARD_EXAMPLES)
@given(config=conv_configs(), seed=seeds)
def test_im2col_times_the_weight_is_conv2d_and_col2im_is_its_adjoint(config, seed):
    """``sliding.im2col`` (also ``reference.conv.im2col``, the lessons' name): the flattened filter
    times the columns is conv2d (groups 1); ``col2im`` satisfies <im2col(x), c> = <x, col2im(c)>."""
    kwargs = {k: v for k, v in config.kwargs.items() if k != "groups"}
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal(config["x_shape"])
    n, channels = x.shape[:2]
    w = rng.standard_normal((3, channels) + tuple(config["weight_shape"][2:]))
    columns = reference_im2col(x, w.shape[2:], **kwargs)
    y = conv2d_loops(x, w, **kwargs)
    numpy.testing.assert_allclose((w.reshape(3, -1) @ columns).reshape(y.shape), y, rtol=1e-12, atol=1e-12)
    c = rng.standard_normal(columns.shape)
    back = sliding.col2im(c, x.shape[2:], w.shape[2:], **kwargs)
    assert back.shape == x.shape
    numpy.testing.assert_allclose((columns * c).sum(), (x * back).sum(), rtol=1e-10)


@pytest.mark.parametrize("call, needle", [
    (lambda: sliding.im2col(numpy.zeros((2, 3, 4)), 2), "im2col: expected a 4-D (N, C, H, W) array, got shape (2, 3"),
    (lambda: sliding.im2col(numpy.zeros((1, 1, 3, 3)), 3, dilation=2), "does not fit the 3x3 input padded by (0, 0)"),
    (lambda: sliding.col2im(numpy.zeros((1, 4, 4)), (3, 3), 3), "col2im: columns of shape (1, 4, 4) do not fit a 3x3"),
    (lambda: sliding.col2im(numpy.zeros((4, 4)), (3, 3), 2), "col2im: expected 3-D (N, C*kh*kw, Ho*Wo) columns"),
], ids=["im2col 3-D", "im2col too small", "col2im wrong rows", "col2im 2-D"])
def test_im2col_and_col2im_refuse_bad_arguments_in_one_sentence(call, needle):
    with pytest.raises(ValueError) as raised:
        call()
    assert_one_sentence(raised, needle)


# ---- properties ---------------------------------------------------------------------------------
@settings(max_examples=FORWARD_EXAMPLES)
@given(config=conv_configs(), seed=seeds)
def test_transposed_conv_is_the_adjoint_of_conv(config, seed):
    """<conv(x), y> = <x, conv_transpose(y)> for one weight and geometry: conv_transpose is conv^T."""
    x, w, _ = drawn_inputs(config, seed, bias=False)
    kwargs = config.kwargs
    conv_y = F.conv2d(x, w, **kwargs)
    y = make(conv_y.shape, seed=seed + 3)
    output_padding = tuple(adjoint_output_padding(*a) for a in zip(config["x_shape"][2:], config["weight_shape"][2:],
                                                                    kwargs["stride"], kwargs["padding"],
                                                                    kwargs["dilation"]))
    back = F.conv_transpose2d(y, w, output_padding=output_padding, **kwargs)
    assert back.shape == x.shape
    numpy.testing.assert_allclose((host(conv_y) * host(y)).sum(), (host(x) * host(back)).sum(), rtol=1e-10)
    # The loop references, written independently of each other, satisfy it too.
    loops_back = conv_transpose2d_loops(host(y), host(w), output_padding=output_padding, **kwargs)
    numpy.testing.assert_allclose((conv2d_loops(host(x), host(w), **kwargs) * host(y)).sum(),
                                  (host(x) * loops_back).sum(), rtol=1e-10)


@pytest.mark.parametrize("kernel_size, padding", [(2, 0), (4, 1)])
def test_transposed_conv_can_give_exactly_twice_the_size(kernel_size, padding):
    """The notes' crop: k=2, s=2, p=0 places copies side by side; k=4, s=2, p=1 overlaps them and crops 1."""
    x, w = make((2, 3, 5, 6), seed=1), make((3, 2, kernel_size, kernel_size), seed=2)
    y = F.conv_transpose2d(x, w, stride=2, padding=padding)
    assert y.shape == (2, 2, 10, 12)
    numpy.testing.assert_allclose(host(y), conv_transpose2d_loops(host(x), host(w), stride=2, padding=padding))
    assert nn.ConvTranspose2d(3, 2, kernel_size, stride=2, padding=padding).double()(x).shape == (2, 2, 10, 12)
    if kernel_size == 2:   # no overlap: each pixel becomes its own 2x2 block, x * w (Kronecker product)
        one = F.conv_transpose2d(x[:1, :1], w[:1, :1], stride=2)
        numpy.testing.assert_allclose(host(one)[0, 0], numpy.kron(host(x)[0, 0], host(w)[0, 0]))


def test_transposed_conv_sums_filter_copies_where_they_overlap():
    """Input [[1, 2]], a 3x3 filter of ones, stride 2: copies of the filter times 1 and times 2,
    two pixels apart, overlap in the middle column, which holds 1 + 2."""
    x = mt.tensor([[[[1.0, 2.0]]]], dtype="float64")
    expected = [[1.0, 1.0, 3.0, 2.0, 2.0]] * 3
    y = F.conv_transpose2d(x, mt.ones(1, 1, 3, 3, dtype="float64"), stride=2)
    assert y[0, 0].tolist() == expected
    assert conv_transpose2d_loops(host(x), numpy.ones((1, 1, 3, 3)), stride=2)[0, 0].tolist() == expected


def test_dilated_kernel_reads_exactly_the_taps_two_apart():
    """A 3x3 kernel at dilation 2 on a 5x5 input gives one output, reading x[2i, 2j] with weight w[i, j]:
    a one-hot input at (a, b) yields w[a/2, b/2] when both are even, else 0 (the skipped pixels)."""
    w = numpy.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    for a in range(5):
        for b in range(5):
            x = numpy.zeros((1, 1, 5, 5))
            x[0, 0, a, b] = 1.0
            expected = w[0, 0, a // 2, b // 2] if a % 2 == 0 and b % 2 == 0 else 0.0
            y = F.conv2d(mt.tensor(x), mt.tensor(w), dilation=2)
            assert y.shape == (1, 1, 1, 1)
            assert y.item() == expected == conv2d_loops(x, w, dilation=2).item(), (a, b)


def test_conv_hand_computed_with_groups():
    """groups=2: output channel 0 sees only input channel 0, channel 1 only channel 1."""
    x = numpy.stack([numpy.ones((3, 3)), 2 * numpy.ones((3, 3))])[None]      # (1, 2, 3, 3)
    w = numpy.stack([numpy.ones((1, 2, 2)), -numpy.ones((1, 2, 2))])        # (2, 1, 2, 2)
    y = F.conv2d(mt.tensor(x), mt.tensor(w), mt.tensor([0.5, 0.0], dtype="float64"), groups=2)
    numpy.testing.assert_array_equal(host(y)[0, 0], numpy.full((2, 2), 4.5))
    numpy.testing.assert_array_equal(host(y)[0, 1], numpy.full((2, 2), -8.0))


@both_ops
@pytest.mark.parametrize("stride", [1, 2])
def test_empty_batch_gives_empty_output_and_gradients_as_torch(transposed, stride):
    """torch accepts N = 0 (shapes still computed); so must we, forward and backward, on both paths."""
    x = make((0, 3, 6, 6))
    w = make((3, 4, 3, 3) if transposed else (4, 3, 3, 3), seed=1)
    y = (F.conv_transpose2d if transposed else F.conv2d)(x, w, padding=1, stride=stride)
    side = (6 - 1) * stride - 2 + 3 if transposed else (6 + 2 - 3) // stride + 1
    assert y.shape == (0, 4, side, side)
    y.sum().backward()
    assert x.grad.shape == x.shape and not host(w.grad).any()


@both_ops
@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_float_dtypes_raise_one_sentence_as_torch(transposed, stride):
    """float32 input, float64 weight: refused on every path, as torch refuses it (no silent promotion)."""
    x, w = make((1, 2, 5, 5), dtype="float32"), make((2, 2, 3, 3), seed=1)
    with pytest.raises(TypeError, match="input is float32 but weight is float64"):
        (F.conv_transpose2d if transposed else F.conv2d)(x, w, stride=stride)


# ---- errors -------------------------------------------------------------------------------------
def ones(*shape):
    return mt.ones(*shape, dtype="float64")


BAD_CALLS = {
    "kernel larger than the padded input": (
        lambda: F.conv2d(ones(1, 1, 3, 3), ones(1, 1, 5, 5), padding=0), "spans 5x5 pixels, more than the padded"),
    "dilated kernel larger than the padded input": (
        lambda: F.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), dilation=2), "spans 5x5 pixels"),
    "channels not divisible by groups": (
        lambda: F.conv2d(ones(1, 3, 5, 5), ones(4, 1, 3, 3), groups=2), "divisible by groups=2"),
    "transposed channels not divisible by groups": (
        lambda: F.conv_transpose2d(ones(1, 3, 5, 5), ones(3, 1, 3, 3), groups=2), "divisible by groups=2"),
    "weight expects other input channels": (
        lambda: F.conv2d(ones(1, 3, 5, 5), ones(2, 2, 3, 3)), "input has 3 channels"),
    "transposed weight expects other input channels": (
        lambda: F.conv_transpose2d(ones(1, 3, 5, 5), ones(2, 2, 3, 3)), "input has 3 channels"),
    "negative padding": (
        lambda: F.conv2d(ones(1, 1, 5, 5), ones(1, 1, 3, 3), padding=-1), "non-negative"),
    "transposed negative padding": (
        lambda: F.conv_transpose2d(ones(1, 1, 5, 5), ones(1, 1, 3, 3), padding=-1), "non-negative"),
    "output_padding not below stride or dilation": (
        lambda: F.conv_transpose2d(ones(1, 1, 5, 5), ones(1, 1, 3, 3), stride=2, output_padding=2),
        "must be smaller than stride"),
    "padding same with stride 2": (
        lambda: F.conv2d(ones(1, 1, 5, 5), ones(1, 1, 3, 3), stride=2, padding="same"), "only supported with stride 1"),
    "unknown padding string": (
        lambda: F.conv2d(ones(1, 1, 5, 5), ones(1, 1, 3, 3), padding="full"), "'valid' or 'same'"),
    "3-D input": (lambda: F.conv2d(ones(1, 5, 5), ones(1, 1, 3, 3)), "4-D"),
    "3-D input to the transposed conv": (lambda: F.conv_transpose2d(ones(1, 5, 5), ones(1, 1, 3, 3)), "4-D"),
    "transposed padding that crops everything": (
        lambda: F.conv_transpose2d(ones(1, 1, 1, 1), ones(1, 1, 1, 1), padding=1), "empty output"),
    "layer channels not divisible by groups": (lambda: nn.Conv2d(3, 4, 3, groups=2), "divisible by groups=2"),
    "layer padding same with stride 2": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), "stride 1"),
    "layer unknown padding string": (lambda: nn.Conv2d(3, 4, 3, padding="full"), "'valid' or 'same'"),
    "layer negative padding": (lambda: nn.Conv2d(3, 4, 3, padding=-1), "non-negative"),
    "layer output_padding not below stride or dilation": (
        lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), "must be smaller than stride"),
    "layer output_size out of reach": (
        lambda: nn.ConvTranspose2d(1, 1, 2, stride=2)(ones(1, 1, 3, 3), output_size=(9, 6)), "valid sizes range"),
}


@pytest.mark.parametrize("call, needle", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_arguments_raise_one_clear_sentence(call, needle):
    with pytest.raises(ValueError, match=re.escape(needle)) as raised:
        call()
    assert_one_sentence(raised.value)


# ---- the layers ---------------------------------------------------------------------------------
LAYERS = {
    "conv 3x3 same": ("Conv2d", (3, 4, 3), dict(padding=1)),
    "conv strided grouped no bias": ("Conv2d", (4, 6, (3, 2)), dict(stride=2, padding=(1, 0), groups=2, bias=False)),
    "conv atrous": ("Conv2d", (2, 3, 3), dict(padding=2, dilation=2)),
    "conv padding same even kernel": ("Conv2d", (2, 2, (2, 4)), dict(padding="same", dilation=(1, 2))),
    "conv padding valid": ("Conv2d", (2, 2, 3), dict(padding="valid")),
    "transposed 2x": ("ConvTranspose2d", (4, 2, 4), dict(stride=2, padding=1)),
    "transposed grouped dilated": ("ConvTranspose2d", (4, 6, (3, 2)), dict(stride=(2, 1), output_padding=(1, 0),
                                                                           groups=2, dilation=(1, 2))),
    "transposed no bias": ("ConvTranspose2d", (3, 2, 2), dict(stride=2, bias=False)),
}


def build(namespace, case):
    name, args, kwargs = LAYERS[case]
    return getattr(namespace, name)(*args, **kwargs)


@pytest.mark.parametrize("case", LAYERS)
def test_layer_repr_and_parameter_shapes_match_torch(torch, case):
    ours, theirs = build(nn, case), build(torch.nn, case)
    assert repr(ours) == repr(theirs)
    assert [(k, tuple(v.shape)) for k, v in ours.named_parameters()] == \
           [(k, tuple(v.shape)) for k, v in theirs.named_parameters()]


@pytest.mark.parametrize("case", LAYERS)
def test_layer_forward_and_backward_match_torch_with_copied_weights(backend, torch, case):
    ours, theirs = build(nn, case).double(), build(torch.nn, case)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = make((2, ours.in_channels, 7, 6), seed=3)
    tx = to_torch(torch, x)
    y, ty = ours(x), theirs(tx)
    assert y.backend == backend
    numpy.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    u = numpy.random.default_rng(0).standard_normal(y.shape)
    (y * mt.Tensor(shim.to_backend(u))).sum().backward()
    (ty * torch.from_numpy(u)).sum().backward()
    numpy.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        numpy.testing.assert_allclose(host(parameter.grad), theirs_params[name].grad.numpy(), rtol=1e-10,
                                      atol=1e-12, err_msg=name)


@pytest.mark.parametrize("output_size", [(5, 7), (6, 8), (1, 2, 6, 7)])
def test_transposed_layer_output_size_picks_the_output_padding_as_torch(torch, output_size):
    ours, theirs = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double(), torch.nn.ConvTranspose2d(2, 3, 3, 2, 1)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = make((1, 2, 3, 4), seed=0)
    compare(torch, lambda x: ours(x, output_size=output_size), lambda x: theirs(x, output_size=output_size), [x])


INIT_CASES = [("Conv2d", (4, 6, (3, 2)), dict(groups=2)),     # fan_in = in/groups * kh * kw = 12
              ("ConvTranspose2d", (8, 2, 3), dict()),          # fan_in = out/groups * kh * kw = 18, not in * 9
              ("ConvTranspose2d", (6, 9, (2, 3)), dict(groups=3))]


@pytest.mark.parametrize("name, args, kwargs", INIT_CASES)
def test_default_init_has_torchs_bounds(backend, name, args, kwargs):
    """kaiming_uniform(a=sqrt(5)) gives |w| <= gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in); the bias the same,
    with fan_in = weight.shape[1] * kh * kw (for ConvTranspose2d: out/groups * kh * kw, as torch)."""
    layer = getattr(nn, name)(*args, **kwargs)
    weight, bias = layer.weight, layer.bias
    assert weight.backend == bias.backend == backend
    assert weight.dtype == bias.dtype == mt.get_default_dtype()
    bound = 1 / math.sqrt(weight.shape[1] * weight.shape[2] * weight.shape[3])
    for values in (host(weight), host(bias)):
        assert numpy.abs(values).max() <= bound
    assert numpy.abs(host(weight)).max() > 0.9 * bound   # drawn up to the bound, not from a narrower one


@pytest.mark.parametrize("name, args, kwargs", INIT_CASES)
def test_default_init_fan_in_is_torchs(torch, name, args, kwargs):
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(theirs.weight)
    ours = getattr(nn, name)(*args, **kwargs)
    assert nn.init.calculate_fan_in_and_fan_out(ours.weight)[0] == fan_in


def test_layers_follow_the_default_dtype():
    previous = mt.get_default_dtype()
    mt.set_default_dtype("float64")
    try:
        assert nn.Conv2d(1, 2, 3).weight.dtype == nn.ConvTranspose2d(1, 2, 3).bias.dtype == numpy.float64
    finally:
        mt.set_default_dtype(previous)


@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_results_are_bit_identical_on_any_number_of_host_threads(transposed, monkeypatch):
    """Where the tiles split, and so the order in which the weight gradient's partial sums add up,
    must not depend on the thread count: a run resumed on another machine gives the same bits."""
    monkeypatch.setattr(parallel, "CONV_TILES", parallel.CONV_TILES._replace(bytes=1 << 16))
    results = []
    for threads in (1, 2, 3, 16):
        monkeypatch.setattr(parallel, "host_threads", lambda: threads)
        x, w = make((2, 8, 24, 20), seed=1, dtype="float32"), make((8, 8, 3, 3), seed=2, dtype="float32")
        y = (F.conv_transpose2d if transposed else F.conv2d)(x, w, padding=1)
        (y * make(y.shape, seed=3, requires_grad=False, dtype="float32")).sum().backward()
        results.append([host(t) for t in (y, x.grad, w.grad)])
    for other in results[1:]:
        for expected, got in zip(results[0], other):
            numpy.testing.assert_array_equal(got, expected)
