# Solutions to lesson 11's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks). Try first.

# %% {"exercise": "logsumexp"}
class LogSumExp(Function):
    """y = m + log sum exp(x - m) along ``dim``, m the maximum along ``dim``.

    Backward: dy/dx_j = exp(x_j) / sum_l exp(x_l) = exp(x_j - y), the softmax along dim; m drops
    out (it only keeps exp from overflowing). exp(x - y) is as safe as the forward: y >= x.
    """

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        xp = mt.get_array_module(x)                                   # numpy, cupy or strict: where x lives
        m = x.max(axis=dim, keepdims=True)
        y = m + xp.log(xp.exp(x - m).sum(axis=dim, keepdims=True))    # reduced dims kept, size 1
        ctx.save_for_backward(x, y)
        return y if keepdim else y.squeeze(axis=dim)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_arrays
        xp = mt.get_array_module(g)
        return g.reshape(y.shape) * xp.exp(x - y)                     # g put back on the reduced dims, broadcast


def logsumexp(input, dim, keepdim=False):
    return LogSumExp.apply(input, dim=dim, keepdim=keepdim)

# %% {"exercise": "normalize_channels"}
class NormalizeChannels(Function):
    """x_hat = (x - mu) / sigma per channel, sigma = sqrt(var + eps), statistics over every axis but 1.

    Backward, m values per channel: d mu/dx_j = 1/m, d sigma/dx_j = x_hat_j / m, so
    dL/dx = (g - mean(g) - x_hat mean(g x_hat)) / sigma, the means per channel.
    """

    @staticmethod
    def forward(ctx, x, eps):
        xp = mt.get_array_module(x)
        axes = (0,) + tuple(range(2, x.ndim))                         # every axis but the channels'
        xc = x - x.mean(axis=axes, keepdims=True)                     # (N, C, *)
        inv_sigma = 1 / xp.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)   # (1, C, 1, ...)
        x_hat = xc * inv_sigma
        ctx.save_for_backward(x_hat, inv_sigma)
        ctx.axes = axes
        return x_hat

    @staticmethod
    def backward(ctx, g):
        x_hat, inv_sigma = ctx.saved_arrays
        mean_g = g.mean(axis=ctx.axes, keepdims=True)
        mean_g_x_hat = (g * x_hat).mean(axis=ctx.axes, keepdims=True)
        return inv_sigma * (g - mean_g - x_hat * mean_g_x_hat)


def normalize_channels(input, eps=1e-5):
    return NormalizeChannels.apply(input, eps=eps)
