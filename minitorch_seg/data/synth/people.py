"""People: pedestrians alone and in groups, riders on bicycles and motorcycles, parked bicycles.

A person is one outline (feet, legs, arms, shoulders, head) drawn in the plane facing the camera;
legs, face and hair are details. As in Cityscapes, a person on a bicycle or motorcycle is a
"rider", and a bicycle's label covers the gaps between its spokes while the picture shows what
is behind them.
"""
from __future__ import annotations

import math

import numpy

from .geometry import ellipse, front_plane, ground_rect, side_plane
from .palette import pick
from .pieces import OBJECTS, cast_shadow, paint, place

__all__ = ["people", "rider", "bicycle"]


def people(rng, street):
    """Pedestrians and parked bicycles on the sidewalks, people on the crosswalk, cyclists on the road."""
    r, pieces = rng, []
    for s, side in street.sides.items():
        lo, hi = sorted((side.curb, side.walk_out))
        for _ in range(r.poisson(2.2)):
            z = r.uniform(street.z_bottom + 1, 55)
            x = r.uniform(lo + 0.3, hi - 0.3)
            for k in range(1 if r.random() < 0.7 else r.integers(2, 5)):   # alone or in a group
                pieces += _person(rng, street, x + r.normal(0, 0.4) * k, z + r.uniform(0, 1.2) * k)
        for _ in range(r.poisson(0.35)):   # parked bicycles
            pieces += bicycle(rng, street, side.walk_out - s * 0.5, r.uniform(5, 40), along=True)
    if street.crosswalk is not None:
        for _ in range(r.poisson(2.0)):
            pieces += _person(rng, street, r.uniform(*street.road), street.crosswalk + r.uniform(0.3, 3), view="side")
    x0, x1 = street.road
    for _ in range(r.poisson(0.9)):   # cyclists
        if r.random() < 0.75:   # riding along the right edge of the road, seen from behind
            x, z = x1 - r.uniform(0.6, 1.4), r.uniform(street.z_bottom + 1.5, 45)
            pieces += bicycle(rng, street, x, z, along=True)
            pieces += rider(rng, street, x, z + 0.5)
        else:   # crossing the street, seen from the side
            x, z = r.uniform(x0 + 1, x1 - 1), r.uniform(street.z_bottom + 3, 35)
            pieces += bicycle(rng, street, x, z, along=False)
            pieces += rider(rng, street, x, z - 0.02, view="side")
    return pieces


def _figure(rng, height, view, riding=False):
    """A person's outline in local metres (a across, b up), feet at b = 0.

    Returns (outline (n, 2), legs (4, 2), head (a, b, radius)); ``view`` "side" is narrower,
    with the feet apart in a stride; ``riding`` holds the hands higher and farther out.
    """
    r = rng
    k = height / 1.75
    narrow = 0.6 if view == "side" else 1.0
    sw, hw = r.uniform(0.19, 0.24) * narrow, r.uniform(0.14, 0.18) * narrow   # half shoulder and hip widths
    fs = r.uniform(0.15, 0.32) if view == "side" else r.uniform(0.05, 0.14)   # half the feet's spread
    ao = r.uniform(0.0, 0.06) + (0.06 if riding else 0.0)   # how far the arms hang out
    hr = r.uniform(0.1, 0.12)   # head radius
    hip, hand, shoulder, neck = 0.92, 0.8 if not riding else 1.0, 1.42, 1.5
    arc = numpy.linspace(math.pi * 1.2, -0.2 * math.pi, 9)   # over the top of the head, left to right
    head = [(hr * 0.9 * math.cos(t), 1.62 + hr * math.sin(t)) for t in arc]
    outline = ([(-fs - 0.07, 0.0), (-hw, hip), (-sw + 0.08, 1.24), (-sw - ao + 0.08, hand), (-sw - ao, hand - 0.02),
                (-sw - 0.01, shoulder), (-0.06, neck)] + head +
               [(0.06, neck), (sw + 0.01, shoulder), (sw + ao, hand - 0.02), (sw + ao - 0.08, hand),
                (sw - 0.08, 1.24), (hw, hip), (fs + 0.07, 0.0), (fs - 0.05, 0.0), (0.0, 0.8), (-fs + 0.05, 0.0)])
    legs = [(-fs - 0.1, 0.0), (-hw, hip), (hw, hip), (fs + 0.1, 0.0)]
    outline = numpy.array(outline) * k
    legs = numpy.array(legs) * k
    return outline, legs, (0.0, 1.62 * k, hr * k)


def _person(rng, street, x, z, view=None):
    """A pedestrian standing at (x, z), seen from the front or the side, and their shadow."""
    r = rng
    view = view or ("side" if r.random() < 0.35 else "front")
    height = r.uniform(1.55, 1.95) if r.random() < 0.9 else r.uniform(1.0, 1.4)   # adults, sometimes a child
    outline, legs, head = _figure(r, height, view)
    if r.random() < 0.5:   # mirrored: walking the other way
        outline[:, 0] *= -1
        legs[:, 0] *= -1
    top = pick(r, "cloth", 16)
    thing = place(street, "person", front_plane(x, 0, z, outline), top, OBJECTS, z)
    _dress(rng, street, thing, x, 0, z, legs, head)
    return [thing, cast_shadow(street, ground_rect(x - 0.25, x + 0.25 + street.sun_dx * height * 0.5, z - 0.2,
                                                   z + 0.2))]


def rider(rng, street, x, z, view="front", on="bicycle"):
    """A person seated at (x, z) on a bicycle or a motorcycle (``on``): "rider"."""
    r = rng
    seat = 0.35 if on == "bicycle" else 0.45
    outline, legs, head = _figure(r, r.uniform(1.5, 1.85), view, riding=True)
    # seated: heights below the hip shrink to 3/4, everything above it comes down by 0.23 m
    outline[:, 1] = numpy.where(outline[:, 1] < 0.92, outline[:, 1] * 0.75, outline[:, 1] - 0.23)
    legs[:, 1] = numpy.where(legs[:, 1] < 0.92, legs[:, 1] * 0.75, legs[:, 1] - 0.23)
    head = (head[0], head[1] - 0.23, head[2])
    top = pick(r, "cloth", 16)
    thing = place(street, "rider", front_plane(x, seat, z, outline), top, OBJECTS, z)
    _dress(rng, street, thing, x, seat, z, legs, head)
    return [thing]


def _dress(rng, street, thing, x, y, z, legs, head):
    """Paint trousers, a face and hair onto the person ``thing`` standing at (x, y, z)."""
    r = rng
    if thing is None:
        return
    paint(street, thing, front_plane(x, y, z, legs), pick(r, "cloth", 16))
    hx, hy, hr = head
    face = ellipse(8, hr * 0.9, hr, start=0.0) + (hx, hy)
    paint(street, thing, front_plane(x, y, z, face), pick(r, "skin", 8))
    hair = ellipse(8, hr * 0.95, hr * 1.02, start=0.0)[:5] + (hx, hy + 0.01)   # the upper half of the head
    paint(street, thing, front_plane(x, y, z, hair), pick(r, "hair", 10))


def bicycle(rng, street, x, z, along=True):
    """A bicycle at (x, z), ``along`` the street (seen from behind) or across it (from the side)."""
    r = rng
    wheel, base = 0.34, r.uniform(1.0, 1.1)   # wheel radius, wheelbase
    color = pick(r, "bicycle", 12)
    ring = ellipse(12, wheel)
    if along:   # wheels in the plane X = x, one behind the other
        wheels = [side_plane(x, wheel, z + dz, ring) for dz in (0.0, base)]
        frame = [[x, 0.95, z + 0.3], [x - 0.3, 1.05, z + base - 0.1], [x + 0.3, 1.05, z + base - 0.1]]
    else:   # wheels facing the camera
        d = 1.0 if r.random() < 0.5 else -1.0
        wheels = [front_plane(x + d * dx, wheel, z, ring) for dx in (-base / 2, base / 2)]
        frame = [[x - d * 0.15, 0.95, z], [x + d * (base / 2 - 0.1), 1.05, z]]
    thing = place(street, "bicycle", numpy.concatenate(wheels + [numpy.array(frame)]), color * 0.5, OBJECTS, z + 0.01,
                  hull=True)
    if thing is None:
        return []
    thing.see_through = True   # as in Cityscapes, the label covers the gaps between the spokes
    for w in wheels:
        uv = street.camera.project(w)
        paint(street, thing, numpy.vstack([uv, uv[:1]]), (26, 26, 28), line=max(1, int(street.camera.pixels(0.06, z))),
              projected=True)
    paint(street, thing, numpy.array([w.mean(axis=0) for w in wheels] + [frame[0]]), color,
          line=max(1, int(street.camera.pixels(0.04, z))))
    return [thing]
