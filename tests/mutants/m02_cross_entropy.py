"""Wrong answers to lesson 2's exercises (see ``tests/mutants/__init__.py``)."""
MUTANTS = {
    "log_softmax": [
        ("no max subtracted: exp overflows at logits of 1000",
         [("m = x.max(axis=dim, keepdims=True)", "m = 0 * x.max(axis=dim, keepdims=True)")]),
        ("the backward forgets the softmax term: g alone",
         [("return g - numpy.exp(out) * g.sum(axis=ctx.dim, keepdims=True)", "return g")]),
        ("the softmax term summed over the wrong axis (always the last)",
         [("g.sum(axis=ctx.dim, keepdims=True)", "g.sum(axis=-1, keepdims=True)")]),
        ("the max taken over everything, not along dim (right for 1-D inputs only)",
         [("m = x.max(axis=dim, keepdims=True)", "m = x.max()"),
          ("numpy.exp(x - m).sum(axis=dim, keepdims=True))", "numpy.exp(x - m).sum())")]),
    ],
    "cross_entropy": [
        ("'mean' divides by every pixel, void ones included",
         [("ctx.reduction, ctx.total = reduction, w_y.sum()", "ctx.reduction, ctx.total = reduction, keep.size")]),
        ("'mean' divides by the number of kept pixels, not their total weight",
         [("ctx.reduction, ctx.total = reduction, w_y.sum()", "ctx.reduction, ctx.total = reduction, keep.sum()")]),
        ("void pixels counted as class 0",
         [("w_y = w[y] * keep", "w_y = w[y]")]),
        ("the backward forgets the 1 / total of 'mean'",
         [("            scale = scale / ctx.total\n", "            scale = scale\n")]),
        ("the class weight left out of the backward",
         [("return scale * diff * w_y[:, None], None", "return scale * diff * (w_y > 0)[:, None], None")]),
        ("the mean over kept pixels divided by (number - 1), as a first attempt did",
         [("return losses.sum() / ctx.total if", "return losses.sum() / max(ctx.total - 1, 1) if")]),
    ],
}

# Found by a review in which a helper wrote its own wrong answers as a learner would; the
# grader accepted each until the strategies drew what exposes it.
MUTANTS['cross_entropy'] += [
    ('ignore_index hard-coded as 255',
     [('keep = target != ignore_index', 'keep = target != 255')]),
    ("'mean' with a weight divides by the mean class weight times the kept pixels, not by sum w[y]",
     [('ctx.reduction, ctx.total = reduction, w_y.sum()', 'ctx.reduction, ctx.total = reduction, (w.sum() * keep.sum() / len(w) if weight is not None else keep.sum())')]),
]
