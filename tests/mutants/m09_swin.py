"""Wrong answers to lesson 9's exercises (see ``tests/mutants/__init__.py``)."""
MUTANTS = {
    "relative_position_bias": [
        ("assignment instead of the scatter-add: each table row keeps one pair's gradient, not the sum over its pairs",
         [("numpy.add.at(grad, ctx.index, g.reshape(heads, -1).T)", "grad[ctx.index] = g.reshape(heads, -1).T")]),
        ("the offset taken as key minus query: the bias of every head transposed",
         [("dy = rows[:, None] - rows[None, :]", "dy = rows[None, :] - rows[:, None]"),
          ("dx = cols[:, None] - cols[None, :]", "dx = cols[None, :] - cols[:, None]")]),
        ("the table's rows ordered by dx first: right only for a table one row high or one column wide",
         [("index = (dy + th - 1) * (2 * tw - 1) + (dx + tw - 1)",
           "index = (dx + tw - 1) * (2 * th - 1) + (dy + th - 1)")]),
        ("each token's row and column found with Wh instead of Ww (row i // Wh): right for square windows only",
         [("numpy.divmod(numpy.arange(wh * ww), ww)", "numpy.divmod(numpy.arange(wh * ww), wh)")]),
        ("table_size ignored: the index of a table made for the window, wrong whenever the table is larger",
         [("    if table_size is None:\n", "    if True:\n")]),
        ("the offsets not shifted to start at 0: negative offsets wrap around to the end of the table",
         [("index = (dy + th - 1) * (2 * tw - 1) + (dx + tw - 1)", "index = dy * (2 * tw - 1) + dx")]),
    ],
    "window_attention": [
        ("the default scale sqrt(d) instead of 1/sqrt(d)",
         [("scale = q.shape[-1] ** -0.5", "scale = q.shape[-1] ** 0.5")]),
        ("the bias's gradient taken from the first window, not summed over the windows that share it",
         [("grad_bias = ds.sum(axis=0)", "grad_bias = ds[0]")]),
        ("the bias's gradient averaged over the windows instead of summed",
         [("grad_bias = ds.sum(axis=0)", "grad_bias = ds.mean(axis=0)")]),
        ("the mask indexed by image instead of window (window-major): right for one image",
         [("s = (s.reshape(a // nw, nw, h, n, n) + mask[:, None]).reshape(a, h, n, n)",
           "s = (s.reshape(nw, a // nw, h, n, n) + mask[:, None, None]).reshape(a, h, n, n)")]),
        ("the softmax backward without the D_i term: dS = P dP",
         [("ds = p * (grad_p - (grad_p * p).sum(axis=-1, keepdims=True))", "ds = p * grad_p")]),
        ("dK from dS instead of its transpose",
         [("grad_k = ds.swapaxes(-1, -2) @ q * ctx.scale", "grad_k = ds @ q * ctx.scale")]),
        ("dV = P G: P not transposed",
         [("grad_v = p.swapaxes(-1, -2) @ g", "grad_v = p @ g")]),
        ("the scale left out of dK",
         [("grad_k = ds.swapaxes(-1, -2) @ q * ctx.scale", "grad_k = ds.swapaxes(-1, -2) @ q")]),
    ],
}

# Found by a review in which a helper wrote its own wrong answers as a learner would; the
# grader accepted each until the strategies drew what exposes it.
MUTANTS['window_attention'] += [
    ('the softmax without the row maximum subtracted: inf/nan once a score passes 709',
     [('p = numpy.exp(s - s.max(axis=-1, keepdims=True))', 'p = numpy.exp(s)')]),
]
