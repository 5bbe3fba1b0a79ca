"""Wrong answers to lesson 7's exercises (see ``tests/mutants/__init__.py``)."""
MUTANTS = {
    "image_pooling": [
        ("the pooling's backward divides by a hard-coded 20: right at 4 x 5 (the old lesson's test), wrong at 3 x 3",
         [("g / (h * w)", "g / 20")]),
        ("the pooling's backward assumes a square map (H * H)",
         [("g / (h * w)", "g / (h * h)")]),
        ("the copy's backward averages the copies' gradients instead of adding them",
         [("return g.sum(axis=(2, 3), keepdims=True)", "return g.mean(axis=(2, 3), keepdims=True)")]),
        ("the copy's backward keeps one copy's gradient, as if the value fed one pixel only",
         [("return g.sum(axis=(2, 3), keepdims=True)", "return g[:, :, :1, :1].copy()")]),
        ("the pooling's backward forgets the 1 / HW: the backward of a sum, not of a mean",
         [("g / (h * w)", "g")]),
        ("the ReLU applied before the 1x1 conv, to the means",
         [("y = F.relu(F.conv2d(pooled, weight, bias))", "y = F.conv2d(F.relu(pooled), weight, bias)")]),
    ],
    "atrous_pyramid": [
        ("padding 1 for every rate: the map shrinks by 2(r - 1) at rate r",
         [("padding=rate, dilation=rate", "padding=1, dilation=rate")]),
        ("dilation forgotten: padding r around a plain 3x3 conv, the map grows",
         [("padding=rate, dilation=rate", "padding=rate, dilation=1")]),
        ("the same filter bank for every rate",
         [("weight[k]", "weight[0]")]),
        ("the branches concatenated along the batch, not the channels",
         [("F.cat(branches, dim=1)", "F.cat(branches, dim=0)")]),
        ("the first branch's bias added to every branch",
         [("bias[k]", "bias[0]")]),
        ("filter banks paired with the rates in reverse order",
         [("enumerate(rates)", "enumerate(rates[::-1])")]),
    ],
}

# Found by a review in which a helper wrote its own wrong answers as a learner would; the
# grader accepted each until the strategies drew what exposes it.
MUTANTS['atrous_pyramid'] += [
    ('the rates sorted: branches in increasing rate, not in the order given',
     [('for k, rate in enumerate(rates):', 'for k, rate in enumerate(sorted(rates)):')]),
]
