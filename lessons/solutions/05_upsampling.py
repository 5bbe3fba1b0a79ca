# Solutions to lesson 5's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks); the last cells answer its
# "predict first" questions. Try first.

# %% {"exercise": "interpolate"}
class NearestUpsample(Function):
    """y[n, c, u, v] = x[n, c, u // sh, v // sw]: each value copied into an sh x sw block.

    Backward: x[u, v] reaches the sh * sw outputs of its block, so (fan-out adds) its gradient is
    the sum of theirs: an sh x sw sum pooling of g, the adjoint of the copy.
    """

    @staticmethod
    def forward(ctx, x, sh, sw):
        ctx.factors = (sh, sw)
        return x.repeat(sh, axis=2).repeat(sw, axis=3)                         # (N, C, H sh, W sw)

    @staticmethod
    def backward(ctx, g):
        sh, sw = ctx.factors
        n, c, hs, ws = g.shape
        return g.reshape(n, c, hs // sh, sh, ws // sw, sw).sum(axis=(3, 5))    # (N, C, H, sh, W, sw) -> (N, C, H, W)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    sh, sw = (scale_factor, scale_factor) if isinstance(scale_factor, int) else scale_factor
    return NearestUpsample.apply(input, sh=sh, sw=sw)

# %% {"exercise": "max_pool2d"}
class MaxPool(Function):
    """y[n, c, u, v] = the max of window (u, v) of x padded with -inf; switch s = h * W + w of that max.

    Backward: y[u, v] = x[s(u, v)] copies one input, so dL/dx[h, w] is the sum of g[u, v] over the
    windows whose switch is (h, w): a scatter to the switches that adds where windows overlap.
    """

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        n, c, h, w = x.shape
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        padded = numpy.full((n, c, h + 2 * ph, w + 2 * pw), -numpy.inf, dtype=x.dtype)
        padded[:, :, ph:ph + h, pw:pw + w] = x
        top = numpy.arange(ho)[:, None] * sh - ph          # (Ho, 1): each window's first row, in x's rows
        left = numpy.arange(wo)[None, :] * sw - pw         # (1, Wo): its first column
        best = numpy.full((n, c, ho, wo), -numpy.inf, dtype=x.dtype)
        switches = numpy.zeros((n, c, ho, wo), dtype=numpy.int64)
        for i in range(kh):                                # offset (i, j) of every window at once
            for j in range(kw):
                value = padded[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw]   # (N, C, Ho, Wo)
                better = value > best
                best = numpy.where(better, value, best)
                switches = numpy.where(better, (top + i) * w + (left + j), switches)
        ctx.save_for_backward(switches)
        ctx.in_shape = x.shape
        return best, switches

    @staticmethod
    def backward(ctx, g, *_):
        (switches,) = ctx.saved_arrays
        n, c, h, w = ctx.in_shape
        first = numpy.arange(n * c).reshape(n, c, 1, 1) * (h * w)      # where each plane starts in the flat x
        grad = numpy.zeros(n * c * h * w, dtype=g.dtype)
        numpy.add.at(grad, (first + switches).ravel(), g.ravel())
        return grad.reshape(n, c, h, w)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    kernel = pair(kernel_size)
    stride = kernel if stride is None else pair(stride)
    y, switches = MaxPool.apply(input, kernel=kernel, stride=stride, padding=pair(padding))
    return (y, switches) if return_indices else y

# %% {"exercise": "max_unpool2d"}
class MaxUnpool(Function):
    """z = zeros (N, C, Hz, Wz) with z[n, c, s(n, c, u, v)] = y[n, c, u, v]: each value at its switch.

    Backward: z[q] = y[u, v] where q = s(u, v), so dL/dy[u, v] = g[s(u, v)]: gather g at the switches.
    """

    @staticmethod
    def forward(ctx, y, switches, out_hw):
        n, c = y.shape[:2]
        hz, wz = out_hw
        first = numpy.arange(n * c).reshape(n, c, 1, 1) * (hz * wz)     # where each plane starts in the flat z
        z = numpy.zeros(n * c * hz * wz, dtype=y.dtype)
        z[(first + switches).ravel()] = y.ravel()
        ctx.save_for_backward(first + switches)
        return z.reshape(n, c, hz, wz)

    @staticmethod
    def backward(ctx, g):
        (where,) = ctx.saved_arrays
        return g.reshape(-1)[where], None                                # (N, C, h, w)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    kernel = pair(kernel_size)
    stride = kernel if stride is None else pair(stride)
    if output_size is None:      # the size a max pool with these arguments came from
        out_hw = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(input.shape[2:], stride, pair(padding), kernel))
    else:                        # (H, W) or (N, C, H, W)
        out_hw = tuple(output_size)[-2:]
    return MaxUnpool.apply(input, indices, out_hw=out_hw)

# %% {"prediction": "transposed_conv_shape"}
answer = (2, 8, 13, 17)          # (7 - 1) 2 - 2 + 2 + 1 = 13, (9 - 1) 2 - 2 + 2 + 1 = 17
