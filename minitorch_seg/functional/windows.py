"""Windows for Swin attention: partition and reverse, the shifted-window mask, the relative position bias.

Why windows. Global self-attention over a map of L tokens costs L^2: at 1/4 of a 512x1024 image
that is 32768^2 = 10^9 scores per head. Large tokens (patches) make L small but the segmentation
coarse; small tokens make it fine but unaffordable. Swin (Liu et al., 2021) keeps the tokens
small and lets each attend only inside its own Wh x Ww window: L/N windows of N = Wh*Ww tokens
cost L*N, linear in L. Alternate blocks shift the window grid by half a window, so information
crosses window borders from one block to the next.

Notation (the paper's): a channels-last map x (B, H, W, C); a window of Wh x Ww tokens, N = Wh*Ww;
nW = (H/Wh)(W/Ww) windows per image; windows ordered batch-major: window w of image b is row
b*nW + w. Window sizes and shifts are an int or a (Wh, Ww) pair everywhere.

The pieces, in the order a Swin block uses them:

- ``window_partition`` / ``window_reverse``: (B, H, W, C) <-> (B*nW, N, C), pure reshapes and one
  permute (their backward is derived by autograd: each is the other's inverse movement).
- The cyclic shift is ``F.roll(x, (-sh, -sw), (1, 2))`` before partitioning, undone by
  ``F.roll(x, (sh, sw), (1, 2))`` after reversing. Rolling brings the bottom and right edges
  next to the top and left ones, so some windows now hold tokens that were not neighbours;
  ``window_mask`` marks those pairs.
- ``window_mask``: the additive attention mask (nW, N, N), 0 where query i may attend to key j,
  ``mask_value(dtype)`` where it may not: across shift regions and, only with
  ``mask_padding=True`` (unlike the official code), onto padded keys when the map was padded up
  to a multiple of the window. Built once per resolution on the host, then moved.
- ``relative_position_index`` and ``relative_position_bias``: the learnable table
  ((2Wh-1)(2Ww-1), heads) holds one bias per relative offset (dy, dx); the fixed index gathers it
  into (heads, N, N); the gather's backward scatter-adds into the table.

As the official segmentation backbone: a map that is not a multiple of the window is zero-padded
up to one (``padded_size``), also when it is smaller than the window, and the window and the
shift stay the same at every resolution; the padded tokens are keys like any other (only the
shift regions are masked) unless ``mask_padding=True``. Unlike the official code: the mask and
the index are not fixed at construction; they are computed per resolution (and cached), because
segmentation feeds maps of many sizes. The mask value is a large finite negative, not -100 (see
``mask_value``).

>>> import minitorch_seg as mt
>>> x = mt.arange(16.0).reshape(1, 4, 4, 1)                    # (B, H, W, C)
>>> windows = window_partition(x, 2)                           # (B*nW, Wh*Ww, C)
>>> windows.shape, windows[0, :, 0].tolist()                   # the top-left 2x2 window
((4, 4, 1), [0.0, 1.0, 4.0, 5.0])
>>> window_reverse(windows, 2, 4, 4).numpy().ravel().tolist() == list(range(16))
True
"""
import functools

import numpy

from .. import backend
from ..autograd import Function
from ..backend import get_array_module, scatter_add
from ..shapes import pair
from .movement import permute, reshape


# ---- partition and reverse ------------------------------------------------------------------
def window_partition(x, window_size):
    """Cut a channels-last map into non-overlapping windows.

    Args:
        x: (B, H, W, C), with H a multiple of Wh and W a multiple of Ww (pad first otherwise).
        window_size: an int or a (Wh, Ww) pair.
    Returns:
        windows: (B*nW, Wh*Ww, C), nW = (H/Wh)(W/Ww), batch-major (window w of image b is row
        b*nW + w; windows in raster order), the tokens of each window in raster order.
    """
    wh, ww = pair(window_size, "window_size")
    if x.ndim != 4:
        raise ValueError(f"window_partition expects a channels-last map (B, H, W, C), got shape {x.shape}.")
    b, h, w, c = x.shape
    if h % wh or w % ww:
        raise ValueError(f"window_partition: the map {h}x{w} is not a multiple of the window {wh}x{ww}; "
                         "pad it up first (F.pad).")
    x = reshape(x, (b, h // wh, wh, w // ww, ww, c))       # (B, H/Wh, Wh, W/Ww, Ww, C)
    x = permute(x, (0, 1, 3, 2, 4, 5))                     # (B, H/Wh, W/Ww, Wh, Ww, C)
    return reshape(x, (-1, wh * ww, c))                    # (B*nW, Wh*Ww, C)


def window_reverse(windows, window_size, H, W):  # noqa: N803 - the paper's names
    """Put windows back into a map: the inverse of ``window_partition``.

    Args:
        windows: (B*nW, Wh*Ww, C), batch-major, as ``window_partition`` makes them.
        window_size: an int or a (Wh, Ww) pair.
        H, W: the map's size, multiples of Wh and Ww.
    Returns:
        x: (B, H, W, C).
    """
    wh, ww = pair(window_size, "window_size")
    if windows.ndim != 3 or windows.shape[1] != wh * ww:
        raise ValueError(f"window_reverse expects windows (B*nW, {wh * ww}, C) for a {wh}x{ww} window, "
                         f"got shape {windows.shape}.")
    if H % wh or W % ww or windows.shape[0] % ((H // wh) * (W // ww)):
        raise ValueError(f"window_reverse: {windows.shape[0]} windows of {wh}x{ww} do not tile whole "
                         f"{H}x{W} maps.")
    c = windows.shape[2]
    x = reshape(windows, (-1, H // wh, W // ww, wh, ww, c))  # (B, H/Wh, W/Ww, Wh, Ww, C)
    x = permute(x, (0, 1, 3, 2, 4, 5))                       # (B, H/Wh, Wh, W/Ww, Ww, C)
    return reshape(x, (-1, H, W, c))                         # (B, H, W, C)


def padded_size(H, W, window_size):  # noqa: N803
    """(Hp, Wp): H and W rounded up to multiples of the window."""
    wh, ww = pair(window_size, "window_size")
    return H + (-H) % wh, W + (-W) % ww


# ---- the attention mask ---------------------------------------------------------------------
def mask_value(dtype):
    """The additive mask's "may not attend" value for ``dtype``: -finfo(dtype).max / 4.

    Why this number: softmax subtracts the row maximum and exponentiates, so a masked score
    s + mask_value - max is about -10^37 (float32) or -10^307 (float64), and its exp underflows
    to exactly 0: masked keys get exactly zero weight, so the outputs cannot depend on them (the
    official -100 only makes them small: e^-100 ~ 4e-44 is not 0 in float64). It is finite, so
    a row whose keys are all masked (only padded queries can have one) has a finite maximum and
    gives finite weights; -inf would give -inf - (-inf) = NaN. A quarter of the largest float
    leaves room to add scores, a bias and even a second mask without overflowing to -inf.
    """
    return -numpy.finfo(dtype).max / 4


def window_mask(H, W, window_size, shift_size=0, dtype="float64", mask_padding=False):  # noqa: N803
    """The additive attention mask of an H x W map cut into (shifted) windows; host NumPy.

    The map is padded up to Hp x Wp (multiples of the window; ``padded_size``) and rolled by
    (-sh, -sw). Each token gets a region label: after the roll, the last Wh rows hold rows from
    the top (wrapped) and from the bottom, so rows split into three bands, [0, Hp-Wh),
    [Hp-Wh, Hp-sh), [Hp-sh, Hp) (the official slices; the first is empty when Hp = Wh),
    likewise columns, 9 regions in all (1 with no shift). Query i may attend to key j when both
    are in the same region, as in the official code, which lets every query attend to the padded
    keys of its region. With ``mask_padding=True`` (unlike the official code) padded keys are
    blocked too, so outputs at real tokens do not depend on the padding.

    Returns:
        (nW, N, N) array of ``dtype``: 0 where query i of window w may attend to key j, and
        ``mask_value(dtype)`` where not. All zeros when there is no shift (and no padding masked).

    >>> m = window_mask(4, 4, 2, 1)            # the 4x4 map shifted by 1: four 2x2 windows
    >>> (m[3] == 0).astype(int)                # the last window mixes 4 regions: each token alone
    array([[1, 0, 0, 0],
           [0, 1, 0, 0],
           [0, 0, 1, 0],
           [0, 0, 0, 1]])
    >>> bool((window_mask(4, 4, 2, 0) == 0).all())
    True
    >>> (window_mask(1, 3, 2, 0, mask_padding=True)[1] == 0).astype(int)   # the right window: one real key
    array([[1, 0, 0, 0],
           [1, 0, 0, 0],
           [1, 0, 0, 0],
           [1, 0, 0, 0]])
    """
    from ..tensor import Tensor

    window, shift = pair(window_size, "window_size"), pair(shift_size, "shift_size")
    for n, s in zip(window, shift):
        if not 0 <= s < n:
            raise ValueError(f"shift_size {shift} must be in [0, window_size) per axis, window {window}.")
    hp, wp = padded_size(H, W, window)
    region = numpy.zeros((hp, wp), dtype=numpy.int64)
    bands = []
    for n, size, s in ((hp, window[0], shift[0]), (wp, window[1], shift[1])):
        edges = [0, n - size, n - s, n] if s else [0, n]
        bands.append([slice(a, b) for a, b in zip(edges, edges[1:])])
    label = 0
    for rows in bands[0]:
        for cols in bands[1]:
            region[rows, cols] = label
            label += 1
    region_windows = window_partition(Tensor(region[None, :, :, None]), window).data[..., 0]   # (nW, N)
    blocked = region_windows[:, :, None] != region_windows[:, None, :]   # (nW, N, N): query i, key j
    if mask_padding:
        padded = numpy.zeros((hp, wp), dtype=bool)
        padded[H:, :] = True
        padded[:, W:] = True
        padded = numpy.roll(padded, (-shift[0], -shift[1]), axis=(0, 1))   # where the padding lands after the roll
        padded_windows = window_partition(Tensor(padded[None, :, :, None]), window).data[..., 0]   # (nW, N)
        blocked |= padded_windows[:, None, :]                            # padded keys, for every query
    return numpy.where(blocked, mask_value(dtype), 0.0).astype(dtype)


@functools.lru_cache(maxsize=64)
def cached_window_mask(H, W, window_size, shift_size, dtype, backend_name, mask_padding=False):  # noqa: N803
    """``window_mask`` on backend ``backend_name``, built once per (resolution, window, shift,
    dtype, backend, mask_padding); None when nothing is masked (no shift, and no padding masked),
    so attention skips it.

    The returned array is shared by every caller: read it, never write it.
    """
    host = window_mask(H, W, window_size, shift_size, dtype, mask_padding)
    if not host.any():
        return None
    host.setflags(write=False)
    return backend.to_backend(host, backend_name)


# ---- relative position bias -----------------------------------------------------------------
def relative_position_index(window_size, table_size=None):
    """The fixed (N, N) index into the relative position bias table; host NumPy int64.

    Query i at (y_i, x_i) and key j at (y_j, x_j) of one window are (dy, dx) = (y_i - y_j,
    x_i - x_j) apart, dy in [-(Wh-1), Wh-1], dx in [-(Ww-1), Ww-1]: (2Wh-1)(2Ww-1) offsets, one
    table row each, row (dy + Th - 1)(2Tw - 1) + (dx + Tw - 1) (the official formula).

    ``table_size`` (default: the window) is the window the table was made for. A smaller
    window reads the rows of its own offsets, the centre of the table, so a bias means the same
    offset in both (the classification code's rule for small maps shrinks the window so).

    >>> relative_position_index(2)             # 2x2 window: 9 offsets, (0, 0) is row 4
    array([[4, 3, 1, 0],
           [5, 4, 2, 1],
           [7, 6, 4, 3],
           [8, 7, 5, 4]])
    """
    wh, ww = pair(window_size, "window_size")
    th, tw = pair(table_size if table_size is not None else window_size, "table_size")
    if wh > th or ww > tw:
        raise ValueError(f"relative_position_index: a {wh}x{ww} window needs offsets the table of a "
                         f"{th}x{tw} window does not have.")
    coords = numpy.stack(numpy.meshgrid(numpy.arange(wh), numpy.arange(ww), indexing="ij"))  # (2, Wh, Ww)
    coords = coords.reshape(2, wh * ww)                                                      # (2, N)
    relative = coords[:, :, None] - coords[:, None, :]                                       # (2, N, N)
    return (relative[0] + th - 1) * (2 * tw - 1) + (relative[1] + tw - 1)                    # (N, N)


@functools.lru_cache(maxsize=64)
def cached_relative_position_index(window_size, table_size, backend_name):
    """``relative_position_index`` flattened to (N*N,), on ``backend_name``, built once."""
    host = relative_position_index(window_size, table_size).reshape(-1)
    host.setflags(write=False)
    return backend.to_backend(host, backend_name)


class RelativePositionBias(Function):
    """Gather the bias table into per-head attention biases: bias[h, i, j] = table[index[i, j], h].

    Notation: table (T, heads), T = (2Th-1)(2Tw-1); index (N*N,) of ints in [0, T), the
    flattened ``relative_position_index``. Shapes: table (T, heads) -> bias (heads, N, N).

    Forward: rows = table[index] (N*N, heads), transposed and reshaped to (heads, N, N).

    Backward: the gather copies row t of the table to every pair (i, j) with index[i, j] = t
    (all pairs at the same offset; up to N of them), so by the chain rule for fan-out
        dL/dtable[t, h] = sum over (i, j) with index[i, j] = t of g[h, i, j]:
    a scatter-add of g's rows into a zero table (``backend.scatter_add``: numpy.add.at on the
    host, cupyx.scatter_add on the GPU). Measured for window 8, 4 heads (4096 rows into 225):
    add.at 0.2 ms, a one-hot (T, N*N) matmul 0.3 ms, bincount per head 0.03 ms; all negligible
    beside the attention itself, so the plain scatter-add stays.
    """

    @staticmethod
    def forward(ctx, table, index, size):
        heads = table.shape[1]
        ctx.index, ctx.shape = index, table.shape
        rows = table[index]                                    # (N*N, heads)
        return rows.T.reshape(heads, size, size)               # (heads, N, N)

    @staticmethod
    def backward(ctx, g):
        heads = g.shape[0]
        rows = g.reshape(heads, -1).T                          # (N*N, heads)
        grad = get_array_module(g).zeros(ctx.shape, dtype=g.dtype)
        scatter_add(grad, ctx.index, rows)
        return grad


def relative_position_bias(table, window_size, table_size=None):
    """The (heads, N, N) relative position bias of a window, gathered from ``table``.

    Args:
        table: ((2Th-1)(2Tw-1), heads), the learnable ``relative_position_bias_table``.
        window_size: the window attended over (an int or a pair).
        table_size: the window the table was made for (default: ``window_size``).
    """
    wh, ww = pair(window_size, "window_size")
    th, tw = pair(table_size if table_size is not None else window_size, "table_size")
    rows = (2 * th - 1) * (2 * tw - 1)
    if table.ndim != 2 or table.shape[0] != rows:
        raise ValueError(f"relative_position_bias: the table for a {th}x{tw} window must be ({rows}, heads), "
                         f"got shape {table.shape}.")
    index = cached_relative_position_index((wh, ww), (th, tw), table.backend)
    return RelativePositionBias.apply(table, index=index, size=wh * ww)
