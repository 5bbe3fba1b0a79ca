"""``x[index] = v``: written into the array outside the graph, recorded (``SetItem``) inside it.

Inside the graph the write's backward sends g to ``v`` through the written elements (summed over
v's broadcast dims) and to ``x`` everywhere else; the gradient checks draw the shape, the index
(ints, slices with steps, None, Ellipsis, index tensors without repeats, a boolean mask, ints mixed
with an index tensor) and a value shape that broadcasts, and compare with torch.
"""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg.testing import layouts, make, shapes
from torch_compare import compare
from helpers import basic_index, host

pytestmark = pytest.mark.movement

GRAD_EXAMPLES = 15
TORCH_EXAMPLES = 10


@st.composite
def index_for(draw, shape):
    """A torch index of one of four kinds for ``shape``, with no element named twice."""
    kind = draw(st.sampled_from(["basic", "tensor", "mask", "int and tensor"]))
    if kind == "basic":
        return draw(basic_index(shape, allow_negative_steps=False))   # torch has no negative steps
    if kind == "mask":
        return mt.tensor(draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0])))
    rows = draw(st.lists(st.integers(0, shape[-1] - 1), min_size=1, max_size=shape[-1], unique=True))
    if kind == "tensor" or len(shape) == 1:
        return (Ellipsis, mt.tensor(rows))
    return (draw(st.integers(-shape[0], shape[0] - 1)), Ellipsis, mt.tensor(rows))


@st.composite
def cases(draw):
    """(shape, layout, seed, index, the value's shape: a suffix of x[index]'s shape, some dims 1)."""
    shape = draw(shapes(1, 4, 1, 4))
    index = draw(index_for(shape))
    target = numpy.zeros(shape)[index if not isinstance(index, (tuple, mt.Tensor)) else _numpy_index(index)].shape
    if isinstance(index, tuple) and any(isinstance(i, mt.Tensor) for i in index) and isinstance(index[0], int):
        target = numpy.zeros(shape)[index[0]][_numpy_index(index[1:])].shape      # torch: the int selects first
    keep = draw(st.integers(0, len(target)))
    value_shape = tuple(n if draw(st.booleans()) else 1 for n in target[len(target) - keep:])
    return shape, draw(layouts(len(shape))), draw(st.integers(0, 2**16)), index, value_shape


def _numpy_index(index):
    if isinstance(index, mt.Tensor):
        return host(index)
    return tuple(host(i) if isinstance(i, mt.Tensor) else i for i in index)


def _torch_index(torch, index):
    def convert(i):
        return torch.from_numpy(host(i)) if isinstance(i, mt.Tensor) else i
    return tuple(convert(i) for i in index) if isinstance(index, tuple) else convert(index)


def written(x, index, v):
    y = x * 1.0                         # not a leaf, so the write is allowed in the graph
    y[index] = v
    return y


@settings(max_examples=GRAD_EXAMPLES)
@given(case=cases())
def test_setitem_gradcheck(backend, case):
    shape, layout, seed, index, value_shape = case
    x, v = make(shape, seed=seed, layout=layout), make(value_shape, seed=seed + 1)
    assert mt.gradcheck(lambda a, b: written(a, index, b), (x, v))


@settings(max_examples=TORCH_EXAMPLES)
@given(case=cases())
def test_setitem_matches_torch(backend, torch, case):
    shape, layout, seed, index, value_shape = case
    x, v = make(shape, seed=seed, layout=layout), make(value_shape, seed=seed + 1)
    compare(torch, lambda a, b: written(a, index, b), lambda a, b: written(a, _torch_index(torch, index), b), [x, v])


def test_the_gradient_splits_between_the_kept_and_the_written_elements(backend):
    x = make((2, 3), seed=0)
    v = make((3,), seed=1)
    y = written(x, 1, v)
    numpy.testing.assert_array_equal(y.numpy(), numpy.stack([host(x)[0], host(v)]))
    y.backward(mt.tensor(numpy.arange(6.0).reshape(2, 3)))
    numpy.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 2], [0, 0, 0]])     # row 1 was overwritten
    numpy.testing.assert_array_equal(v.grad.numpy(), [3, 4, 5])


def test_a_broadcast_value_gets_the_sum_of_its_copies_gradients(backend):
    x, v = make((3, 4), seed=0), make((1,), seed=1)
    y = written(x, (slice(None), slice(1, 3)), v)                                  # v copied to 6 places
    y.backward(mt.tensor(numpy.arange(12.0).reshape(3, 4)))
    assert v.grad.item() == 1 + 2 + 5 + 6 + 9 + 10


def test_outside_the_graph_the_array_is_written_and_views_see_it(backend):
    x = mt.zeros(2, 3)
    view = x[0]
    x[0, 1:] = mt.tensor([1.0, 2.0])
    x[x.detach() == 0] = 7.0
    numpy.testing.assert_array_equal(view.numpy(), [7, 1, 2])
    numpy.testing.assert_array_equal(x.numpy(), [[7, 1, 2], [7, 7, 7]])
    with mt.no_grad():
        w = make((2,), seed=0)
        w[0] = 5.0                                                               # a parameter update
    assert w.numpy()[0] == 5.0 and w.requires_grad


def test_a_leaf_that_requires_grad_refuses_in_the_graph_with_torchs_sentence(backend):
    w = make((2,), seed=0)
    with pytest.raises(RuntimeError, match="^a leaf Variable that requires grad is being used in an in-place operation.$"):
        w[0] = 1.0


def test_the_value_is_cast_to_the_tensors_dtype_as_in_torch(backend, torch):
    ints = mt.zeros(3, dtype=mt.int64)
    ints[1] = 2.7
    expected = torch.zeros(3, dtype=torch.int64)
    expected[1] = 2.7
    numpy.testing.assert_array_equal(ints.numpy(), expected.numpy())
    assert ints.dtype == mt.int64


def test_an_empty_selection_writes_nothing_and_gets_an_empty_gradient(backend):
    x, v = make((2, 2), seed=0), make((0, 2), seed=1)
    y = written(x, mt.tensor([False, False]), v)
    numpy.testing.assert_array_equal(y.numpy(), host(x))
    assert mt.gradcheck(lambda a, b: written(a, mt.tensor([False, False]), b), (x, v))
    y.sum().backward()
    assert v.grad.shape == (0, 2)
