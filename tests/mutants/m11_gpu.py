"""Wrong answers to lesson 11's exercises (see ``tests/mutants/__init__.py``).

The first of each group passes on NumPy and only the strict backend rejects it: a host array or
a hidden device-to-host transfer, right in value and gradient.
"""
MUTANTS = {
    "logsumexp": [
        ("a host-array twin: the output made by numpy.zeros and filled (right on NumPy, a host array on a device)",
         [("y = m + xp.log(xp.exp(x - m).sum(axis=dim, keepdims=True))",
           "y = numpy.zeros(m.shape, dtype=x.dtype)\n"
           "        y += m + xp.log(xp.exp(x - m).sum(axis=dim, keepdims=True))")]),
        ("the input copied to the host first with numpy.asarray (right on NumPy)",
         [("m = x.max(axis=dim, keepdims=True)", "x = numpy.asarray(x)\n        m = x.max(axis=dim, keepdims=True)")]),
        ("a sanity check that reads a number back with float() (right on NumPy, a transfer per call on a device)",
         [("ctx.save_for_backward(x, y)",
           "assert float(y.max()) < numpy.inf, 'overflow'\n        ctx.save_for_backward(x, y)")]),
        ("the same check with .item() in the backward",
         [("return g.reshape(y.shape) * xp.exp(x - y)",
           "assert xp.isfinite(g).all().item()\n        return g.reshape(y.shape) * xp.exp(x - y)")]),
        ("no max subtracted: exp overflows at logits of 1000",
         [("m = x.max(axis=dim, keepdims=True)", "m = 0 * x.max(axis=dim, keepdims=True)")]),
        ("the backward uses the shifted exponential exp(x - m), not the softmax exp(x - y)",
         [("ctx.save_for_backward(x, y)", "ctx.save_for_backward(x, m)")]),
        ("keepdim ignored: the reduced dims always dropped",
         [("return y if keepdim else y.squeeze(axis=dim)", "return y.squeeze(axis=dim)")]),
        ("the max over the last dim only, not along dim (right when dim is the last)",
         [("m = x.max(axis=dim, keepdims=True)", "m = x.max(axis=-1, keepdims=True)")]),
    ],
    "normalize_channels": [
        ("per-channel statistics collected in a loop into a host array with numpy.array (right on NumPy)",
         [("xc = x - x.mean(axis=axes, keepdims=True)",
           "mu = numpy.array([x[:, c].mean() for c in range(x.shape[1])])\n"
           "        xc = x - mu.reshape((1, -1) + (1,) * (x.ndim - 2))")]),
        ("the scale as a Python float: 1 / float(sigma), one transfer per channel (right on NumPy)",
         [("inv_sigma = 1 / xp.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)",
           "inv_sigma = xp.stack([1 / float(xp.sqrt((xc[:, c] ** 2).mean() + eps)) for c in range(x.shape[1])])"
           ".reshape((1, -1) + (1,) * (x.ndim - 2))")]),
        ("statistics per sample and channel (over the positions only), not over the batch: right for one sample",
         [("axes = (0,) + tuple(range(2, x.ndim))", "axes = tuple(range(2, x.ndim))")]),
        ("the unbiased variance (divided by m - 1)",
         [("inv_sigma = 1 / xp.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)",
           "inv_sigma = 1 / xp.sqrt((xc * xc).sum(axis=axes, keepdims=True) / max(xc.size // xc.shape[1] - 1, 1)"
           " + eps)")]),
        ("eps added outside the square root",
         [("inv_sigma = 1 / xp.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)",
           "inv_sigma = 1 / (xp.sqrt((xc * xc).mean(axis=axes, keepdims=True)) + eps)")]),
        ("the backward forgets the mean's dependence on x: no mean(g) term",
         [("return inv_sigma * (g - mean_g - x_hat * mean_g_x_hat)", "return inv_sigma * (g - x_hat * mean_g_x_hat)")]),
        ("the backward forgets sigma's dependence on x: no x_hat mean(g x_hat) term",
         [("return inv_sigma * (g - mean_g - x_hat * mean_g_x_hat)", "return inv_sigma * (g - mean_g)")]),
    ],
}

# Found by a review in which a helper wrote its own wrong answers as a learner would; the
# grader accepted each until the strategies drew what exposes it.
MUTANTS['normalize_channels'] += [
    ("the input centred in place (x -= mean): the caller's tensor is changed",
     [('xc = x - x.mean(axis=axes, keepdims=True)                     # (N, C, *)', 'x -= x.mean(axis=axes, keepdims=True)\n        xc = x')]),
]
