"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution with 16 multiplications per 2x2 outputs, not 36.

Notation: x (N, C, H, W); w (O, C, 3, 3); y (N, O, Ho, Wo), Ho = H + 2p - 2 (stride 1, dilation 1,
groups 1, any padding p). The output is cut into 2x2 tiles, T = ceil(Ho/2) * ceil(Wo/2) per image;
tile (t, u) reads the 4x4 patch d = xpad[2t : 2t+4, 2u : 2u+4] (Lavin & Gray, 2016).

In one dimension, F(2, 3): two outputs of a 3-tap filter g over four inputs d,

    y0 = d0 g0 + d1 g1 + d2 g2,      y1 = d1 g0 + d2 g1 + d3 g2          (6 multiplications)

are also y0 = m0 + m1 + m2, y1 = m1 - m2 - m3 with

    m0 = (d0 - d2) g0,   m1 = (d1 + d2)(g0 + g1 + g2)/2,   m2 = (d2 - d1)(g0 - g1 + g2)/2,   m3 = (d1 - d3) g2

(4 multiplications; the filter's sums are made once per filter, not per tile). In matrices,
y = A^T [(G g) * (B^T d)] with * elementwise:

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]     (the input transform)
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]       (the filter transform)
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]                                   (the output transform)

Nesting it in both directions gives F(2x2, 3x3): Y = A^T [(G g G^T) * (B^T d B)] A, 4x4 = 16
multiplications for 2x2 outputs where the direct sum takes 4 * 9 = 36 (2.25x fewer). Summed over
the input channels, the 16 products of each tile become 16 matrix products, one per position
(p, q) of the 4x4 transformed tile:

    M[p, q] (O, N*T) = U[p, q] (O, C) @ V[p, q] (C, N*T),   U = G w G^T,  V = B^T d B   for every tile,

and y = A^T M A, tile by tile. The transforms are additions (B^T, A^T hold only 0 and +-1), done
on whole strided views of the padded input, separably: rows first, then columns; no loop over
pixels. The 16 GEMMs are one batched ``matmul``.

The backward is the same algorithm. dL/dx is a stride-1 correlation of g with the flipped kernel
(``conv._correlate_adjoint``), so it comes here by itself. dL/dw[o, c] = sum over tiles of the
forward's adjoint: dL/dU[p, q] = sum_t dM_t[p, q] V_t[p, q]^T with dM = A g_tile A^T (the output
transform's adjoint, again additions), then dL/dw = G^T dL/dU G.

Accuracy: the transforms add and subtract inputs before the products and halve sums of taps, so
the rounding differs from the direct sum's. In float64 the two paths agree to about 1e-15 of the
largest output. In float32, against the float64 direct conv on unit-variance inputs with
He-initialised weights (16-128 channels; measured 2026-12-02, ``tests/test_winograd.py``), the
largest error was 1.7e-7 to 6.0e-7 of the largest output (im2col: 2.4e-7 to 7.2e-7), and of the
weight gradient 4.2e-7 to 9.0e-7 (im2col: 2.3e-7 to 5.4e-7).

Whether it is faster depends on the machine: ``conv.WINOGRAD_MIN_CHANNELS`` switches it on, and
says what it measured on the development machine (off by default there).
"""
from .. import parallel
from ..backend import get_array_module

# Tiles of a few tile rows each (as conv's row tiles): the transformed input V of a tile, 16 values
# per 2x2 outputs per channel, about this many bytes, so that V, the products M and the output
# stay in the cache between the transforms and the GEMMs.
TILES = parallel.Tiling(1 << 22, host_min=2, on_gpu=True)


def applies(weight_shape, stride, dilation, groups):
    """True when F(2x2, 3x3) computes this conv: a 3x3 kernel, stride 1, dilation 1, one group."""
    return tuple(weight_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1


# ---- the three transforms -----------------------------------------------------------------------
def _filter_1d(g0, g1, g2, out):
    """G g along one axis, written into out[0..3]: (g0, (g0 + g1 + g2)/2, (g0 - g1 + g2)/2, g2)."""
    xp = get_array_module(g0)
    half_outer, half_middle = (g0 + g2) * 0.5, g1 * 0.5
    out[0] = g0
    xp.add(half_outer, half_middle, out=out[1])
    xp.subtract(half_outer, half_middle, out=out[2])
    out[3] = g2
    return out


def _filter_1d_adjoint(u0, u1, u2, u3, out):
    """G^T u along one axis, written into out[0..2]: (u0 + (u1 + u2)/2, (u1 - u2)/2, (u1 + u2)/2 + u3)."""
    xp = get_array_module(u0)
    half_sum = (u1 + u2) * 0.5
    xp.add(u0, half_sum, out=out[0])
    xp.subtract(u1, u2, out=out[1])
    out[1] *= 0.5
    xp.add(half_sum, u3, out=out[2])
    return out


def filter_transform(w):
    """U = G w G^T for every (o, c): w (O, C, 3, 3) -> U (4, 4, O, C), U[p, q] the filter's share of position (p, q)."""
    xp = get_array_module(w)
    o, c = w.shape[:2]
    taps = w.transpose(2, 3, 0, 1)                                            # (i, j, O, C), a view
    rows = _filter_1d(*taps, out=xp.empty((4, 3, o, c), dtype=w.dtype))      # G along i: (p, j, O, C)
    u = xp.empty((4, 4, o, c), dtype=w.dtype)
    _filter_1d(*rows.swapaxes(0, 1), out=u.swapaxes(0, 1))                   # G along j: out[q] = u[:, q]
    return u                                                                  # (4, 4, O, C)


def _forward_1d(d0, d1, d2, d3, out):
    """B^T d along one axis, written into out[0..3]: (d0 - d2, d1 + d2, d2 - d1, d1 - d3)."""
    xp = get_array_module(d0)
    xp.subtract(d0, d2, out=out[0])
    xp.add(d1, d2, out=out[1])
    xp.subtract(d2, d1, out=out[2])
    xp.subtract(d1, d3, out=out[3])
    return out


def input_transform(phases, rows):
    """V = B^T d B for the 4x4 patch d of every tile in the tile rows ``rows``: -> V (4, 4, C, N, R, Tw).

    ``phases`` (2, 2, C, N, Th+1, Tw+1) is the padded input split by the parity of row and column
    (``_phases``): pixel 2t + i of xpad is phases[i % 2][t + i // 2], so every row i and column j
    of the tiles' patches is a contiguous slice, no stride-2 reads. Rows first: E[p] (B^T along
    rows) for both column parities at once; then the columns, for all four p at once.
    """
    xp = get_array_module(phases)
    _, _, c, n, _, tw1 = phases.shape
    r, tw = rows.stop - rows.start, tw1 - 1
    patch_rows = [phases[i % 2, :, :, :, rows.start + i // 2:rows.stop + i // 2] for i in range(4)]   # (2, C, N, R, Tw+1)
    e = _forward_1d(*patch_rows, out=xp.empty((4, 2, c, n, r, tw1), dtype=phases.dtype))   # (p, col parity, C, N, R, Tw+1)
    v = xp.empty((4, 4, c, n, r, tw), dtype=phases.dtype)
    _forward_1d(*(e[:, j % 2, ..., j // 2:j // 2 + tw] for j in range(4)), out=v.swapaxes(0, 1))   # out[q] = v[:, q]
    return v                                                                  # (4, 4, C, N, R, Tw)


def output_transform(m, out):
    """y = A^T M A for every tile: M (4, 4, O, N, R, Tw) -> out (N, O, R, 2, Tw, 2), y's tiles, written in place.

    Along q: z[p, 0] = M[p, 0] + M[p, 1] + M[p, 2], z[p, 1] = M[p, 1] - M[p, 2] - M[p, 3]; then
    along p the same, into the (a, b) pixel of every tile, out[.., 2t + a, 2u + b], both b at once.
    """
    xp = get_array_module(m)
    z = xp.empty((2,) + m.shape[:1] + m.shape[2:], dtype=m.dtype)             # (b, p, O, N, R, Tw)
    xp.add(m[:, 0], m[:, 1], out=z[0])
    z[0] += m[:, 2]
    xp.subtract(m[:, 1], m[:, 2], out=z[1])
    z[1] -= m[:, 3]
    pixels = out.transpose(3, 5, 1, 0, 2, 4)                                  # (a, b, O, N, R, Tw), a view of out
    xp.add(z[:, 0], z[:, 1], out=pixels[0])
    pixels[0] += z[:, 2]
    xp.subtract(z[:, 1], z[:, 2], out=pixels[1])
    pixels[1] -= z[:, 3]
    return out


def _output_transform_adjoint(g):
    """dM = A g A^T for every 2x2 tile of g (N, O, 2R, 2Tw) -> (4, 4, O, N, R, Tw): along each axis (g0, g0+g1, g0-g1, -g1)."""
    xp = get_array_module(g)
    n, o, h2, w2 = g.shape
    g = g.swapaxes(0, 1)                                                      # (O, N, 2R, 2Tw), a view
    rows = xp.empty((4, o, n, h2 // 2, w2), dtype=g.dtype)                     # along rows: (p, O, N, R, 2Tw)
    g0, g1 = g[:, :, 0::2], g[:, :, 1::2]
    rows[0] = g0
    xp.add(g0, g1, out=rows[1])
    xp.subtract(g0, g1, out=rows[2])
    xp.negative(g1, out=rows[3])
    dm = xp.empty((4, 4, o, n, h2 // 2, w2 // 2), dtype=g.dtype)
    c0, c1 = rows[..., 0::2], rows[..., 1::2]
    dm[:, 0] = c0
    xp.add(c0, c1, out=dm[:, 1])
    xp.subtract(c0, c1, out=dm[:, 2])
    xp.negative(c1, out=dm[:, 3])
    return dm                                                                 # (4, 4, O, N, R, Tw)


# ---- the convolution and its weight gradient ----------------------------------------------------
def _geometry(in_hw, padding):
    """Output size and tile counts: (Ho, Wo), (Th, Tw) = ceil of half of each."""
    out_hw = tuple(size + 2 * p - 2 for size, p in zip(in_hw, padding))
    return out_hw, tuple(-(-size // 2) for size in out_hw)


def _phases(x, padding, tiles_hw):
    """The padded input split by row and column parity: (2, 2, C, N, Th+1, Tw+1), [a, b, c, n, t, u] = xpad[n, c, 2t+a, 2u+b].

    xpad is x with ``padding`` zeros around it, and one more zero row (column) when the output side
    is odd, so that every tile has its 4x4 patch. Built in one pass of four strided copies; C
    before N, so that the 16 GEMMs each take the whole batch at once.
    """
    xp = get_array_module(x)
    th, tw = tiles_hw
    phases = xp.zeros((2, 2, x.shape[1], x.shape[0], th + 1, tw + 1), dtype=x.dtype)
    for a in range(2):
        for b in range(2):
            # xpad row 2t + a is x row 2t + a - ph: the first such row inside x, and where it lands
            (first_row, first_col) = ((p - parity) % 2 for p, parity in zip(padding, (a, b)))
            (t0, u0) = ((p - parity + 1) // 2 for p, parity in zip(padding, (a, b)))
            part = x[:, :, first_row::2, first_col::2].swapaxes(0, 1)     # (C, N, ., .)
            phases[a, b, :, :, t0:t0 + part.shape[2], u0:u0 + part.shape[3]] = part
    return phases


def _tiles(x, channels, tiles_hw):
    """Tiles of tile rows, [(rows,), ...], each with about ``TILES.bytes`` of transformed values."""
    row_bytes = 16 * x.shape[0] * channels * tiles_hw[1] * x.dtype.itemsize
    return parallel.tiles(get_array_module(x), TILES, tiles_hw[:1], row_bytes)


def conv3x3(x, w, padding):
    """conv2d without bias, 3x3, stride 1, by F(2x2, 3x3): x (N, C, H, W), w (O, C, 3, 3) -> (N, O, Ho, Wo)."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    o = w.shape[0]
    (out_h, out_w), (th, tw) = _geometry(x.shape[2:], padding)
    u = filter_transform(w).reshape(16, o, c)                                 # (16, O, C)
    phases = _phases(x, padding, (th, tw))                                    # (2, 2, C, N, Th+1, Tw+1)
    y = xp.empty((n, o, 2 * th, 2 * tw), dtype=x.dtype)
    y_tiles = y.reshape(n, o, th, 2, tw, 2)                                   # (N, O, Th, a, Tw, b), a view

    def tile(rows_tile):
        (rows,) = rows_tile
        r = rows.stop - rows.start
        v = input_transform(phases, rows)                                     # (4, 4, C, N, R, Tw)
        m = xp.matmul(u, v.reshape(16, c, n * r * tw))                        # (16, O, N*R*Tw): 16 GEMMs
        output_transform(m.reshape(4, 4, o, n, r, tw), y_tiles[:, :, rows])
    parallel.map_tiles(xp, tile, _tiles(x, max(c, o), (th, tw)))
    if (out_h, out_w) != (2 * th, 2 * tw):
        return xp.ascontiguousarray(y[:, :, :out_h, :out_w])
    return y                                                                  # (N, O, Ho, Wo)


def weight_gradient(x, g, padding):
    """dL/dw (O, C, 3, 3) of ``conv3x3(x, w, padding)`` for the upstream gradient g (N, O, Ho, Wo)."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    o = g.shape[1]
    (out_h, out_w), (th, tw) = _geometry(x.shape[2:], padding)
    phases = _phases(x, padding, (th, tw))                                    # (2, 2, C, N, Th+1, Tw+1)
    if (out_h, out_w) != (2 * th, 2 * tw):   # an odd output side: the tiles' extra row/column gets no gradient
        g_even = xp.zeros(g.shape[:2] + (2 * th, 2 * tw), dtype=g.dtype)
        g_even[:, :, :out_h, :out_w] = g
        g = g_even

    def tile(rows_tile):
        (rows,) = rows_tile
        r = rows.stop - rows.start
        v = input_transform(phases, rows)                                     # (4, 4, C, N, R, Tw)
        dm = _output_transform_adjoint(g[:, :, 2 * rows.start:2 * rows.stop])      # (4, 4, O, N, R, Tw)
        return dm.reshape(16, o, n * r * tw) @ v.reshape(16, c, n * r * tw).swapaxes(1, 2)   # (16, O, C)
    du = sum(parallel.map_tiles(xp, tile, _tiles(x, max(c, o), (th, tw)))).reshape(4, 4, o, c)
    rows = _filter_1d_adjoint(*du, out=xp.empty((3, 4, o, c), dtype=x.dtype))            # G^T along p: (i, q, O, C)
    grad = xp.empty((o, c, 3, 3), dtype=x.dtype)
    _filter_1d_adjoint(*rows.swapaxes(0, 1), out=grad.transpose(3, 2, 0, 1))            # G^T along q: out[j] = grad[.., :, j]
    return grad                                                               # (O, C, 3, 3)
