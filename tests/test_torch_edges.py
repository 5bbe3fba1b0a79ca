"""Edge cases where a randomized differential test against torch found us different; now equal.

Each case computes a value (and gradients) once with minitorch_seg and once with torch, from the
same inputs, and compares them (NaN equal to NaN, infinities exactly).
"""
import math

import numpy
import pytest

import minitorch_seg as mt
import minitorch_seg.functional as F

pytestmark = pytest.mark.elementwise

NAN, INF = math.nan, math.inf


def _relu(lib, T):
    x = T.tensor([-INF, NAN, -1.0, 0.0, 2.0], requires_grad=True)
    y = (F.relu if lib == "mt" else T.relu)(x)
    y.sum().backward()
    return y, x.grad


def _max_with_nan(lib, T):
    x = T.tensor([1.0, NAN, 3.0], requires_grad=True)
    y = x.max()
    y.backward()
    return y, x.grad


def _pow_at_zero(lib, T):
    def leaf(values):
        return T.tensor(values, dtype=T.float64, requires_grad=True)
    x, y, z, w = leaf([0.0, 0.0, 2.0]), leaf([0.0, 2.0, 0.5]), leaf([0.0, 2.0, -1.0]), leaf([0.0, 1.0])
    ((x ** y).sum() + (0.0 ** z).sum() + (w ** 0).sum()).backward()
    return x.grad, y.grad, z.grad, w.grad


def _zero_d(lib, T):
    x = T.tensor(2.0)
    softmax = F.softmax if lib == "mt" else T.softmax
    log_softmax = F.log_softmax if lib == "mt" else T.log_softmax
    values, indices = x.max(dim=0)
    return softmax(x, dim=-1), log_softmax(x, 0), values, indices, x.argmax(dim=0)


def _mixed_index(lib, T):
    x = T.tensor(numpy.arange(24.0).reshape(2, 3, 4))
    i = T.tensor([0, 1])
    return x[0, :, i], x[i, :, 1], x[None, 1, i], x[..., 1, T.tensor([0, 3])], x[1, i, 3]


@pytest.mark.parametrize("case", [_relu, _max_with_nan, _pow_at_zero, _zero_d, _mixed_index],
                         ids=lambda f: f.__name__.strip("_"))
def test_agrees_with_torch(case, torch):
    ours, theirs = case("mt", mt), case("torch", torch)
    for a, b in zip(ours, theirs):
        a, b = a.numpy(), b.detach().numpy()
        assert a.shape == b.shape
        numpy.testing.assert_array_equal(a, b)


def test_flatten_refuses_start_after_end():
    with pytest.raises(ValueError, match="start_dim"):
        mt.zeros(2, 3).flatten(1, 0)
