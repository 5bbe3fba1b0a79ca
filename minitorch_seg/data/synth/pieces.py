"""What the builders make: labelled polygons (``Thing``), the details painted on them, cast shadows.

Every builder is a function of the generator and the street's layout that returns the pieces it
made, in the order it made them: ``Thing``s and ``Shadow``s, with None for a thing out of view
or a shadow on a cloudy day. ``place`` projects a thing's corners through the street's camera
and clips them to the frame; ``paint`` adds a detail (windows, lane markings, a face) to a thing
the builder has just placed: it changes the picture, never the label.

The label image is the things drawn in painter's order: by ``layer``, then from far to near
(larger ``order`` first) inside a layer, then in the order they were made.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy

from .geometry import convex_hull, integer_polygon

__all__ = ["SKY", "SKYLINE", "GROUND", "STREET_END", "PLANES", "OBJECTS", "EGO", "Thing", "Shadow", "place",
           "paint", "paint_many", "cast_shadow", "painters_order"]

# Painter's layers, drawn in this order.
SKY, SKYLINE, GROUND, STREET_END, PLANES, OBJECTS, EGO = range(7)


@dataclass(eq=False)
class Thing:
    """One annotated polygon, plus what the renderer needs to paint it."""
    label: str                # its Cityscapes label name
    polygon: list             # integer [u, v] points inside the frame
    color: numpy.ndarray      # base RGB, float64 (3,)
    layer: int                # painter's layer, SKY ... EGO
    order: float              # inside a layer, larger is drawn first (farther)
    depth: float              # metres from the camera, for the haze
    plane_x: float | None     # it lies on the plane X = plane_x: its depth follows the column
    ground: bool              # it lies on the ground: its depth follows the row
    see_through: bool = False   # a bicycle, a mesh fence: what is behind shows between its details
    details: list = field(default_factory=list)   # ("poly" | "line", [(u, v), ...], rgb, width)
    plates: list = field(default_factory=list)    # license-plate polygons: in the json after it, never drawn


class Shadow(NamedTuple):
    """A shadow cast on the ground: a polygon in pixels, darkened in the picture only."""
    polygon: list


def place(street, label, points, color, layer, order, *, hull=False, plane_x=None, ground=False, depth=None,
          projected=False):
    """A ``Thing`` from its corners in metres (in pixels if ``projected``), or None if out of view.

    ``hull``: take the convex hull of the projected points (a vehicle from its boxes);
    ``depth``: for the haze, ``order`` if None.
    """
    uv = numpy.asarray(points, numpy.float64) if projected else street.camera.project(points)
    if hull:
        uv = convex_hull(uv)
    height, width = street.size
    polygon = integer_polygon(uv, width, height)
    if polygon is None:
        return None
    return Thing(label, polygon, numpy.asarray(color, numpy.float64), layer, order, order if depth is None else depth,
                 plane_x, ground)


def paint(street, thing, points, rgb, *, line=0, projected=False):
    """Paint ``points`` (a polygon, or a polyline ``line`` pixels wide) onto ``thing`` only."""
    if thing is None:
        return
    uv = numpy.asarray(points, numpy.float64) if projected else street.camera.project(points)
    if not numpy.all(numpy.abs(uv) < 1e5):   # a point at the camera's depth: nothing sensible to draw
        return
    color = tuple(int(min(max(c, 0), 255)) for c in rgb)
    thing.details.append(("line" if line else "poly", [tuple(p) for p in uv.tolist()], color, line))


def paint_many(street, thing, polygons, colors):
    """Paint many polygons onto ``thing`` at once: ``polygons`` (n, k, 3) points, ``colors`` (n, 3)."""
    if thing is None or len(polygons) == 0:
        return
    uvs = street.camera.project(polygons).tolist()
    colors = numpy.clip(numpy.asarray(colors), 0, 255).astype(int).tolist()
    thing.details.extend(("poly", [tuple(p) for p in uv], tuple(c), 0) for uv, c in zip(uvs, colors))


def cast_shadow(street, points):
    """The ``Shadow`` of ground ``points`` in metres, or None when the sun is not out."""
    if not street.sunny:
        return None
    return Shadow([tuple(p) for p in street.camera.project(points).tolist()])


def painters_order(things):
    """``things`` sorted for drawing: by layer, far to near inside a layer, then as made."""
    order = sorted(range(len(things)), key=lambda i: (things[i].layer, -things[i].order, i))
    return [things[i] for i in order]
