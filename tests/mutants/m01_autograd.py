"""Wrong answers to lesson 1's exercises (see ``tests/mutants/__init__.py``)."""
MUTANTS = {
    "softplus": [
        ("one lost minus sign: sigmoid(-beta x) = 1 / (1 + e^(beta x)) as the derivative",
         [("sigmoid = 0.5 * (1 + numpy.tanh(z / 2))", "sigmoid = 0.5 * (1 - numpy.tanh(z / 2))")]),
        ("the chain rule's beta kept and the 1/beta forgotten: beta * sigmoid(beta x)",
         [("return g * numpy.where(line, 1.0, sigmoid)", "return g * numpy.where(line, 1.0, beta_ * sigmoid)"),
          ("ctx.save_for_backward(z, line)", "ctx.save_for_backward(z, line)\n        ctx.beta = beta"),
          ("z, line = ctx.saved_arrays", "z, line = ctx.saved_arrays\n        beta_ = ctx.beta")]),
        ("the line's gradient left as sigmoid (right at threshold 20, where sigmoid(20) = 1 - 2e-9)",
         [("return g * numpy.where(line, 1.0, sigmoid)", "return g * sigmoid")]),
        ("the threshold compared with x instead of beta * x",
         [("line = z > threshold", "line = x > threshold")]),
        ("the forward's 1/beta forgotten: log(1 + e^(beta x))",
         [("numpy.log1p(numpy.exp(-numpy.abs(z)))) / beta", "numpy.log1p(numpy.exp(-numpy.abs(z))))")]),
        ("naive exp(beta x) and a 0/1 mask instead of where: inf * 0 is nan once beta x > 709",
         [("curve = (numpy.maximum(z, 0) + numpy.log1p(numpy.exp(-numpy.abs(z)))) / beta",
           "curve = numpy.log1p(numpy.exp(z)) / beta"),
          ("return numpy.where(line, x, curve)", "return line * x + (1 - line) * curve")]),
    ],
    "add": [
        ("no unbroadcast: g returned for both inputs (right whenever the shapes are equal)",
         [("return tuple(unbroadcast(g, shape) for shape in ctx.shapes)", "return g, g")]),
        ("only the leading axes summed, not the axes of size 1",
         [("    return g.sum(axis=ones, keepdims=True)", "    return g")]),
        ("the leading axes broadcasting added not summed (and the size-1 axes counted from the left)",
         [("    g = g.sum(axis=tuple(range(lead)))                           # now g.ndim == len(shape)\n", "")]),
        ("the mean over the broadcast axes instead of the sum",
         [("g = g.sum(axis=tuple(range(lead)))", "g = g.mean(axis=tuple(range(lead)))"),
          ("return g.sum(axis=ones, keepdims=True)", "return g.mean(axis=ones, keepdims=True)")]),
        ("only one input unbroadcast (if/elif), the other assumed to have the output's shape: wrong "
         "when both were expanded, (3, 1) + (1, 4)",
         [("return tuple(unbroadcast(g, shape) for shape in ctx.shapes)",
           "a, b = ctx.shapes\n"
           "        if a != g.shape:\n"
           "            return unbroadcast(g, a), g\n"
           "        elif b != g.shape:\n"
           "            return g, unbroadcast(g, b)\n"
           "        return g, g")]),
        ("both gradients summed to the first input's shape (a copy-paste slip)",
         [("return tuple(unbroadcast(g, shape) for shape in ctx.shapes)",
           "return unbroadcast(g, ctx.shapes[0]), unbroadcast(g, ctx.shapes[0])")]),
    ],
}

# Found by a review in which a helper wrote its own wrong answers as a learner would; the
# grader accepted each until the strategies drew what exposes it.
MUTANTS['add'] += [
    ('size-1 axes summed only when no leading axes were added (if lead: ... else ...): wrong for (1,) + (2, 3)',
     [('    ones = tuple(i for i, n in enumerate(shape) if n == 1)\n', '    ones = tuple(i for i, n in enumerate(shape) if n == 1) if lead == 0 else ()\n')]),
]
