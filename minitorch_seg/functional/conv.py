"""Convolution and transposed convolution: each one is the other's backward.

Notation: x (N, C, H, W) input; w (O, C/G, kh, kw) conv weight; G groups; stride s, padding p,
dilation d (the notes' atrous convolution: kernel taps d pixels apart); y (N, O, Ho, Wo) with
Ho = floor((H + 2p - d(kh-1) - 1)/s) + 1 (``shapes.conv_output_size``), likewise Wo.

    conv:   y[n, o, u, v] = b[o] + sum_{c, i, j} w[o, c, i, j] * xpad[n, c, u*s + i*d, v*s + j*d]

Read ``reference.conv`` first: the same conv as plain loops, and as im2col + one matrix product
built from Tensor ops (``conv2d_im2col``, which autograd differentiates). This file is that
im2col conv made fast, with the backward derived by hand. Three kernels do all the work, for
both ops:

- ``_correlate(x, w)``: the conv above, as GEMMs over the im2col columns (``sliding.all_taps``:
  each kernel tap's strided view of xpad, side by side), then one matrix product with w;
- ``_correlate_adjoint(g, w)``: its adjoint, the transposed conv: each input value spreads a copy
  of the filter, weighted by itself, into the output, summed where copies overlap (the notes'
  "copies of the filter weighted by the input"): one GEMM, then kh*kw strided adds ("col2im");
- ``_weight_gradient(x, g)``: dL/dw[o, c, i, j] = sum_{n, u, v} g[n, o, u, v] xpad[n, c, u*s+i*d, v*s+j*d].

Each goes through its work a few output rows at a time (``parallel.tiles``; ``_correlate`` a
few rows of one sample, the others of every sample): the kh*kw-fold column buffer of a whole
map is never built, and the tiles run on the host threads (``parallel.map_tiles``). On the host,
where a conv has no groups and a kernel taller than 1, at stride 1 with no dilation in height
(``mec.applies``), the columns' products come from MEC (``mec.py``) instead: only the kw
horizontal taps are copied, and each output row's GEMM finds the kernel's rows by where it starts
reading in that copy; a third of im2col's copies for a 3x3 kernel. The correlation alone at
stride 1 copies only the padded rows, and kw GEMMs per output row find the kernel's columns too
(``mec.correlate_rows``).

Conv2d uses the kernels as (forward, dL/dx, dL/dw) = (_correlate, _correlate_adjoint,
_weight_gradient); ConvTranspose2d as (_correlate_adjoint, _correlate, _weight_gradient with x and
g swapped). Where dL/dx is a correlation of g (at stride 1 for Conv2d, nearly always for
ConvTranspose2d), dL/dw comes from that correlation's own columns (its ``partner``;
``_input_and_weight_gradients``): one im2col (or MEC lowering) for the backward instead of two.

A stride-1 correlation with fewer output than input channels (in the U-Net, the first conv of each
decoder level, whose input is the skip and the upsampled map side by side) skips both: one GEMM of
every tap's weights with the unshifted input, then kh*kw adds of shifted slices
(``_correlate_shifted``; ``_use_shifted_sum`` is the rule), where MEC's row band does not apply
(on CuPy, dilated in height, with few input channels, or on the smallest batches: ``mec.applies``
and ``mec.SMALL_MAPS_MIN_PIXELS``): the row band copies less, and measured faster.

A 3x3 kernel at stride 1 can instead go through Winograd's F(2x2, 3x3) (``winograd.py``): 16
multiplications per 2x2 outputs instead of 36. ``_use_winograd`` is the dispatch rule, for
_correlate (so for dL/dx too: at stride 1 that is a correlation with the flipped kernel) and
_weight_gradient. It is off by default (``WINOGRAD_MIN_CHANNELS``): on the 2-core development
machine it did not pay, see ``benchmarks/results/2026-12-02-winograd.md``.
"""
from .. import gemm, parallel
from ..autograd import Function
from ..backend import get_array_module
from ..shapes import conv_output_size, conv_transpose_output_size, pair
from . import mec, sliding, winograd
from .norm import row_sums

# F(2x2, 3x3) for a 3x3, stride-1, dilation-1, ungrouped conv whose input and output channels are
# both at least this many; None: never (the default). Measured 2026-12-02 on the 2-core machine
# (loaded; benchmarks/results/2026-12-02-winograd.md), CPU time of forward + both gradients on the
# U-Net's shapes: 1.1-3x slower than im2col below 64 channels, 0.89-0.99x at 64-128; the whole
# U-Net step took 1406 ms of CPU with every 3x3 conv through it, 1201 with >= 64 channels, 1120
# without. Its 16 GEMMs have C, not 9C, as their inner size and ran at 0.4-0.8x the im2col GEMM's
# GFLOP/s, and its transforms (passes over 4x the input and output) cost as much as its GEMMs.
# Again on 2026-12-03 (2-core AVX-512 Xeon, its 16 GEMMs through MKL too): forward + backward
# 1.04-1.4x the default path's time with 64-128 channels in and out, 1.8-3.0x below
# (benchmarks/results/2026-12-03-xeon-limits.md).
WINOGRAD_MIN_CHANNELS = None


def _use_winograd(weight_shape, stride, dilation, groups):
    """The dispatch rule: Winograd where it applies and ``WINOGRAD_MIN_CHANNELS`` allows it."""
    return (WINOGRAD_MIN_CHANNELS is not None and winograd.applies(weight_shape, stride, dilation, groups)
            and min(weight_shape[:2]) >= WINOGRAD_MIN_CHANNELS)


# ---- the three kernels --------------------------------------------------------------------------
def _row_tiles(x, geometry, tiling=None):
    """Tiles of output rows, [(rows,), ...], each with about ``tiling.bytes`` of columns (``parallel.CONV_TILES``
    unless another tiling is given)."""
    n, c = x.shape[:2]
    kh, kw = geometry.kernel
    row_bytes = n * c * kh * kw * geometry.out_hw[1] * x.dtype.itemsize
    return parallel.tiles(get_array_module(x), tiling or parallel.CONV_TILES, geometry.out_hw[:1], row_bytes)


def _sample_row_tiles(x, geometry):
    """Tiles of one sample's output rows, [(samples, rows), ...], each with about ``parallel.CONV_TILES.bytes``
    of columns: one GEMM per tile. On the AVX-512 machine this took 18 ms off the U-Net step against
    ``_row_tiles`` (four GEMMs per tile, one per sample), in the forward and dL/dx."""
    n, c = x.shape[:2]
    kh, kw = geometry.kernel
    row_bytes = c * kh * kw * geometry.out_hw[1] * x.dtype.itemsize
    return parallel.tiles(get_array_module(x), parallel.CONV_TILES, (n,) + geometry.out_hw[:1], row_bytes)


def _columns(taps, rows, groups):
    """im2col of the output rows ``rows``: (N, G, C/G*kh*kw, R*Wo), row c*kh*kw + i*kw + j holding tap (i, j) of c.

    ``taps`` is ``sliding.all_taps`` of the padded input; one strided copy into a fresh buffer (with
    ``diagnostics.tune_host_allocator()``, as the CLI runs, that is the last tile's freed memory:
    no new pages). Where the tile's rows are already laid out as columns (a 1x1 kernel at stride 1,
    the U-Net's head: each row c is channel c's pixels), ``reshape`` returns a view, and nothing is
    copied.
    """
    n, c, kh, kw, _, out_w = taps.shape
    tile = taps[:, :, :, :, rows]                                              # (N, C, kh, kw, R, Wo), a view
    return tile.reshape(n, groups, c // groups * kh * kw, (rows.stop - rows.start) * out_w)


def _column_products(x, geometry, groups, weight=None, partner=None):
    """The products of x's im2col columns: by MEC where it applies (``mec.py``: a third of the
    copies for a 3x3 kernel, and no pad pass), else by im2col (``_im2col_products``).

    x (N, C, H, W) and its ``geometry`` (padding, output grid) give columns (N, G, K, L), K = C/G*kh*kw,
    L = Ho*Wo. Returns (y, p): with ``weight`` (O, C/G, kh, kw), any strides, y = weight @ columns,
    (N, G, O/G, L), the correlation; with ``partner`` (N, P, Ho, Wo), P a multiple of G, p = sum over
    n of columns @ partner^T, laid out as a weight (P, C/G, kh, kw), perhaps a view: a weight gradient
    (``_weight_gradient``; ``_input_and_weight_gradients`` gets both from the same columns). The other
    is None.
    """
    alone = (x.shape[0], weight.shape[0], x.shape[1]) if partner is None else None
    if mec.applies(get_array_module(x), groups, geometry, alone):
        return mec.products(x, geometry, weight, partner)
    return _im2col_products(x, geometry, groups, weight, partner)


def _im2col_products(x, geometry, groups, weight=None, partner=None):
    """``_column_products`` by im2col, a few rows of one sample at a time (``_sample_row_tiles``):
    each tile's GEMM writes its own columns of y."""
    xp = get_array_module(x)
    n, out_w = x.shape[0], geometry.out_hw[1]
    taps = sliding.all_taps(sliding.pad(x, geometry), geometry)                   # (N, C, kh, kw, Ho, Wo), a view
    if weight is not None:                                                        # (G, O/G, K)
        weight = _kernel_array(weight).reshape(groups, weight.shape[0] // groups, -1)
    y = None if weight is None else xp.empty((n,) + weight.shape[:2] + (geometry.out_hw[0] * out_w,), dtype=x.dtype)

    def tile_products(tile):
        samples, rows = tile
        columns = _columns(taps[samples], rows, groups)                           # (1, G, K, R*Wo)
        if y is not None:
            gemm.matmul(weight, columns, out=y[samples, ..., rows.start * out_w:rows.stop * out_w])
        if partner is not None:  # (1, G, K, R*Wo) @ (1, G, R*Wo, P/G): the tall operand first, which
            # OpenBLAS ran 1.2-1.7x faster than the (P/G, R*Wo) @ (R*Wo, K) product
            shared = partner[samples, :, rows].reshape(-1, groups, partner.shape[1] // groups, columns.shape[3])
            return gemm.matmul(columns, shared.swapaxes(2, 3)).sum(axis=0)
    products = parallel.map_tiles(xp, tile_products, _sample_row_tiles(x, geometry))
    if partner is None:
        return y, None
    k = x.shape[1] // groups * geometry.kernel[0] * geometry.kernel[1]
    total = parallel.summed(products) if products else xp.zeros((groups, k, partner.shape[1] // groups), dtype=x.dtype)
    return y, total.swapaxes(1, 2).reshape((partner.shape[1], x.shape[1] // groups) + tuple(geometry.kernel))


def _kernel_array(w):
    """A weight (O, C/G, kh, kw) as a C-contiguous array: w itself, or a copy made a tap at a time
    (``sliding.copy_taps``), as the flipped kernels and the gradients laid out as weights are views."""
    if w.flags.c_contiguous:
        return w
    return sliding.copy_taps(get_array_module(w).empty(w.shape, dtype=w.dtype), w)


def _correlate(x, w, stride, padding, dilation, groups, partner=None):
    """conv2d without bias (``Conv2d.forward`` adds it, ``_plus``): x (N, C, H, W), w (O, C/G, kh, kw)
    -> (N, O, Ho, Wo).

    With ``partner`` (N, P, Ho, Wo), P a multiple of G, returns (y, p), p the product of the same
    columns with the partner (``_column_products``): each tile's columns used twice before they
    are freed (``_input_and_weight_gradients``).
    """
    if partner is None and _use_winograd(w.shape, stride, dilation, groups):   # Winograd has no columns to share
        return winograd.conv3x3(x, w, padding)
    geometry = sliding.windows(x.shape[2:], w.shape[2:], stride, padding, dilation)
    if partner is None and _use_shifted_sum(x, w.shape, stride, groups, geometry):
        return _correlate_shifted(x, w, geometry)
    y, product = _column_products(x, geometry, groups, w, partner)
    y = y.reshape(x.shape[0], w.shape[0], *geometry.out_hw)                       # (N, O, Ho, Wo)
    return y if partner is None else (y, product)


# The shifted sum (``_correlate_shifted``) where a stride-1, ungrouped correlation has fewer output
# than input channels, and at most this many output channels. Measured 2026-12-02 on the 2-core
# AVX-512 Xeon, forward alone, against the im2col tiles (ms): 32 -> 16 at 4x128x256 9.0 against
# 17.2, 64 -> 32 at 4x64x128 6.2 against 10.2, 128 -> 64 at 4x32x64 5.4 against 6.8. Against MEC
# (``mec.py``), later that day, on 2 threads: 9.8 against 10.3, 6.6 against 7.6, 5.7 against 6.1;
# but with as many outputs as inputs MEC won (one thread, 4x16x128x256: 6.9 against 12.9; 32 and
# 64 channels: 7.0 against 8.3, 5.9 against 6.2), and with more outputs im2col already did. Not yet
# measured on a machine without AVX-512; 0 turns it off (for a benchmark's A/B, say).
#
# Where MEC applies (``mec.applies``: the host, no dilation in height, maps of more than 512
# pixels, or smaller ones in a batch of ``mec.SMALL_MAPS_MIN_PIXELS``) it takes these convs instead,
# on any BLAS: its row band (``mec.correlate_rows``) copies C values a pixel where the shifted sum
# writes and adds kh*kw*O, 4.5x as many for a 3x3 kernel with O = C/2. The shifted sum's wins above
# were against MEC's kw copies, before the row band.
# 2026-12-03, 2-core AVX-512 Xeon with MKL running MEC's products: the U-Net step 5.7 ms faster (20
# rounds, quartiles -10.3, -3.6). 2026-12-04, 2-core Zen 4 EPYC with OpenBLAS, forward alone, the
# two taking turns, 30 rounds (ms): 32 -> 16 at 4x128x256 13.4 against 13.9, 64 -> 32 at 4x64x128
# 7.4 against 10.9, 128 -> 64 at 4x32x64 8.5 against 9.0; at the training job's size (8x64x128)
# 6.8 against 9.3, 5.7 against 7.3, 5.7 against 5.5.
SHIFTED_SUM_MAX_OUT = 64


def _use_shifted_sum(x, weight_shape, stride, groups, geometry):
    o, c = weight_shape[:2]
    fewer_outputs = stride == (1, 1) and groups == 1 and o < c and o <= SHIFTED_SUM_MAX_OUT
    return fewer_outputs and not mec.applies(get_array_module(x), groups, geometry, (x.shape[0], o, c))


def _correlate_shifted(x, w, geometry):
    """The stride-1 correlation as one GEMM of every tap's weights with the input, then a shifted
    sum: no im2col, no padding. x (N, C, H, W), w (O, C, kh, kw) -> (N, O, Ho, Wo).

    With Z[(i, j), o, a, b] = sum_c w[o, c, i, j] x[c, a, b] (one GEMM, (kh*kw*O, C) @ (C, pixels)):

        y[o, u, v] = sum_{c,i,j} w[o, c, i, j] xpad[c, u + i*dh, v + j*dw]
                   = sum_{i,j} Z[(i, j), o, u + i*dh - ph, v + j*dw - pw],

    the terms whose pixel falls in the padding left out (they are zeros). Each tap adds its plane
    of Z, shifted by (i*dh - ph, j*dw - pw), onto the pixels of y it reaches. Where y is as wide as
    x (a "same" conv), a shift is a constant offset in both flat layouts, so each tap is one add of
    a contiguous run of whole rows (``_flat_runs``). A run shifted s columns right reads, at the
    last s columns of each output row, the first s columns of the next input row: values that no
    output reads, so they are set to zero first, and the run adds nothing there (left: the last
    -s columns of the row before). Other widths add each tap's rectangle (``_rectangles``), whose
    short strided rows NumPy adds 3x slower. The first piece that covers all of the tile is copied
    instead of added (``_shifted_sum``).

    Per output pixel the im2col path copies kh*kw*C values and multiplies by O rows; this one writes
    kh*kw*O values from a GEMM with kh*kw*O rows: less memory traffic and a taller GEMM where O <= C.
    The tiles are a few output rows of one sample (``parallel.SHIFTED_TILES`` bytes of Z), each with
    the input rows it reads.
    """
    xp = get_array_module(x)
    n, c, h, w_in = x.shape
    o, (kh, kw), (dh, dw), (ph, pw) = w.shape[0], geometry.kernel, geometry.dilation, geometry.padding
    out_h, out_w = geometry.out_hw
    taps = xp.empty((kh, kw, o, c), dtype=w.dtype)
    sliding.copy_taps(taps.transpose(2, 3, 0, 1), w)
    taps = taps.reshape(kh * kw * o, c)                                               # rows (i, j, o)
    y = xp.empty((n, o, out_h, out_w), dtype=x.dtype)
    flat = out_w == w_in and pw < w_in        # then every shift, -pw to pw, is less than a row
    shifts = [j * dw - pw for j in range(kw)]                                   # input column = output column + shift

    def tile_shifted(tile):
        samples, rows = tile
        first, last = max(0, rows.start - ph), min(h, rows.stop - 1 - ph + dh * (kh - 1) + 1)   # input rows read
        if last <= first:                                                         # every tap in the padding
            y[samples.start, :, rows] = 0
            return
        z = gemm.matmul(taps, x[samples.start, :, first:last].reshape(c, -1)).reshape(kh * kw, o, last - first, w_in)
        if not flat:
            _shifted_sum(y[samples.start, :, rows], z, _rectangles(geometry, rows, first))
            return
        planes = z.reshape(kh, kw, o, last - first, w_in)
        for j, shift in enumerate(shifts):      # the columns a run wraps into, read by no output: zero
            if 0 < shift < w_in:
                planes[:, j, :, :, :shift] = 0
            elif -w_in < shift < 0:
                planes[:, j, :, :, shift:] = 0
        runs = y.reshape(n, o, -1)[samples.start, :, rows.start * out_w:rows.stop * out_w]   # (O, R*Wo), a view
        _shifted_sum(runs, z.reshape(kh * kw, o, -1), _flat_runs(geometry, rows, first))
    row_bytes = kh * kw * o * w_in * x.dtype.itemsize
    parallel.map_tiles(xp, tile_shifted, parallel.tiles(xp, parallel.SHIFTED_TILES, (n, out_h), row_bytes))
    return y


def _shifted_sum(out, z, pieces):
    """out[target] = sum over taps of z[tap, :][source], for pieces {tap: (target, source)} (index
    tuples after the channel axis); the first piece that covers all of out is copied, not added."""
    whole = tuple(slice(0, size) for size in out.shape[1:])
    covering = next((tap for tap, (target, _) in pieces.items() if target == whole), None)
    if covering is None:
        out[...] = 0
    else:
        out[...] = z[(covering, slice(None)) + pieces.pop(covering)[1]]
    for tap, (target, source) in pieces.items():
        out[(slice(None),) + target] += z[(tap, slice(None)) + source]


def _reaches(geometry, rows):
    """(tap, down, right, u0, u1) for each tap that reaches some of the output rows ``rows`` (stride 1):
    output (u, v) reads input (u + down, v + right), down = i*dh - ph, right = j*dw - pw, and the rows
    u0 <= u < u1 read input rows inside x."""
    h, (ph, pw), (dh, dw) = geometry.in_hw[0], geometry.padding, geometry.dilation
    for tap, (i, j) in enumerate(geometry.taps()):
        down, right = i * dh - ph, j * dw - pw
        u0, u1 = max(rows.start, -down), min(rows.stop, h - down)
        if u0 < u1:
            yield tap, down, right, u0, u1


def _rectangles(geometry, rows, first):
    """The shifted sum's pieces (``_shifted_sum``) for the tile's output rows ``rows``: {tap: ((rows,
    columns), (rows, columns))}, the outputs the tap reaches (counted from the tile's first row) and
    the part of its plane of Z (input rows from ``first``) that lands on them."""
    w, out_w = geometry.in_hw[1], geometry.out_hw[1]
    pieces = {}
    for tap, down, right, u0, u1 in _reaches(geometry, rows):
        v0, v1 = max(0, -right), min(out_w, w - right)
        if v0 < v1:
            pieces[tap] = ((slice(u0 - rows.start, u1 - rows.start), slice(v0, v1)),
                           (slice(u0 + down - first, u1 + down - first), slice(v0 + right, v1 + right)))
    return pieces


def _flat_runs(geometry, rows, first):
    """The shifted sum's pieces where output and input rows are equally wide (W): each tap's rows as one
    run of flat indices, {tap: ((run in the tile's outputs,), (run in its plane of Z,))}. Output (u, v)
    reads input (u + down, v + right) at flat offset (u + down)*W + v + right: a constant offset, valid
    except where v + right leaves the row (``_correlate_shifted`` zeroes what is read there, and takes
    runs only where every shift is shorter than a row). The run starts and ends inside the plane."""
    w = geometry.in_hw[1]
    pieces = {}
    for tap, down, right, u0, u1 in _reaches(geometry, rows):
        skip_first, skip_last = max(0, -right), max(0, right)    # the run's ends that would leave Z
        start, stop = (u0 - rows.start) * w + skip_first, (u1 - rows.start) * w - skip_last
        if start < stop:
            source = (u0 + down - first) * w + right + skip_first
            pieces[tap] = ((slice(start, stop),), (slice(source, source + stop - start),))
    return pieces


def _flipped(w, groups):
    """The conv weight of the adjoint at stride 1: channels swapped in each group, kernel rotated 180 degrees.

    w (O, C/G, kh, kw) -> (C, O/G, kh, kw), w'[g*C/G + c, o, i, j] = w[g*O/G + o, c, kh-1-i, kw-1-j].
    """
    o, cg, kh, kw = w.shape
    grouped = w.reshape(groups, o // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)   # (G, C/G, O/G, kh, kw)
    return grouped[:, :, :, ::-1, ::-1].reshape(groups * cg, o // groups, kh, kw)


def _correlate_adjoint(g, w, stride, padding, dilation, groups, in_hw):
    """The transposed conv: g (N, O, Ho, Wo), w (O, C/G, kh, kw) -> (N, C, H, W) with H, W = ``in_hw``.

    At stride 1 it is itself a correlation: of g, padded by d(k-1) - p, with the flipped kernel
    (``_flipped``), and takes ``_correlate``'s tiles. At a larger stride that correlation would
    run over g with s-1 zeros put between its pixels, s*s times the work; instead, a few rows of g
    at a time: columns = w^T g gives, for each pixel (u, v) of g and tap (i, j), the amount that
    pixel sends to xpad[u*s + i*d, v*s + j*d], and col2im adds each tap's slab into that strided
    window of a zero image (``sliding.add_taps``): kh*kw strided adds, no scatter. The windows of
    neighbouring tiles overlap on the image, so these tiles run in turn, in order. Where the copies
    tile the image exactly (stride = kernel), ``_stamp_disjoint`` writes them without adds.
    """
    xp = get_array_module(g)
    n, o, out_h, out_w = g.shape
    c = w.shape[1] * groups
    kh, kw = w.shape[2:]
    full = _adjoint_padding(g.shape[2:], w.shape[2:], stride, padding, dilation, in_hw)
    if full is not None:
        return _correlate(g, _flipped(w, groups), stride, full, dilation, groups)
    geometry = sliding.Windows(tuple(in_hw), (out_h, out_w), (kh, kw), stride, padding, dilation)
    if stride == (kh, kw) and dilation == (1, 1) and padding == (0, 0) and tuple(in_hw) == (out_h * kh, out_w * kw):
        return _stamp_disjoint(g, w, groups, geometry)
    weight_t = w.reshape(groups, o // groups, -1).swapaxes(1, 2)                 # (G, K, O/G)
    g = g.reshape(n, groups, o // groups, out_h * out_w)                         # (N, G, O/G, L)
    image = xp.zeros((n, c) + geometry.padded_hw(), dtype=g.dtype)              # (N, C, Hp, Wp)
    for (rows,) in _row_tiles(image, geometry):
        r = rows.stop - rows.start
        columns = weight_t @ g[..., rows.start * out_w:rows.stop * out_w]        # (N, G, K, R*Wo)
        band = image[:, :, rows.start * stride[0]:]                              # where window row r0 starts
        sliding.add_taps(band, columns.reshape(n, c, kh, kw, r, out_w), geometry._replace(out_hw=(r, out_w)))
    (ph, pw) = padding
    return image[:, :, ph:ph + in_hw[0], pw:pw + in_hw[1]]


def _adjoint_padding(g_hw, kernel, stride, padding, dilation, in_hw):
    """The padding d(k-1) - p under which the transposed conv is a stride-1 correlation of g with the
    flipped kernel, or None where it is not one (a larger stride, p > d(k-1), an output_padding)."""
    full = tuple(d * (k - 1) - p for k, p, d in zip(kernel, padding, dilation))
    fits = tuple(in_hw) == tuple(size + f - p for size, f, p in zip(g_hw, full, padding))
    return full if stride == (1, 1) and min(full) >= 0 and fits else None


def _shares_columns(x_shape, w_shape, stride, padding, dilation, groups):
    """Whether a conv's two gradients come from one im2col: at stride 1, where dL/dx is a correlation
    (``_adjoint_padding``), and off Winograd, whose kernels do not share columns."""
    out_hw = tuple(conv_output_size(*args) for args in zip(x_shape[2:], w_shape[2:], stride, padding, dilation))
    flipped = (w_shape[1] * groups, w_shape[0] // groups) + tuple(w_shape[2:])
    on_winograd = _use_winograd(w_shape, stride, dilation, groups) or _use_winograd(flipped, stride, dilation, groups)
    return not on_winograd and _adjoint_padding(out_hw, w_shape[2:], stride, padding, dilation, x_shape[2:]) is not None


def _input_and_weight_gradients(g, x, w, padding, dilation, groups):
    """Both gradients of a stride-1 conv from one im2col: the columns of g that dL/dx is built from.

    dL/dx is the correlation of g, padded by d(k-1) - p, with the flipped kernel w' (``_flipped``).
    Its columns hold cols[(o, i', j'), (n, a, b)] = gpad[n, o, a + i'd, b + j'd] = g[n, o, a + p - id,
    b + p - jd] with i = k-1-i', so the weight gradient is a product with the same columns:

        dL/dw[o, c, i, j] = sum_{n,a,b} x[n, c, a, b] g[n, o, a + p - id, b + p - jd]
                          = sum_{n,a,b} x[n, c, a, b] cols[(o, k-1-i, k-1-j), (n, a, b)],

    i.e. (x @ cols^T) laid out as w' is: dL/dw' (C, O/G, kh, kw), which ``_flipped`` turns back
    into dL/dw. One im2col instead of two (the one of x, 9x the input, is never built), and the
    forward need only keep x. g (N, O, Ho, Wo), x (N, C, H, W), w (O, C/G, kh, kw) -> (dL/dx, dL/dw).
    """
    full = _adjoint_padding(g.shape[2:], w.shape[2:], (1, 1), padding, dilation, x.shape[2:])
    grad_x, grad_flipped = _correlate(g, _flipped(w, groups), (1, 1), full, dilation, groups, partner=x)
    return grad_x, _kernel_array(_flipped(grad_flipped, groups))


def _stamp_disjoint(g, w, groups, geometry):
    """The transposed conv whose filter copies tile the output exactly (stride = kernel, no dilation,
    padding or output_padding: the U-Net's 2x2, stride-2 upsampling).

    Each output pixel (u*kh + i, v*kw + j) receives one value, tap (i, j) of input pixel (u, v), so
    a tile of g's rows writes its GEMM's products straight to its own output rows: no zero image,
    no adds, and tiles that never overlap, so they run on the host threads. The GEMM is pixel-major,
    g^T (R*Wo, O) @ w (O, C*kh*kw), whose rows hold each input pixel's kw taps side by side, as the
    output does: where kw values make 8 bytes (kw = 2 in float32), the copy moves them as one
    uint64: one copy, where the channel-major product (C*kh*kw, O) @ (O, R*Wo) took kw copies with
    a stride of kw values. One thread alone, the pixel-major product also ran faster where O is
    small (O = 32: 1.8 against 2.8 ms). In the tiles on two threads (2-core Zen 4 EPYC, 2026-12-04,
    the two taking turns, 40 rounds) the U-Net's three upsamplings forward took 1.38, 1.60 and 2.37
    ms against 1.47, 1.68 and 2.32 (batch 4, 16x32 to 64x128 inputs), and 0.80, 0.96 and 1.32 against
    0.90, 1.00 and 1.46 at the training job's size (batch 8): a little faster, or level.
    """
    xp = get_array_module(g)
    n, o, out_h, out_w = g.shape
    c, (kh, kw) = w.shape[1] * groups, w.shape[2:]
    weight = w.reshape(groups, o // groups, -1)                                   # (G, O/G, K), K = (C/G, kh, kw)
    pixels = g.reshape(n, groups, o // groups, out_h * out_w).swapaxes(2, 3)     # (N, G, L, O/G), a view
    image = xp.empty((n, c, out_h, kh, out_w, kw), dtype=g.dtype)               # (N, C, u, i, v, j)
    pair = xp.uint64 if kw * g.dtype.itemsize == 8 else None                    # a pixel's kw taps, one unit

    def stamp_tile(tile):
        (rows,) = tile
        r = rows.stop - rows.start
        taps = pixels[:, :, rows.start * out_w:rows.stop * out_w] @ weight       # (N, G, R*Wo, K)
        taps = taps.reshape(n, groups, r, out_w, c // groups, kh, kw)            # (N, G, u, v, C/G, i, j)
        out = image[:, :, rows].reshape(n, groups, c // groups, r, kh, out_w, kw)   # (N, G, C/G, u, i, v, j), a view
        if pair is not None:
            out.view(pair)[..., 0] = taps.view(pair)[..., 0].transpose(0, 1, 4, 2, 5, 3)
        else:
            for j in range(kw):
                out[..., j] = taps[..., j].transpose(0, 1, 4, 2, 5, 3)
    parallel.map_tiles(xp, stamp_tile, _row_tiles(image, geometry, parallel.STAMP_TILES))
    return image.reshape(n, c, out_h * kh, out_w * kw)                           # (N, C, H, W)


def _weight_gradient(x, g, kernel, stride, padding, dilation, groups):
    """dL/dw (O, C/G, kh, kw) = sum over n, u, v of g[n, o, u, v] * (tap (i, j) of x)[n, c, u, v]:
    x's im2col columns times g (``_column_products`` with g as the partner)."""
    if _use_winograd((g.shape[1], x.shape[1] // groups) + tuple(kernel), stride, dilation, groups):
        return winograd.weight_gradient(x, g, padding)
    geometry = sliding.Windows(tuple(x.shape[2:]), tuple(g.shape[2:]), tuple(kernel), stride, padding, dilation)
    _, product = _column_products(x, geometry, groups, partner=g)                 # (O, C/G, kh, kw)
    return _kernel_array(product)


def _bias_gradient(g):
    """dL/db[o] = sum over n, u, v of g[n, o, u, v]: each (n, o) row of g summed (``norm.row_sums``),
    then the rows of each o. NumPy's g.sum(axis=(0, 2, 3)) took 0.39 ms at (4, 16, 128, 256) where
    the row sums take 0.13, as accurate (a few 1e-7 of the sum in float32)."""
    if g.strides[3] != g.itemsize or g.strides[2] != g.shape[3] * g.itemsize:
        return g.sum(axis=(0, 2, 3))                   # rows that reshape would copy
    return row_sums(g.reshape(g.shape[0], g.shape[1], g.shape[2] * g.shape[3])).sum(axis=0)   # a view


def _plus(y, bias):
    """y += bias (C,) along y (N, C, H, W)'s channels unless bias is None: one pass by the caller after
    the conv's tiles. Added inside the tiles that write y instead (im2col's, the stamp's), it measured
    level on a 2-core Zen 4 EPYC (the U-Net's head and upsamplings, forward, 40 rounds taking turns:
    +0.01, +0.08, -0.01 and -0.11 ms), so it stays here, one add for every path. Split in runs of
    samples between the two host threads it took longer (0.31 against 0.28 ms at (4, 19, 128, 256),
    0.23 against 0.09 at (4, 32, 64, 128)), as did the bias gradient's sums (``_bias_gradient``)."""
    if bias is not None:
        y += bias.reshape(-1, 1, 1)
    return y


# ---- the two Functions --------------------------------------------------------------------------
class Conv2d(Function):
    """y = conv(x, w) + b, the formula in the module docstring.

    Backward, from y[n,o,u,v] = sum_{c,i,j} w[o,c,i,j] xpad[n,c,u*s+i*d,v*s+j*d]:
    - dL/dxpad[n,c,a,b] = sum of g[n,o,u,v] w[o,c,i,j] over all (o,u,v,i,j) with u*s+i*d = a and
      v*s+j*d = b: every output gradient sends a weighted copy of the filter back, i.e. the
      *transposed* convolution of g with the same w (``_correlate_adjoint``); crop the padding.
    - dL/dw[o,c,i,j] = sum_{n,u,v} g[n,o,u,v] xpad[n,c,u*s+i*d,v*s+j*d] (``_weight_gradient``);
      at stride 1, where the first is a correlation of g, from that correlation's own columns
      (``_input_and_weight_gradients``).
    - dL/db[o] = sum_{n,u,v} g[n,o,u,v].
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        # The backward keeps x where both gradients come from one im2col or MEC lowering of g
        # (``_input_and_weight_gradients``), and the forward reads x unpadded: MEC writes the
        # border's zeros in its tiles, the shifted sum leaves the border out, im2col pads.
        # Where only one gradient is wanted, it keeps the padded input, which the weight gradient
        # reads (a border wider than x: 3% at 128x256, 6% at 16x32, for one pass less). Where neither
        # is (evaluation, or the bias alone), it keeps nothing and reads x unpadded too: the U-Net's
        # forward in evaluation, a batch of 8 at 64x128, took 53.2 ms against 56.5 with the pad copies.
        ctx.params, ctx.in_hw = (stride, padding, dilation, groups), x.shape[2:]
        ctx.shared = all(ctx.needs_input_grad[:2]) and _shares_columns(x.shape, weight.shape, *ctx.params)
        if ctx.shared or not any(ctx.needs_input_grad[:2]):
            ctx.save_for_backward(*((x, weight) if ctx.shared else (None, None)))
            return _plus(_correlate(x, weight, stride, padding, dilation, groups), bias)
        padded = sliding.pad(x, sliding.windows(x.shape[2:], weight.shape[2:], stride, padding, dilation))
        ctx.save_for_backward(padded, weight)
        return _plus(_correlate(padded, weight, stride, (0, 0), dilation, groups), bias)

    @staticmethod
    def backward(ctx, g):
        saved, weight = ctx.saved_arrays
        stride, padding, dilation, groups = ctx.params
        need_x, need_w, need_b = ctx.needs_input_grad
        if ctx.shared:
            grad_x, grad_w = _input_and_weight_gradients(g, saved, weight, padding, dilation, groups)
        else:
            grad_x = _correlate_adjoint(g, weight, stride, padding, dilation, groups, ctx.in_hw) if need_x else None
            grad_w = _weight_gradient(saved, g, weight.shape[2:], stride, (0, 0), dilation, groups) if need_w else None
        grad_b = _bias_gradient(g) if need_b else None
        return grad_x, grad_w, grad_b


class ConvTranspose2d(Function):
    """y = conv_transpose(x, w) + b: the adjoint of conv2d, weight (C_in, C_out/G, kh, kw) as torch.

    Shapes: x (N, C_in, H, W) -> y (N, C_out, Ho, Wo), Ho = (H-1)s - 2p + d(kh-1) + output_padding + 1
    (``shapes.conv_transpose_output_size``). Forward: y = _correlate_adjoint(x, w), i.e. each input
    value places a copy of the filter, weighted by itself, s pixels apart; overlaps add; the
    padding p crops the border (the notes' "crop to exactly 2x": k=2, s=2, p=0 or k=4, s=2, p=1).

    Backward: y = A x for the linear map A = conv^T, so dL/dx = A^T g = conv(g, w): the forward
    convolution with the same weight, read as a conv weight (O = C_in, C/G = C_out/G).
    dL/dw is conv's weight gradient with the roles of input and output swapped:
    dL/dw[c_in, c_out, i, j] = sum_{n,u,v} x[n, c_in, u, v] gpad[n, c_out, u*s+i*d, v*s+j*d],
    and gpad[n, c_out, u*s+i*d, v*s+j*d] is row (c_out, i, j), column (n, u, v) of that conv's
    im2col columns: both gradients come from one im2col of g (``_correlate``'s partner), unless an
    output_padding left rows of g that no input reached.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, dilation, groups):
        out_hw = tuple(conv_transpose_output_size(size, k, s, p, op, d) for size, k, s, p, op, d in
                       zip(x.shape[2:], weight.shape[2:], stride, padding, output_padding, dilation))
        ctx.params = (stride, padding, dilation, groups)
        ctx.save_for_backward(x, weight)
        return _plus(_correlate_adjoint(x, weight, stride, padding, dilation, groups, out_hw), bias)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_arrays
        stride, padding, dilation, groups = ctx.params
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x, grad_w = None, None
        out_hw = tuple(conv_output_size(*sizes) for sizes in zip(g.shape[2:], weight.shape[2:], *ctx.params[:3]))
        shared = out_hw == x.shape[2:] and not _use_winograd(weight.shape, stride, dilation, groups)
        if need_x and need_w and shared:
            # dL/dw from dL/dx's own columns of g: the conv weight gradient above, its partner x
            grad_x, grad_w = _correlate(g, weight, stride, padding, dilation, groups, partner=x)
            grad_w = _kernel_array(grad_w)
        else:
            if need_x:  # an output_padding of at least the stride adds rows no input reached: crop them
                grad_x = _correlate(g, weight, stride, padding, dilation, groups)[:, :, :x.shape[2], :x.shape[3]]
            grad_w = _weight_gradient(g, x, weight.shape[2:], stride, padding, dilation, groups) if need_w else None
        grad_b = _bias_gradient(g) if need_b else None
        return grad_x, grad_w, grad_b


# ---- public functions ---------------------------------------------------------------------------
def _check(name, x, weight, bias, groups, in_channels, out_channels):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D (N, C, H, W) input, got shape {x.shape}.")
    if weight.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D weight, got shape {weight.shape}.")
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(f"{name}: {in_channels} input and {out_channels} output channels must both be divisible "
                         f"by groups={groups}.")
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"{name}: bias must have shape ({out_channels},), got {bias.shape}.")
    for other in (weight, bias):  # as torch: no silent promotion inside the GEMMs
        if other is not None and other.dtype != x.dtype:
            raise TypeError(f"{name}: input is {x.dtype} but {'weight' if other is weight else 'bias'} is "
                            f"{other.dtype}; cast one of them with .to(...) first.")


def _check_geometry(name, size, kernel, stride, padding, dilation):
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{name}: stride and dilation must be positive, got stride={stride}, dilation={dilation}.")
    if min(padding) < 0:
        raise ValueError(f"{name}: padding must be non-negative, got {padding}.")
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    padded = tuple(n + 2 * p for n, p in zip(size, padding))
    if any(s > n for s, n in zip(spans, padded)):
        raise ValueError(f"{name}: the {kernel[0]}x{kernel[1]} kernel with dilation {dilation} spans {spans[0]}x{spans[1]} "
                         f"pixels, more than the padded input's {padded[0]}x{padded[1]}.")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as torch), NCHW; ``padding`` may be an int, a pair, "valid" or "same".

    >>> import minitorch_seg as mt
    >>> x = mt.ones(1, 1, 4, 4)
    >>> conv2d(x, mt.ones(1, 1, 3, 3), padding=1)[0, 0].tolist()
    [[4.0, 6.0, 6.0, 4.0], [6.0, 9.0, 9.0, 6.0], [6.0, 9.0, 9.0, 6.0], [4.0, 6.0, 6.0, 4.0]]
    """
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    _check("conv2d", input, weight, bias, groups, input.shape[1] if input.ndim == 4 else 0, weight.shape[0])
    if input.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"conv2d: input has {input.shape[1]} channels but weight {weight.shape} with groups={groups} "
                         f"expects {weight.shape[1] * groups}.")
    if isinstance(padding, str):
        input, padding = _string_padding(input, padding, weight.shape[2:], stride, dilation)
    padding = pair(padding, "padding")
    _check_geometry("conv2d", input.shape[2:], weight.shape[2:], stride, padding, dilation)
    return Conv2d.apply(input, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


def _string_padding(input, padding, kernel, stride, dilation):
    """"valid" is no padding; "same" pads d(k-1) in total, the extra pixel of an even total on the right/bottom."""
    if padding == "valid":
        return input, (0, 0)
    if padding != "same":
        raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}.")
    if stride != (1, 1):
        raise ValueError("conv2d: padding='same' is only supported with stride 1, as in torch.")
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    if all(t % 2 == 0 for t in totals):
        return input, (totals[0] // 2, totals[1] // 2)
    from .movement import pad
    (th, tw) = totals
    return pad(input, (tw // 2, tw - tw // 2, th // 2, th - th // 2)), (0, 0)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution (the adjoint of conv2d; "deconvolution"), weight (C_in, C_out/G, kh, kw).

    >>> import minitorch_seg as mt
    >>> x = mt.tensor([[[[1.0, 2.0]]]])                   # (1, 1, 1, 2)
    >>> conv_transpose2d(x, mt.ones(1, 1, 2, 2), stride=2)[0, 0].tolist()   # copies of the filter, weighted
    [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]]
    """
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    output_padding, dilation = pair(output_padding, "output_padding"), pair(dilation, "dilation")
    out_channels = weight.shape[1] * groups if weight.ndim == 4 else 0
    _check("conv_transpose2d", input, weight, bias, groups, weight.shape[0], out_channels)
    if input.shape[1] != weight.shape[0]:
        raise ValueError(f"conv_transpose2d: input has {input.shape[1]} channels but weight {weight.shape} expects "
                         f"{weight.shape[0]}.")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0 or min(output_padding) < 0:
        raise ValueError(f"conv_transpose2d: stride and dilation must be positive and padding, output_padding "
                         f"non-negative, got stride={stride}, padding={padding}, output_padding={output_padding}, "
                         f"dilation={dilation}.")
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be smaller than stride {stride} "
                         f"or dilation {dilation}.")
    out_hw = [conv_transpose_output_size(n, k, s, p, op, d) for n, k, s, p, op, d in
              zip(input.shape[2:], weight.shape[2:], stride, padding, output_padding, dilation)]
    if min(out_hw) < 1:
        raise ValueError(f"conv_transpose2d: padding {padding} crops the {input.shape[2:]} input to an empty output.")
    return ConvTranspose2d.apply(input, weight, bias, stride=stride, padding=padding, output_padding=output_padding,
                                 dilation=dilation, groups=groups)
