"""Selection by a condition or a range: where and clamp (clip), each differentiable in its values.

Notation as elsewhere: ``g`` is dL/dy shaped like the output; an input that was broadcast gets
its gradient summed back to its own shape (``sum_to_shape``).
"""
from ..autograd import Function, sum_to_shape
from ..backend import get_array_module


def _shape(a):
    return getattr(a, "shape", ())


class Where(Function):
    """y = a where c else b (c a boolean condition, not differentiable).

    Backward: each output element is a copy of a or of b, so dL/da = g * c and dL/db = g * (not c),
    each summed to its input's shape.
    """

    @staticmethod
    def forward(ctx, condition, a, b):
        xp = get_array_module(condition, a, b)
        ctx.save_for_backward(condition)
        ctx.shapes = (_shape(a), _shape(b))
        return xp.where(condition, a, b)

    @staticmethod
    def backward(ctx, g):
        (condition,) = ctx.saved_arrays
        xp = get_array_module(g)
        _, need_a, need_b = ctx.needs_input_grad
        zero = g.dtype.type(0)
        return (None,
                sum_to_shape(xp.where(condition, g, zero), ctx.shapes[0]) if need_a else None,
                sum_to_shape(xp.where(condition, zero, g), ctx.shapes[1]) if need_b else None)


class Clamp(Function):
    """y = min(max(x, lo), hi), either bound optional (a number or an array; hi wins where lo > hi).

    Backward, torch's rule: y = x exactly where lo <= x <= hi, so dL/dx = g there and 0 elsewhere
    (and at NaN). A bound gets the gradient where it is the output: dL/dlo = g where x < lo (and
    lo < hi when both are given); dL/dhi = g where x > hi (or hi < lo). Each is summed to its shape.
    """

    @staticmethod
    def forward(ctx, x, lo, hi):
        xp = get_array_module(x, lo, hi)
        y = x
        if lo is not None:
            y = xp.maximum(y, lo)
        if hi is not None:
            y = xp.minimum(y, hi)
        ctx.save_for_backward(x, lo, hi)
        return y

    @staticmethod
    def backward(ctx, g):
        x, lo, hi = ctx.saved_arrays
        xp = get_array_module(g)
        need_x, need_lo, need_hi = ctx.needs_input_grad
        zero = g.dtype.type(0)
        grad_x = grad_lo = grad_hi = None
        if need_x:
            inside = True
            if lo is not None:
                inside = inside & (x >= lo)
            if hi is not None:
                inside = inside & (x <= hi)
            grad_x = sum_to_shape(xp.where(inside, g, zero), x.shape)
        if need_lo:
            wins = (x < lo) & (lo < hi) if hi is not None else x < lo
            grad_lo = sum_to_shape(xp.where(wins, g, zero), _shape(lo))
        if need_hi:
            wins = (x > hi) | (hi < lo) if lo is not None else x > hi
            grad_hi = sum_to_shape(xp.where(wins, g, zero), _shape(hi))
        return grad_x, grad_lo, grad_hi


def where(condition, input=None, other=None):
    """``input`` where ``condition`` else ``other`` (tensors or numbers, broadcast together).

    With the condition alone: ``nonzero(condition, as_tuple=True)``, a tuple of index tensors.
    """
    from ..tensor import Tensor
    if input is None and other is None:
        xp = get_array_module(condition.data)
        return tuple(Tensor(i) for i in xp.nonzero(condition.data))
    if input is None or other is None:
        raise TypeError("where: give both input and other, or the condition alone.")
    if not isinstance(condition, Tensor) or condition.dtype.kind != "b":
        raise TypeError(f"where: the condition must be a bool tensor, got {getattr(condition, 'dtype', type(condition).__name__)}.")
    return Where.apply(condition, input, other)


def clamp(input, min=None, max=None):  # noqa: A002 - torch's names
    """Each element limited to [min, max] (either may be None, a number or a tensor); see ``Clamp``."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None.")
    return Clamp.apply(input, min, max)


clip = clamp
