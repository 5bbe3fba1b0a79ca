"""Movement ops: reshape flatten unsqueeze squeeze permute transpose getitem cat stack pad roll expand.

Each moves elements without changing them, so its backward is the inverse movement; the gradient
checks below run on non-contiguous inputs, where a wrong inverse shows up at once.
"""
import numpy
import pytest
from hypothesis import assume, given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import functional as F, parallel
from minitorch_seg.testing import layouts, make, shapes
from torch_compare import compare
from helpers import basic_index, host

pytestmark = pytest.mark.movement

GRAD_EXAMPLES = 12
TORCH_EXAMPLES = 6
STREAM_TILES = parallel.STREAM_TILES
seeds = st.integers(0, 2**16)


@st.composite
def shaped(draw, min_dims=1, max_dims=4, max_side=4):
    shape = draw(shapes(min_dims, max_dims, 1, max_side))
    return shape, draw(layouts(len(shape))), draw(seeds)


# ---- reshape and friends ------------------------------------------------------------------------
@st.composite
def reshape_case(draw):
    """A shape, a new shape with the same number of elements (maybe one -1), and the call form."""
    shape, layout, seed = draw(shaped())
    remaining, target = int(numpy.prod(shape)), []
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(1, remaining + 1) if remaining % d == 0]
        target.append(draw(st.sampled_from(divisors)))
        remaining //= target[-1]
    target.append(remaining)
    target = draw(st.permutations(target))
    if draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, layout, seed, tuple(target), draw(st.booleans())


def reshaped(x, target, as_tuple):
    return x.reshape(target) if as_tuple else x.reshape(*target)


@settings(max_examples=GRAD_EXAMPLES)
@given(case=reshape_case())
def test_reshape_gradcheck_and_values(backend, case):
    shape, layout, seed, target, as_tuple = case
    x = make(shape, seed=seed, layout=layout)
    y = reshaped(x, target, as_tuple)
    numpy.testing.assert_array_equal(y.numpy(), host(x).reshape(target))
    assert F.reshape(x, target).shape == y.shape == x.view(*target).shape
    assert mt.gradcheck(lambda t: reshaped(t, target, as_tuple), (x,))


@settings(max_examples=TORCH_EXAMPLES)
@given(case=reshape_case())
def test_reshape_matches_torch(backend, torch, case):
    shape, layout, seed, target, as_tuple = case
    x = make(shape, seed=seed, layout=layout)
    compare(torch, lambda t: reshaped(t, target, as_tuple), lambda t: t.reshape(target), [x])


@st.composite
def flatten_case(draw):
    shape, layout, seed = draw(shaped())
    n = len(shape)
    start = draw(st.integers(-n, n - 1))
    end = draw(st.integers(start % n, n - 1))
    return shape, layout, seed, start, end - n if draw(st.booleans()) else end


@settings(max_examples=GRAD_EXAMPLES)
@given(case=flatten_case())
def test_flatten_gradcheck_and_values(backend, case):
    shape, layout, seed, start, end = case
    x = make(shape, seed=seed, layout=layout)
    y = x.flatten(start, end)
    s, e = start % len(shape), end % len(shape)
    expected_shape = shape[:s] + (int(numpy.prod(shape[s:e + 1])),) + shape[e + 1:]
    assert y.shape == expected_shape
    numpy.testing.assert_array_equal(y.numpy(), host(x).reshape(expected_shape))
    assert mt.gradcheck(lambda t: F.flatten(t, start, end), (x,))


@settings(max_examples=TORCH_EXAMPLES)
@given(case=flatten_case())
def test_flatten_matches_torch(backend, torch, case):
    shape, layout, seed, start, end = case
    x = make(shape, seed=seed, layout=layout)
    compare(torch, lambda t: F.flatten(t, start, end), lambda t: torch.flatten(t, start, end), [x])


@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped(max_dims=3), data=st.data())
def test_unsqueeze_squeeze(backend, drawn, data):
    shape, layout, seed = drawn
    n = len(shape)
    dim = data.draw(st.integers(-n - 1, n), label="dim")
    x = make(shape, seed=seed, layout=layout)
    y = x.unsqueeze(dim)
    assert y.shape == numpy.expand_dims(host(x), dim).shape
    numpy.testing.assert_array_equal(y.numpy(), numpy.expand_dims(host(x), dim))
    numpy.testing.assert_array_equal(y.squeeze(dim).numpy(), host(x))
    assert F.squeeze(y).shape == tuple(s for s in shape if s != 1)
    assert mt.gradcheck(lambda t: F.unsqueeze(t, dim), (x,))
    assert mt.gradcheck(lambda t: F.squeeze(F.unsqueeze(t, dim), dim), (x,))


@settings(max_examples=TORCH_EXAMPLES)
@given(drawn=shaped(max_dims=3), data=st.data())
def test_unsqueeze_squeeze_match_torch(backend, torch, drawn, data):
    shape, layout, seed = drawn
    n = len(shape)
    dim = data.draw(st.integers(-n - 1, n), label="dim")
    squeeze_dim = data.draw(st.integers(-n, n - 1), label="squeeze_dim")
    x = make(shape, seed=seed, layout=layout)
    compare(torch, lambda t: F.unsqueeze(t, dim), lambda t: torch.unsqueeze(t, dim), [x])
    x.grad = None
    compare(torch, lambda t: F.squeeze(t, squeeze_dim), lambda t: torch.squeeze(t, squeeze_dim), [x])
    x.grad = None
    compare(torch, F.squeeze, torch.squeeze, [x])


def test_squeeze_keeps_dims_that_are_not_one(backend):
    x = make((1, 3, 1, 2), seed=0)
    assert x.squeeze().shape == (3, 2)
    assert x.squeeze(1).shape == (1, 3, 1, 2)        # size 3: left alone, as in torch
    assert x.squeeze(-2).shape == (1, 3, 2)
    assert x.squeeze((0, 2)).shape == (3, 2)


# ---- permute and transpose ----------------------------------------------------------------------
@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped(), data=st.data())
def test_permute_gradcheck_and_values(backend, drawn, data):
    shape, layout, seed = drawn
    n = len(shape)
    dims = tuple(data.draw(st.permutations(range(n)), label="dims"))
    signed = tuple(d - n if data.draw(st.booleans()) else d for d in dims)
    x = make(shape, seed=seed, layout=layout)
    y = x.permute(*signed)
    numpy.testing.assert_array_equal(y.numpy(), host(x).transpose(dims))
    assert F.permute(x, signed).shape == y.shape
    assert mt.gradcheck(lambda t: F.permute(t, signed), (x,))


@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped(), data=st.data())
def test_transpose_gradcheck_and_values(backend, drawn, data):
    shape, layout, seed = drawn
    n = len(shape)
    a, b = data.draw(st.integers(-n, n - 1), label="dim0"), data.draw(st.integers(-n, n - 1), label="dim1")
    x = make(shape, seed=seed, layout=layout)
    numpy.testing.assert_array_equal(x.transpose(a, b).numpy(), numpy.swapaxes(host(x), a, b))
    numpy.testing.assert_array_equal(x.T.numpy(), host(x).T)
    assert mt.gradcheck(lambda t: F.transpose(t, a, b), (x,))


@settings(max_examples=TORCH_EXAMPLES)
@given(drawn=shaped(), data=st.data())
def test_permute_transpose_match_torch(backend, torch, drawn, data):
    shape, layout, seed = drawn
    n = len(shape)
    dims = tuple(data.draw(st.permutations(range(n)), label="dims"))
    a, b = data.draw(st.integers(-n, n - 1), label="dim0"), data.draw(st.integers(-n, n - 1), label="dim1")
    x = make(shape, seed=seed, layout=layout)
    compare(torch, lambda t: F.permute(t, dims), lambda t: t.permute(dims), [x])
    x.grad = None
    compare(torch, lambda t: F.transpose(t, a, b), lambda t: torch.transpose(t, a, b), [x])


# ---- getitem ------------------------------------------------------------------------------------


@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped(), data=st.data())
def test_getitem_basic_gradcheck_and_values(backend, drawn, data):
    shape, layout, seed = drawn
    index = data.draw(basic_index(shape), label="index")
    x = make(shape, seed=seed, layout=layout)
    y = x[index]
    numpy.testing.assert_array_equal(y.numpy(), host(x)[index])
    assert mt.gradcheck(lambda t: t[index], (x,))
    # The gradient is g written at the indexed places and 0 elsewhere: 1 exactly where picked.
    x.grad = None
    y.sum().backward()
    picked = numpy.zeros(shape)
    picked[index] = 1.0
    numpy.testing.assert_array_equal(x.grad.numpy(), picked)


@settings(max_examples=TORCH_EXAMPLES)
@given(drawn=shaped(), data=st.data())
def test_getitem_basic_matches_torch(backend, torch, drawn, data):
    shape, layout, seed = drawn
    index = data.draw(basic_index(shape, allow_negative_steps=False), label="index")  # torch: no negative steps
    x = make(shape, seed=seed, layout=layout)
    compare(torch, lambda t: t[index], lambda t: t[index], [x])


def test_getitem_negative_steps_hand_computed(backend):
    x = mt.tensor([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]], dtype="float64", requires_grad=True)
    y = x[::-1, 3:0:-2]
    numpy.testing.assert_array_equal(y.numpy(), [[7.0, 5.0], [3.0, 1.0]])
    (y * mt.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64")).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [[0, 4, 0, 3], [0, 2, 0, 1]])


def test_getitem_one_element(backend):
    """A single element's gradient is a 0-d array written into one place (on CuPy too)."""
    x = make((2, 3), seed=1)
    y = x[1, -1]
    assert y.shape == () and y.item() == host(x)[1, 2]
    y.backward()
    expected = numpy.zeros((2, 3))
    expected[1, 2] = 1.0
    numpy.testing.assert_array_equal(x.grad.numpy(), expected)


def test_getitem_index_tensor_with_repeats_adds_gradients(backend):
    x = make((3, 2), seed=1)
    index = mt.tensor([0, 2, 0, 0])
    y = x[index]
    numpy.testing.assert_array_equal(y.numpy(), host(x)[[0, 2, 0, 0]])
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [[3, 3], [0, 0], [1, 1]])  # row 0 picked 3 times
    assert mt.gradcheck(lambda t: t[index], (x,))


@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped(min_dims=2, max_dims=3), data=st.data())
def test_getitem_index_tensor_gradcheck(backend, drawn, data):
    shape, layout, seed = drawn
    rows = data.draw(st.lists(st.integers(-shape[1], shape[1] - 1), min_size=1, max_size=6), label="rows")
    x = make(shape, seed=seed, layout=layout)
    index = mt.tensor(rows)
    y = x[:, index]
    numpy.testing.assert_array_equal(y.numpy(), host(x)[:, rows])
    assert mt.gradcheck(lambda t: t[:, index], (x,))
    pairs = mt.tensor([r % shape[0] for r in rows])          # two index tensors, paired up
    numpy.testing.assert_array_equal(x[pairs, index].numpy(), host(x)[pairs.numpy(), rows])
    assert mt.gradcheck(lambda t: t[pairs, index], (x,))


@settings(max_examples=TORCH_EXAMPLES)
@given(drawn=shaped(min_dims=2, max_dims=3), data=st.data())
def test_getitem_index_tensor_matches_torch(backend, torch, drawn, data):
    shape, layout, seed = drawn
    rows = data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=6), label="rows")
    x = make(shape, seed=seed, layout=layout)
    index = mt.tensor(rows)
    compare(torch, lambda t: t[index], lambda t: t[torch.tensor(rows)], [x])


# ---- cat and stack -----------------------------------------------------------------------------
@st.composite
def cat_case(draw):
    shape = draw(shapes(1, 3, 1, 4))
    n = len(shape)
    dim = draw(st.integers(-n, n - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    parts = [tuple(s if i == dim % n else m for i, m in enumerate(shape)) for s in sizes]
    return parts, [draw(layouts(n)) for _ in parts], dim, draw(seeds)


@settings(max_examples=GRAD_EXAMPLES)
@given(case=cat_case())
def test_cat_gradcheck_and_values(backend, case):
    parts, part_layouts, dim, seed = case
    xs = [make(p, seed=seed + i, layout=lay) for i, (p, lay) in enumerate(zip(parts, part_layouts))]
    y = mt.cat(xs, dim)
    numpy.testing.assert_array_equal(y.numpy(), numpy.concatenate([host(x) for x in xs], axis=dim))
    assert mt.gradcheck(lambda *ts: F.cat(ts, dim), xs)


@pytest.mark.parametrize("threads", [1, 3])
@settings(max_examples=GRAD_EXAMPLES)
@given(case=cat_case(), tile_bytes=st.sampled_from([1, 64, 1 << 22]), dtypes=st.sampled_from(["same", "mixed"]))
def test_cat_copies_in_tiles_of_rows_on_several_threads(backend, threads, case, tile_bytes, dtypes, monkeypatch):
    """On the host, cat copies each input's part in tiles of its leading axis (one row or a few) on 1
    or 3 threads, or, below a tile's worth of values, with one concatenate: either way the values
    and the promoted dtype are numpy.concatenate's."""
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    monkeypatch.setattr(parallel, "STREAM_TILES", STREAM_TILES._replace(bytes=tile_bytes))
    parts, part_layouts, dim, seed = case
    xs = [make(p, seed=seed + i, layout=lay, dtype="float32" if dtypes == "mixed" and i % 2 == 0 else "float64")
          for i, (p, lay) in enumerate(zip(parts, part_layouts))]
    y, expected = mt.cat(xs, dim), numpy.concatenate([host(x) for x in xs], axis=dim)
    assert y.dtype == expected.dtype
    numpy.testing.assert_array_equal(y.numpy(), expected)


@settings(max_examples=GRAD_EXAMPLES)
@given(drawn=shaped(max_dims=3), count=st.integers(1, 3), data=st.data())
def test_stack_gradcheck_and_values(backend, drawn, count, data):
    shape, layout, seed = drawn
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)), label="dim")
    xs = [make(shape, seed=seed + i, layout=layout) for i in range(count)]
    y = mt.stack(xs, dim)
    numpy.testing.assert_array_equal(y.numpy(), numpy.stack([host(x) for x in xs], axis=dim))
    assert mt.gradcheck(lambda *ts: F.stack(ts, dim), xs)


def test_cat_only_some_inputs_require_grad(backend):
    a, b = make((2, 3), seed=1), make((1, 3), seed=2, requires_grad=False)
    mt.cat([a, b]).sum().backward()
    numpy.testing.assert_array_equal(a.grad.numpy(), numpy.ones((2, 3)))
    assert b.grad is None


@settings(max_examples=TORCH_EXAMPLES)
@given(case=cat_case())
def test_cat_matches_torch(backend, torch, case):
    parts, part_layouts, dim, seed = case
    xs = [make(p, seed=seed + i, layout=lay) for i, (p, lay) in enumerate(zip(parts, part_layouts))]
    compare(torch, lambda *ts: F.cat(ts, dim), lambda *ts: torch.cat(ts, dim), xs)


@settings(max_examples=TORCH_EXAMPLES)
@given(drawn=shaped(max_dims=3), count=st.integers(1, 3), data=st.data())
def test_stack_matches_torch(backend, torch, drawn, count, data):
    shape, layout, seed = drawn
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)), label="dim")
    xs = [make(shape, seed=seed + i, layout=layout) for i in range(count)]
    compare(torch, lambda *ts: F.stack(ts, dim), lambda *ts: torch.stack(ts, dim), xs)


# ---- pad --------------------------------------------------------------------------------------
@st.composite
def pad_case(draw):
    """Amounts in torch's order (last dim first), negative ones cropping, output sides >= 1."""
    shape, layout, seed = draw(shaped(max_dims=4))
    amounts = []
    for n in reversed(shape[len(shape) - draw(st.integers(1, len(shape))):]):
        lo, hi = draw(st.integers(-n, 2)), draw(st.integers(-n, 2))
        assume(n + min(lo, 0) + min(hi, 0) >= 1)
        amounts += [lo, hi]
    return shape, layout, seed, tuple(amounts), draw(st.sampled_from([0.0, -1.5, 3.0]))


def numpy_pad(array, amounts, value):
    """The same padding with NumPy: pad the positive amounts, then crop the negative ones."""
    pairs = [(0, 0)] * array.ndim
    for k in range(len(amounts) // 2):
        pairs[array.ndim - 1 - k] = (amounts[2 * k], amounts[2 * k + 1])
    padded = numpy.pad(array, [(max(lo, 0), max(hi, 0)) for lo, hi in pairs], constant_values=value)
    crop = tuple(slice(max(-lo, 0), padded.shape[i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pairs))
    return padded[crop]


@settings(max_examples=GRAD_EXAMPLES)
@given(case=pad_case())
def test_pad_gradcheck_and_values(backend, case):
    shape, layout, seed, amounts, value = case
    x = make(shape, seed=seed, layout=layout)
    y = F.pad(x, amounts, value=value)
    numpy.testing.assert_array_equal(y.numpy(), numpy_pad(host(x), amounts, value))
    assert mt.gradcheck(lambda t: F.pad(t, amounts, value=value), (x,))


@settings(max_examples=TORCH_EXAMPLES)
@given(case=pad_case())
def test_pad_matches_torch(backend, torch, case):
    shape, layout, seed, amounts, value = case
    x = make(shape, seed=seed, layout=layout)
    compare(torch, lambda t: F.pad(t, amounts, value=value),
            lambda t: torch.nn.functional.pad(t, amounts, value=value), [x])


def test_pad_hand_computed_torch_order(backend):
    x = mt.tensor([[1.0, 2.0, 3.0]], dtype="float64", requires_grad=True)     # (1, 3)
    y = F.pad(x, (1, -1, 2, 0), value=9.0)    # last dim: 1 before, crop 1 after; 2nd last: 2 before
    numpy.testing.assert_array_equal(y.numpy(), [[9, 9, 9], [9, 9, 9], [9, 1, 2]])
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [[1, 1, 0]])     # the cropped 3 got nothing


# ---- roll -------------------------------------------------------------------------------------
@st.composite
def roll_case(draw):
    shape, layout, seed = draw(shaped())
    n = len(shape)
    if draw(st.booleans()):
        return shape, layout, seed, draw(st.integers(-7, 7)), None
    dims = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=n, unique_by=lambda d: d % n))
    shifts = draw(st.lists(st.integers(-7, 7), min_size=len(dims), max_size=len(dims)))
    if len(dims) == 1 and draw(st.booleans()):
        return shape, layout, seed, shifts[0], dims[0]
    return shape, layout, seed, tuple(shifts), tuple(dims)


@settings(max_examples=GRAD_EXAMPLES)
@given(case=roll_case())
def test_roll_gradcheck_and_values(backend, case):
    shape, layout, seed, shifts, dims = case
    x = make(shape, seed=seed, layout=layout)
    numpy.testing.assert_array_equal(x.roll(shifts, dims).numpy(), numpy.roll(host(x), shifts, axis=dims))
    assert mt.gradcheck(lambda t: F.roll(t, shifts, dims), (x,))


@settings(max_examples=TORCH_EXAMPLES)
@given(case=roll_case())
def test_roll_matches_torch(backend, torch, case):
    shape, layout, seed, shifts, dims = case
    x = make(shape, seed=seed, layout=layout)
    theirs = (lambda t: torch.roll(t, shifts)) if dims is None else (lambda t: torch.roll(t, shifts, dims))
    compare(torch, lambda t: F.roll(t, shifts, dims), theirs, [x])


def test_roll_hand_computed(backend):
    x = mt.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    numpy.testing.assert_array_equal(x.roll(1).numpy(), [[5, 0, 1], [2, 3, 4]])              # flattened
    numpy.testing.assert_array_equal(x.roll((1, -1), (0, 1)).numpy(), [[4, 5, 3], [1, 2, 0]])


# ---- expand ------------------------------------------------------------------------------------
@st.composite
def expand_case(draw):
    shape, layout, seed = draw(shaped(max_dims=3))
    shape = tuple(1 if draw(st.booleans()) else n for n in shape)
    target = [draw(st.integers(1, 3)) if n == 1 else (-1 if draw(st.booleans()) else n) for n in shape]
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    return shape, layout, seed, tuple(lead + target)


@settings(max_examples=GRAD_EXAMPLES)
@given(case=expand_case())
def test_expand_gradcheck_and_values(backend, case):
    shape, layout, seed, target = case
    x = make(shape, seed=seed, layout=layout)
    y = F.expand(x, *target)
    lead = len(target) - len(shape)
    full = tuple(shape[i - lead] if n == -1 else n for i, n in enumerate(target))
    numpy.testing.assert_array_equal(y.numpy(), numpy.broadcast_to(host(x), full))
    assert F.expand(x, target).shape == full
    assert mt.gradcheck(lambda t: F.expand(t, *target), (x,))


@settings(max_examples=TORCH_EXAMPLES)
@given(case=expand_case())
def test_expand_matches_torch(backend, torch, case):
    shape, layout, seed, target = case
    x = make(shape, seed=seed, layout=layout)
    compare(torch, lambda t: F.expand(t, *target), lambda t: t.expand(*target), [x])


# ---- errors ---------------------------------------------------------------------------------
def test_reshape_errors(backend):
    x = make((2, 3), seed=0)
    with pytest.raises(ValueError, match=r"reshape: shape \(4, 2\) is invalid for an input of shape \(2, 3\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"reshape: shape \(4, -1\) is invalid"):
        x.reshape((4, -1))
    with pytest.raises(ValueError, match="at most one -1"):
        x.reshape(-1, -1)


def test_permute_errors(backend):
    x = make((2, 3, 4), seed=0)
    for dims in [(0, 1), (0, 0, 1), (0, 1, 2, 3), (0, 1, 5), (0, 1, -4)]:
        with pytest.raises(ValueError, match="are not a permutation of the 3 dims"):
            x.permute(*dims)


@pytest.mark.parametrize("call", [
    lambda x: x.transpose(0, 3), lambda x: x.unsqueeze(4), lambda x: x.squeeze(-4),
    lambda x: x.flatten(0, 3), lambda x: mt.cat([x, x], 3), lambda x: mt.stack([x, x], -5),
    lambda x: x.roll(1, 3)])
def test_bad_dims(backend, call):
    x = make((2, 3, 4), seed=0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        call(x)


def test_cat_and_stack_errors(backend):
    a, b = make((2, 3), seed=0), make((2, 4), seed=1)
    with pytest.raises(ValueError, match=r"cat: sizes must match except in dim 0"):
        mt.cat([a, b], 0)
    with pytest.raises(ValueError, match=r"cat: sizes must match"):
        mt.cat([a, make((2, 3, 1), seed=2)], 1)
    with pytest.raises(ValueError, match="cat: expected a non-empty sequence"):
        mt.cat([])
    with pytest.raises(ValueError, match="stack: expects tensors of equal shape"):
        mt.stack([a, b])


def test_pad_errors(backend):
    x = make((2, 3), seed=0)
    with pytest.raises(ValueError, match="pad: expected an even number of amounts"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="pad: expected an even number of amounts for at most 2 dims"):
        F.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="would give a negative size"):
        F.pad(x, (-2, -2))
    with pytest.raises(ValueError, match="would give a negative size"):
        F.pad(x, (2, -4))                   # torch refuses too: the crop is longer than the input
    with pytest.raises(NotImplementedError, match="only 'constant'"):
        F.pad(x, (1, 1), mode="reflect")


def test_roll_and_expand_errors(backend):
    x = make((2, 3), seed=0)
    with pytest.raises(ValueError, match="roll: shifts .* and dims .* must have the same length"):
        x.roll((1, 2), 0)
    for shape in [(4, 3), (3,), (2, 2, 5)]:
        with pytest.raises(ValueError, match=r"expand: cannot expand shape \(2, 3\) to"):
            F.expand(x, *shape)
