# Solutions to lesson 4's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks). Try first.

# %% {"exercise": "conv2d"}
from minitorch_seg import shapes


class Conv2d(Function):
    """y[n, o, u, v] = b[o] + sum_{c, i, j} w[o, c, i, j] xpad[n, c, u s + i d, v s + j d] (groups 1).

    Kernel tap (i, j) reads one strided slice of the padded input, the (N, C, Ho, Wo) grid
    xpad[:, :, i d + u s, j d + v s]; the forward adds w[:, :, i, j] times it, one small GEMM per tap.
    Backward, tap by tap: dL/dw[:, :, i, j] = sum over n, u, v of g times that same slice; dL/dxpad
    gets w[:, :, i, j]^T g *added* into that same slice (the adjoint of a read is an add into the
    place read); then the padding is cropped off. dL/db[o] = sum over n, u, v of g[n, o].
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation):
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        n, _, h, wd = x.shape
        o, _, kh, kw = w.shape
        ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        xpad = numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))                   # (N, C, H + 2ph, W + 2pw)
        y = numpy.zeros((n, o, ho, wo), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                tap = xpad[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]  # (N, C, Ho, Wo)
                y += numpy.einsum("oc,ncuv->nouv", w[:, :, i, j], tap)
        if b is not None:
            y += b.reshape(1, o, 1, 1)
        ctx.save_for_backward(xpad, w)
        ctx.params = stride, padding, dilation, (h, wd)
        return y

    @staticmethod
    def backward(ctx, g):
        xpad, w = ctx.saved_arrays
        (sh, sw), (ph, pw), (dh, dw), (h, wd) = ctx.params
        kh, kw = w.shape[2:]
        ho, wo = g.shape[2:]
        grad_xpad, grad_w = numpy.zeros_like(xpad), numpy.zeros_like(w)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)                # the rows tap (i, j) read
                cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
                grad_xpad[:, :, rows, cols] += numpy.einsum("oc,nouv->ncuv", w[:, :, i, j], g)
                grad_w[:, :, i, j] = numpy.einsum("nouv,ncuv->oc", g, xpad[:, :, rows, cols])
        grad_x = grad_xpad[:, :, ph:ph + h, pw:pw + wd]                              # crop the padding
        return grad_x, grad_w, g.sum(axis=(0, 2, 3))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    assert groups == 1, "this exercise covers groups=1 only"
    return Conv2d.apply(input, weight, bias, stride=shapes.pair(stride, "stride"),
                        padding=shapes.pair(padding, "padding"), dilation=shapes.pair(dilation, "dilation"))

# %% {"exercise": "conv_transpose2d"}
from minitorch_seg import shapes


class ConvTranspose2d(Function):
    """The adjoint of conv2d: x[n, c, u, v] adds x[n, c, u, v] w[c] (C_out, kh, kw) at (u s, v s), taps d apart.

    Tap (i, j) of every copy lands on the strided grid canvas[:, :, i d + u s, j d + v s]: one small
    GEMM and one strided add per tap. The canvas has (H - 1) s + d (kh - 1) + 1 + output_padding
    rows (output_padding: extra rows at the bottom); cropping p rows off the top and the bottom
    leaves Ho (likewise columns). Backward: the crop's adjoint puts g back into a zero canvas;
    each tap then *reads* the strided grid it wrote (a conv2d with the same weight):
    dL/dx = sum over taps of w[:, :, i, j] g_canvas[grid], dL/dw[:, :, i, j] = sum over n, u, v of
    x times g_canvas[grid]; dL/db[o] = sum over n, u, v of g[n, o].
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, dilation):
        (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
        n, _, h, wd = x.shape
        _, o, kh, kw = w.shape
        canvas = numpy.zeros((n, o, (h - 1) * sh + dh * (kh - 1) + 1 + oph,
                              (wd - 1) * sw + dw * (kw - 1) + 1 + opw), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                grid = (slice(None), slice(None), slice(i * dh, i * dh + sh * (h - 1) + 1, sh),
                        slice(j * dw, j * dw + sw * (wd - 1) + 1, sw))              # where tap (i, j) lands
                canvas[grid] += numpy.einsum("co,nchw->nohw", w[:, :, i, j], x)
        y = canvas[:, :, ph:canvas.shape[2] - ph, pw:canvas.shape[3] - pw]          # crop the padding
        if b is not None:
            y = y + b.reshape(1, o, 1, 1)
        ctx.save_for_backward(x, w)
        ctx.params = stride, padding, dilation, canvas.shape
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_arrays
        (sh, sw), (ph, pw), (dh, dw), canvas_shape = ctx.params
        kh, kw = w.shape[2:]
        h, wd = x.shape[2:]
        g_canvas = numpy.zeros(canvas_shape, dtype=g.dtype)
        g_canvas[:, :, ph:ph + g.shape[2], pw:pw + g.shape[3]] = g                  # the crop's adjoint
        grad_x, grad_w = numpy.zeros_like(x), numpy.zeros_like(w)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (h - 1) + 1, sh)
                cols = slice(j * dw, j * dw + sw * (wd - 1) + 1, sw)
                grad_x += numpy.einsum("co,nohw->nchw", w[:, :, i, j], g_canvas[:, :, rows, cols])
                grad_w[:, :, i, j] = numpy.einsum("nchw,nohw->co", x, g_canvas[:, :, rows, cols])
        return grad_x, grad_w, g.sum(axis=(0, 2, 3))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    assert groups == 1, "this exercise covers groups=1 only"
    return ConvTranspose2d.apply(input, weight, bias, stride=shapes.pair(stride, "stride"),
                                 padding=shapes.pair(padding, "padding"),
                                 output_padding=shapes.pair(output_padding, "output_padding"),
                                 dilation=shapes.pair(dilation, "dilation"))
