"""Softmax cross-entropy over classes, per pixel, with class weights and an ignore index."""
import math

from .. import parallel
from ..autograd import Function
from ..backend import get_array_module, is_device_module


class CrossEntropy(Function):
    """Per-pixel softmax cross-entropy: the seed's L_CE, with weights and ignored pixels.

    Notation: x (N, C, *S) logits (S: any spatial dims, e.g. H, W), t (N, *S) class indices,
    K = the kept pixels (t != ignore_index), w (C,) class weights (all 1 when not given).

    Forward, per kept pixel p with class y = t[p], using the log-sum-exp trick (m = max_c x_c)
    so no exponent is positive:
        -log softmax(x)_y = log sum_c e^(x_c - m) - (x_y - m)
        mean:  L = sum_{p in K} w_y * (-log softmax(x_p)_y) / sum_{p in K} w_y
    With N = 1, no weights and nothing ignored this is
    L_CE = -1/(HW) sum_{h,w} sum_c Y[h,w,c] log softmax(x)[h,w,c], Y the one-hot target.

    Backward: d(-log softmax(x)_y)/dx_c = softmax(x)_c - [c == y], so with D = sum_K w_y,
        dL/dx[n, c, p] = g * w_y / D * (softmax(x)_c - onehot(y)_c)   for p in K, 0 elsewhere
    (D replaced by 1 for reduction "sum"; g per pixel for "none").

    Unlike PyTorch: a batch in which every pixel is ignored gives loss 0 and zero gradient
    (PyTorch gives NaN). The default ``ignore_index`` is PyTorch's, -100; Cityscapes' void label is
    255, which the training job passes.
    """

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction):
        xp = get_array_module(x, target, weight)
        x = xp.ascontiguousarray(x)
        x3 = x.reshape(x.shape[:2] + (math.prod(x.shape[2:]),))        # (N, C, P), P = prod(S); N may be 0
        target2 = target.reshape(x3[:, 0].shape)                        # (N, P)
        exps, (sums, nll) = xp.empty_like(x3), xp.empty((2,) + target2.shape, dtype=x.dtype)
        keep, safe = xp.empty(target2.shape, dtype=bool), xp.empty_like(target2)
        picked = xp.empty(target2.shape, dtype=xp.int64)                # (N, P): each pixel's own class in x, flat

        def softmax_terms(tile):                                       # each pixel's softmax is its own
            n, p = tile
            xp.not_equal(target2[n, p], ignore_index, out=keep[n, p])
            xp.multiply(target2[n, p], keep[n, p], out=safe[n, p])    # an ignored pixel's class: 0
            picked[n, p] = _own_class_positions(x.shape, safe[n, p], n, p)
            top = x3[n, :, p].max(axis=1, keepdims=True)               # m, (1, 1, run)
            run = xp.subtract(x3[n, :, p], top, out=exps[n, :, p])
            own = exps.reshape(-1).take(picked[n, p])                  # x_y - m, read from the tile's own run
            xp.exp(run, out=run)                                       # e^(x - m) <= 1, in place
            sums[n, p] = run.sum(axis=1)
            nll[n, p] = xp.log(sums[n, p]) - own                       # -log softmax(x)_y
        parallel.map_tiles(xp, softmax_terms, _pixel_runs(x3))
        nll, keep, safe = (a.reshape(target.shape) for a in (nll, keep, safe))
        pixel_weight = (weight[safe] * keep) if weight is not None else keep.astype(x.dtype)
        losses = nll * pixel_weight
        ctx.reduction, ctx.shape = reduction, x.shape
        ctx.save_for_backward(exps, sums, picked, pixel_weight)  # (N, C, P), (N, P): softmax = exps / sums
        if reduction == "none":
            return losses
        total = losses.sum()
        if reduction == "sum":
            return total
        # A fully ignored batch has total = 0 over a denominator of 0: the guard makes that 0.
        ctx.denominator = xp.maximum(pixel_weight.sum(), xp.finfo(x.dtype).tiny)
        return total / ctx.denominator

    @staticmethod
    def backward(ctx, g):
        exps, sums, picked, pixel_weight = ctx.saved_arrays
        coefficient = g * pixel_weight                                  # (N, *S)
        if ctx.reduction == "mean":
            coefficient = coefficient / ctx.denominator
        xp = get_array_module(exps)
        coefficient = coefficient.reshape(sums.shape)                   # (N, P)
        grad = exps if ctx.last_use else xp.empty_like(exps)           # softmax * coefficient, (N, C, P)
        flat = grad.reshape(-1)

        def scale(tile):
            n, p = tile
            xp.multiply(exps[n, :, p], (coefficient[n, p] / sums[n, p])[:, None], out=grad[n, :, p])
            # minus the one-hot part at each pixel's own class: each (n, pixel) names one position of
            # the tile's own, so an indexed update does (no scatter-add needed); on the host
            # ``subtract.at`` makes the same update in a third of the time (0.45 against 1.3 ms at
            # 4x19x128x256, NumPy 2)
            if is_device_module(xp):
                flat[picked[n, p].reshape(-1)] -= coefficient[n, p].reshape(-1)
            else:
                xp.subtract.at(flat, picked[n, p].reshape(-1), coefficient[n, p].reshape(-1))
        parallel.map_tiles(xp, scale, _pixel_runs(exps))
        return grad.reshape(ctx.shape), None


def _pixel_runs(x3):
    """Tiles of x3 (N, C, P), [(samples, pixels), ...], for the host threads (``parallel.STREAM_TILES``):
    each pixel's C logits are a softmax of their own, so a tile is any run of pixels. Runs of one
    sample's pixels where a sample fills half a tile or more, else runs of whole samples ((N, C)
    logits: P = 1). On the 2-core Xeon they took 5 ms off the U-Net step
    (``benchmarks/results/2026-12-03-xeon-pinned.md``). Each tile also finds its own pixels' kept
    classes, where their logits lie (``_own_class_positions``) and those logits, and subtracts their
    one-hot gradient, where the caller did that for all pixels first: at 4x19x128x256 on a 2-core
    Zen 4 EPYC the forward took 0.38 ms less (2.99 against 3.30), forward + backward 0.42 less
    (4.37 against 4.78), the two versions taking turns in tile threads, 40 rounds; the same bits."""
    xp, (n, c, p) = get_array_module(x3), x3.shape
    sample_bytes = c * p * x3.itemsize
    if sample_bytes >= parallel.STREAM_TILES.bytes // 2:
        return parallel.tiles(xp, parallel.STREAM_TILES, (n, p), c * x3.itemsize)
    return [(samples, slice(None)) for (samples,) in parallel.tiles(xp, parallel.STREAM_TILES, (n,), sample_bytes)]


def _own_class_positions(shape, safe, samples=slice(None), pixels=slice(None)):
    """Where x[n, safe[n, p], p], each pixel's kept class, sits in a C-contiguous x (N, C, *S) seen flat,
    for the pixels ``pixels`` of the samples ``samples`` (a tile, ``_pixel_runs``; safe (n, p) theirs).

    Each tile reads its pixels' logits there (``take``) and writes their one-hot gradient
    (an indexed update); ``take_along_axis`` and an update through broadcast index arrays did the
    same 4-10 times slower (NumPy, 4x19x128x256).
    """
    xp = get_array_module(safe)
    (n, classes), plane = shape[:2], math.prod(shape[2:])
    first, _, _ = samples.indices(n)
    start, _, _ = pixels.indices(plane)
    rows, run = safe.shape
    within = (xp.arange(start, start + run, dtype=xp.int64)
              + xp.arange(first, first + rows, dtype=xp.int64)[:, None] * (classes * plane))
    return within + safe.astype(xp.int64, copy=False) * plane


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Softmax cross-entropy between logits ``input`` (N, C) or (N, C, H, W) and class indices ``target``.

    See ``CrossEntropy`` for the formula and its derivation. ``ignore_index`` defaults to -100, as
    in PyTorch; Cityscapes labels void pixels 255, so pass ``ignore_index=255`` for its targets.
    Unlike PyTorch: a batch in which every pixel is ignored gives loss 0 and zero gradient instead
    of NaN.

    >>> import minitorch_seg as mt
    >>> logits = mt.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(cross_entropy(logits, mt.tensor([0, 255]), ignore_index=255).item(), 4)   # second row ignored
    0.1269
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
    if input.ndim < 2:
        raise ValueError(f"cross_entropy: input must be (N, C) or (N, C, H, W) logits, got shape {input.shape}.")
    expected = (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ValueError(f"cross_entropy: target has shape {target.shape} but input {input.shape} needs {expected}.")
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype {target.dtype}.")
    classes = input.shape[1]
    if weight is not None and weight.shape != (classes,):
        raise ValueError(f"cross_entropy: weight must have shape ({classes},), got {weight.shape}.")
    xp = get_array_module(target.data)
    if not is_device_module(xp):  # on a GPU the check would cost a device-to-host transfer per step
        bad = (target.data != ignore_index) & ((target.data < 0) | (target.data >= classes))
        if bad.any():
            raise ValueError(f"cross_entropy: target holds {target.data[bad][0]}, outside 0..{classes - 1} "
                             f"and not the ignore_index {ignore_index}.")
    weight_data = None if weight is None else weight.data.astype(input.dtype, copy=False)
    return CrossEntropy.apply(input, target, weight=weight_data,
                              ignore_index=ignore_index, reduction=reduction)
