"""Binary cross-entropy on logits, with torch's weight, pos_weight and reduction."""
from ..autograd import Function, sum_to_shape
from ..backend import get_array_module


def _shape(a):
    return getattr(a, "shape", ())


class BinaryCrossEntropyWithLogits(Function):
    """Per element, x a logit and t in [0, 1] a target probability, p = pos_weight, w = weight:

        l = w * [ (1 - t) x + (1 + (p - 1) t) softplus(-x) ],   softplus(-x) = log(1 + e^-x)

    which is w * -[p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] rewritten with
    log sigmoid(x) = -softplus(-x) and log(1 - sigmoid(x)) = -x - softplus(-x). softplus(-x) is
    computed as max(-x, 0) + log(1 + e^-|x|): no exponent is positive, so nothing overflows.

    Backward, with s = sigmoid(x), 1 - s = sigmoid(-x), c = 1 + (p - 1) t (c = 1 without p):
        dl/dx = w [(1 - t) - c (1 - s)]        (= w (s - t) without pos_weight)
        dl/dt = w [-x + (p - 1) softplus(-x)]
        dl/dw = l / w (the bracket),  dl/dp = w t softplus(-x)
    each multiplied by g (divided by the element count for "mean") and summed to its input's shape.
    (torch refuses gradients for weight and pos_weight; here they have them.)
    """

    @staticmethod
    def forward(ctx, x, t, w, p, reduction):
        xp = get_array_module(x, t, w, p)
        softplus = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        c = 1 if p is None else 1 + (p - 1) * t
        bracket = (1 - t) * x + c * softplus
        losses = bracket if w is None else bracket * w
        ctx.save_for_backward(x, t, w, p, softplus, bracket)
        ctx.reduction, ctx.shape = reduction, losses.shape
        if reduction == "none":
            return losses
        return losses.sum() if reduction == "sum" else losses.mean()

    @staticmethod
    def backward(ctx, g):
        x, t, w, p, softplus, bracket = ctx.saved_arrays
        xp = get_array_module(g)
        need_x, need_t, need_w, need_p = ctx.needs_input_grad
        if ctx.reduction == "mean":
            g = g / max(1, _count(ctx.shape))
        g = xp.broadcast_to(g, ctx.shape)
        gw = g if w is None else g * w
        grads = [None, None, None, None]
        if need_x:
            sigmoid_minus = xp.exp(-xp.logaddexp(0, x))           # 1 - s = sigmoid(-x), stable
            c = 1 if p is None else 1 + (p - 1) * t
            grads[0] = sum_to_shape(gw * ((1 - t) - c * sigmoid_minus), x.shape)
        if need_t:
            term = -x if p is None else -x + (p - 1) * softplus
            grads[1] = sum_to_shape(gw * term, t.shape)
        if need_w:
            grads[2] = sum_to_shape(g * bracket, w.shape)
        if need_p:
            grads[3] = sum_to_shape(gw * t * softplus, p.shape)
        return tuple(grads)


def _count(shape):
    n = 1
    for side in shape:
        n *= side
    return n


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """Sigmoid and binary cross-entropy in one stable step; see ``BinaryCrossEntropyWithLogits``.

    ``target`` has ``input``'s shape and holds probabilities; ``weight`` broadcasts against it,
    ``pos_weight`` (the weight of positive examples, per class) too. ``size_average``/``reduce``
    are torch's deprecated arguments and are refused unless None.
    """
    if size_average is not None or reduce is not None:
        raise TypeError("binary_cross_entropy_with_logits: size_average and reduce are deprecated; use reduction.")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"binary_cross_entropy_with_logits: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
    if target.shape != input.shape:
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape}).")
    if target.dtype.kind != "f":
        raise TypeError(f"binary_cross_entropy_with_logits: target must hold float probabilities, got {target.dtype}.")
    return BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight, reduction=reduction)
