"""Max pool's forward kernel: each window's maximum and where it is, one comparison per kernel tap.

``window_maxima(x, windows, with_switches)`` is all ``pool.MaxPool2d`` calls. The idea, in whole
arrays, with tap(i, j) the (N, C, Ho, Wo) view of tap (i, j) of every window (``sliding.tap``)
and o = i*kw + j the tap number:

    best, arg = tap(0, 0), 0
    for o, (i, j) in enumerate(taps[1:], start=1):
        value = tap(i, j)
        better = (value > best) | isnan(value)      # strictly greater: the first maximum wins ties
        best = maximum(best, value)                 # a NaN propagates, as in torch
        arg = where(better, o, arg)

``_max_over_windows`` does exactly this, a few planes at a time (``parallel.POOL_TILES``, so the
input is read from memory once and the kh*kw passes over it hit the cache), the tiles on the host
threads, into buffers made once per call and thread (``_MaxScratch``) and reused by every tile
and tap it runs; ``_switches_from_taps`` then turns each window's tap number into torch's index
h*W + w of the input pixel.

>>> import numpy
>>> from minitorch_seg.functional.sliding import windows
>>> x = numpy.array([[[[1.0, 2.0], [0.0, -1.0]]]])
>>> y, switches = window_maxima(x, windows((2, 2), kernel_size=2, stride=2), with_switches=True)
>>> y.tolist(), switches.tolist()
([[[[2.0]]]], [[[[1]]]])
"""
import math
import threading

from .. import parallel
from ..backend import get_array_module
from .sliding import tap


def window_maxima(x, windows, with_switches):
    """(y, switches): the maximum of every window of x (N, C, H, W) and, if ``with_switches``, its
    index h*W + w in the input plane (int64), else None; both (N, C, Ho, Wo)."""
    xp = get_array_module(x)
    shape = x.shape[:2] + windows.out_hw
    y = xp.empty(shape, dtype=x.dtype)                                      # (N, C, Ho, Wo)
    switches = xp.empty(shape, dtype=xp.int64) if with_switches else None
    if x.flags.c_contiguous:        # the planes of every sample in one run: a tile may span samples
        x, y = x.reshape((1, -1) + x.shape[2:]), y.reshape((1, -1) + windows.out_hw)
        switches = None if switches is None else switches.reshape(y.shape)
    tiles = _plane_tiles(x, windows)
    scratches = threading.local()        # each host thread its own buffers, made at its first tile

    def pool_tile(tile):
        if not hasattr(scratches, "buffers"):
            scratches.buffers = _MaxScratch(x, windows, tiles[0])
        arg = _max_over_windows(x[tile], windows, y[tile], scratches.buffers)
        if with_switches:
            _switches_from_taps(arg, scratches.buffers, out=switches[tile])
    parallel.map_tiles(xp, pool_tile, tiles)
    return y.reshape(shape), None if switches is None else switches.reshape(shape)


def _plane_tiles(x, windows):
    """Index tuples (n_slice, c_slice) covering the N*C planes of x, a few padded planes each (x is
    (1, N*C, H, W) where its planes lie end to end: then a tile may hold planes of two samples)."""
    n, c = x.shape[:2]
    plane_bytes = math.prod(windows.padded_hw()) * x.dtype.itemsize
    return parallel.tiles(get_array_module(x), parallel.POOL_TILES, (n, c), plane_bytes)


def _first_inside(windows, xp, dtype):
    """Per window (Ho, Wo): the tap number i*kw + j of its first pixel inside the input, row-major.

    Torch starts each window's search there, so a window whose input pixels are all -inf still
    reports an input pixel, never the padding. Without padding it is tap 0 everywhere (None).
    Every window holds an input pixel (``pool.pool_windows`` checks).
    """
    if windows.padding == (0, 0) and windows.padded_hw() == windows.in_hw:
        return None
    firsts = []   # per axis, per window: the first kernel tap that lands inside the input
    for n, o, s, p, d, k in zip(windows.in_hw, windows.out_hw, windows.stride, windows.padding,
                                windows.dilation, windows.kernel):
        firsts.append(xp.asarray([next(i for i in range(k) if 0 <= u * s - p + i * d < n) for u in range(o)],
                                 dtype=dtype))
    return firsts[0][:, None] * windows.kernel[1] + firsts[1]      # (Ho, Wo)


def _lowest(dtype, xp):
    return -math.inf if dtype.kind == "f" else xp.iinfo(dtype).min


class _MaxScratch:
    """Buffers for one tile, reused by every tile one thread runs (a smaller last tile uses their first planes)."""

    def __init__(self, x, windows, tile):
        xp = get_array_module(x)
        planes = x[tile].shape[:2]
        out_shape = planes + windows.out_hw
        self.padded = None
        if windows.padded_hw() != windows.in_hw or windows.padding != (0, 0):
            self.padded = xp.full(planes + windows.padded_hw(), _lowest(x.dtype, xp), dtype=x.dtype)
        self.tap_dtype = xp.uint8 if len(windows.taps()) <= 256 else xp.int32
        self.first = _first_inside(windows, xp, self.tap_dtype)
        self.arg, self.step = (xp.empty(out_shape, dtype=self.tap_dtype) for _ in range(2))
        self.arg_index = xp.empty(out_shape, dtype=xp.int64)
        self.value = xp.empty(out_shape, dtype=x.dtype)
        self.better, self.is_nan = (xp.empty(out_shape, dtype=bool) for _ in range(2))
        # for _switches_from_taps: window (u, v)'s tap o is the pixel corner[u, v] + tap_step[o]
        (ho, wo), (sh, sw), (ph, pw), (dh, dw) = windows.out_hw, windows.stride, windows.padding, windows.dilation
        plane_w = windows.in_hw[1]
        self.tap_step = xp.asarray([i * dh * plane_w + j * dw for i, j in windows.taps()], dtype=xp.int64)
        self.corner = (((xp.arange(ho, dtype=xp.int64) * sh - ph) * plane_w)[:, None]
                       + (xp.arange(wo, dtype=xp.int64) * sw - pw))          # (Ho, Wo)

    def for_tile(self, buffer, planes):
        return buffer[:planes[0], :planes[1]]


def _max_over_windows(x, windows, best, scratch):
    """best[...] = the window maxima of the tile x; returns the tap number o = i*kw + j of each maximum."""
    xp = get_array_module(x)
    planes = x.shape[:2]
    value, better, is_nan, step, arg = (scratch.for_tile(b, planes) for b in
                                        (scratch.value, scratch.better, scratch.is_nan, scratch.step, scratch.arg))
    padded = x
    if scratch.padded is not None:       # the border stays -inf; only the inside is rewritten
        padded = scratch.for_tile(scratch.padded, planes)
        (ph, pw), (h, w) = windows.padding, windows.in_hw
        padded[:, :, ph:ph + h, pw:pw + w] = x

    taps = windows.taps()
    best[...] = tap(padded, windows, *taps[0])
    arg[...] = 0 if scratch.first is None else scratch.first   # where each window's search starts
    for o, (i, j) in enumerate(taps[1:], start=1):
        value[...] = tap(padded, windows, i, j)                # contiguous: compares ~8x faster
        xp.greater(value, best, out=better)
        if x.dtype.kind == "f":
            better |= xp.isnan(value, out=is_nan)
        xp.maximum(best, value, out=best)                      # NaN propagates, as in torch
        # arg = o where better: taps come in increasing order, so o exceeds every tap number
        # kept so far and a maximum does the select (much faster than a masked write).
        xp.maximum(arg, xp.multiply(better, o, out=step, dtype=scratch.tap_dtype), out=arg)
    return arg


def _switches_from_taps(arg, scratch, out):
    """Tap numbers o = i*kw + j per window -> torch's indices h*W + w (int64), written to ``out``.

    Window (u, v)'s tap (i, j) is the pixel h = u*sh - ph + i*dh, w = v*sw - pw + j*dw, so
    h*W + w = corner[u, v] + tap_step[o] with corner[u, v] = (u*sh - ph)*W + (v*sw - pw) and
    tap_step[o] = i*dh*W + j*dw.
    """
    xp = get_array_module(arg)
    index = scratch.for_tile(scratch.arg_index, arg.shape)
    index[...] = arg                     # take casts small-int indices itself, 4x slower than this
    xp.take(scratch.tap_step, index, out=out)
    out += scratch.corner
