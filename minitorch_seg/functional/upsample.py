"""Upsampling: interpolate (nearest, nearest-exact, bilinear), with torch's index rules.

Resampling one axis from n_in to n_out pixels is linear, so it is a small matrix A (n_out, n_in):
row d holds the weights with which output pixel d mixes the input pixels. Nearest puts a single
1 in each row (the notes' duplication: 2 -> [[2, 2], [2, 2]] at scale 2), bilinear two weights
that sum to 1. Resampling both axes of a plane x (H, W) is then

    y = A_h x A_w^T                                   (Ho, Wo)

and since y is linear in x, dL/dx = A_h^T g A_w: the backward is the same product with the
transposed matrices, a downsampling that adds up every output's share of each input pixel.

The matrices are built once per size on the host (``_axis_resampling``, cached), following
torch's source-index rules exactly, then multiplied on whatever backend x lives.
"""
import functools
import math

import numpy

from .. import backend, parallel
from ..autograd import Function
from ..backend import get_array_module
from ..shapes import interpolate_output_size, pair

MODES = ("nearest", "nearest-exact", "bilinear")


# ---- one axis: torch's source indices and weights -------------------------------------------------
def _source_taps(n_in, n_out, mode, align_corners, scale_factor):
    """Per output pixel d: the input pixels and weights it mixes, [(i, weight), ...], as torch computes them.

    ``scale_factor`` (or None) is the one the caller gave: torch then maps d back with 1/scale_factor,
    not n_in/n_out (they differ when n_in * scale_factor is not a whole number).
    """
    taps = []
    if mode in ("nearest", "nearest-exact"):
        # torch computes these in float32: src = floor(d * scale), or floor((d + 0.5) * scale) for "exact"
        scale = numpy.float32(1.0 / scale_factor) if scale_factor else numpy.float32(n_in) / numpy.float32(n_out)
        for d in range(n_out):
            if mode == "nearest-exact":
                src = int(numpy.floor(numpy.float32((d + 0.5) * float(scale))))
            elif n_out == n_in or n_out == 2 * n_in:      # torch's shortcuts: d, and d // 2 at exactly 2x
                src = d if n_out == n_in else d // 2
            else:
                src = int(numpy.floor(numpy.float32(d) * scale))
            taps.append([(min(src, n_in - 1), 1.0)])
        return taps
    # bilinear: the source coordinate of output pixel d, then its two neighbours
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    for d in range(n_out):
        if n_out == n_in:
            taps.append([(d, 1.0)])
            continue
        src = scale * d if align_corners else max(scale * (d + 0.5) - 0.5, 0.0)
        i0 = min(math.floor(src), n_in - 1)
        i1 = i0 + (1 if i0 < n_in - 1 else 0)
        lam = min(max(src - i0, 0.0), 1.0)
        taps.append([(i0, 1.0 - lam), (i1, lam)])
    return taps


class _Axis:
    """One axis's resampling: the matrix A (n_out, n_in) on the host and, for nearest, its gather index."""

    def __init__(self, n_in, n_out, mode, align_corners, scale_factor):
        taps = _source_taps(n_in, n_out, mode, align_corners, scale_factor)
        matrix = numpy.zeros((n_out, n_in))
        for d, row in enumerate(taps):
            for i, weight in row:
                matrix[d, i] += weight
        self.matrix = matrix
        self.index = [row[0][0] for row in taps] if mode != "bilinear" else None
        self.bands = _bands(matrix)
        self.bands_t = _bands(matrix.T)
        self._on = {}

    def matrices(self, xp, dtype):
        """(A, A^T) as arrays of ``xp`` in ``dtype`` (moved once per backend and dtype)."""
        key = (backend.module_name(xp), numpy.dtype(dtype).str)
        if key not in self._on:
            a = self.matrix.astype(dtype)
            self._on[key] = (backend.to_backend(a, key[0]), backend.to_backend(numpy.ascontiguousarray(a.T), key[0]))
        return self._on[key]


@functools.lru_cache(maxsize=64)
def _axis_resampling(n_in, n_out, mode, align_corners, scale_factor):
    return _Axis(n_in, n_out, mode, align_corners, scale_factor)


# Interpolation matrices are banded: output pixel d reads input pixels near d * n_in / n_out. The
# products go through blocks of this many rows of A, each multiplying only the columns where
# the block is nonzero, so the work grows with the image, not with its square.
BAND_ROWS = 32


def _bands(matrix, rows=BAND_ROWS):
    """[(r0, r1, lo, hi), ...]: row blocks of ``matrix`` and the column range [lo, hi) where each is nonzero."""
    bands = []
    for r0 in range(0, matrix.shape[0], rows):
        r1 = min(r0 + rows, matrix.shape[0])
        nonzero = numpy.flatnonzero(matrix[r0:r1].any(axis=0))
        lo, hi = (int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else (0, 1)
        bands.append((r0, r1, lo, hi))
    return bands


def _times_transposed(m, a, bands, out=None):
    """m @ a.T for m (M, n_in) and a banded a (n_out, n_in): one GEMM per band of a's rows."""
    xp = get_array_module(m)
    if out is None:
        out = xp.empty((m.shape[0], a.shape[0]), dtype=m.dtype)    # (M, n_out)
    for r0, r1, lo, hi in bands:
        xp.matmul(m[:, lo:hi], a[r0:r1, lo:hi].T, out=out[:, r0:r1])
    return out


def _resample_planes(x, a_h, bands_h, a_w, bands_w):
    """a_h @ x[n, c] @ a_w.T for every plane: x (N, C, H, W) -> (N, C, P, Q), a few planes at a time.

    The tiles (``parallel.UPSAMPLE_TILES``) keep the transposed copies and the GEMMs' intermediate
    in the L2 cache, and run on the host threads under ``parallel.tile_threads()``.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    p, q = a_h.shape[0], a_w.shape[0]
    planes = x.reshape(n * c, h, w)                                   # (B, H, W), a copy if x is not contiguous
    y = xp.empty((n * c, p, q), dtype=x.dtype)                        # (B, P, Q)

    def resample_tile(tile):  # a few planes (B', H, W) -> (B', P, Q)
        _resample_tile(planes[tile], a_h, bands_h, a_w, bands_w, out=y[tile])
    plane_bytes = (h * w + p * q) * x.itemsize
    parallel.map_tiles(xp, resample_tile, parallel.tiles(xp, parallel.UPSAMPLE_TILES, (n * c,), plane_bytes))
    return y.reshape(n, c, p, q)


def _resample_tile(x, a_h, bands_h, a_w, bands_w, out):
    """out[b] = a_h @ x[b] @ a_w.T for planes x (B, H, W), as two GEMMs on (rows, n_in) matrices.

    Each product resamples the last axis, so the planes are transposed once in between: H is
    last for one product, W for the other. The transposed copies hold W values per row if H
    goes first (x^T and t), Q if W goes first (t and the result): the smaller one is taken, H
    first when upsampling (W <= Q), W first when downsampling (the backward of upsampling).
    """
    b, h, w = x.shape
    p, q = a_h.shape[0], a_w.shape[0]
    if w <= q:    # H first
        t = _times_transposed(x.transpose(0, 2, 1).reshape(b * w, h), a_h, bands_h)        # (B*W, P)
        t = t.reshape(b, w, p).transpose(0, 2, 1).reshape(b * p, w)                         # (B*P, W)
        _times_transposed(t, a_w, bands_w, out=out.reshape(b * p, q))                       # (B*P, Q)
    else:         # W first
        t = _times_transposed(x.reshape(b * h, w), a_w, bands_w)                            # (B*H, Q)
        t = t.reshape(b, h, q).transpose(0, 2, 1).reshape(b * q, h)                         # (B*Q, H)
        out[...] = _times_transposed(t, a_h, bands_h).reshape(b, q, p).transpose(0, 2, 1)   # (B, P, Q)


class Interpolate(Function):
    """y[n, c] = A_h x[n, c] A_w^T, with A_h (Ho, H) and A_w (Wo, W) each axis's resampling matrix.

    Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo); Ho = the given size, or floor(H * scale_factor)
    (``shapes.interpolate_output_size``), likewise Wo.

    Forward: y[n, c, u, v] = sum_{h, w} A_h[u, h] x[n, c, h, w] A_w[v, w]. For nearest, A has one 1
    per row, at torch's source index (floor(u * H / Ho) for "nearest", with 1/scale_factor for
    H / Ho when one was given), so the product is the gather x[n, c, rows[u], cols[v]], done as
    such (exact for any dtype, and faster).

    Backward: dy[n, c, u, v] / dx[n, c, h, w] = A_h[u, h] A_w[v, w], so
        dL/dx[n, c, h, w] = sum_{u, v} A_h[u, h] g[n, c, u, v] A_w[v, w],  i.e.  dL/dx = A_h^T g A_w:
    each output pixel hands its gradient back to the input pixels it mixed, with the same weights.

    Both products are GEMMs over the bands where A is nonzero, a few planes at a time
    (``_resample_planes``). Measured alternatives, CPU time of the forward of a x2 bilinear of
    4x64x64x128 float32 with one BLAS thread: this 19 ms; dense GEMMs in the same tiles 38 ms; a
    batched matmul, one BLAS call per plane, 28 ms; two-tap gathers with elementwise weights 33 ms.

    Unlike PyTorch: 4-D input only; bilinear with align_corners=None gives no warning;
    ``recompute_scale_factor`` and ``antialias`` are not offered.

    >>> import minitorch_seg as mt
    >>> interpolate(mt.tensor([[[[2.0]]]]), scale_factor=2).tolist()
    [[[[2.0, 2.0], [2.0, 2.0]]]]
    >>> x = mt.tensor([[[[0.0, 4.0]]]], requires_grad=True)
    >>> y = interpolate(x, size=(1, 4), mode="bilinear", align_corners=False)
    >>> y.tolist()
    [[[[0.0, 1.0, 3.0, 4.0]]]]
    >>> y.sum().backward(); x.grad.tolist()
    [[[[2.0, 2.0]]]]
    """

    @staticmethod
    def forward(ctx, x, rows, cols):
        xp = get_array_module(x)
        ctx.rows, ctx.cols = rows, cols
        if rows.index is not None:        # nearest: A x A^T is a gather
            return x.take(xp.asarray(rows.index), axis=2).take(xp.asarray(cols.index), axis=3)
        (a_h, _), (a_w, _) = rows.matrices(xp, x.dtype), cols.matrices(xp, x.dtype)
        return _resample_planes(x, a_h, rows.bands, a_w, cols.bands)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        (_, a_h_t), (_, a_w_t) = ctx.rows.matrices(xp, g.dtype), ctx.cols.matrices(xp, g.dtype)
        return _resample_planes(g, a_h_t, ctx.rows.bands_t, a_w_t, ctx.cols.bands_t)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize the H and W axes of a (N, C, H, W) tensor (torch.nn.functional.interpolate); see ``Interpolate``.

    ``size``: the output (Ho, Wo) (or one int for both); ``scale_factor``: a multiplier (or a pair),
    Ho = floor(H * scale_factor). Give exactly one. ``mode``: "nearest" (torch's default, the
    index floor(u * H / Ho)), "nearest-exact" (floor((u + 0.5) * H / Ho)) or "bilinear".
    ``align_corners`` (bilinear only; None means False): True maps the corner pixels' centres
    onto each other, False maps the corners of the images (half-pixel centres).
    """
    if input.ndim != 4:
        raise ValueError(f"interpolate: expected a 4-D input (N, C, H, W), got shape {input.shape}.")
    if mode not in MODES:
        raise ValueError(f"interpolate: unknown mode {mode!r}; expected one of {', '.join(MODES)}.")
    if align_corners is not None and mode != "bilinear":
        raise ValueError(f"interpolate: align_corners can only be set with mode='bilinear', not {mode!r}.")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor, "
                         f"got size={size!r} and scale_factor={scale_factor!r}.")
    in_hw = input.shape[2:]
    if size is not None:
        out_hw, scales = pair(size, "size"), (None, None)
    else:
        scales = tuple(float(s) for s in ((scale_factor, scale_factor) if isinstance(scale_factor, (int, float))
                                          else scale_factor))
        if len(scales) != 2 or min(scales) <= 0:
            raise ValueError(f"interpolate: scale_factor must be a positive number or pair, got {scale_factor!r}.")
        out_hw = tuple(interpolate_output_size(n, s) for n, s in zip(in_hw, scales))
    if min(out_hw) < 1:
        raise ValueError(f"interpolate: the output size {tuple(out_hw)} must be positive (input {tuple(in_hw)}).")
    align = bool(align_corners)
    rows, cols = (_axis_resampling(n, o, mode, align, s) for n, o, s in zip(in_hw, out_hw, scales))
    return Interpolate.apply(input, rows=rows, cols=cols)
