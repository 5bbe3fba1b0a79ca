"""small_products: a float32 product cut into the parts OpenBLAS's small-matrix kernels take.

The cut is checked against OpenBLAS's own limits and against every other cut (the fewest parts), and
the product in parts against numpy.matmul, on any machine: ``_found`` is set as if NumPy's OpenBLAS
ran its AVX-512 kernels, since the arithmetic of the parts does not depend on which kernels run them.
"""
import itertools

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import as_strided

from minitorch_seg import gemm, parallel, small_products
from minitorch_seg.small_products import (
    DEPTH,
    MOST_PARTS,
    MOST_RUNS,
    PRODUCT,
    SHALLOWEST_RUN,
    THINNEST,
    TRANSPOSED_CELLS,
    TRANSPOSED_MIN_DEPTH,
    UNROLL,
)


@pytest.fixture
def on(monkeypatch):
    """As on a machine where NumPy's OpenBLAS runs its AVX-512 kernels, inside tile_threads(), MKL off."""
    monkeypatch.setattr(small_products, "_found", [True])
    monkeypatch.setattr(small_products, "enabled", True)
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)
    monkeypatch.setattr(gemm, "enabled", False)


def small(m, k, n, transposed):
    """OpenBLAS's permit for its small kernels (sgemm_small_kernel_permit_skylakex.c), row-major terms."""
    if transposed and (m * n > TRANSPOSED_CELLS or k < TRANSPOSED_MIN_DEPTH):
        return False
    return m * n * k <= PRODUCT


def allowed(m, k, n, transposed):
    """Every cut the module docstring allows: equal parts, none thinner than THINNEST unless uncut,
    at most MOST_PARTS, each small."""
    return [(p, q) for p in range(1, m + 1) for q in range(1, n + 1)
            if m % p == 0 and n % q == 0 and p * q <= MOST_PARTS
            and (p == 1 or m // p >= THINNEST) and (q == 1 or n // q >= THINNEST)
            and small(m // p, k, n // q, transposed)]


@settings(max_examples=300, deadline=None)
@given(m=st.sampled_from([1, 3, 16, 19, 32, 48, 64, 128, 144, 288, 576, 1152]), k=st.integers(1, 1200),
       n=st.sampled_from([1, 8, 16, 32, 64, 65, 128, 130, 256, 512, 2048, 8192]), transposed=st.booleans())
def test_the_cut_is_the_fewest_parts_the_small_kernels_take(m, k, n, transposed):
    """(1, 1) exactly where the whole product is small; None exactly where no allowed cut exists;
    else an allowed cut with the fewest parts, its ties to the widest N part (the tallest M part
    where B is read transposed)."""
    cut, cuts = small_products.parts(m, k, n, transposed), allowed(m, k, n, transposed)
    if small(m, k, n, transposed):
        assert cut == (1, 1)
        return
    if not cuts:
        assert cut is None
        return
    assert cut in cuts
    fewest = min(p * q for p, q in cuts)
    assert cut[0] * cut[1] == fewest
    ties = [(p, q) for p, q in cuts if p * q == fewest]
    assert cut == (max(ties, key=lambda c: m // c[0]) if transposed else max(ties, key=lambda c: n // c[1]))


def test_the_cuts_of_the_unets_products():
    """The U-Net's products as the tiles make them: MEC's (O, K) by (K, Wo) rows, its weight gradient's
    (K, Wo) by (Wo, P) read transposed, im2col's larger ones (left whole: over MOST_PARTS parts)."""
    assert small_products.parts(32, 144, 256, False) == (2, 1)
    assert small_products.parts(64, 384, 130, False) == (4, 1)
    assert small_products.plan(64, 576, 128, False) == [(0, 288, (4, 1)), (288, 576, (4, 1))]   # two runs along K
    assert small_products.plan(128, 1152, 128, False) == [(0, 448, (8, 1)), (448, 800, (8, 1)), (800, 1152, (8, 1))]
    assert small_products.plan(576, 2048, 16, True) == [(0, 2048, (24, 1))]  # B transposed: one run
    head = small_products.plan(19, 32768, 16, True)                          # the 1x1 head's weight gradient
    assert len(head) == 10 and all(cut == (1, 1) for _, _, cut in head)
    assert [cut for _, _, cut in small_products.plan(64, 8192, 32, True)] == [(4, 2)] * 3   # the upsampling's
    assert small_products.plan(256, 2048, 128, True) is None                  # runs would be under SHALLOWEST_RUN
    assert small_products.plan(16, 144, 256, False) is None                  # small already
    assert small_products.parts(144, 256, 16, True) == (2, 1)
    assert small_products.parts(288, 128, 64, True) == (4, 4)
    assert small_products.parts(16, 144, 256, False) == (1, 1)
    assert small_products.parts(128, 1152, 512, False) is None


def test_the_limits_are_openblass_to_the_unit():
    """At the limits: 100^3 multiply-adds is small, one more column is not; 1200 cells with B read
    transposed are, 1216 are not; an inner size of 31 never is with B transposed, 32 is."""
    assert small_products.parts(100, 100, 100, False) == (1, 1)
    assert small_products.parts(100, 100, 200, False) == (2, 1)
    assert small_products.parts(75, 64, 16, True) == (1, 1)
    assert small_products.parts(76, 64, 16, True) == (2, 1)
    assert small_products.parts(150, 64, 16, True) == (2, 1)
    assert small_products.parts(16, 31, 16, True) is None
    assert small_products.parts(16, 32, 16, True) == (1, 1)


@settings(max_examples=200, deadline=None)
@given(k=st.integers(1, 6000))
def test_the_runs_along_k_cover_it_in_order_none_over_depth(k):
    """Runs of DEPTH while twice DEPTH is left, then one run, or two near-halves (the first a multiple
    of UNROLL)."""
    spans = small_products.runs(k)
    assert [start for start, _ in spans] == [0] + [stop for _, stop in spans[:-1]] and spans[-1][1] == k
    sizes = [stop - start for start, stop in spans]
    assert all(0 < size <= DEPTH for size in sizes)
    full = (k - DEPTH - 1) // DEPTH if k > 2 * DEPTH else 0                  # runs of DEPTH before the last one or two
    assert sizes[:full] == [DEPTH] * full and len(sizes) - full in (1, 2)
    if len(sizes) - full == 2:                                               # the rest in two near-halves
        assert sizes[full] % UNROLL == 0 and -1 <= sizes[full] - sizes[full + 1] < 2 * UNROLL


@settings(max_examples=300, deadline=None)
@given(m=st.sampled_from([1, 16, 19, 32, 64, 128, 256, 1152]), k=st.integers(1, 70000),
       n=st.sampled_from([1, 16, 19, 32, 64, 128]))
def test_deep_products_with_b_transposed_go_in_the_fewest_runs_that_cuts_take(m, k, n):
    """With B read transposed: all of K where a cut takes it; else the fewest near-equal runs (at most
    MOST_RUNS) that cuts take, in order, each at least SHALLOWEST_RUN deep; None where no count does."""
    spans = small_products.depth_runs(m, k, n)
    fits = [count for count in range(1, MOST_RUNS + 1)
            if (count == 1 or k // count >= SHALLOWEST_RUN) and allowed(m, -(-k // count), n, True)]
    if not fits:
        assert spans is None
        return
    assert len(spans) == fits[0]
    assert spans[0][0] == 0 and spans[-1][1] == k and all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    sizes = [stop - start for start, stop in spans]
    assert max(sizes) - min(sizes) <= 1 and all(allowed(m, size, n, True) for size in sizes)


@pytest.mark.skipif(not small_products.available(), reason="NumPy's BLAS is not OpenBLAS on its AVX-512 kernels")
def test_in_parts_the_same_bits_as_whole_run_by_run_along_k(monkeypatch):
    """On OpenBLAS's AVX-512 kernels, with B as it lies: the product in parts is bitwise the whole
    product's, at any K, as the parts go run by run along K as the packed kernels do. One run over
    all of a K above DEPTH, as the small kernel alone would go, is not."""
    monkeypatch.setattr(gemm, "enabled", False)
    rng = numpy.random.default_rng(0)
    with parallel.tile_threads(2):                         # BLAS on one thread, as in the tiles
        assert parallel.host_threads() == 2, "BLAS's threads could not be limited here"
        for k in (144, 448, 449, 500, 576, 700, 896, 900, 1152, 2304):
            a = rng.standard_normal((32, k)).astype(numpy.float32)
            b = rng.standard_normal((3, k, 256)).astype(numpy.float32)
            whole = numpy.matmul(a, b)
            assert small_products.plan(32, k, 256, False) is not None
            assert numpy.array_equal(small_products.matmul(a, b), whole), k
            if k > DEPTH:
                one_run = small_products._cut(a, b, numpy.empty_like(whole), (2, 16))   # parts of (16, k, 16): small
                assert not numpy.array_equal(one_run, whole), k


def operand(draw, shape, rng, transposed=False):
    """A float32 array of ``shape`` in C order, read transposed (a transposed C-order array), or rows
    that overlap (MEC's views, each matrix a row further into one band)."""
    if transposed:
        return numpy.ascontiguousarray(rng.standard_normal(shape[:-2] + shape[:-3:-1]).astype(numpy.float32)).swapaxes(-1, -2)
    if len(shape) == 3 and draw(st.booleans()):
        rows, cols = shape[1:]
        base = rng.standard_normal(((shape[0] - 1) + rows) * cols).astype(numpy.float32)
        return as_strided(base, shape=shape, strides=(cols * 4, cols * 4, 4), writeable=False)
    return rng.standard_normal(shape).astype(numpy.float32)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), shape=st.sampled_from([(32, 144, 256, False), (64, 288, 130, False), (64, 576, 128, False),
                                              (19, 16, 8192, False), (144, 256, 16, True), (288, 128, 64, True),
                                              (19, 4096, 16, True), (32, 4096, 64, True)]),
       r=st.integers(1, 3), batched_a=st.booleans(), into=st.sampled_from(["new", "c", "interleaved", "accumulate"]),
       through_gemm=st.booleans())
def test_the_product_in_parts_is_numpys(on, monkeypatch, data, shape, r, batched_a, into, through_gemm):
    """a (M, K) or a batch of them, b (r, K, N) in C order, in overlapping rows or read transposed; into
    a new array, a C-order out, an out whose matrices interleave (y's rows, as MEC writes them) or
    added to what out held (gemm.matmul's accumulate): numpy.matmul's product, and it was cut."""
    m, k, n, transposed = shape
    rng = numpy.random.default_rng(data.draw(st.integers(0, 2**16)))
    a = operand(data.draw, (r, m, k) if batched_a else (m, k), rng)
    b = operand(data.draw, (r, k, n), rng, transposed)
    expected = numpy.matmul(a.astype(numpy.float64), b.astype(numpy.float64))
    results = []
    monkeypatch.setattr(small_products, "matmul", lambda *args, real=small_products.matmul: results.append(real(*args))
                        or results[-1])
    out = None
    if into != "new":
        out = numpy.full((m, r, n), numpy.nan, numpy.float32).swapaxes(0, 1) if into == "interleaved" else \
            numpy.full((r, m, n), numpy.nan, numpy.float32)
    if into == "accumulate":
        out[...] = rng.standard_normal(out.shape)
        expected = expected + out
        got = gemm.matmul(a, b, out=out, accumulate=True)
    else:
        got = gemm.matmul(a, b, out=out) if through_gemm else small_products.matmul(a, b, out)
    assert results and results[-1] is not None                          # cut, not handed back whole
    assert out is None or got is out
    assert got.shape == expected.shape and got.dtype == numpy.float32
    numpy.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * numpy.abs(expected).max())


def test_what_it_leaves_whole(on, monkeypatch):
    """None, and nothing written, for: float64, A read transposed, a layout NumPy copies first, an
    out in an operand's memory, of another shape, read-only or a tuple, a product already small, and
    off (``enabled``), outside tile_threads() (BLAS on its own threads) or without the kernels
    (another OpenBLAS core, another BLAS)."""
    rng = numpy.random.default_rng(0)
    a, b = rng.standard_normal((32, 144)).astype(numpy.float32), rng.standard_normal((144, 256)).astype(numpy.float32)
    assert small_products.matmul(a, b) is not None
    frozen = numpy.zeros((32, 256), numpy.float32)
    frozen.flags.writeable = False
    inside = numpy.zeros(144 * 256 + 8, numpy.float32)
    b_inside = inside[:144 * 256].reshape(144, 256)
    b_inside[...] = b
    for args in [(a.astype(numpy.float64), b.astype(numpy.float64)), (numpy.asfortranarray(a), b), (a, b[:, ::2]),
                 (a, b_inside, inside[8:8 + 32 * 256].reshape(32, 256)), (a, b, numpy.zeros((32, 255), numpy.float32)),
                 (a, b, frozen), (a, b, (numpy.zeros((32, 256), numpy.float32),)), (a[:16], b)]:
        assert small_products.matmul(*args) is None
    numpy.testing.assert_array_equal(frozen, 0)
    monkeypatch.setattr(small_products, "enabled", False)
    assert small_products.matmul(a, b) is None
    monkeypatch.setattr(small_products, "enabled", True)
    monkeypatch.setattr(parallel, "host_threads", lambda: 1)              # outside tile_threads()
    assert small_products.matmul(a, b) is None
    monkeypatch.setattr(parallel, "host_threads", lambda: 2)
    for core, found in [("Haswell", False), ("SkylakeX", True), (None, False)]:
        monkeypatch.setattr(small_products, "_found", [])
        monkeypatch.setattr(small_products, "_openblas_core", lambda core=core: core)
        assert small_products.available() is found
        assert (small_products.matmul(a, b) is not None) is found
        assert ("small-matrix kernels" in gemm.engine()) is found                 # minitorch-seg doctor says so


def test_the_same_bits_wherever_the_arrays_start(on):
    """The same operands at 16 different addresses give bitwise the same product in parts: a resumed
    run, whose arrays land elsewhere, computes what the uninterrupted one did."""
    rng = numpy.random.default_rng(0)
    for m, k, n, transposed in [(32, 144, 256, False), (64, 576, 128, False), (144, 256, 16, True)]:
        a = rng.standard_normal((3, m, k)).astype(numpy.float32)
        b = rng.standard_normal((3, n, k)).astype(numpy.float32).swapaxes(1, 2) if transposed else \
            rng.standard_normal((3, k, n)).astype(numpy.float32)
        first = small_products.matmul(a, b)
        for offset in range(1, 16):
            moved = [numpy.empty(x.size + 16, x.dtype)[offset:offset + x.size].reshape(x.shape) for x in (a, b)]
            moved[0][...], moved[1][...] = a, b
            if transposed:
                moved[1] = numpy.ascontiguousarray(b.swapaxes(1, 2))
                shifted = numpy.empty(moved[1].size + 16, numpy.float32)[offset:offset + moved[1].size]
                shifted[...] = moved[1].reshape(-1)
                moved[1] = shifted.reshape(moved[1].shape).swapaxes(1, 2)
            assert numpy.array_equal(small_products.matmul(*moved), first)


@pytest.mark.parametrize("groups", [1, 2])
def test_a_conv_in_the_tile_threads_with_and_without_the_cut(monkeypatch, groups):
    """A float32 conv's forward and both gradients in the tile threads (MEC's row band and kw
    copies, or im2col with groups), the products cut and whole: the forward the same values (the
    same bits on OpenBLAS's AVX-512 kernels, where no product reads B transposed), the gradients
    within float32's rounding."""
    import minitorch_seg as mt
    from minitorch_seg import functional as F
    monkeypatch.setattr(gemm, "enabled", False)
    cut = []
    monkeypatch.setattr(small_products, "_cut", lambda *args, real=small_products._cut: cut.append(1) or real(*args))
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((2, 64, 32, 128)).astype(numpy.float32)
    w = (rng.standard_normal((64, 64 // groups, 3, 3)) * 0.05).astype(numpy.float32)
    g = rng.standard_normal((2, 64, 32, 128)).astype(numpy.float32)
    results = {}
    with parallel.tile_threads(2):
        cutting = parallel.host_threads() == 2 and small_products.available()
        for on in (False, True):
            monkeypatch.setattr(small_products, "enabled", on)
            xt, wt = mt.tensor(x, requires_grad=True), mt.tensor(w, requires_grad=True)
            y = F.conv2d(xt, wt, padding=1, groups=groups)
            y.backward(mt.tensor(g))
            results[on] = (y.data.copy(), xt.grad.data.copy(), wt.grad.data.copy())
    (y0, dx0, dw0), (y1, dx1, dw1) = results[False], results[True]
    if cutting:                                   # else both ran whole: nothing to compare but the values
        assert cut and numpy.array_equal(y0, y1)
    for whole, parts in [(y0, y1), (dx0, dx1), (dw0, dw1)]:
        numpy.testing.assert_allclose(parts, whole, rtol=0, atol=2e-5 * numpy.abs(whole).max())
