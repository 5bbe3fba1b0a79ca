"""One street scene: lay out the street, run the builders in order, then rasterize and render.

Every stage draws from the one generator in a fixed order, so a seed gives the same bytes: a new
stage, or a new draw inside one, changes every scene after it (bump ``GENERATOR_VERSION``).
"""
from __future__ import annotations

from collections import namedtuple

import numpy

from ..labels import label_ids_to_colors
from ..render import rasterize, render_picture
from .buildings import facades, street_end
from .furniture import furniture
from .ground import ground, sky, skyline
from .palette import city_style
from .people import people
from .pieces import Shadow, Thing, painters_order
from .street import plan_street
from .traffic import ego, traffic

__all__ = ["Scene", "compose", "render_scene"]

Scene = namedtuple("Scene", ["image", "label_ids", "instance_ids", "color", "annotation"])
Scene.__doc__ = """One generated frame: image uint8 (H, W, 3), label_ids uint8 (H, W), instance_ids
uint16 (H, W) (id * 1000 + k for instance classes), color uint8 (H, W, 4) as ``_gtFine_color.png``,
and annotation, the ``_polygons.json`` dict."""


def compose(rng, size, style):
    """Lay out a street and build it: (street, things in painter's order, shadow polygons in pixels)."""
    street = plan_street(rng, size, style)
    pieces = sky(street) + skyline(rng, street)
    on_ground, street = ground(rng, street)   # the street now knows its side streets and crosswalk
    pieces += on_ground
    for stage in (street_end, facades, furniture, traffic, people, ego):
        pieces += stage(rng, street)
    things = painters_order([p for p in pieces if isinstance(p, Thing)])
    shadows = [p.polygon for p in pieces if isinstance(p, Shadow)]
    return street, things, shadows


def render_scene(rng, size=(128, 256), style=None):
    """One street scene drawn from ``rng``: a ``Scene`` (image, labels, instances, colours, polygons).

    ``size``: (height, width) in pixels; ``style``: a ``CityStyle`` (drawn from ``rng`` if None).
    """
    style = city_style(rng) if style is None else style
    street, things, shadows = compose(rng, size, style)
    objects = []
    for t in things:
        objects.append({"label": t.label, "polygon": t.polygon})
        objects.extend({"label": "license plate", "polygon": p} for p in t.plates)
    annotation = {"imgHeight": int(size[0]), "imgWidth": int(size[1]), "objects": objects}
    label_ids, instance_ids, index = rasterize(annotation)
    # ``rasterize`` skips only the license plates, which are not things: its object i is things[i - 1]
    image = render_picture(rng, things, index, street.camera, street.sky, shadows)
    color = numpy.concatenate([label_ids_to_colors(label_ids), numpy.full(label_ids.shape + (1,), 255, numpy.uint8)],
                              axis=-1)
    return Scene(image, label_ids, instance_ids, color, annotation)
