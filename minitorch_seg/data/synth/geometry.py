"""Where a thing lands in the picture: a pinhole camera, and polygons clipped and rounded to pixels.

The street is laid out in metres: X to the right, Y up from the ground, Z forward, the camera at
(0, height, 0) looking along +Z. The shape helpers below return (n, 3) corner points in those
metres; ``Camera.project`` takes them to pixels, and ``integer_polygon`` turns the result into
what a ``_polygons.json`` holds: integer points inside the frame.

>>> camera = Camera(f=100.0, cx=64.0, horizon=20.0, height=1.5)
>>> camera.project([[0.0, 0.0, 10.0], [2.0, 1.5, 20.0]])   # a point on the road, one at eye height
array([[64., 35.],
       [74., 20.]])
>>> integer_polygon([(2.4, 1.0), (60.0, 1.0), (60.0, 3.6), (2.4, 3.6)], width=40, height=30)   # cut at u = 39
[[2, 1], [39, 1], [39, 4], [2, 4]]
>>> print(integer_polygon([(2.4, 1.0), (2.6, 1.2), (2.4, 1.4)], width=40, height=30))   # one pixel: no polygon
None
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy

__all__ = ["Camera", "clip", "integer_polygon", "convex_hull", "ellipse", "front_plane", "side_plane", "box", "rect_x",
           "rect_z", "ground_rect"]


class Camera(NamedTuple):
    """A pinhole at ``height`` metres above a flat ground, looking along +Z, with no roll or pitch.

    ``f``: focal length in pixels; ``cx``: the column of the vanishing point; ``horizon``: its row.
    """
    f: float
    cx: float
    horizon: float
    height: float

    def project(self, points):
        """(..., 3) points (X, Y, Z), Z > 0 -> (..., 2) pixel coordinates (u, v)."""
        p = numpy.asarray(points, numpy.float64)
        uv = numpy.empty(p.shape[:-1] + (2,))
        uv[..., 0] = self.cx + self.f * p[..., 0] / p[..., 2]
        uv[..., 1] = self.horizon + self.f * (self.height - p[..., 1]) / p[..., 2]
        return uv

    def pixels(self, metres, z):
        """How many pixels ``metres`` spans at depth ``z``."""
        return self.f * metres / z

    def min_width(self, metres, z, pixels=1.0):
        """``metres`` widened so that it spans at least ``pixels`` pixels at depth ``z``."""
        return max(metres, pixels * z / self.f)


# ---------------------------------------------------------------------------------------------
# Polygons in pixels.
# ---------------------------------------------------------------------------------------------
def clip(points, width, height):
    """Sutherland-Hodgman: the part of a polygon (a list of (u, v)) inside [0, width-1] x [0, height-1]."""
    for axis, limit, keep_above in ((0, 0.0, True), (0, width - 1.0, False), (1, 0.0, True), (1, height - 1.0, False)):
        if not points:
            return points
        out = []
        prev = points[-1]
        prev_in = prev[axis] >= limit if keep_above else prev[axis] <= limit
        for cur in points:
            cur_in = cur[axis] >= limit if keep_above else cur[axis] <= limit
            if cur_in != prev_in:   # the edge crosses the limit: keep the crossing point
                t = (limit - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
            prev, prev_in = cur, cur_in
        points = out
    return points


def integer_polygon(uv, width, height):
    """Clip, round to integer pixels, drop repeated points: a list of [u, v], or None if under 3 remain."""
    points = clip([(float(u), float(v)) for u, v in uv], width, height)
    out = []
    for u, v in points:
        p = [int(math.floor(u + 0.5)), int(math.floor(v + 0.5))]
        if not out or p != out[-1]:
            out.append(p)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out if len(out) >= 3 else None


def convex_hull(points):
    """Convex hull (Andrew's monotone chain) of (n, 2) points: a list of (u, v), counter-clockwise.

    >>> convex_hull([[0, 0], [2, 0], [1, 1], [2, 2], [0, 2]])
    [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]
    """
    pts = sorted(set(map(tuple, numpy.asarray(points, numpy.float64).tolist())))
    if len(pts) < 3:
        return pts

    def half(seq):   # one chain, keeping only left turns
        chain = []
        for p in seq:
            while len(chain) >= 2 and ((chain[-1][0] - chain[-2][0]) * (p[1] - chain[-2][1]) -
                                       (chain[-1][1] - chain[-2][1]) * (p[0] - chain[-2][0])) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(reversed(pts))
    return lower[:-1] + upper[:-1]


# ---------------------------------------------------------------------------------------------
# Shapes in metres.
# ---------------------------------------------------------------------------------------------
def ellipse(n, rx=1.0, ry=None, start=0.0, rng=None, jitter=0.0):
    """n points (a, b) on an ellipse with radii ``rx``, ``ry`` (``rx`` if None): (n, 2).

    ``jitter`` > 0 scales each radius by a factor drawn from [1 - jitter, 1 + jitter) with ``rng``.
    """
    t = start + numpy.arange(n) * (2 * math.pi / n)
    r = 1.0 + (rng.uniform(-jitter, jitter, n) if jitter else 0.0)
    return numpy.stack([rx * r * numpy.cos(t), (ry or rx) * r * numpy.sin(t)], axis=1)


def front_plane(x, y, z, local):
    """Local (a, b) metres in the plane facing the camera at depth z, offset to (x, y): (n, 3)."""
    local = numpy.asarray(local, numpy.float64)
    return numpy.column_stack([x + local[:, 0], y + local[:, 1], numpy.full(len(local), z)])


def side_plane(x, y, z, local):
    """Local (a, b) metres in the plane X = x (a runs along Z), offset to (y, z): (n, 3)."""
    local = numpy.asarray(local, numpy.float64)
    return numpy.column_stack([numpy.full(len(local), x), y + local[:, 1], z + local[:, 0]])


def box(x0, x1, y0, y1, z0, z1):
    """The 8 corners of an axis-aligned box: (8, 3)."""
    return numpy.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], numpy.float64)


def rect_x(x, y0, y1, z0, z1):
    """A rectangle on the plane X = x (a facade along the street): (4, 3)."""
    return numpy.array([[x, y0, z0], [x, y1, z0], [x, y1, z1], [x, y0, z1]], numpy.float64)


def rect_z(z, x0, x1, y0, y1):
    """A rectangle facing the camera at depth z: (4, 3)."""
    return numpy.array([[x0, y0, z], [x0, y1, z], [x1, y1, z], [x1, y0, z]], numpy.float64)


def ground_rect(x0, x1, z0, z1):
    """A rectangle on the ground (Y = 0) from X = x0 to x1 and Z = z0 to z1: (4, 3)."""
    return numpy.array([[x0, 0, z0], [x1, 0, z0], [x1, 0, z1], [x0, 0, z1]], numpy.float64)
