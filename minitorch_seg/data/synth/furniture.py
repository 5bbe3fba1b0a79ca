"""Street furniture at the curb: trees, lamps, signs on posts, traffic lights, bins and boxes.

Thin things (poles, trunks) are widened to at least a pixel or two, so that they survive the
rounding to integer polygons, as an annotator would still draw them.
"""
from __future__ import annotations

import math

import numpy

from .geometry import ellipse, front_plane, ground_rect, rect_z
from .palette import pick
from .pieces import OBJECTS, cast_shadow, paint, place

__all__ = ["furniture", "tree"]


def furniture(rng, street):
    """Along each curb: an avenue of trees, lamps, sign posts, bins, traffic lights at the side streets."""
    r, pieces = rng, []
    for s, side in street.sides.items():
        x_curb = side.curb + s * r.uniform(0.3, 0.7)
        if r.random() < street.style.tree_rate:   # an avenue of trees
            step = r.uniform(7, 14)
            for z in numpy.arange(r.uniform(3, 10), min(street.z_end, 90), step):
                if r.random() < 0.85:
                    pieces += tree(rng, street, x_curb + s * r.uniform(0, 0.6), z + r.uniform(-1, 1))
        if r.random() < 0.8:   # street lamps
            step = r.uniform(15, 35)
            for z in numpy.arange(r.uniform(5, 20), min(street.z_end, 120), step):
                pieces += _lamp(rng, street, x_curb, z, s)
        for _ in range(r.poisson(1.2)):   # traffic signs on their own posts
            pieces += _sign_post(rng, street, x_curb + s * r.uniform(0, 0.5), r.uniform(5, 45),
                                 facing=(s > 0 or r.random() < 0.5))
        for _ in range(r.poisson(0.5)):   # bins and boxes: "static", ignored in evaluation
            pieces += _static(rng, street, side.walk_out - s * r.uniform(0.3, 0.8), r.uniform(5, 40))
        for g0, _ in side.gaps:   # traffic lights at the side streets
            if g0 < 70 and r.random() < 0.7:
                pieces += _light_post(rng, street, x_curb, g0 - r.uniform(0.5, 2), facing=s > 0 or r.random() < 0.6)
    if r.random() < 0.3:   # lights hanging over the road
        z = r.uniform(15, 45)
        x = street.road[1] + 0.5
        pieces += _pole(rng, street, x, z, r.uniform(5.5, 7),
                        arm=(-1.0, r.uniform(3, (street.road[1] - street.road[0]) * 0.8)))
        for _ in range(1 + (r.random() < 0.5)):
            pieces += _traffic_light(rng, street, x - r.uniform(1.5, 5), r.uniform(4.5, 5.5), z - 0.2, facing=True)
    return pieces


def tree(rng, street, x, z, layer=OBJECTS, order=None):
    """A tree standing at (x, z): trunk, crown with leaf blobs, and its shadow."""
    r = rng
    order = z if order is None else order
    trunk_h, radius = r.uniform(1.8, 3.5), r.uniform(1.2, 3.2)
    trunk_w = street.camera.min_width(r.uniform(0.2, 0.4), z)
    bark = numpy.array([92, 74, 56]) * r.uniform(0.6, 1.3)
    trunk = place(street, "vegetation", rect_z(z, x - trunk_w / 2, x + trunk_w / 2, 0, trunk_h + radius * 0.5), bark,
                  layer, order)
    outline = front_plane(x, trunk_h + radius * 0.8, z,
                          ellipse(16, radius, radius * r.uniform(0.8, 1.2), rng=r, jitter=0.22))
    color = pick(r, "vegetation")
    crown = place(street, "vegetation", outline, color, layer, order - 0.001)   # just in front of its trunk
    for _ in range(6):
        a, b = r.normal(0, radius * 0.4, 2)
        blob = front_plane(x + a, trunk_h + radius * 0.8 + b, z,
                           ellipse(7, radius * r.uniform(0.2, 0.45), rng=r, jitter=0.3))
        paint(street, crown, blob, color * r.uniform(0.65, 1.35))
    shadow = cast_shadow(street, ground_rect(x - radius + street.sun_dx * 3, x + radius + street.sun_dx * 3,
                                             z - radius * 0.6, z + radius * 0.6))
    return [trunk, crown, shadow]


def _pole(rng, street, x, z, height, width=None, arm=None, color=None, lamp=False):
    """A pole at (x, z), ``height`` metres tall, with its shadow.

    ``arm``: (direction, length) of an arm at the top, along X; ``lamp``: a lamp head at its end.
    """
    r = rng
    width = street.camera.min_width(width or r.uniform(0.14, 0.26), z)
    color = pick(r, "pole") if color is None else color
    thing = place(street, "pole", rect_z(z, x - width / 2, x + width / 2, 0, height), color, OBJECTS, z)
    paint(street, thing, rect_z(z, x, x + width / 2, 0, height), color * 0.75)   # its shaded half
    pieces = [thing, cast_shadow(street, ground_rect(x - width, x + street.sun_dx * height * 0.4, z, z + width))]
    if arm is not None:
        direction, length = arm
        t = street.camera.min_width(0.1, z)
        end = x + direction * length
        pts = [[x, height - t, z], [x, height, z], [end, height, z], [end, height - t, z]]
        pieces.append(place(street, "pole", pts, color, OBJECTS, z - 0.01))
        if lamp:
            head = [[end - 0.35, height - 0.25, z - 0.02], [end + 0.35, height - 0.25, z - 0.02],
                    [end + 0.3, height + 0.05, z - 0.02], [end - 0.3, height + 0.05, z - 0.02]]
            pieces.append(place(street, "pole", head, color, OBJECTS, z - 0.02))
    return pieces


def _lamp(rng, street, x, z, s):
    """A street lamp at (x, z) on side ``s``, its arm reaching over the road; sometimes a sign on it."""
    r = rng
    height = r.uniform(6, 9)
    arm = r.uniform(0.8, 2.0)
    pieces = _pole(rng, street, x, z, height, arm=(-s, arm), lamp=True)
    if r.random() < 0.25:
        pieces += _sign(rng, street, x, r.uniform(2.2, 3.0), z - 0.05, facing=s > 0 or r.random() < 0.5)
    return pieces


def _sign_post(rng, street, x, z, facing):
    """A thin post with one or two signs on top."""
    r = rng
    top = r.uniform(2.3, 3.2)
    pieces = _pole(rng, street, x, z, top, width=r.uniform(0.06, 0.1))
    pieces += _sign(rng, street, x, top, z - 0.05, facing)
    if r.random() < 0.3:
        pieces += _sign(rng, street, x, top - r.uniform(0.7, 0.9), z - 0.05, facing)
    return pieces


def _sign(rng, street, x, y, z, facing):
    """A sign plate centred at (x, y, z): its front (``facing``) is "traffic sign", its back is "static"."""
    r = rng
    shape = r.choice(["circle", "triangle", "rect", "octagon", "diamond"], p=[0.35, 0.2, 0.3, 0.05, 0.1])
    size = r.uniform(0.5, 0.85)
    if shape == "circle":
        local = ellipse(12, size / 2)
    elif shape == "octagon":
        local = ellipse(8, size / 2, start=math.pi / 8)
    elif shape == "diamond":
        local = ellipse(4, size / 2)
    elif shape == "triangle":   # mostly pointing up (warning), sometimes down (give way)
        local = ellipse(3, size / 2, start=math.pi / 2 if r.random() < 0.8 else -math.pi / 2)
    else:
        w, h = size * r.uniform(0.7, 1.6), size * r.uniform(0.6, 1.0)
        local = numpy.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    points = front_plane(x, y, z, local)
    if not facing:
        return [place(street, "static", points, numpy.full(3, r.uniform(110, 170)), OBJECTS, z)]
    kind = {"circle": [0, 1], "octagon": [0], "triangle": [0], "diamond": [2], "rect": [1, 3, 4, 2]}[shape]
    color = pick(r, "sign", 12, kind)
    thing = place(street, "traffic sign", points, color, OBJECTS, z)
    red = color[0] > 150 and color[2] < 100
    inner = numpy.array([230, 230, 226]) if red and shape != "diamond" else \
        numpy.array([240, 240, 236]) * r.uniform(0.8, 1.0)
    paint(street, thing, front_plane(x, y, z, local * r.uniform(0.55, 0.8)), inner if shape != "rect" else color * 0.8)
    if r.random() < 0.6:   # a symbol: one dark bar
        paint(street, thing, front_plane(x, y, z, [[-size * 0.2, 0], [size * 0.2, 0]]), (30, 30, 30), line=1)
    return [thing]


def _light_post(rng, street, x, z, facing):
    """A post at (x, z) with a traffic light on it."""
    r = rng
    top = r.uniform(2.6, 3.6)
    pieces = _pole(rng, street, x, z, top + r.uniform(0, 1.5), width=r.uniform(0.1, 0.16))
    return pieces + _traffic_light(rng, street, x, top, z - 0.1, facing)


def _traffic_light(rng, street, x, y, z, facing):
    """A traffic light's housing centred at (x, y, z); seen from the front (``facing``), one lamp lit."""
    r = rng
    w, h = 0.34, r.uniform(0.8, 1.0)
    w = street.camera.min_width(w, z, 2.0)
    housing = pick(r, "light_box", 8)
    thing = place(street, "traffic light", rect_z(z, x - w / 2, x + w / 2, y - h / 2, y + h / 2), housing, OBJECTS, z)
    if facing and thing is not None:
        lit = r.integers(3)
        lamps = [(230, 40, 30), (240, 170, 30), (60, 220, 120)]
        for k in range(3):
            color = lamps[k] if k == lit else (55, 55, 55)
            paint(street, thing, front_plane(x, y + (1 - k) * h / 3.2, z, ellipse(8, w * 0.32)), color)
    return [thing]


def _static(rng, street, x, z):
    """A bin or a box on the sidewalk: "static", a void class."""
    r = rng
    w, h = r.uniform(0.4, 1.0), r.uniform(0.8, 1.4)
    return [place(street, "static", rect_z(z, x - w / 2, x + w / 2, 0, h), pick(r, "static"), OBJECTS, z)]
