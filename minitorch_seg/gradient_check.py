"""``gradcheck``: compare a backward pass with central finite differences, in float64.

The output is contracted with a fixed random upstream gradient u, so one scalar
s(x) = <f(x), u> checks the whole Jacobian-vector product, whatever f's output shape. For each
input that requires grad, the analytic ds/dx from ``backward`` is compared with
    (s(x + eps e) - s(x - eps e)) / (2 eps)
along every coordinate e when the input has at most 512 elements, else along 16 random unit
directions (then the analytic side is <ds/dx, e>).

>>> import minitorch_seg as mt
>>> x = mt.randn(3, 4, dtype="float64", requires_grad=True)
>>> gradcheck(lambda t: (t * t).sum(dim=1), (x,))
True
"""
import numpy

from . import backend
from .tensor import Tensor

EVERY_ELEMENT_UP_TO = 512
RANDOM_DIRECTIONS = 16


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree.

    Besides the message it carries what a report needs: ``position`` (which input), ``shape``,
    ``where`` (the worst index, or "random direction"), ``analytic`` and ``numeric``; all None when
    no output depends on an input.
    """

    def __init__(self, message, position=None, shape=None, where=None, analytic=None, numeric=None):
        super().__init__(message)
        self.position, self.shape, self.where = position, shape, where
        self.analytic, self.numeric = analytic, numeric


def _outputs(result):
    results = result if isinstance(result, (tuple, list)) else (result,)
    return [r for r in results if isinstance(r, Tensor) and r.dtype.kind == "f"]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, directions=None):
    """True if ``fn``'s backward agrees with finite differences for every input that requires grad.

    ``inputs`` is a tensor or a tuple of tensors (other values pass through to ``fn``). Floating
    inputs are checked in float64 copies. On disagreement raises ``GradcheckError`` naming the
    input, the worst index (or direction), and the analytic and numeric values. ``directions``:
    check along that many random directions only, whatever the input's size (cheaper; a wrong
    gradient still shows, since a random direction is almost surely not orthogonal to the error).
    """
    inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    inputs = [Tensor(t.data.astype(numpy.float64), requires_grad=t.requires_grad)
              if isinstance(t, Tensor) and t.dtype.kind == "f" else t for t in inputs]
    rng = numpy.random.default_rng(seed)
    outputs = _outputs(fn(*inputs))
    upstream = [backend.to_backend(rng.standard_normal(o.shape), o.backend) for o in outputs]

    def contracted():
        return sum(float((backend.to_numpy(o.data) * backend.to_numpy(u)).sum())
                   for o, u in zip(_outputs(fn(*inputs)), upstream))

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    total = None
    for o, u in zip(outputs, upstream):
        term = (o * Tensor(u)).sum()
        total = term if total is None else total + term
    if total is None or not total.requires_grad:
        raise GradcheckError("gradcheck: no floating output of fn depends on an input that requires grad.")
    total.backward()

    for position, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = backend.to_numpy(t.grad.data) if t.grad is not None else numpy.zeros(t.shape)
        host = backend.to_numpy(t.data).copy()
        if directions is None and t.data.size <= EVERY_ELEMENT_UP_TO:
            steps = ((index, None) for index in numpy.ndindex(*t.shape))
        else:
            steps = ((None, d / numpy.linalg.norm(d)) for d in rng.standard_normal((directions or RANDOM_DIRECTIONS,) + t.shape))
        worst = None
        for index, direction in steps:
            step = numpy.zeros(t.shape)
            if index is not None:
                step[index] = eps
            else:
                step = direction * eps
            t.data = backend.to_backend(host + step, t.backend)
            plus = contracted()
            t.data = backend.to_backend(host - step, t.backend)
            minus = contracted()
            numeric = (plus - minus) / (2 * eps)
            expected = float(analytic[index] if index is not None else (analytic * direction).sum())
            excess = abs(expected - numeric) - (atol + rtol * abs(numeric))
            if worst is None or excess > worst[0]:
                worst = (excess, index if index is not None else "random direction", expected, numeric)
        t.data = backend.to_backend(host, t.backend)
        if worst is not None and worst[0] > 0:        # None: an empty input, nothing to check
            _, where, expected, numeric = worst
            raise GradcheckError(f"gradcheck: input {position} (shape {t.shape}) at {where}: analytic gradient "
                                 f"{expected!r} but numeric {numeric!r} (atol={atol}, rtol={rtol}).",
                                 position, t.shape, where, expected, numeric)
    return True
