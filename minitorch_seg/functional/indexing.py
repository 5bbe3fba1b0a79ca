"""Reading and writing at an index: ``x[index]`` (getitem) and ``x[index] = v`` (setitem), with torch's index rules.

An index is ints, slices, None, Ellipsis, and integer or boolean index tensors. Where ints and index
tensors are mixed, the ints select first, as in torch: ``x[0, :, idx]`` on a (1, 3, 2) tensor is
``x[0][:, idx]``, shape (3, 2). (NumPy counts the int as an index array too, and moves the
broadcast dims to the front: (2, 3).) ``_steps`` turns an index into the one or two NumPy indices
applied in turn that give torch's answer; reading and writing both go through it.
"""
import numbers

from ..autograd import Function, sum_to_shape
from ..backend import get_array_module, scatter_add


def _is_int(i):
    return isinstance(i, numbers.Integral) and not isinstance(i, bool)


def _is_basic(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


def _steps(index):
    """The NumPy indices, applied one after the other, that select what torch's ``index`` selects."""
    from ..tensor import Tensor
    if isinstance(index, Tensor):
        return (index.data,)
    if not isinstance(index, tuple):
        return (index,)
    index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    arrays = [i for i in index if hasattr(i, "shape") or isinstance(i, list)]
    if arrays and any(_is_int(i) for i in index):
        ints = tuple(i if _is_int(i) or i is None or i is Ellipsis else slice(None) for i in index)
        rest = tuple(slice(None) if i is None else i for i in index if not _is_int(i))
        return ints, rest
    return (index,)


def _select(array, steps):
    """``array[steps[0]][steps[1]]...``: a view while the steps are basic, so a write to it lands in ``array``."""
    for step in steps:
        array = array[step]
    return array


def _write(array, steps, value):
    """``array[index] = value`` for the index that ``steps`` came from (the last step writes, the others are views)."""
    _select(array, steps[:-1])[steps[-1]] = value


class GetItem(Function):
    """y = x[index].  Backward: a zero array of x's shape with g written at ``index``.

    Basic indices (ints, slices, None, Ellipsis) pick each element at most once, so a plain
    assignment does. Integer-array indices may pick one element twice; their gradients must add,
    so those go through a scatter-add.
    """

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        grad = xp.zeros(ctx.shape, dtype=ctx.dtype)
        if _is_basic(ctx.index):
            grad[ctx.index] = g
        else:
            scatter_add(grad, ctx.index, g)
        return grad


class SetItem(Function):
    """y = x with y[index] = v: ``x[index] = v`` recorded in the graph (``index`` as ``_steps`` gives it).

    Shapes: x (any); v broadcast to the shape of ``x[index]`` (call it S) and cast to x's dtype.
    Forward: a copy of x, then v written at ``index``.
    Backward: every element of y is either an element of x (outside ``index``) or an element of v
    (inside), copied unchanged. So dL/dx is g with zeros written at ``index`` (those elements of x
    were overwritten and no longer reach the loss), and dL/dv is g[index], of shape S, summed over
    the dims that broadcasting gave v (``sum_to_shape``), in v's dtype. An integer-array index that
    names an element twice keeps one of the writes in y (which one is unspecified, as in torch);
    the gradient goes to every write, as torch's ``index_put_`` sends it.
    """

    @staticmethod
    def forward(ctx, x, v, steps):
        ctx.steps, ctx.v_shape, ctx.v_dtype = steps, v.shape, v.dtype
        y = x.copy()
        _write(y, steps, v)
        return y

    @staticmethod
    def backward(ctx, g):
        grad_x = g.copy()
        _write(grad_x, ctx.steps, 0)
        grad_v = sum_to_shape(_select(g, ctx.steps), ctx.v_shape).astype(ctx.v_dtype, copy=False)
        return grad_x, grad_v


def getitem(input, index):
    """``x[index]``: ints, slices, None, Ellipsis, and integer or boolean index tensors (torch's rules, above)."""
    steps = _steps(index)
    for step in steps:
        input = GetItem.apply(input, index=step)
    return input


def setitem(input, index, value):
    """``input`` with ``value`` (a tensor, broadcast to ``input[index]``) written at ``index``: a new tensor, in the graph.

    ``Tensor.__setitem__`` (``inplace.setitem``) calls this inside the graph and takes the result
    over; outside it, it writes into the tensor's array.
    """
    return SetItem.apply(input, value, steps=_steps(index))
