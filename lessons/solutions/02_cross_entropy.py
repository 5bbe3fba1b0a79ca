# Solutions to lesson 2's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks); the last cells answer its
# "predict first" questions. Try first.

# %% {"exercise": "log_softmax"}
class LogSoftmax(Function):
    """log softmax(x) along ``dim``: l = x - m - log sum exp(x - m).

    Backward: dl_i/dx_j = [i = j] - softmax_j, so dL/dx = g - softmax * sum(g along dim),
    with softmax = exp(l) recovered from the output.
    """

    @staticmethod
    def forward(ctx, x, dim):
        m = x.max(axis=dim, keepdims=True)
        out = x - m - numpy.log(numpy.exp(x - m).sum(axis=dim, keepdims=True))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_arrays
        return g - numpy.exp(out) * g.sum(axis=ctx.dim, keepdims=True)


def log_softmax(input, dim):
    return LogSoftmax.apply(input, dim=dim)

# %% {"exercise": "cross_entropy"}
class CrossEntropy(Function):
    """-w[y] log softmax(x)[y] per kept pixel, reduced; x (N, C, H, W), target (N, H, W).

    Backward: w[y] (softmax - one-hot) on kept pixels, 0 on void ones, times the upstream gradient
    (per pixel for 'none'), divided by the kept pixels' total weight for 'mean'.
    """

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction):
        keep = target != ignore_index                                        # (N, H, W)
        y = numpy.where(keep, target, 0)                                     # any class where ignored
        w = numpy.ones(x.shape[1]) if weight is None else weight
        w_y = w[y] * keep                                                    # (N, H, W), 0 where void
        m = x.max(axis=1, keepdims=True)
        log_sum = m[:, 0] + numpy.log(numpy.exp(x - m).sum(axis=1))          # (N, H, W)
        x_true = numpy.take_along_axis(x, y[:, None], axis=1)[:, 0]
        losses = (log_sum - x_true) * w_y
        probs = numpy.exp(x - log_sum[:, None])
        one_hot = numpy.moveaxis(numpy.eye(x.shape[1])[y], -1, 1)
        ctx.save_for_backward(probs - one_hot, w_y)
        ctx.reduction, ctx.total = reduction, w_y.sum()
        if reduction == "none":
            return losses
        return losses.sum() / ctx.total if reduction == "mean" else losses.sum()

    @staticmethod
    def backward(ctx, g):
        diff, w_y = ctx.saved_arrays
        scale = g[:, None] if ctx.reduction == "none" else g
        if ctx.reduction == "mean":
            scale = scale / ctx.total
        return scale * diff * w_y[:, None], None


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean"):
    weight = None if weight is None else weight.numpy()            # a constant: no gradient
    return CrossEntropy.apply(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction)

# %% {"prediction": "uniform_loss"}
answer = 2.944                   # log 19: every class, the true one too, gets 1/19
