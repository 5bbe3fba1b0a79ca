"""``gradcheck``: it passes correct backward passes and catches a wrong one, on both of its paths.

Inputs with at most ``EVERY_ELEMENT_UP_TO`` (512) elements are checked along every coordinate;
larger ones along ``RANDOM_DIRECTIONS`` (16) random unit directions.
"""
import re

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import gradient_check
from minitorch_seg.autograd import Function
from minitorch_seg.gradient_check import GradcheckError, gradcheck
from minitorch_seg.testing import make

pytestmark = pytest.mark.autograd

SMALL = (4, 5)        # 20 elements: every-element path
LARGE = (24, 25)      # 600 elements: random-directions path


def test_the_two_sizes_take_the_two_paths():
    assert numpy.prod(SMALL) <= gradient_check.EVERY_ELEMENT_UP_TO < numpy.prod(LARGE)


@pytest.mark.parametrize("size, calls", [(512, 1 + 2 * 512), (513, 1 + 2 * 16)])
def test_every_element_up_to_512_then_16_random_directions(size, calls):
    count = []

    def fn(t):
        count.append(1)
        return t * t

    assert gradcheck(fn, (make((size,), seed=0),)) is True
    assert len(count) == calls             # one forward for backward, then two per direction


class WrongSquare(Function):
    """y = x^2, with a deliberately wrong backward: 3 x g instead of 2 x g."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return 3 * x * g


class RightSquare(WrongSquare):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return 2 * x * g


@pytest.mark.parametrize("shape", [SMALL, LARGE], ids=["every-element", "random-directions"])
def test_correct_ops_pass(shape):
    x = make(shape, seed=1)
    w = make(shape[-1:], seed=2)
    assert gradcheck(lambda a, b: (a * b).exp().sum(dim=1), (x, w)) is True
    assert gradcheck(RightSquare.apply, (x,)) is True


@pytest.mark.parametrize("shape", [SMALL, LARGE], ids=["every-element", "random-directions"])
def test_a_wrong_backward_is_caught_and_reported(shape):
    x = make(shape, seed=3, low=0.5, high=2.0)
    with pytest.raises(GradcheckError) as raised:
        gradcheck(WrongSquare.apply, (x,))
    message = str(raised.value)
    assert f"input 0 (shape {shape})" in message
    where = "at (" if numpy.prod(shape) <= 512 else "at random direction"
    assert where in message
    assert "analytic gradient" in message and "but numeric" in message


def test_the_error_names_the_worst_index_and_both_values():
    # One element is far from zero, so it has the largest error |3x - 2x| * |u| up to the random u.
    values = numpy.full((3,), 0.1)
    values[1] = 5.0
    x = mt.Tensor(values, requires_grad=True)
    u = numpy.random.default_rng(0).standard_normal(3)        # gradcheck's upstream gradient (seed=0)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(3,\)\) at \(1,\)") as raised:
        gradcheck(WrongSquare.apply, (x,))
    analytic, numeric = 3 * 5.0 * u[1], 2 * 5.0 * u[1]
    found = re.search(r"analytic gradient (\S+) but numeric (\S+) \(", str(raised.value))
    assert found, raised.value             # plain numbers, not "np.float64(...)"
    numpy.testing.assert_allclose([float(found[1]), float(found[2])], [analytic, numeric], rtol=1e-6)


def test_only_the_wrong_input_is_named():
    good = make(SMALL, seed=4)
    bad = make(SMALL, seed=5, low=0.5, high=2.0)
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(4, 5\)\)"):
        gradcheck(lambda a, b: a * 2.0 + WrongSquare.apply(b), (good, bad))


def test_inputs_that_do_not_require_grad_are_not_checked():
    checked = make(SMALL, seed=6)
    constant = make(SMALL, seed=7, requires_grad=False)
    assert gradcheck(lambda a, b: a * WrongSquare.apply(b), (checked, constant)) is True


def test_non_scalar_output():
    x = make((3, 4), seed=8)
    assert gradcheck(lambda t: t.relu() * t, (x,)) is True
    assert gradcheck(lambda t: t.permute(1, 0).reshape(2, 6), (x,)) is True


def test_multiple_outputs():
    x = make((3, 4), seed=9)
    assert gradcheck(lambda t: (t * 2.0, t.exp(), t.sum(dim=0)), (x,)) is True
    assert gradcheck(lambda t: t.max(dim=1), (x,)) is True         # (values, int64 indices)
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda t: (t * 2.0, WrongSquare.apply(t)), (make((3, 4), seed=9, low=0.5),))


def test_float32_inputs_are_checked_in_float64_and_left_unchanged():
    x = make((2, 3), seed=10, dtype="float32")
    before = x.numpy().copy()
    assert gradcheck(lambda t: (t * t).sum(), (x,)) is True
    assert x.dtype == numpy.float32 and numpy.array_equal(x.numpy(), before)


def test_a_single_tensor_may_be_passed_without_a_tuple():
    assert gradcheck(lambda t: t.tanh(), make((5,), seed=11)) is True


def test_no_differentiable_output_raises():
    x = make((3,), seed=12, requires_grad=False)
    with pytest.raises(GradcheckError, match="no floating output of fn depends on an input that requires grad"):
        gradcheck(lambda t: t * 2.0, (x,))


def test_runs_on_every_backend(backend):
    x = make((3, 4), seed=13)
    assert x.backend == backend
    assert gradcheck(lambda t: (t * t).sum(dim=0), (x,)) is True
    with pytest.raises(GradcheckError):
        gradcheck(WrongSquare.apply, (make((3, 4), seed=13, low=0.5),))
