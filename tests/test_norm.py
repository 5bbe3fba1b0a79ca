"""Normalisation: batch_norm layer_norm group_norm and the BatchNorm2d LayerNorm GroupNorm layers.

Each op: a hand-computed case; float64 gradient checks of x, weight and bias on drawn
(non-contiguous) shapes; the forward against the plain-loop references; agreement with torch
(outputs, gradients, running statistics); float32 kept float32; the errors, one sentence each.
The layers: torch's defaults, repr and state_dict names, a torch checkpoint loading, training
steps then eval matching torch, and momentum=None's cumulative average.
"""

from unittest import mock

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import functional as F
from minitorch_seg import nn, parallel
from minitorch_seg.functional.norm import CHUNK, batch_norm_relu, channel_tiles, row_dots, row_sums
from minitorch_seg.reference.norm import batch_norm_loops, group_norm_loops, layer_norm_loops
from minitorch_seg.testing import layouts, make
from torch_compare import compare
from helpers import assert_one_sentence, host

pytestmark = pytest.mark.norm

GRAD_EXAMPLES = 10
REFERENCE_EXAMPLES = 12
seeds = st.integers(0, 2**16)


@st.composite
def channel_cases(draw, max_spatial_dims=2, min_per_channel=2):
    """(shape (N, C, *), layout, seed) with at least ``min_per_channel`` values per channel."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=max_spatial_dims)))
    shape = (n, c) + spatial
    if n * int(numpy.prod(spatial)) < min_per_channel:
        shape = (min_per_channel, c) + spatial
    return shape, draw(layouts(len(shape))), draw(seeds)


@st.composite
def group_cases(draw):
    """(shape (N, C, *), num_groups dividing C, layout, seed)."""
    groups, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), groups * per_group) + tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    if shape[0] * per_group * int(numpy.prod(shape[2:])) == 1:
        shape = (2,) + shape[1:]
    return shape, groups, draw(layouts(len(shape))), draw(seeds)


@st.composite
def layer_cases(draw):
    """(shape, normalized_shape of 1 or 2 trailing dims, layout, seed)."""
    trailing = draw(st.integers(1, 2))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=trailing, max_size=trailing + 2)))
    return shape, shape[len(shape) - trailing:], draw(layouts(len(shape))), draw(seeds)


def affine(shape, seed, requires_grad=True):
    """weight in [0.5, 2) and bias in [-1, 1): a non-trivial scale and shift."""
    return (make(shape, seed + 1, 0.5, 2.0, requires_grad=requires_grad),
            make(shape, seed + 2, -1.0, 1.0, requires_grad=requires_grad))


def running_stats(channels, seed, dtype="float64"):
    return (make((channels,), seed + 3, -0.5, 0.5, requires_grad=False, dtype=dtype),
            make((channels,), seed + 4, 0.5, 2.0, requires_grad=False, dtype=dtype))


# ---- hand-computed cases ----------------------------------------------------------------------
def test_batch_norm_hand_computed(backend):
    x = mt.tensor([[1.0, 10.0], [3.0, 30.0]], dtype="float64", requires_grad=True)   # (N=2, C=2)
    w = mt.tensor([2.0, 1.0], dtype="float64", requires_grad=True)
    b = mt.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
    mean, var = mt.zeros(2, dtype="float64"), mt.ones(2, dtype="float64")
    y = F.batch_norm(x, mean, var, w, b, training=True, momentum=0.5, eps=0.0)
    # channel 0: mu 2, sigma 1, x_hat (-1, 1); channel 1: mu 20, sigma 10, x_hat (-1, 1)
    numpy.testing.assert_allclose(host(y), [[-1.5, -2.0], [2.5, 0.0]])
    numpy.testing.assert_allclose(host(mean), [1.0, 10.0])              # 0.5 * 0 + 0.5 * mu
    numpy.testing.assert_allclose(host(var), [0.5 + 0.5 * 2, 0.5 + 0.5 * 200])   # unbiased: var * 2 / 1
    # sum(y) = sum(gamma x_hat + beta): x_hat sums to 0 whatever x is, so dL/dx = 0, dL/dgamma = 0.
    y.sum().backward()
    numpy.testing.assert_allclose(host(x.grad), numpy.zeros((2, 2)), atol=1e-12)
    numpy.testing.assert_allclose(host(w.grad), [0.0, 0.0], atol=1e-12)
    numpy.testing.assert_allclose(host(b.grad), [2.0, 2.0])
    # eval: the running statistics standardise
    y = F.batch_norm(mt.tensor([[3.0, 10.0]], dtype="float64"), mean, var, eps=0.0)
    numpy.testing.assert_allclose(host(y), [[2.0 / numpy.sqrt(1.5), 0.0]])


def test_layer_and_group_norm_hand_computed(backend):
    x = mt.tensor([[[1.0, 3.0], [2.0, 6.0]]], dtype="float64")                  # (1, 2, 2)
    numpy.testing.assert_allclose(host(F.layer_norm(x, 2, eps=0.0)), [[[-1.0, 1.0], [-1.0, 1.0]]])
    numpy.testing.assert_allclose(host(F.layer_norm(x, (2, 2), eps=0.0)),    # mean 3, var 3.5
                                  (numpy.array([[[1.0, 3.0], [2.0, 6.0]]]) - 3) / numpy.sqrt(3.5))
    # group norm with one group per channel: each (sample, channel) standardised alone
    numpy.testing.assert_allclose(host(F.group_norm(x, 2, eps=0.0)), [[[-1.0, 1.0], [-1.0, 1.0]]])


# ---- gradient checks (float64, every input, non-contiguous layouts) ---------------------------
@settings(max_examples=GRAD_EXAMPLES)
@given(case=channel_cases(), with_running=st.booleans())
def test_batch_norm_training_gradcheck(backend, case, with_running):
    shape, layout, seed = case
    x = make(shape, seed, layout=layout)
    w, b = affine((shape[1],), seed)
    mean, var = running_stats(shape[1], seed) if with_running else (None, None)
    assert mt.gradcheck(lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=True), (x, w, b))


@settings(max_examples=GRAD_EXAMPLES)
@given(case=channel_cases(min_per_channel=1))
def test_batch_norm_eval_gradcheck(backend, case):
    shape, layout, seed = case
    x = make(shape, seed, layout=layout)
    w, b = affine((shape[1],), seed)
    mean, var = running_stats(shape[1], seed)
    assert mt.gradcheck(lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False), (x, w, b))


@settings(max_examples=GRAD_EXAMPLES)
@given(case=layer_cases())
def test_layer_norm_gradcheck(backend, case):
    shape, normalized, layout, seed = case
    x = make(shape, seed, layout=layout)
    w, b = affine(normalized, seed, requires_grad=True)
    assert mt.gradcheck(lambda x, w, b: F.layer_norm(x, normalized, w, b), (x, w, b))


@settings(max_examples=GRAD_EXAMPLES)
@given(case=group_cases())
def test_group_norm_gradcheck(backend, case):
    shape, groups, layout, seed = case
    x = make(shape, seed, layout=layout)
    w, b = affine((shape[1],), seed)
    assert mt.gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b), (x, w, b))


OPS = {
    "batch_norm_training": lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
    "batch_norm_eval": lambda x, w, b: F.batch_norm(x, mt.zeros(4, dtype="float64") + 0.3,
                                                    mt.ones(4, dtype="float64") * 1.5, w, b),
    "group_norm": lambda x, w, b: F.group_norm(x, 2, w, b),
    "layer_norm": lambda x, w, b: F.layer_norm(x, 2, w[:2], b[:2]),
}


@pytest.mark.parametrize("wanted", ["x", "weight", "bias", "weight and bias"])
@pytest.mark.parametrize("op", OPS)
def test_gradcheck_when_only_some_inputs_want_gradients(backend, op, wanted):
    """backward skips the gradients nobody asked for; the ones asked for must still be right."""
    x = make((3, 4, 2, 2), 5, requires_grad="x" in wanted.split())
    w = make((4,), 6, 0.5, 2.0, requires_grad="weight" in wanted)
    b = make((4,), 7, requires_grad="bias" in wanted)
    assert mt.gradcheck(OPS[op], (x, w, b))


def test_gradcheck_without_affine(backend):
    x = make((3, 4, 2, 2), 1, layout=(2, 0, 3, 1))
    assert mt.gradcheck(lambda x: F.batch_norm(x, None, None, training=True), (x,))
    assert mt.gradcheck(lambda x: F.group_norm(x, 2), (x,))
    assert mt.gradcheck(lambda x: F.layer_norm(x, (2, 2)), (x,))


@settings(max_examples=GRAD_EXAMPLES)
@given(case=channel_cases(), threads=st.sampled_from([1, 3]), with_running=st.booleans())
def test_batch_norm_in_tiles_of_one_channel_on_several_threads(backend, case, threads, with_running):
    """Training batch norm runs in tiles of whole channels (``parallel.NORM_TILES``) on the host
    threads. In tiles of one channel, on one thread and on three: the gradients check, and the
    forward and the running statistics equal the loops'."""
    shape, layout, seed = case
    x = make(shape, seed, layout=layout)
    w, b = affine((shape[1],), seed)
    mean, var = running_stats(shape[1], seed) if with_running else (None, None)
    with mock.patch.object(parallel, "NORM_TILES", parallel.NORM_TILES._replace(bytes=1)), \
            mock.patch.object(parallel, "host_threads", lambda: threads):
        assert len(channel_tiles(x.data.reshape(shape[0], shape[1], -1))) == shape[1]
        assert mt.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
        y = F.batch_norm(x, mean, var, w, b, training=True, momentum=0.3, eps=1e-3)
    before = running_stats(shape[1], seed) if with_running else (None, None)   # the statistics' values before
    expected, expected_mean, expected_var = batch_norm_loops(host(x), *map(host, before), host(w), host(b), True,
                                                             momentum=0.3, eps=1e-3)
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-12)
    if with_running:
        numpy.testing.assert_allclose(host(mean), expected_mean, rtol=1e-10, atol=1e-12)
        numpy.testing.assert_allclose(host(var), expected_var, rtol=1e-10, atol=1e-12)


@settings(max_examples=GRAD_EXAMPLES)
@given(case=channel_cases(), training=st.booleans())
def test_batch_norm_relu_gradcheck(backend, case, training):
    """The fused batch norm + ReLU (``batch_norm_relu``): x, weight and bias in float64, in training
    (batch statistics) and evaluation (running statistics)."""
    shape, layout, seed = case
    x = make(shape, seed, layout=layout)
    w, b = affine((shape[1],), seed)
    mean, var = running_stats(shape[1], seed)
    assert mt.gradcheck(lambda x, w, b: batch_norm_relu(x, mean, var, w, b, training=training), (x, w, b))


def _upstream(z, g, how):
    """Backpropagate g into z in one of four ways: a gradient the backward may write into (the
    engine's own), the caller's (which must stay as it was), the caller's reaching z through a
    permute (not row-major), or a sum over the batch's broadcast (strides 0)."""
    if how == "free":
        (z * g).sum().backward()
    elif how == "caller's":
        z.backward(g)
    elif how == "permuted":
        z.permute(0, 2, 1).backward(g.permute(0, 2, 1))
    else:
        z.sum(dim=0).backward(g[0])


@settings(max_examples=GRAD_EXAMPLES)
@given(case=channel_cases(max_spatial_dims=1), training=st.booleans(), use_affine=st.booleans(),
       one_channel_tiles=st.booleans(), dtype=st.sampled_from(["float32", "float64"]),
       upstream=st.sampled_from(["free", "caller's", "permuted", "summed"]))
def test_batch_norm_relu_is_relu_of_batch_norm_bit_for_bit(backend, case, training, use_affine, one_channel_tiles,
                                                             dtype, upstream):
    """``batch_norm_relu`` gives relu(batch_norm(...))'s values (in the same row-major layout, from
    inputs of any layout), running statistics and gradients exactly, in float32 and float64, with
    and without weight and bias, in tiles of one channel on three threads or as few as possible;
    with upstream gradients of every kind (``_upstream``), the caller's left as they were."""
    shape, layout, seed = case
    if len(shape) == 2:                                  # (N, C): one position more, for the permute
        shape, layout = shape + (3,), layout + (2,)
    tiles = parallel.NORM_TILES._replace(bytes=1) if one_channel_tiles else parallel.NORM_TILES
    results = []
    for fused in (False, True):
        x = make(shape, seed, layout=layout, dtype=dtype)
        w, b = (make((shape[1],), seed + 1, 0.5, 2.0, dtype=dtype),
                make((shape[1],), seed + 2, -1.0, 1.0, dtype=dtype)) if use_affine else (None, None)
        mean, var = running_stats(shape[1], seed, dtype=dtype)
        g = make(shape, seed + 5, dtype=dtype, requires_grad=False)
        before = host(g).copy()
        with mock.patch.object(parallel, "NORM_TILES", tiles), mock.patch.object(parallel, "host_threads", lambda: 3):
            args = (x, mean, var, w, b, training, 0.3, 1e-3)
            z = batch_norm_relu(*args) if fused else F.relu(F.batch_norm(*args))
            _upstream(z, g, upstream)
        numpy.testing.assert_array_equal(host(g), before)
        results.append([z.data.strides] + [host(t) for t in (z.detach(), mean, var, x.grad)] +
                       ([host(w.grad), host(b.grad)] if use_affine else []))
    assert results[1][0] == results[0][0]
    for unfused, fused in zip(results[0][1:], results[1][1:]):
        numpy.testing.assert_array_equal(fused, unfused)


def layer_norm_over_channels_and_width(x, w, b):                   # x (N, C=4, H, W=2) -> normalised over (W, C)
    return F.layer_norm(x.permute(0, 2, 3, 1), (2, 4), w.reshape(1, 4).expand(2, 4), b.reshape(1, 4).expand(2, 4))


@pytest.mark.parametrize("norm", [lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                                  lambda x, w, b: F.group_norm(x, 2, w, b), layer_norm_over_channels_and_width],
                         ids=["batch_norm", "group_norm", "layer_norm"])
def test_a_retained_graph_keeps_what_the_norms_saved(backend, norm):
    """The last backward through a norm writes dL/dx into the memory of the x - mu it saved; with
    ``retain_graph=True`` that is not the last, and each backward gives the same gradients, the
    last one too."""
    x = make((3, 4, 5, 2), 7, layout=(0, 2, 3, 1))
    w, b = affine((4,), 7)
    y = norm(x, w, b)
    u = make(y.shape, 8, requires_grad=False)
    grads = []
    for retain in (True, True, False):
        x.grad = w.grad = b.grad = None
        (y * u).sum().backward(retain_graph=retain)
        grads.append([host(t.grad).copy() for t in (x, w, b)])
    for later in grads[1:]:
        for first, again in zip(grads[0], later):
            numpy.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("norm", [lambda x: F.batch_norm(x, None, None, training=True), lambda x: F.group_norm(x, 2),
                                  lambda x: F.layer_norm(x, (5, 2))], ids=["batch_norm", "group_norm", "layer_norm"])
def test_the_gradients_dtype_does_not_depend_on_retain_graph(backend, norm):
    """A float64 gradient through a float32 norm: dL/dx has the same dtype whether or not the graph
    is kept (dL/dx goes into the saved x - mu only where it has that array's dtype)."""
    dtypes = []
    for retain in (True, False):
        x = make((3, 4, 5, 2), 7, dtype="float32")
        y = norm(x)
        y.backward(shim.get_array_module(y.data).ones(y.shape, dtype="float64"), retain_graph=retain)
        dtypes.append(x.grad.dtype)
    assert dtypes[0] == dtypes[1]


# ---- forward against the plain-loop references ------------------------------------------------
@settings(max_examples=REFERENCE_EXAMPLES)
@given(case=channel_cases(), training=st.booleans(), use_affine=st.booleans())
def test_batch_norm_matches_loops(backend, case, training, use_affine):
    shape, layout, seed = case
    x = make(shape, seed, layout=layout, requires_grad=False)
    w, b = affine((shape[1],), seed, requires_grad=False) if use_affine else (None, None)
    mean, var = running_stats(shape[1], seed)
    expected, expected_mean, expected_var = batch_norm_loops(host(x), host(mean), host(var), host(w), host(b),
                                                             training, momentum=0.3, eps=1e-3)
    y = F.batch_norm(x, mean, var, w, b, training, momentum=0.3, eps=1e-3)
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(host(mean), expected_mean, rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(host(var), expected_var, rtol=1e-10, atol=1e-12)


@settings(max_examples=REFERENCE_EXAMPLES)
@given(case=layer_cases(), use_affine=st.booleans())
def test_layer_norm_matches_loops(backend, case, use_affine):
    shape, normalized, layout, seed = case
    x = make(shape, seed, layout=layout, requires_grad=False)
    w, b = affine(normalized, seed, requires_grad=False) if use_affine else (None, None)
    numpy.testing.assert_allclose(host(F.layer_norm(x, normalized, w, b)),
                                  layer_norm_loops(host(x), normalized, host(w), host(b)), rtol=1e-10, atol=1e-12)


@settings(max_examples=REFERENCE_EXAMPLES)
@given(case=group_cases(), use_affine=st.booleans())
def test_group_norm_matches_loops(backend, case, use_affine):
    shape, groups, layout, seed = case
    x = make(shape, seed, layout=layout, requires_grad=False)
    w, b = affine((shape[1],), seed, requires_grad=False) if use_affine else (None, None)
    numpy.testing.assert_allclose(host(F.group_norm(x, groups, w, b)),
                                  group_norm_loops(host(x), groups, host(w), host(b)), rtol=1e-10, atol=1e-12)


# ---- float32 stays float32 ----------------------------------------------------------------------
def test_float32_stays_float32(backend):
    x = make((2, 3, 4, 4), 0, dtype="float32")
    w, b = (mt.ones(3, requires_grad=True), mt.zeros(3, requires_grad=True))
    mean, var = mt.zeros(3), mt.ones(3)
    outputs = [F.batch_norm(x, mean, var, w, b, training=True), F.batch_norm(x, mean, var, w, b),
               F.group_norm(x, 3, w, b), F.layer_norm(x, (4, 4))]
    for y in outputs:
        assert y.dtype == numpy.float32
        y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == mean.dtype == var.dtype == numpy.float32


# ---- the sums over rows: in chunks, the rest of each row, float32 accuracy ---------------------
@settings(max_examples=REFERENCE_EXAMPLES)
@given(lead=st.lists(st.integers(1, 3), max_size=2), length=st.integers(0, 3 * CHUNK + 5), product=st.booleans(),
       layout=st.sampled_from(["rows", "one channel of two", "strided"]), seed=seeds)
def test_row_sums_and_dots_over_chunks_and_the_rest(lead, length, product, layout, seed):
    """Rows shorter than a chunk, whole chunks, chunks and a rest; contiguous rows, rows of a view (one
    channel of two), and strided rows (a channels-last layout, summed in shorter chunks)."""
    rng = numpy.random.default_rng(seed)
    a, b = rng.standard_normal((2,) + tuple(lead) + (2, length))
    if layout == "one channel of two":
        a, b = a[..., 1:, :], b[..., 1:, :]
    elif layout == "strided":
        a, b = (numpy.ascontiguousarray(v.swapaxes(-1, -2)).swapaxes(-1, -2) for v in (a, b))
    expected = (a * b).sum(axis=-1) if product else a.sum(axis=-1)
    got = row_dots(a, b) if product else row_sums(a)
    assert got.shape == expected.shape
    numpy.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * (length + 1))


def test_row_sums_stay_accurate_in_float32_on_long_rows():
    """One einsum over a whole row of 2^20 adds it up in SIMD lanes, each value in turn: 4e-6 off
    for the sum and 7e-5 for the sum of squares (mean 100, sd 3). In chunks: below 1e-7, as BLAS."""
    rng = numpy.random.default_rng(0)
    x = (rng.standard_normal((2, 1 << 20)) * 3 + 100).astype(numpy.float32)
    assert_accurate_row_sums(x, 1e-6)


@pytest.mark.parametrize("length", [1024, 1 << 18])
def test_row_sums_stay_accurate_in_float32_on_strided_rows(length):
    """A channels-last batch's rows are strided, and einsum adds those one value after another: in
    chunks of 1024 the sum at L = 1024 was 1.6e-6 off; in chunks of 64, about 1e-7 at every length."""
    rng = numpy.random.default_rng(1)
    x = (rng.standard_normal((2, length, 4)) * 3 + 100).astype(numpy.float32).transpose(0, 2, 1)  # (2, 4, L)
    assert x.strides[-1] != x.itemsize
    assert_accurate_row_sums(x, 4e-7)


def assert_accurate_row_sums(x, bound):
    """row_sums(x) and row_dots of x centred, float32, within ``bound`` of the float64 sums (relative)."""
    centred = x - x.astype(numpy.float64).mean(axis=-1, keepdims=True).astype(numpy.float32)
    sums, squares = x.astype(numpy.float64).sum(axis=-1), (centred.astype(numpy.float64) ** 2).sum(axis=-1)
    assert row_sums(x).dtype == row_dots(centred, centred).dtype == numpy.float32
    assert numpy.abs(row_sums(x) - sums).max() / sums.max() < bound
    assert numpy.abs(row_dots(centred, centred) - squares).max() / squares.max() < bound


# ---- against torch (float64) ------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (5, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(backend, torch, shape, training):
    x = make(shape, 7, layout=tuple(reversed(range(len(shape)))))
    w, b = affine((shape[1],), 7)
    mean, var = running_stats(shape[1], 7)
    their_mean, their_var = torch.from_numpy(host(mean)), torch.from_numpy(host(var))
    compare(torch, lambda x, w, b: F.batch_norm(x, mean, var, w, b, training, 0.2, 1e-4),
            lambda x, w, b: torch.nn.functional.batch_norm(x, their_mean, their_var, w, b, training, 0.2, 1e-4),
            [x, w, b])
    numpy.testing.assert_allclose(host(mean), their_mean.numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(host(var), their_var.numpy(), rtol=1e-12)


@pytest.mark.parametrize("normalized", [(5,), (4, 5)])
def test_layer_norm_matches_torch(backend, torch, normalized):
    x = make((2, 3, 4, 5), 8, layout=(3, 1, 0, 2))
    w, b = affine(normalized, 8)
    compare(torch, lambda x, w, b: F.layer_norm(x, normalized, w, b),
            lambda x, w, b: torch.nn.functional.layer_norm(x, normalized, w, b), [x, w, b])


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_matches_torch(backend, torch, groups):
    x = make((2, 6, 3, 4), 9, layout=(0, 2, 3, 1))
    w, b = affine((6,), 9)
    compare(torch, lambda x, w, b: F.group_norm(x, groups, w, b),
            lambda x, w, b: torch.nn.functional.group_norm(x, groups, w, b), [x, w, b])


def torch_state(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm2d_training_then_eval_matches_torch(backend, torch, momentum):
    ours, theirs = nn.BatchNorm2d(3, momentum=momentum).double(), torch.nn.BatchNorm2d(3, momentum=momentum)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 2.0)
        theirs.bias.uniform_(-1.0, 1.0)
    ours.load_state_dict(torch_state(theirs))
    for step in range(3):
        x = make((4, 3, 5, 6), step, low=-1.0 + step, high=2.0 + 2 * step)   # statistics that move
        compare(torch, ours, theirs, [x])
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == step + 1
        numpy.testing.assert_allclose(host(ours.running_mean), theirs.running_mean.numpy(), rtol=1e-12)
        numpy.testing.assert_allclose(host(ours.running_var), theirs.running_var.numpy(), rtol=1e-12)
    ours.eval(), theirs.eval()
    compare(torch, ours, theirs, [make((2, 3, 4, 4), 10)])
    assert ours.num_batches_tracked.item() == 3                              # eval does not count


def test_momentum_none_is_the_cumulative_average(backend):
    bn = nn.BatchNorm2d(2, momentum=None).double()
    batches = [make((3, 2, 2, 2), seed, low=seed, high=seed + 3.0, requires_grad=False) for seed in range(4)]
    for x in batches:
        bn(x)
    values = [host(x) for x in batches]
    numpy.testing.assert_allclose(host(bn.running_mean), numpy.mean([v.mean(axis=(0, 2, 3)) for v in values], axis=0))
    numpy.testing.assert_allclose(host(bn.running_var),
                                  numpy.mean([v.var(axis=(0, 2, 3), ddof=1) for v in values], axis=0))


def test_batch_norm2d_without_running_stats_or_affine_matches_torch(backend, torch):
    ours = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    theirs = torch.nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    for module in (ours, theirs):
        module.eval()                                  # no running statistics: the batch's, even in eval
    compare(torch, ours, theirs, [make((2, 3, 3, 3), 11)])


@pytest.mark.parametrize("build", [lambda ns: ns.LayerNorm((3, 4)), lambda ns: ns.GroupNorm(2, 4)],
                         ids=["LayerNorm", "GroupNorm"])
def test_layer_and_group_norm_layers_match_torch(backend, torch, build):
    ours, theirs = build(nn).double(), build(torch.nn)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 2.0)
        theirs.bias.uniform_(-1.0, 1.0)
    ours.load_state_dict(torch_state(theirs))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    compare(torch, ours, theirs, [make((2, 4, 3, 4), 12)])
    for mine, its in zip(ours.parameters(), theirs.parameters()):
        numpy.testing.assert_allclose(host(mine.grad), its.grad.numpy(), rtol=1e-7, atol=1e-9)


# ---- the layers: defaults, repr, state_dict ---------------------------------------------------
def test_layer_defaults_repr_and_backend(backend):
    bn, ln, gn = nn.BatchNorm2d(16), nn.LayerNorm(8), nn.GroupNorm(4, 16, eps=1e-3, affine=False)
    assert repr(bn) == "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    assert repr(nn.BatchNorm2d(4, momentum=None)) == \
        "BatchNorm2d(4, eps=1e-05, momentum=None, affine=True, track_running_stats=True)"
    assert repr(ln) == "LayerNorm((8,), eps=1e-05, elementwise_affine=True)"
    assert repr(gn) == "GroupNorm(4, 16, eps=0.001, affine=False)"
    assert list(gn.parameters()) == [] and gn.weight is None
    for t in (bn.weight, ln.weight):
        numpy.testing.assert_array_equal(host(t), 1.0)
    for t in (bn.bias, ln.bias, bn.running_mean):
        numpy.testing.assert_array_equal(host(t), 0.0)
    numpy.testing.assert_array_equal(host(bn.running_var), 1.0)
    assert bn.num_batches_tracked.dtype == numpy.int64 and bn.num_batches_tracked.shape == ()
    tensors = list(bn.parameters()) + list(bn.buffers()) + list(ln.parameters())
    assert {t.backend for t in tensors} == {backend}
    assert {t.dtype for t in tensors} == {numpy.dtype("float32"), numpy.dtype("int64")}
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]


def test_default_dtype_is_used(backend):
    mt.set_default_dtype("float64")
    try:
        assert nn.BatchNorm2d(2).running_var.dtype == nn.GroupNorm(1, 2).weight.dtype == numpy.float64
    finally:
        mt.set_default_dtype("float32")


def test_batch_norm2d_state_dict_matches_and_loads_torch(backend, torch):
    theirs = torch.nn.BatchNorm2d(3)
    theirs(torch.randn(4, 3, 2, 2) * 3 + 1)          # running statistics and count away from the defaults
    theirs(torch.randn(4, 3, 2, 2))
    ours = nn.BatchNorm2d(3).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for state in (torch_state(theirs), theirs.state_dict()):   # converted to NumPy, or torch's own tensors
        ours.reset_running_stats()
        ours.load_state_dict(state)
        for key, value in theirs.state_dict().items():
            numpy.testing.assert_array_equal(host(ours.state_dict()[key]), value.numpy())
    assert ours.num_batches_tracked.dtype == numpy.int64 and ours.num_batches_tracked.item() == 2
    assert ours.running_mean.backend == backend


def test_eval_batch_norm2d_under_no_grad_uses_running_stats(backend):
    bn = nn.BatchNorm2d(2).eval()
    bn.running_mean.copy_(shim.to_backend(numpy.array([1.0, -1.0], dtype=numpy.float32)))
    bn.running_var.copy_(shim.to_backend(numpy.array([4.0, 0.25], dtype=numpy.float32)))
    with mt.no_grad():
        y = bn(mt.ones(1, 2, 1, 1))
    numpy.testing.assert_allclose(host(y).ravel(), [0.0, 2.0 / numpy.sqrt(0.25 + 1e-5)], rtol=1e-6)
    assert bn.num_batches_tracked.item() == 0


# ---- errors, one sentence each -----------------------------------------------------------------
def test_errors(backend):
    x = mt.randn(2, 4, 3, 3)
    with pytest.raises(ValueError) as error:
        F.batch_norm(x, mt.zeros(3), mt.ones(3), training=True)
    assert_one_sentence(error, "running_mean", "4", "3")
    with pytest.raises(ValueError) as error:
        nn.BatchNorm2d(3)(x)
    assert_one_sentence(error, "running_mean", "4", "3")
    with pytest.raises(ValueError) as error:
        F.batch_norm(x, None, None, mt.ones(5), training=True)
    assert_one_sentence(error, "weight", "4", "5")
    with pytest.raises(ValueError) as error:
        nn.BatchNorm2d(4)(mt.randn(1, 4, 1, 1))
    assert_one_sentence(error, "Expected more than 1 value per channel when training", "(1, 4, 1, 1)")
    with pytest.raises(ValueError) as error:
        nn.BatchNorm2d(4)(mt.randn(2, 4, 3))
    assert_one_sentence(error, "4D")
    with pytest.raises(ValueError) as error:
        F.batch_norm(x, None, None, training=False)
    assert_one_sentence(error, "running_mean", "evaluation")
    with pytest.raises(TypeError) as error:
        F.batch_norm(x, mt.zeros(4), mt.ones(4), training=True, momentum=None)
    assert_one_sentence(error, "momentum")
    with pytest.raises(ValueError) as error:
        F.group_norm(x, 3)
    assert_one_sentence(error, "divisible by num_groups", "num_groups=3")
    with pytest.raises(ValueError) as error:
        nn.GroupNorm(3, 4)
    assert_one_sentence(error, "num_channels (4)", "num_groups (3)")
    with pytest.raises(ValueError) as error:
        F.layer_norm(x, (4, 3))
    assert_one_sentence(error, "normalized_shape=[4, 3]", "[2, 4, 3, 3]")
    with pytest.raises(ValueError) as error:
        nn.LayerNorm(2)(x)
    assert_one_sentence(error, "normalized_shape=[2]")
    with pytest.raises(ValueError) as error:
        F.layer_norm(x, 3, mt.ones(4))
    assert_one_sentence(error, "weight", "[4]", "[3]")


def test_mixed_backends_raise_one_error():
    x = mt.randn(2, 3, 2, 2)
    with shim.use_backend("strict"):
        mean, var = mt.zeros(3), mt.ones(3)
    with pytest.raises(shim.BackendError):
        F.batch_norm(x, mean, var, training=True)
