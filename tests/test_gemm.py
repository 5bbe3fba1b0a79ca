"""gemm.matmul: numpy.matmul's products, through MKL where it is installed and takes the layout."""
import os
import re
import subprocess
import sys

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import as_strided

from minitorch_seg import gemm, parallel

mkl = pytest.mark.skipif(not gemm.is_available(), reason="MKL is not installed (pip install 'minitorch-seg[mkl]'), "
                         "or PyTorch is loaded here: test_the_mkl_path_in_a_process_without_torch runs these")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL = {numpy.float32: 2e-5, numpy.float64: 1e-12}


@pytest.fixture(autouse=True)
def fresh_plans(monkeypatch):
    """Each test starts with no plan made (``gemm._PLANS``), so that what it patches is what runs."""
    monkeypatch.setattr(gemm, "_PLANS", {})


@st.composite
def operand(draw, rows, cols, batch, dtype, rng):
    """A (batch?, rows, cols) array in one of the layouts views give: C order, transposed, strided
    (a slice), overlapping (as MEC's rows), broadcast along the batch (stride 0), or reversed (its
    batch, or its columns)."""
    layout = draw(st.sampled_from(["c", "transposed", "strided", "overlapping", "broadcast", "reversed"]))
    shape = (batch, rows, cols) if batch else (rows, cols)
    if layout == "transposed":
        return numpy.ascontiguousarray(rng.standard_normal(shape[:-2] + (cols, rows)).astype(dtype)).swapaxes(-1, -2)
    if layout == "strided":
        return rng.standard_normal(shape[:-1] + (2 * cols,)).astype(dtype)[..., ::2]
    if layout == "reversed":                       # the columns, or the batch, in reverse: negative strides
        values = rng.standard_normal(shape).astype(dtype)
        return values[::-1] if batch else values[..., ::-1]
    if layout == "broadcast" and batch:
        return numpy.broadcast_to(rng.standard_normal((rows, cols)).astype(dtype), shape)
    if layout == "overlapping" and batch:          # matrix i starts `step` rows after matrix i-1
        step = draw(st.integers(0, rows))
        base = rng.standard_normal(((batch - 1) * step + rows) * cols).astype(dtype)
        item = base.itemsize
        return as_strided(base, shape=shape, strides=(step * cols * item, cols * item, item), writeable=False)
    return rng.standard_normal(shape).astype(dtype)


@st.composite
def products(draw):
    dtype = draw(st.sampled_from([numpy.float32, numpy.float64]))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**16)))
    m, k, n, r = (draw(st.integers(1, 6), label=name) for name in "mknr")
    batched_a, batched_b = draw(st.sampled_from([(False, False), (False, True), (True, False), (True, True)]))
    a = draw(operand(m, k, r if batched_a else 0, dtype, rng), label="a")
    b = draw(operand(k, n, r if batched_b else 0, dtype, rng), label="b")
    return a, b


@pytest.mark.parametrize("engine", ["mkl", "numpy"])
@settings(max_examples=150, deadline=None)
@given(operands=products(), into=st.sampled_from(["new", "c", "interleaved"]), accumulate=st.booleans())
def test_matmul_is_numpys_product_for_any_layout(engine, operands, into, accumulate, monkeypatch):
    """Every layout a view can have (transposed, strided, overlapping, broadcast, reversed), with a
    new, a C-order or an interleaved out (rows of y for several output rows, as MEC writes them):
    the same product as numpy.matmul, in float32 and float64, through MKL or NumPy; with
    ``accumulate``, added to what out held (the row band's GEMMs, one per kernel column)."""
    if engine == "mkl" and not gemm.is_available():
        pytest.skip("MKL is not installed, or PyTorch is loaded here (then the process without torch runs it)")
    monkeypatch.setattr(gemm, "enabled", engine == "mkl")
    a, b = operands
    expected = numpy.matmul(a, b)
    if into == "new":
        if accumulate:
            with pytest.raises(ValueError, match="accumulate"):
                gemm.matmul(a, b, accumulate=True)
        got = gemm.matmul(a, b)
    else:
        shape = expected.shape if into == "c" or expected.ndim == 2 else (expected.shape[1], expected.shape[0],
                                                                           expected.shape[2])
        holder = numpy.full(shape, numpy.nan, dtype=expected.dtype)
        out = holder if into == "c" or expected.ndim == 2 else holder.swapaxes(0, 1)
        if accumulate:
            out[...] = numpy.random.default_rng(1).standard_normal(out.shape)
            expected = expected + out
        assert gemm.matmul(a, b, out=out, accumulate=accumulate) is out
        got = out
    assert got.shape == expected.shape and got.dtype == expected.dtype
    scale = numpy.abs(a).max() * numpy.abs(b).max() * a.shape[-1]
    numpy.testing.assert_allclose(got, expected, rtol=0, atol=RTOL[a.dtype.type] * scale)


@mkl
def test_mkl_takes_the_layouts_of_mecs_products_and_leaves_the_rest_to_numpy(monkeypatch):
    """Where MKL runs: views with a unit stride and a constant batch stride, including overlapping
    ones and a matrix shared by the batch. Where NumPy runs instead: a reversed view, integers,
    mixed dtypes, a batch axis numpy would broadcast, an empty product."""
    monkeypatch.setattr(gemm, "enabled", True)
    calls = []
    monkeypatch.setattr(gemm, "_plan", lambda *args, plan=gemm._plan: calls.append(plan(*args)) or calls[-1])
    x = numpy.ones((4, 6, 5), numpy.float32)
    w = numpy.ones((3, 6), numpy.float32)
    band = as_strided(numpy.ones(40, numpy.float32), shape=(4, 6, 5), strides=(20, 20, 4))   # rows overlap
    tall = numpy.ones((4, 6, 2), numpy.float32)
    for a, b, mkl_runs in [(w, x, True), (w, band, True), (band.swapaxes(1, 2), tall, True), (w[:, ::-1], x, False),
                           (w.astype(int), x.astype(int), False), (w, x.astype(numpy.float64), False),
                           (numpy.ones((1, 3, 6), numpy.float32), x, False), (w[:, :0], x[:, :0], False)]:
        numpy.testing.assert_allclose(gemm.matmul(a, b), numpy.matmul(a, b))
        assert (calls[-1] is not None) == mkl_runs, (a.shape, a.strides, b.shape, a.dtype, b.dtype)


@mkl
def test_off_switch_and_a_rejected_argument(monkeypatch):
    """gemm.enabled = False sends every product to NumPy; an argument MKL rejects (which _plan should
    never let through) raises instead of handing back an array MKL never wrote."""
    a, b = numpy.ones((3, 2)), numpy.ones((2, 4))
    monkeypatch.setattr(gemm, "enabled", False)
    monkeypatch.setattr(gemm, "_cached_plan", lambda *args: pytest.fail("MKL asked while off"))
    numpy.testing.assert_array_equal(gemm.matmul(a, b), a @ b)
    monkeypatch.undo()
    monkeypatch.setattr(gemm, "enabled", True)
    monkeypatch.setattr(gemm, "_matrix", lambda x, real=gemm._matrix: (real(x)[0], 0, real(x)[2]))   # ld 0: invalid
    with pytest.raises(RuntimeError, match="MKL rejected"):
        gemm.matmul(a, b)


@mkl
def test_a_layout_is_planned_once_but_where_out_lies_is_asked_on_every_call(monkeypatch):
    """The plan of a set of layouts (shapes, strides, dtypes, out's) is made once and reused with
    other arrays of those layouts; other strides get their own. Whether out lies in an operand's
    memory is not a layout's: an out inside b, of the layout just planned, still goes through a new
    array (MKL would read what it had written), and the results stay numpy's."""
    made = []
    monkeypatch.setattr(gemm, "_plan", lambda *args, plan=gemm._plan: made.append(1) or plan(*args))
    rng = numpy.random.default_rng(0)
    w = rng.standard_normal((6, 6)).astype(numpy.float32)
    for _ in range(3):
        b = rng.standard_normal((6, 6)).astype(numpy.float32)
        out = numpy.empty((6, 6), numpy.float32)
        numpy.testing.assert_allclose(gemm.matmul(w, b, out=out), w @ b, rtol=RTOL[numpy.float32])
    assert len(made) == 1
    expected = w @ b
    numpy.testing.assert_allclose(gemm.matmul(w, b, out=b), expected, rtol=RTOL[numpy.float32])   # out is b:
    assert len(made) == 2                                       # through a new array, a product of its own
    numpy.testing.assert_allclose(gemm.matmul(w, b.T), w @ b.T, rtol=RTOL[numpy.float32])      # other strides
    assert len(made) == 3


@mkl
def test_a_batch_is_one_strided_call_unless_the_results_interleave(monkeypatch):
    """The strided call, which needs no array of addresses, takes a batch whose results lie one
    after another; results whose rows interleave (MEC writing y's rows), which it refuses, go
    through the group call; one matrix alone is one strided call whatever its strides."""
    library, calls = gemm.library(), []
    for name in ("cblas_sgemm_batch", "cblas_sgemm_batch_strided"):
        product = getattr(library, name)
        monkeypatch.setattr(library, name, lambda *args, f=product, name=name: calls.append(name) or f(*args))
    rng = numpy.random.default_rng(0)
    w, v = rng.standard_normal((8, 12)).astype(numpy.float32), rng.standard_normal((5, 12, 7)).astype(numpy.float32)
    y = numpy.empty((8, 5, 7), numpy.float32)                              # (O, rows, W): rows interleave
    numpy.testing.assert_allclose(gemm.matmul(w, v), w @ v, rtol=RTOL[numpy.float32])
    numpy.testing.assert_allclose(gemm.matmul(w, v, out=y.transpose(1, 0, 2)), w @ v, rtol=RTOL[numpy.float32])
    numpy.testing.assert_allclose(gemm.matmul(w, v[0], out=y[:, 0]), w @ v[0], rtol=RTOL[numpy.float32])
    assert calls == ["cblas_sgemm_batch_strided", "cblas_sgemm_batch", "cblas_sgemm_batch_strided"]
    one = numpy.ones((2, 3, 4), numpy.float32)[::2**29]              # (1, 3, 4), its batch stride past 2**31
    numpy.testing.assert_allclose(gemm.matmul(one, numpy.ones((4, 5), numpy.float32)), numpy.full((1, 3, 5), 4.0))


@mkl
def test_tile_threads_counts_numpys_blas_threads_not_mkls(monkeypatch):
    """MKL runs on one thread; once loaded, threadpoolctl lists it beside NumPy's OpenBLAS. The
    host threads tile_threads() starts with still follow NumPy's BLAS, not MKL's one."""
    gemm.matmul(numpy.ones((2, 2)), numpy.ones((2, 2)))
    blas = parallel._blas()                                          # threadpoolctl looks again: MKL is loaded
    assert any(gemm.owns(lib.filepath) for lib in blas.lib_controllers)
    others = [lib.num_threads for lib in blas.lib_controllers if not gemm.owns(lib.filepath)]
    with parallel.tile_threads():
        assert parallel.host_threads() == (min(others) if others and min(others) > 1 else 1)


@mkl
def test_mkls_products_do_not_depend_on_where_the_arrays_start(monkeypatch):
    """The same operands at 16 different addresses (4-byte steps) give bitwise the same product:
    a resumed run, whose arrays land elsewhere, computes what the uninterrupted one did."""
    monkeypatch.setattr(gemm, "enabled", True)
    rng = numpy.random.default_rng(0)
    for m, k, n, r in [(16, 144, 256, 3), (64, 576, 128, 2), (144, 256, 16, 3)]:
        a, b = rng.standard_normal((m, k)).astype(numpy.float32), rng.standard_normal((r, k, n)).astype(numpy.float32)
        first = gemm.matmul(a, b)
        for offset in range(1, 16):
            moved = [numpy.empty(x.size + 16, x.dtype)[offset:offset + x.size].reshape(x.shape) for x in (a, b)]
            moved[0][...], moved[1][...] = a, b
            assert numpy.array_equal(gemm.matmul(*moved), first)


@pytest.mark.parametrize("engine", ["mkl", "numpy"])
def test_an_out_in_an_operands_memory_a_read_only_out_and_a_tuple_out_as_numpy(engine, monkeypatch):
    """out = a, out = b, or out starting inside b: MKL would read what it has already written, so the
    product goes through a new array, as NumPy's does. A read-only out raises NumPy's error, and
    out=(array,) is taken as NumPy takes it (found by a review that tried to break gemm.matmul)."""
    if engine == "mkl" and not gemm.is_available():
        pytest.skip("MKL is not installed, or PyTorch is loaded here (then the process without torch runs it)")
    monkeypatch.setattr(gemm, "enabled", engine == "mkl")
    rng = numpy.random.default_rng(0)
    for dtype in (numpy.float32, numpy.float64):
        a, b = (rng.standard_normal((64, 64)).astype(dtype) for _ in range(2))
        expected = a @ b
        for target in ("a", "b", "inside b"):
            x, y = a.copy(), b.copy()
            buffer = numpy.concatenate([y.reshape(-1), numpy.zeros(8, dtype)])
            y = buffer[:y.size].reshape(y.shape)
            out = {"a": x, "b": y, "inside b": buffer[8:8 + y.size].reshape(y.shape)}[target]
            numpy.testing.assert_allclose(gemm.matmul(x, y, out=out), expected, rtol=RTOL[dtype], atol=RTOL[dtype] * 64)
    frozen = numpy.zeros((2, 2), numpy.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        gemm.matmul(numpy.ones((2, 2), numpy.float32), numpy.ones((2, 2), numpy.float32), out=frozen)
    assert not frozen.any()
    holder = numpy.zeros((2, 2), numpy.float32)
    gemm.matmul(numpy.ones((2, 2), numpy.float32), numpy.ones((2, 2), numpy.float32), out=(holder,))
    assert (holder == 2).all()


@mkl
def test_mkl_keeps_32_bit_sizes_whatever_the_environment_says():
    """MKL_INTERFACE_LAYER=ILP64 would have MKL read the 32-bit sizes passed here as 64-bit ones
    (a segmentation fault, found in review): the sizes are fixed at load, in a fresh process."""
    code = ("import numpy; from minitorch_seg import gemm; ones = numpy.ones; "
            "print(gemm.is_available(), gemm.matmul(ones((2, 3), numpy.float32), ones((3, 4), numpy.float32)).sum())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MKL_INTERFACE_LAYER": "ILP64"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "24.0"]


@pytest.mark.skipif(not gemm._installed() or not gemm.enabled, reason="MKL not installed, or off on this CPU")
def test_the_mkl_path_in_a_process_without_torch():
    """The suite imports torch first (conftest), so its workers leave MKL alone. This runs the tests
    above and MEC's, the shifted sum's and the tiles' conv tests in a fresh process without torch,
    where the products go through MKL, and none of them is skipped."""
    if os.environ.get("MINITORCH_SEG_TESTS_WITHOUT_TORCH"):
        pytest.skip("already in the process without torch")
    selected = "(gemm or mec or shifted or tiles) and not without_torch and not pytorch"
    done = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-W", "error::RuntimeWarning",
                           "tests/test_gemm.py", "tests/test_conv.py", "-k", selected],
                          cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "MINITORCH_SEG_TESTS_WITHOUT_TORCH": "1"})
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "passed" in summary and "skipped" not in summary, summary
    for name in ("test_matmul_is_numpys_product_for_any_layout[mkl]", "test_mkl_takes_the_layouts_of_mecs_products",
                 "test_mkls_products_do_not_depend_on_where_the_arrays_start", "test_mec_gives_the_im2col_products"):
        assert re.search(rf"{re.escape(name)}\S* PASSED", done.stdout), name


def test_pytorch_and_mkl_in_one_process():
    """torch loaded first: MKL is left alone (NumPy's BLAS runs the products, doctor says why).
    MKL loaded first: the first product after torch comes in warns, once, or the package's own
    import of torch (export, convert) does."""
    first = ("import torch, numpy; from minitorch_seg import gemm; "
             "print(gemm.matmul(numpy.ones((2, 2), numpy.float32), numpy.ones((2, 2), numpy.float32)).sum()); "
             "print(gemm.library() is None, gemm.engine())")
    after = ("import warnings, numpy; from minitorch_seg import gemm; ones = numpy.ones((2, 2), numpy.float32); "
             "gemm.matmul(ones, ones); import torch\n"
             "with warnings.catch_warnings(record=True) as caught:\n"
             "    warnings.simplefilter('always'); gemm.matmul(ones, ones); gemm.matmul(ones, ones)\n"
             "print(gemm.library() is not None, [str(w.message)[:40] for w in caught])")
    export = ("import warnings, numpy; from minitorch_seg import gemm; ones = numpy.ones((2, 2), numpy.float32); "
              "gemm.matmul(ones, ones)\n"
              "with warnings.catch_warnings(record=True) as caught:\n"
              "    warnings.simplefilter('always'); import minitorch_seg.export.torch_imports\n"
              "print(gemm.library() is not None, [str(w.message)[:40] for w in caught])")
    outputs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
               for code in (first, after, export)]
    for done in outputs:
        assert done.returncode == 0, done.stderr
    if gemm._installed() and gemm.enabled:     # MKL left alone; the warning at the next product, or at our import
        assert outputs[0].stdout.split("\n")[:2] == ["8.0", "True NumPy's BLAS (MKL not loaded: PyTorch is loaded "
                                                             "in this process)"]
        warned = "True ['torch was imported after minitorch_seg l']"
        assert outputs[1].stdout.strip() == outputs[2].stdout.strip() == warned
