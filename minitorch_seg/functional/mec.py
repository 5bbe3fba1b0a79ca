"""MEC, memory-efficient convolution (Cho & Brand, 2017): im2col along the width only.

im2col copies every kernel tap of every pixel, kh*kw copies of the input (9x for a 3x3 kernel).
Most of that is redundant: output row u+1 reads the same padded rows as row u, shifted down by
the stride. MEC copies only the kw horizontal taps, and lets the GEMMs find the vertical ones
by where they start reading.

The lowered band, for the padded rows a of some samples n (channels c, taps j < kw, outputs v):

    L[a, c, j, n, v] = xpad[n, c, a, v*sw + j*dw]                     (A, C, kw, M, Wo), kw copies

In L's flat layout, entry (a, c, j, n, v) sits at ((a*C + c)*kw + j)*M*Wo + n*Wo + v. Output row u
reads the padded rows a = u*sh + i for i < kh (no dilation in height), so its patch entry
k = (i*C + c)*kw + j, for column q = n*Wo + v, sits at

    (u*sh*C*kw + k)*M*Wo + q:

for each u, a (K, M*Wo) matrix with K = kh*C*kw, row stride M*Wo and unit column stride, a view
that BLAS reads as it is; the next row's matrix starts sh*C*kw*M*Wo further on. All of them are
one strided view V (Ho, K, M*Wo), overlapping, no copy. Then, with W' = w laid out (O, kh, C, kw):

    y[n, :, u, v] = (W' @ V[u])[:, n*Wo + v]        one batched matmul over u
    p = sum_u V[u] @ P[u]^T                          P[u] the partner's row u: a weight gradient

Per output pixel MEC copies kw*C values instead of kh*kw*C (a third, for 3x3), and there is no
pad pass: ``lower`` reads the unpadded x and writes the zeros itself. The price is smaller GEMMs,
one per output row with M*Wo columns, so narrow maps put several samples side by side
(``WIDE``). It applies to ungrouped convs taller than one row, at stride 1 and without dilation
in height (``applies``); the others take im2col, as everything does on CuPy.

The correlation alone (no partner) at stride 1 goes one step further: the GEMMs find the kernel's
columns too, by where they start reading within a row, so the only copy is the padded input
(``lower_rows``, C values per pixel):

    B[a, c, n, b] = xpad[n, c, a, b]          (A, C, M, Wp), Wp = W + 2pw, entry at (a*C + c)*T + n*Wp + b

with T = M*Wp. Output (n, u, v) reads tap (i, j) at u*C*T + (i*C + c)*T + n*Wp + v + j*dw, so for
each kernel column j and row u the patch is a (kh*C, Q) matrix with row stride T, starting j*dw
further on for each j: kw GEMMs per row, added up (``gemm.matmul``'s ``accumulate``), with
W_j[o, i*C + c] = w[o, c, i, j]. Their columns n*Wp + v for v < Wo are the outputs; the others,
between two samples, are products nobody reads, and Q = (M-1)*Wp + Wo keeps each read in its row.
A weight gradient keeps the kw copies: from these bands its products would be kw times as many and
a third as tall (kh*C rows, against kh*C*kw), which MKL ran slower than the copies cost. On the
2-core AVX-512 Xeon, against the kw copies for the correlation too, the row band took 6.7 ms off
the U-Net step (of 240; warm steps taking turns, 24 rounds, quartiles -9.3 / -2.3), 11.2 in
``bench_ab.py`` (of 256) and 2.8 off the training job's step (of 139); 32 -> 16 channels at
4x128x256, forward, 6.9 ms against 10.4.

Not for a few input channels, though (``ROWS_MIN_DEPTH``): an RGB image's kw GEMMs per row have
kh*C = 9 inner values each, and without MKL each one after the first adds through a temporary.
There the kw copies, one GEMM per row of kh*C*kw = 27, took half the time; with 16 channels
(kh*C = 48) they were level on one machine and faster on another.
"""
import functools
import itertools
from typing import NamedTuple

from .. import gemm, parallel
from ..backend import get_array_module, module_name
from . import sliding

# Samples side by side in each GEMM until it has at least this many columns; each group of samples
# is a tile of its own (``_plan``). On the 2-core AVX-512 Xeon (2 MiB L2) 128 and 512 were within
# noise of 256, on the U-Net's shapes, forward + backward. On a 2-core Zen 5 EPYC (1 MiB L2), 128
# against 256, the U-Net step taking turns in one process, 30 rounds: 3.6 ms less at the benchmark's
# size (quartiles -5.8 / -0.9) and 2.2 less at the training job's (-3.3 / -0.9). It changes the
# 64- and 128-pixel-wide maps: a sample a GEMM at 128 (32 -> 32 at 4x64x128, forward + backward:
# 7.6 against 8.2 ms), two at 64. 64 was level on the benchmark's step and 1.5 ms slower on the job's.
WIDE = 128

# Tiles: ``SPLIT`` of them at least on the host, as few as that allows, but no tile's lowered band
# over ``MAX_BYTES``, a group's rows split into tiles that differ by one row at most. Per-tile work
# (a few copies, one batched matmul) is short, and Python's share of it runs one thread at a time:
# on the U-Net (4x16x128x256, 2 cores; 2026-12-02, MEC's first version) tiles of at most 1 MiB,
# the last one short, took 7 ms more per 16-channel conv than whole samples, and 4 tiles a group 3
# ms more in all than 2. But a backward's two GEMMs read the band one after the other, the second
# time from a core's L2 cache if it fits there (1 MiB on the Zen 4 and Zen 5 EPYCs). On a 2-core
# Zen 4 EPYC (2026-12-04), forward + backward, balanced tiles of at most 1 MiB against whole
# samples (32 MiB), the two taking turns, 40 rounds: at 4x128x256 16 -> 16 2.4 ms faster (of 21),
# 32 -> 16 4.3 (of 33); at 4x64x128 32 -> 32 0.9 (of 18), 64 -> 32 1.9 (of 30); at 4x32x64 0.5-0.7
# (of 15-25); the forward alone within 0.2 ms but for 32 -> 16 (0.6 faster). 2 MiB tiles were
# 0.15-1.2 ms slower on five of these six convs, 0.5 MiB tiles 0.2-2.9 ms on all. At the training
# job's size (8x64x128) the tiles were whole samples of 1.5 MiB or less already: level.
SPLIT = 2
MAX_BYTES = 1 << 20

# ``lower`` copies every tap at once where at least this many output columns read inside x for all
# of them, else a tap at a time. One thread, the U-Net's maps (4 samples, 3x3), this against a tap at
# a time: 1.5x faster at 16x128x256, 1.25x at 32x64x128, but 0.91x at 64x32x64 and 0.77x at 128x16x32.
ONE_COPY_WIDTH = 96


# MEC only where a sample's output has more than this many pixels; smaller maps take im2col, whose
# 9x copy is small there, one GEMM a sample, and whose weight gradient adds a partial product a
# sample instead of one a row. On a 2-core Zen 4 EPYC (2026-12-04), forward + backward, im2col
# against MEC, the two taking turns, 20-30 rounds: at 4x16x32 (512 pixels) 64 -> 128 0.8-1.0 ms
# faster (of 9), 128 -> 128 1.1-1.4 (of 14); at 8x16x32 and 8x8x16 -0.7 to +0.3 ms a conv; at
# 4x32x64 (2048 pixels) -0.5 to +0.2 (of 9-27): level there, so the line is at 512.
MIN_PIXELS = 512

# The row band for the correlation alone where each of its GEMMs has at least this many inner values
# (kh*C), else the kw copies. Measured on a 2-core Zen 5 EPYC (OpenBLAS), the U-Net's first conv,
# 3 -> 16 channels at 4x128x256, forward on 2 threads: 0.5-0.8 ms through the copies against 1.0-1.9
# through the band (kh*C = 9); at kh*C = 48 (16 channels) the two were within noise of each other.
# On a 2-core Zen 4 EPYC (2026-12-04), the two taking turns, 16-20 rounds, the copies were faster at
# 16 channels (16 -> 16 at 4x128x256: 0.8-1.4 ms of 8; 16 -> 32 at 4x64x128: 0.3-0.5 of 3.3) and
# the band from 32 on (32 -> 32 at 4x64x128: 1.0 ms of 5.6; 64 -> 32: 3.6 of 9.5; 128 -> 64 at
# 4x32x64: 0.8 of 9.6; level at 128 -> 128, 16x32).
ROWS_MIN_DEPTH = 64


# The correlation alone (no partner: a forward) with fewer output than input channels (a decoder's
# first conv, whose input is the skip and the upsampled map side by side) takes the row band on maps
# of ``MIN_PIXELS`` or fewer too, where its batch has at least this many output pixels (and kh*C >=
# ``ROWS_MIN_DEPTH``, as everywhere), instead of the shifted sum (``conv._correlate_shifted``). On a
# 2-core Zen 4 EPYC (2026-12-04), forward alone, 10 rounds taking turns: 0.41-0.92x the shifted sum's
# time on 16x32 to 4x8 maps with 2-8 samples (128 -> 64, 64 -> 32, 48 -> 32), 0.81x and 2.1x at 128
# pixels; in tile threads against the version before, 40 rounds, the training job's 128 -> 64 at
# 8x16x32 took 4.08 ms against 4.55 forward, 11.92 against 12.26 with its backward. With as many or
# more outputs im2col stays: the row band was level with it at 64 outputs and 1.1-1.35x at 128.
SMALL_MAPS_MIN_PIXELS = 256


def applies(xp, groups, geometry, alone=None):
    """MEC's view needs one channel index across the kernel's rows: no groups, no dilation in height.
    It pays at stride 1 in height, where each input row serves kh output rows. Where no row is
    shared (a 1x1 conv, the U-Net's 2x2 stride-2 transposed conv), im2col copies as little, into
    larger GEMMs: ConvTranspose2d's backward at 4x64x32x64 took 1.9 ms through im2col, 2.4 through
    MEC. At stride 2 a 3x3 kernel shares one row in three, and MEC measured the same as im2col
    forward and 0.1-1.0 ms slower backward (HRNet's and the encoders' shapes, 4x3x128x256 to
    4x64x32x64). Nor on small maps (``MIN_PIXELS``). And the host: on CuPy, im2col's one large GEMM
    per tile is what cuBLAS runs best, and MEC's overlapping views have not yet run on a GPU.

    ``alone``: (N, O, C) of a correlation without a partner (a forward), which takes the row band on
    small maps too where it has fewer outputs than inputs (``SMALL_MAPS_MIN_PIXELS``)."""
    pixels = geometry.out_hw[0] * geometry.out_hw[1]
    fits = (module_name(xp) != "cupy" and groups == 1 and geometry.dilation[0] == 1
            and geometry.stride[0] == 1 < geometry.kernel[0])
    return fits and (pixels > MIN_PIXELS or (alone is not None and _rows_on_a_small_map(geometry, *alone)))


def _rows_on_a_small_map(geometry, n, o, c):
    """Whether a correlation alone of a batch of n, c -> o channels on a small map takes the row band."""
    pixels = n * geometry.out_hw[0] * geometry.out_hw[1]
    return (geometry.stride == (1, 1) and geometry.kernel[0] * c >= ROWS_MIN_DEPTH and o < c
            and pixels >= SMALL_MAPS_MIN_PIXELS)


def lower(x, geometry, samples, rows):
    """The lowered band of output rows ``rows`` of ``samples``, read from the unpadded x (N, C, H, W):
    (A, C, kw, M, Wo), A = (R-1)*sh + kh padded rows, M samples. The padding's zeros are written here.

    Narrow maps copy a tap at a time (``_copy_each_tap``). Wide ones (``ONE_COPY_WIDTH``) copy the
    columns where every tap reads inside x (all but pw at each edge, for a "same" conv) at once,
    which writes each (row, channel)'s kw runs one after another, then the few edge columns
    (``_copy_all_taps``). In the U-Net step the lowering took 37 ms of the threads' time against
    40.6 a tap at a time. Which columns each tap reads inside x is worked out once for a geometry
    and width (``_width_plan``), not in each tile.
    """
    xp = get_array_module(x)
    kw, plan = geometry.kernel[1], _width_plan(geometry, x.shape[3])
    per_row = (kw, samples.stop - samples.start, geometry.out_hw[1])
    band, inside, source = _band(xp, x, geometry, samples, rows, per_row)
    if source is None:
        return band
    if len(plan.inner) >= ONE_COPY_WIDTH:
        first = (samples.start * x.shape[1] * x.shape[2] + rows.start * geometry.stride[0] - geometry.padding[0]
                 + inside.start) * x.shape[3]                       # x's flat index of source[0, 0, 0, 0]
        _copy_all_taps(xp, band[inside], source, geometry, plan, x if x.flags.c_contiguous else None, first)
    else:
        _copy_each_tap(band[inside], source, geometry, plan)
    return band


def _band(xp, x, geometry, samples, rows, per_row):
    """A band for output rows ``rows`` of ``samples``: an array (A, C) + ``per_row``, A = (R-1)*sh + kh
    padded rows, its rows outside x zero (the padding). Returns it, the slice of its rows inside x,
    and those rows of x, (rows, C, M, W) (a view; None where no row is inside x)."""
    c, h = x.shape[1:3]
    kh, sh, ph = geometry.kernel[0], geometry.stride[0], geometry.padding[0]
    band_rows = (rows.stop - rows.start - 1) * sh + kh
    top = rows.start * sh - ph                                      # x's row at the band's first row
    lo, hi = max(0, -top), max(0, min(band_rows, h - top))          # the band's rows inside x
    band = xp.empty((band_rows, c) + per_row, dtype=x.dtype)
    if lo:
        band[:lo] = 0
    if max(lo, hi) < band_rows:
        band[max(lo, hi):] = 0
    if hi <= lo:
        return band, slice(lo, lo), None
    return band, slice(lo, hi), x[samples, :, top + lo:top + hi].transpose(2, 1, 0, 3)


class _Columns(NamedTuple):
    """Which output columns each tap reads inside x's width, for one geometry and width (``_width_plan``)."""

    inner: range          # the output columns at which every tap reads inside x
    edges: tuple          # each other column: (v, j0, j1, start), taps [j0, j1) read x from column start
    taps: tuple           # each tap j: (the output columns at which it reads inside x, x's column at the first)


@functools.lru_cache(maxsize=256)
def _width_plan(geometry, w):
    """The ``_Columns`` of a band of this geometry over an input w wide (made once: in each of the U-Net
    step's 260 tiles it took several microseconds)."""
    kw, sw, dw, pw = _across(geometry)
    inner = _inside_columns(geometry, w, range(kw))
    edges = []
    for v in (*range(inner.start), *range(inner.stop, geometry.out_hw[1])):
        j0, j1 = _inside_taps(geometry, w, v)
        edges.append((v, j0, j1, v * sw + j0 * dw - pw))
    taps = []
    for j in range(kw):
        columns = _inside_columns(geometry, w, [j])
        taps.append((columns, columns.start * sw + j * dw - pw))
    return _Columns(inner, tuple(edges), tuple(taps))


def _copy_each_tap(band, source, geometry, plan):
    """band (rows, C, kw, M, Wo) from source (rows, C, M, W): a strided copy per tap of the columns
    it reads inside x, the others zero."""
    sw = geometry.stride[1]
    for j, (columns, start) in enumerate(plan.taps):
        band[:, :, j, :, :columns.start] = 0
        band[:, :, j, :, columns.stop:] = 0
        if columns:
            band[:, :, j, :, columns.start:columns.stop] = source[..., start:start + (len(columns) - 1) * sw + 1:sw]


def _copy_all_taps(xp, band, source, geometry, plan, x=None, first=0):
    """``_copy_each_tap``'s band with the ``inner`` columns (where every tap reads inside x) in one copy,
    the taps an axis of its source view; then each edge column, the taps that read x there copied and
    the others zero. Given x (C-contiguous) and the flat index of source's first value in it, the view
    of the taps is made on x by ``sliding.strided``, not by NumPy's slower ``as_strided``."""
    kw, sw, dw, pw = _across(geometry)
    inner = plan.inner
    rs, cs, ms, ws = source.strides
    shape = source.shape[:2] + (kw, source.shape[2], len(inner))
    strides = (rs, cs, dw * ws, ms, sw * ws)                                         # (rows, C, kw, M, v)
    if inner and x is not None and module_name(xp) != "cupy":      # tap 0 at v = inner.start, a view on x
        band[..., inner.start:inner.stop] = sliding.strided(x, first + inner.start * sw - pw, shape, strides)
    elif inner:
        band[..., inner.start:inner.stop] = xp.lib.stride_tricks.as_strided(source[..., inner.start * sw - pw:],
                                                                           shape=shape, strides=strides)
    for v, j0, j1, start in plan.edges:                                 # the edges: taps j in [j0, j1) read x
        if j0 > 0:
            band[:, :, :j0, :, v] = 0
        if j1 < kw:
            band[:, :, j1:, :, v] = 0
        if j1 > j0:
            band[:, :, j0:j1, :, v] = source[..., start:start + (j1 - j0 - 1) * dw + 1:dw].swapaxes(2, 3)


def _across(geometry):
    """(kw, sw, dw, pw): the kernel's width, stride, dilation and padding in width."""
    return geometry.kernel[1], geometry.stride[1], geometry.dilation[1], geometry.padding[1]


def _inside_columns(geometry, w, taps):
    """The output columns v at which each of ``taps`` reads inside x's width w: column v*sw + j*dw - pw."""
    _, sw, dw, pw = _across(geometry)
    out_w = geometry.out_hw[1]
    first = max((pw - j * dw + sw - 1) // sw for j in taps)                  # v*sw + j*dw - pw >= 0
    last = min((w - 1 + pw - j * dw) // sw for j in taps)                    # ... <= w - 1
    first = min(out_w, max(0, first))
    return range(first, max(first, min(out_w, last + 1)))


def _inside_taps(geometry, w, v):
    """[j0, j1): the taps that read inside x's width w at output column v (a run: the column grows with j)."""
    kw, sw, dw, pw = _across(geometry)
    j0 = min(kw, max(0, -(-(pw - v * sw) // dw)))                            # v*sw + j*dw - pw >= 0
    return j0, max(j0, min(kw, (w - 1 + pw - v * sw) // dw + 1))             # ... <= w - 1


def _plan(n, out_h, out_w, row_bytes):
    """The tiles, [(samples, rows), ...]: groups of samples side by side (``WIDE``), each group's rows
    split per ``SPLIT`` and ``MAX_BYTES`` (``row_bytes`` a sample's lowered output row) into runs that
    differ by one row at most.

    >>> [(s.start, s.stop, r.start, r.stop) for s, r in _plan(1, 10, 256, MAX_BYTES // 3)]   # 3 rows a tile
    [(0, 1, 0, 2), (0, 1, 2, 5), (0, 1, 5, 7), (0, 1, 7, 10)]
    """
    per = max(1, min(n, -(-WIDE // max(out_w, 1))))
    groups = [slice(a, min(a + per, n)) for a in range(0, n, per)]
    most = max(1, MAX_BYTES // max(row_bytes * per, 1))                   # rows a tile may hold
    count = min(out_h, max(-(-SPLIT // max(len(groups), 1)), -(-out_h // most)))
    bounds = [k * out_h // count for k in range(count + 1)]
    return [(samples, slice(a, b)) for samples in groups for a, b in itertools.pairwise(bounds)]


def lower_weight(weight):
    """The conv weight (O, C, kh, kw), any strides, as MEC's GEMMs read it: (O, K), K = kh*C*kw in
    the band's (i, c, j) order, copied a tap at a time (``sliding.copy_taps``)."""
    o, c, kh, kw = weight.shape
    lowered = get_array_module(weight).empty((o, kh, c, kw), dtype=weight.dtype)
    sliding.copy_taps(lowered.transpose(0, 2, 1, 3), weight)
    return lowered.reshape(o, kh * c * kw)


def products(x, geometry, weight=None, partner=None):
    """``conv._column_products`` by MEC, for an ungrouped conv: x (N, C, H, W) and its ``geometry``.

    Returns (y, p): with ``weight`` (O, C, kh, kw) (any strides), y (N, 1, O, Ho*Wo), the correlation;
    with ``partner`` (N, P, Ho, Wo), p (P, C, kh, kw) = sum over n, u, v of the partner times the
    patch, a weight gradient (a view). The other is None. The correlation alone, at stride 1, comes
    from the row band (``correlate_rows``) unless x has too few channels (``ROWS_MIN_DEPTH``).
    """
    if partner is None and geometry.stride == (1, 1) and geometry.kernel[0] * x.shape[1] >= ROWS_MIN_DEPTH:
        return correlate_rows(x, geometry, weight), None
    xp = get_array_module(x)
    n, c = x.shape[:2]
    (kh, kw), sh = geometry.kernel, geometry.stride[0]
    out_h, out_w = geometry.out_hw
    k, size = kh * c * kw, x.dtype.itemsize
    lowered_weight = None if weight is None else lower_weight(weight)     # (O, K), K in (i, c, j) order
    y = None if weight is None else xp.empty((n, lowered_weight.shape[0], out_h, out_w), dtype=x.dtype)

    def tile_products(tile):
        samples, rows = tile
        m, r = samples.stop - samples.start, rows.stop - rows.start
        band = lower(x, geometry, samples, rows)
        width = m * out_w
        views = sliding.strided(band, 0, (r, k, width),                                      # V (R, K, M*Wo)
                                (sh * c * kw * width * size, width * size, size))
        if y is not None and m == 1:                            # straight into y's rows, (R, O, Wo)
            gemm.matmul(lowered_weight, views, out=y[samples.start, :, rows].transpose(1, 0, 2))
        elif y is not None:
            y[samples, :, rows] = gemm.matmul(lowered_weight, views).reshape(r, -1, m, out_w).transpose(2, 1, 0, 3)
        if partner is not None:  # P[u] (R, P, M*Wo): a copy along rows (a view for one sample), used transposed
            shared = partner[samples, :, rows].transpose(2, 1, 0, 3).reshape(r, partner.shape[1], width)
            return gemm.matmul(views, shared.swapaxes(1, 2)).sum(axis=0)  # (K, P)
    plan = _plan(n, out_h, out_w, sh * c * kw * out_w * size)
    sums = parallel.map_tiles(xp, tile_products, plan)
    y = None if y is None else y.reshape(n, 1, lowered_weight.shape[0], out_h * out_w)
    if partner is None:
        return y, None
    p = partner.shape[1]
    total = parallel.summed(sums) if sums else xp.zeros((k, p), dtype=x.dtype)
    return y, total.reshape(kh, c, kw, p).transpose(3, 1, 0, 2)                   # (P, C, kh, kw), a view


# ---- the correlation alone: the padded rows, copied once ---------------------------------------
def lower_rows(x, geometry, samples, rows):
    """The row band of output rows ``rows`` of ``samples``, from the unpadded x (N, C, H, W): (A, C, M, Wp),
    A = R + kh - 1 padded rows, Wp = W + 2pw padded columns; the zeros of the padding written here."""
    w, pw = x.shape[3], geometry.padding[1]
    per_row = (samples.stop - samples.start, w + 2 * pw)
    band, inside, source = _band(get_array_module(x), x, geometry, samples, rows, per_row)
    if source is not None:
        band[inside, ..., :pw] = 0
        band[inside, ..., pw + w:] = 0
        band[inside, ..., pw:pw + w] = source
    return band


def correlate_rows(x, geometry, weight):
    """The correlation by the row band (module docstring): x (N, C, H, W), a stride-1 ``geometry``, the
    weight (O, C, kh, kw) (any strides) -> y (N, 1, O, Ho*Wo)."""
    xp = get_array_module(x)
    n, c, _, w = x.shape
    o, (kh, kw), dw, pw = weight.shape[0], geometry.kernel, geometry.dilation[1], geometry.padding[1]
    out_h, out_w = geometry.out_hw
    wp, size = w + 2 * pw, x.dtype.itemsize
    columns = xp.empty((kw, o, kh, c), dtype=weight.dtype)                   # W_j[o, i*C + c] = w[o, c, i, j]
    sliding.copy_taps(columns.transpose(1, 3, 2, 0), weight)
    columns = columns.reshape(kw, o, kh * c)
    y = xp.empty((n, o, out_h, out_w), dtype=x.dtype)

    def tile_correlation(tile):
        samples, rows = tile
        m, r = samples.stop - samples.start, rows.stop - rows.start
        band = lower_rows(x, geometry, samples, rows).reshape(-1)
        row, width = m * wp, (m - 1) * wp + out_w                               # T, and the Q columns read
        # one sample: straight into y's rows, (R, O, Wo); several: all Q columns, then y's
        out = y[samples.start, :, rows].transpose(1, 0, 2) if m == 1 else xp.empty((r, o, row), dtype=x.dtype)
        for j in range(kw):
            view = sliding.strided(band, j * dw, (r, kh * c, width), (c * row * size, row * size, size))
            gemm.matmul(columns[j], view, out=out[..., :width], accumulate=j > 0)
        if m > 1:
            y[samples, :, rows] = out.reshape(r, o, m, wp)[..., :out_w].transpose(2, 1, 0, 3)
    parallel.map_tiles(xp, tile_correlation, _plan(n, out_h, out_w, c * wp * size))
    return y.reshape(n, 1, o, out_h * out_w)
