"""Vehicles: parked rows, moving cars, trucks, buses and motorcycles, and the car we sit in.

A vehicle is a few boxes (body, cabin, cargo box); its label polygon is the convex hull of their
projected corners, and its windows, wheels, lights and license plate are details. The plate is
also written to the json, after the vehicle, as Cityscapes does ("license plate" has id -1, so
it never reaches the label image).
"""
from __future__ import annotations

import math

import numpy

from .geometry import box, ellipse, ground_rect, integer_polygon, rect_x, rect_z, side_plane
from .palette import pick
from .people import rider
from .pieces import EGO, OBJECTS, cast_shadow, paint, place

__all__ = ["traffic", "ego"]


def traffic(rng, street):
    """Parked rows along the road's edges, moving traffic in the lanes, sometimes a motorcycle."""
    r, pieces = rng, []
    x0, x1 = street.road
    for s, side in street.sides.items():   # parked rows along the road's edges
        if r.random() < 0.6:
            x = side.edge - s * r.uniform(0.95, 1.2)
            z = r.uniform(street.z_bottom, 15)
            far = r.uniform(30, 80)
            while z < far:
                length = r.uniform(3.8, 4.9)
                if r.random() < 0.8 and not _in_gap(side, z, z + length):
                    pieces += _car(rng, street, x, z, heading=1 if r.random() < 0.7 else -1, length=length)
                z += length + r.uniform(0.4, 6)
            if r.random() < 0.5:   # beyond that, a row too far to tell the cars apart
                pieces += _car_group(rng, street, x, z + r.uniform(5, 15), r.uniform(15, 40))
    lanes = max(1, int(round((x1 - x0) / 3.3)))
    centres = [x0 + (k + 0.5) * (x1 - x0) / lanes for k in range(lanes)]
    for _ in range(r.poisson(1.6)):   # moving traffic, driving on the right
        x = centres[r.integers(lanes)] + r.normal(0, 0.25)
        z = r.uniform(street.z_bottom + 2, 70)
        heading = 1 if x > -1.5 else -1
        kind = r.choice(["car", "truck", "bus"], p=[0.74, 0.14, 0.12])
        pieces += {"car": _car, "truck": _truck, "bus": _bus}[kind](rng, street, x, z, heading=heading)
    if r.random() < 0.1:
        x = centres[-1] + r.normal(0, 0.4)
        pieces += _motorcycle(rng, street, x, r.uniform(street.z_bottom + 2, 40))
    return pieces


def _in_gap(side, z0, z1):
    """Whether z0..z1 comes within a metre of a side street on ``side``."""
    return any(g0 - 1 < z1 and z0 < g1 + 1 for g0, g1 in side.gaps)


def _vehicle(rng, street, label, x, z, parts, color, glass_band, heading, wheels=2, rear_doors=False):
    """One vehicle from its boxes: [body, shadow], or [] if out of view.

    ``parts``: boxes (x0, x1, y0, y1, z0, z1) relative to (x, 0, z), the near face at z.
    ``glass_band``: (y0, y1, z0, z1, half_width) of the cabin's windows. ``heading``: 1 driving
    away (we see tail lights), -1 coming towards us (headlights). ``rear_doors``: paint the seam
    between two rear doors, up to the top.
    """
    r = rng
    points = numpy.concatenate([box(x + a, x + b, c, d, z + e, z + g) for a, b, c, d, e, g in parts])
    body = place(street, label, points, color, OBJECTS, z, hull=True)
    if body is None:
        return []
    half = max(max(abs(p[0]), abs(p[1])) for p in parts)
    length = max(p[5] for p in parts)
    body_top = min(p[3] for p in parts)
    glass = pick(r, "glass", 8)
    # the side that faces the camera, slightly darker, with its windows and wheels
    xs = x - math.copysign(half, x) if abs(x) > half else None
    if xs is not None:
        paint(street, body, rect_x(xs, 0.25, body_top, z, z + length), color * 0.82)
        y0, y1, g0, g1, gw = glass_band
        xg = x - math.copysign(gw, x)
        paint(street, body, rect_x(xg, y0, y1, z + g0, z + g1), glass * 0.9)
        for zc in numpy.linspace(z + 0.8, z + length - 0.8, wheels):
            paint(street, body, side_plane(xs, 0.32, zc, ellipse(10, 0.33)), (24, 24, 26))
    # the near face: bumper, window, lights, plate
    y0, y1, g0, _, gw = glass_band
    paint(street, body, rect_z(z, x - half, x + half, 0.12, 0.32), color * 0.45)
    paint(street, body, rect_z(z + g0 * 0.5, x - gw * 0.9, x + gw * 0.9, y0, y1), glass)
    lamp = (200, 30, 26) if heading > 0 else (236, 232, 206)
    for sgn in (-1, 1):
        xl = x + sgn * (half - 0.22)
        paint(street, body, rect_z(z - 0.01, xl - 0.14, xl + 0.14, body_top - 0.3, body_top - 0.15), lamp)
        xw = x + sgn * (half - 0.35)
        paint(street, body, rect_z(z - 0.01, xw - 0.15, xw + 0.15, 0, 0.14), (22, 22, 24))   # a tyre below
    plate = rect_z(z - 0.02, x - 0.26, x + 0.26, 0.36, 0.48)
    paint(street, body, plate, (222, 222, 212))
    height, width = street.size
    polygon = integer_polygon(street.camera.project(plate), width, height)
    if polygon is not None:
        body.plates.append(polygon)
    if rear_doors:
        top = max(p[3] for p in parts)
        paint(street, body, [[x, 0.4, z - 0.01], [x, top - 0.1, z - 0.01]], color * 0.5, line=1)
    return [body, cast_shadow(street, ground_rect(x - half - 0.1, x + half + 0.1 + street.sun_dx * 1.2, z - 0.2,
                                                  z + length + 0.2))]


def _car(rng, street, x, z, heading=1, length=None):
    """A car: a body and a narrower cabin, set back more at the front than at the rear."""
    r = rng
    w, length, h = r.uniform(1.65, 1.9), length or r.uniform(3.8, 4.9), r.uniform(1.35, 1.6)
    body = r.uniform(0.8, 0.95)
    c0, c1 = (0.3, 0.78) if heading > 0 else (0.22, 0.7)
    parts = [(-w / 2, w / 2, 0, body, 0, length),
             (-w * 0.42, w * 0.42, body, h, length * c0, length * c1)]
    return _vehicle(rng, street, "car", x, z, parts, pick(r, "car"),
                    (body + 0.08, h - 0.06, length * c0 + 0.1, length * c1 - 0.1, w * 0.42), heading)


def _car_group(rng, street, x, z, length):
    """A parked row too far to tell the cars apart: one "cargroup" polygon, ``length`` metres long."""
    r = rng
    points = box(x - 0.9, x + 0.9, 0, 1.45, z, z + length)
    thing = place(street, "cargroup", points, pick(r, "car"), OBJECTS, z, hull=True)
    for zc in numpy.arange(z, z + length, 4.6):
        paint(street, thing, rect_z(zc, x - 0.9, x + 0.9, 0.1, 1.4), pick(r, "car"))
    return [thing]


def _truck(rng, street, x, z, heading=1):
    """A truck: a cab and a cargo box, the box first when it drives away from us."""
    r = rng
    w, box_l, cab_l, h = r.uniform(2.3, 2.55), r.uniform(5, 8), 2.2, r.uniform(3.0, 3.8)
    if heading > 0:   # we see the cargo box first
        parts = [(-w / 2, w / 2, 0.3, h, 0, box_l), (-w / 2 + 0.05, w / 2 - 0.05, 0, 2.9, box_l, box_l + cab_l)]
        band = (1.8, 2.6, box_l + 0.2, box_l + cab_l - 0.3, w / 2 - 0.05)
    else:
        parts = [(-w / 2 + 0.05, w / 2 - 0.05, 0, 2.9, 0, cab_l), (-w / 2, w / 2, 0.3, h, cab_l, cab_l + box_l)]
        band = (1.6, 2.6, 0.1, cab_l - 0.4, w / 2 - 0.05)
    return _vehicle(rng, street, "truck", x, z, parts, pick(r, "truck"), band, heading, wheels=3,
                    rear_doors=heading > 0)


def _bus(rng, street, x, z, heading=1):
    """A bus: one long box, usually in the city's colour."""
    r = rng
    w, length, h = 2.55, r.uniform(11, 13), r.uniform(3.0, 3.3)
    color = pick(r, "bus", 10, [street.style.bus_color] if r.random() < 0.8 else None)
    parts = [(-w / 2, w / 2, 0, h, 0, length)]
    return _vehicle(rng, street, "bus", x, z, parts, color, (1.1, 2.6, 0.4, length - 0.4, w / 2), heading, wheels=2)


def _motorcycle(rng, street, x, z):
    """A motorcycle seen from behind, and its rider when it is in view."""
    r = rng
    parts = [(-0.35, 0.35, 0, 1.1, 0, 2.0)]
    pieces = _vehicle(rng, street, "motorcycle", x, z, parts, pick(r, "car"), (0.8, 1.0, 0.5, 1.2, 0.2), 1, wheels=2)
    if pieces:
        pieces += rider(rng, street, x, z + 0.9, on="motorcycle")
    return pieces


def ego(rng, street):
    """Sometimes the bonnet of the car we sit in, across the bottom of the frame ("ego vehicle")."""
    r = rng
    if r.random() < 0.45:
        return []
    H, W = street.size
    bonnet = H * r.uniform(0.05, 0.12)   # its height in pixels at the centre
    xs = numpy.linspace(0, W - 1, 17)
    t = (xs - W / 2) / (W / 2)
    ys = H - 1 - bonnet * (1 - 0.45 * t ** 2)
    pts = [(W - 1, H - 1), (0, H - 1)] + list(zip(xs, ys))
    color = pick(r, "ego", 10)
    thing = place(street, "ego vehicle", pts, color, EGO, 0, projected=True, depth=1.0)
    stripe = [(x, y + bonnet * 0.3) for x, y in zip(xs, ys)]   # a light reflection along its edge
    paint(street, thing, numpy.array(list(zip(xs, ys)) + stripe[::-1]), numpy.minimum(color * 1.5 + 40, 255),
          projected=True)
    return [thing]
