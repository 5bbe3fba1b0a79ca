"""Reverse-mode automatic differentiation: the ``Function`` base class and the graph walk.

A ``Function`` subclass writes two static methods on raw arrays:

- ``forward(ctx, *arrays, **params) -> array`` (or a tuple of arrays), saving on ``ctx`` what
  ``backward`` needs and nothing else;
- ``backward(ctx, grad_output) -> one gradient per positional input`` (``None`` where
  ``ctx.needs_input_grad[i]`` is false), the derivative written out by hand.

``Function.apply(*tensors, **params)`` runs ``forward`` and, when a gradient is wanted, records
one graph node: the ``ctx`` itself, with an *edge* per input pointing at the node that made it
(or at the leaf tensor). The graph holds nodes and saved arrays, never the intermediate tensors,
so an activation nobody saved is freed as soon as Python drops it.

``backward`` walks the nodes in reverse topological order, found iteratively (a chain of 10,000
ops does not hit Python's recursion limit), and sums the gradients that reach one place from
several paths: that ``+`` is the multivariate chain rule for fan-out.

Whether ops record the graph at all (``no_grad``, ``is_grad_enabled``, and ``grad_mode.py``'s
switches) is set per thread, as in torch: evaluating under ``no_grad`` in one thread leaves
another thread's training step recording its graph.

>>> import minitorch_seg as mt
>>> x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> y = (x * x).sum()        # y = sum x_i^2, so dy/dx_i = 2 x_i
>>> y.backward()
>>> x.grad.numpy().tolist()
[2.0, 4.0, 6.0]
"""
from __future__ import annotations

import contextlib
import functools
import sys
import sysconfig
import threading
import time
import weakref

import numpy

from . import backend, parallel

class _GradMode(threading.local):
    enabled = True           # each thread starts recording; ``no_grad`` in one thread is not seen by another


_grad_mode = _GradMode()
_profile = None  # while profiling: Function name -> [calls, forward seconds, backward seconds]


@contextlib.contextmanager
def profile():
    """Time every Function's forward and backward inside the block: ``with profile() as table: ...``.

    ``table`` maps each Function's name to [calls, forward seconds, backward seconds]. On the GPU
    the times are those of queueing the kernels, unless the caller synchronises.
    """
    global _profile
    previous, _profile = _profile, {}
    try:
        yield _profile
    finally:
        _profile = previous


def _record(name, column, seconds):
    entry = _profile.setdefault(name, [0, 0.0, 0.0])
    entry[column] += seconds
    if column == 1:
        entry[0] += 1


def is_grad_enabled():
    """True unless inside ``no_grad()`` (or another switch of ``grad_mode.py``), in this thread."""
    return _grad_mode.enabled


def _set_grad_enabled(enabled):
    """Switch graph recording on or off in this thread: what ``no_grad`` and ``grad_mode.py`` do."""
    _grad_mode.enabled = enabled


class no_grad:  # noqa: N801 - torch's name
    """Context manager (and decorator) that records no graph, in this thread: for evaluation and optimizer steps."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        _set_grad_enabled(False)

    def __exit__(self, *exc):
        _set_grad_enabled(self._previous)

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with no_grad():
                return func(*args, **kwargs)
        return wrapper


class Context:
    """One node of the graph: what one application of a Function remembers for its backward.

    ``save_for_backward(*arrays)`` / ``saved_arrays`` hold arrays; any other attribute
    (``ctx.stride = 2``) may be set too. ``needs_input_grad[i]`` says whether input ``i`` wants a
    gradient, so backward can skip the work for the others. ``saved_tensors`` is torch's name for
    ``saved_arrays``; unlike PyTorch they are arrays, as everything a Function's forward and
    backward see is. ``last_use`` is True in a backward after which the engine drops them (no
    ``retain_graph``): a backward may then write its result into an array that only it saved.
    ``free_grads[i]`` is True where the gradient of output i is an array nothing else refers to
    (``_is_free``): a backward may write its result into that one too.

    >>> class Square(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * g
    >>> import minitorch_seg as mt
    >>> x = mt.tensor([3.0], requires_grad=True)
    >>> Square.apply(x).sum().backward()
    >>> x.grad.tolist()
    [6.0]
    """

    def __init__(self, function, needs_input_grad):
        self.function = function
        self.needs_input_grad = needs_input_grad
        self.saved_arrays = ()
        self.edges = ()          # per input: None, or (node or leaf Tensor, output index, shape)
        self.outputs = ()        # per output: (shape, dtype, differentiable)
        self.retained = None     # output index -> weakref of a tensor that called retain_grad()
        self.freed = False
        self.last_use = False    # True in a backward after which the saved arrays are dropped
        self.free_grads = ()     # per output: whether backward may write into its gradient

    def save_for_backward(self, *arrays):
        self.saved_arrays = arrays

    @property
    def saved_tensors(self):
        """torch's name for ``saved_arrays`` (arrays here, not Tensors)."""
        return self.saved_arrays

    def mark_non_differentiable(self, *arrays):
        """Outputs (e.g. max-pool indices) that carry no gradient."""
        self._non_differentiable = {id(a) for a in arrays}

    @property
    def name(self):
        return self.function.__name__


class Function:
    """Base class of every op with a hand-derived backward; see the module docstring."""

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on ``inputs`` (Tensors, or None for absent optional inputs)."""
        from .tensor import Tensor  # tensor.py imports the functional ops, which import this file

        arrays = [t.data if isinstance(t, Tensor) else t for t in inputs]
        xp = backend.get_array_module(*arrays)  # raises on mixed backends
        needs = tuple(isinstance(t, Tensor) and t.requires_grad for t in inputs)
        record = _grad_mode.enabled and any(needs)
        ctx = Context(cls, needs if record else (False,) * len(inputs))
        if _profile is None:
            result = cls.forward(ctx, *arrays, **params)
        else:
            start = time.perf_counter()
            result = cls.forward(ctx, *arrays, **params)
            _record(cls.__name__, 1, time.perf_counter() - start)

        many = isinstance(result, tuple)
        results = tuple(_as_array(r, xp, cls) for r in (result if many else (result,)))
        if not record:
            outputs = tuple(Tensor(r) for r in results)
            return outputs if many else outputs[0]

        non_differentiable = getattr(ctx, "_non_differentiable", ())
        ctx.edges = tuple(_edge(t) if need else None for t, need in zip(inputs, needs))
        # Integer and bool outputs (indices, ``x.long()``) carry no gradient, as in torch.
        ctx.outputs = tuple((r.shape, r.dtype, id(r) not in non_differentiable and r.dtype.kind == "f")
                            for r in results)
        outputs = []
        for index, (r, (_, _, differentiable)) in enumerate(zip(results, ctx.outputs)):
            out = Tensor(r, requires_grad=differentiable)
            if differentiable:
                out._ctx, out._output_index = ctx, index
            outputs.append(out)
        return tuple(outputs) if many else outputs[0]


def _as_array(result, xp, function):
    # NumPy reductions may return NumPy scalars; the graph deals in arrays only.
    if isinstance(result, numpy.generic):
        return xp.asarray(result)
    if backend.is_device_module(xp) and backend.backend_name_or_none(result) != backend.module_name(xp):
        raise backend.BackendError(f"{function.__name__}.forward returned a {type(result).__name__} for "
                                   f"inputs on {xp.__name__}; it made a host array on the device path.")
    return result


def _edge(tensor):
    """Where the gradient of ``tensor`` goes: its producing node, or the leaf itself."""
    if tensor._ctx is not None:
        return (tensor._ctx, tensor._output_index, tensor.shape)
    return (tensor, 0, tensor.shape)


def sum_to_shape(grad, shape):
    """Sum ``grad`` over the axes that broadcasting expanded, so it has ``shape`` again.

    If ``y = broadcast(x)`` then each ``x`` element was copied to several ``y`` elements, and the
    chain rule adds up their gradients: sum over the leading axes broadcasting prepended and over
    axes where ``x`` had size 1.
    """
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    grad = grad.sum(axis=axes, keepdims=True) if axes else grad
    return grad.reshape(shape)


def topological_order(root):
    """The nodes reachable from the node ``root``, each after every node that consumes its outputs.

    This is the order ``backward`` visits them in: from the output towards the leaves, so a node
    runs its backward only once every gradient for its outputs has arrived. The sort is an
    iterative depth-first search (no recursion: a chain of 10,000 ops is fine) and deterministic:
    the same graph always gives the same order. Leaf tensors are not nodes and are not listed.

    >>> import minitorch_seg as mt
    >>> x = mt.tensor([1.0, 2.0], requires_grad=True)
    >>> loss = (x.exp() * x).sum()          # x feeds both Exp and Mul: Exp must wait for Mul
    >>> [node.name for node in topological_order(loss.grad_fn)]
    ['Sum', 'Mul', 'Exp']
    """
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for edge in node.edges:
            if edge is not None and isinstance(edge[0], Context) and id(edge[0]) not in visited:
                stack.append((edge[0], False))
    order.reverse()  # post-order lists producers first; we start from the output
    return order


def run_backward(root, gradient, retain_graph=False):
    """Propagate ``gradient`` (an array shaped like ``root``) back to every leaf that wants one.

    micrograd's walk: visit the nodes output first (``topological_order``); call each one's
    backward on the gradients its outputs received; route each input's gradient along its edge,
    to the node that made that input or to the leaf, adding where several paths meet.
    """
    if root._ctx is None:
        root._accumulate_grad(gradient)
        return
    pending = {id(root._ctx): [None] * len(root._ctx.outputs)}   # node -> its outputs' gradients so far
    pending[id(root._ctx)][root._output_index] = gradient
    for node in topological_order(root._ctx):
        grads = pending.pop(id(node), None)
        if grads is None:          # no gradient reached it (only non-differentiable paths lead there)
            continue
        node.last_use = not retain_graph
        input_grads = _call_backward(node, grads)
        for edge, grad in zip(node.edges, input_grads):
            if edge is None or grad is None:
                continue
            target, index, _ = edge
            if isinstance(target, Context):
                _accumulate(pending.setdefault(id(target), [None] * len(target.outputs)), index, grad)
            else:
                target._accumulate_grad(grad)
        grads = input_grads = grad = None   # hold no gradient passed on: it may be a free one (``_is_free``)
        if not retain_graph:
            _free(node)


def _accumulate(slot, index, grad):
    """slot[index] += grad, where several paths meet: in slot[index]'s own memory where it is free."""
    if slot[index] is None:
        slot[index] = grad
    elif _is_free(slot, index) and slot[index].shape == grad.shape and slot[index].dtype == grad.dtype:
        parallel.add_into(slot[index], grad)
    else:
        slot[index] = slot[index] + grad


def _call_backward(node, grads):
    """``node``'s Function.backward on its outputs' gradients (timed while profiling): one gradient per input.

    Outputs no gradient reached get zeros; a tensor that asked to ``retain_grad`` gets its
    gradient here. What backward returns is checked: each gradient the shape of its input and on
    the outputs' backend.
    """
    if node.freed:
        raise RuntimeError(f"Trying to backward through {node.name} a second time, after its saved arrays "
                           "were freed; pass retain_graph=True to the first backward() to keep them.")
    # A backward that may write into what it saved leaves the node freed even if it stops half way
    # (an error, Ctrl-C): a second try raises above instead of reading half-overwritten arrays.
    node.freed = node.last_use
    xp = backend.get_array_module(*[g for g in grads if g is not None])
    for index, (shape, dtype, differentiable) in enumerate(node.outputs):
        if grads[index] is None and differentiable:
            grads[index] = xp.zeros(shape, dtype=dtype)
        if node.retained and index in node.retained:
            kept = node.retained[index]()
            if kept is not None:
                kept._accumulate_grad(grads[index])
    node.free_grads = tuple(_is_free(grads, index) for index in range(len(grads)))
    if _profile is None:
        input_grads = node.function.backward(node, *grads)
    else:
        start = time.perf_counter()
        input_grads = node.function.backward(node, *grads)
        _record(node.name, 2, time.perf_counter() - start)
    input_grads = input_grads if isinstance(input_grads, tuple) else (input_grads,)
    for edge, grad in zip(node.edges, input_grads):
        if edge is None or grad is None:
            continue
        if grad.shape != edge[2]:
            raise RuntimeError(f"{node.name}.backward returned a gradient of shape {tuple(grad.shape)} "
                               f"for an input of shape {tuple(edge[2])}.")
        if backend.is_device_module(xp) and backend.backend_name_or_none(grad) != backend.module_name(xp):
            raise backend.BackendError(f"{node.name}.backward returned a {type(grad).__name__} for gradients on "
                                       f"{xp.__name__}; it made a host array on the device path.")
    return input_grads


def _is_free(grads, index):
    """Whether ``grads[index]`` is a host array that nothing else refers to, nor to the memory under it:
    not the caller's gradient, not one handed to two inputs, not a view of an array someone else
    holds (a reshaped result is a view of the array it was made in, which only it refers to). A
    backward may then write its result into it (``Context.free_grads``). The reference counts
    are compared with those of a fresh array counted the same way (``_ALONE``), so a Python that
    counts its own references differently finds fewer free arrays, never more."""
    return _references(grads, index) in _ALONE


def _references(grads, index):
    """(sys.getrefcount of ``grads[index]``, of the array it is a view of or 0 if it owns its memory),
    or None where it is no writable host array, or a view of anything but one that owns its memory."""
    g = grads[index]
    if not isinstance(g, numpy.ndarray) or not g.flags.writeable:
        return None
    if g.base is None:
        return sys.getrefcount(g), 0
    if type(g.base) is not numpy.ndarray or g.base.base is not None:
        return None
    return sys.getrefcount(g), sys.getrefcount(g.base)


# an array only a list refers to, and such a view of an array only it refers to; none on a Python
# without the GIL, whose reference counts other threads change as they read (NumPy stopped reading
# them plainly there, numpy#29649)
_ALONE = () if sysconfig.get_config_var("Py_GIL_DISABLED") else (_references([numpy.empty(1)], 0),
                                                                  _references([numpy.empty(2)[1:]], 0))


def _free(node):
    """Drop what ``node`` saved for its backward (``retain_graph=False``): a second backward through it raises."""
    node.saved_arrays = ()
    node.freed = True
    for name in [k for k in vars(node) if k not in _NODE_FIELDS]:
        delattr(node, name)  # arrays saved as attributes go too


_NODE_FIELDS = frozenset(vars(Context(None, ())).keys()) | {"_non_differentiable"}


def retain(tensor):
    """Make a non-leaf ``tensor`` keep its ``.grad`` after backward (``Tensor.retain_grad``)."""
    ctx = tensor._ctx
    if ctx.retained is None:
        ctx.retained = {}
    ctx.retained[tensor._output_index] = weakref.ref(tensor)
