"""Wrong answers to lesson 5's exercises (see ``tests/mutants/__init__.py``)."""
MUTANTS = {
    "interpolate": [
        ("the backward averages each block instead of summing it",
         [(".sum(axis=(3, 5))", ".mean(axis=(3, 5))")]),
        ("the factors swapped between H and W",
         [("NearestUpsample.apply(input, sh=sh, sw=sw)", "NearestUpsample.apply(input, sh=sw, sw=sh)")]),
        ("a hard-coded factor 2",
         [("sh, sw = (scale_factor, scale_factor) if isinstance(scale_factor, int) else scale_factor",
           "sh, sw = 2, 2")]),
        ("the backward keeps one gradient per block (its top left) and drops the others",
         [(".sum(axis=(3, 5))", "[:, :, :, 0, :, 0]")]),
        ("the backward's reshape splits each axis in the wrong order (strided rows, not blocks)",
         [("g.reshape(n, c, hs // sh, sh, ws // sw, sw).sum(axis=(3, 5))",
           "g.reshape(n, c, sh, hs // sh, sw, ws // sw).sum(axis=(2, 4))")]),
        ("the forward tiles the whole image instead of repeating each pixel",
         [("x.repeat(sh, axis=2).repeat(sw, axis=3)", "numpy.tile(x, (1, 1, sh, sw))")]),
    ],
    "max_pool2d": [
        ("switches in the padded plane's coordinates",
         [("(top + i) * w + (left + j)", "(top + ph + i) * (w + 2 * pw) + (left + pw + j)")]),
        ("stride ignored (always the kernel size)",
         [("stride = kernel if stride is None else pair(stride)", "stride = kernel")]),
        ("the gradient assigned, not accumulated, where overlapping windows share a switch",
         [("numpy.add.at(grad, (first + switches).ravel(), g.ravel())",
           "grad[(first + switches).ravel()] = g.ravel()")]),
        ("switches per window (the offset i * kw + j in the window) instead of per plane",
         [("(top + i) * w + (left + j)", "i * kw + j")]),
        ("padding with zeros instead of -inf: a window of negative values next to the border gives 0",
         [("w + 2 * pw), -numpy.inf, dtype=x.dtype)", "w + 2 * pw), 0.0, dtype=x.dtype)")]),
        ("the backward forgets each plane's offset: every plane's gradient lands in the first plane",
         [("numpy.add.at(grad, (first + switches).ravel(), g.ravel())",
           "numpy.add.at(grad, switches.ravel(), g.ravel())")]),
    ],
    "max_unpool2d": [
        ("the output size off by one with padding: (h - 1) s - p + k, the padding subtracted once",
         [("(n - 1) * s - 2 * p + k", "(n - 1) * s - p + k")]),
        ("output_size ignored: always the default size",
         [("if output_size is None:", "if True:")]),
        ("the backward gathers at the wrong place: every plane's gradient read from the first plane",
         [("ctx.save_for_backward(first + switches)", "ctx.save_for_backward(switches)")]),
        ("output_size (N, C, H, W) read from its first two numbers",
         [("out_hw = tuple(output_size)[-2:]", "out_hw = tuple(output_size)[:2]")]),
        ("planes laid end to end with the input's (pooled) plane size instead of the output's",
         [("* (hz * wz)", "* (y.shape[2] * y.shape[3])")]),
        ("the output size forgets the kernel's reach: h * s - 2 p",
         [("(n - 1) * s - 2 * p + k", "n * s - 2 * p")]),
    ],
}

# Found by a review in which a helper wrote its own wrong answers as a learner would; the
# grader accepted each until the strategies drew what exposes it.
MUTANTS['max_pool2d'] += [
    ('stride None treated as 1, not the kernel size',
     [('stride = kernel if stride is None else pair(stride)', 'stride = (1, 1) if stride is None else pair(stride)')]),
    ('ints not accepted: kernel_size, stride and padding assumed pairs',
     [('        return (v, v) if isinstance(v, int) else tuple(v)', '        return tuple(v)')]),
]
MUTANTS['max_unpool2d'] += [
    ('stride None treated as 1, not the kernel size',
     [('stride = kernel if stride is None else pair(stride)', 'stride = (1, 1) if stride is None else pair(stride)')]),
    ('ints not accepted: kernel_size, stride and padding assumed pairs',
     [('        return (v, v) if isinstance(v, int) else tuple(v)', '        return tuple(v)')]),
]
