"""The ground and the distance: the sky, a far skyline, then the road, sidewalks and side streets.

``ground`` also decides where side streets leave and whether a crosswalk crosses the road, and
returns the street with them, for the builders that come after it.
"""
from __future__ import annotations

import numpy

from .geometry import ground_rect, rect_z
from .palette import pick
from .pieces import GROUND, SKY, SKYLINE, paint, place

__all__ = ["sky", "skyline", "ground"]

_FAR = 500.0   # metres: the ground and the side streets end beyond anything we can see


def sky(street):
    """The sky: the whole frame, behind everything."""
    height, width = street.size
    frame = [(0, 0), (width - 1, 0), (width - 1, height - 1), (0, height - 1)]
    return [place(street, "sky", frame, street.sky[1], SKY, 1e9, projected=True, depth=1e9)]


def skyline(rng, street):
    """Sometimes a row of far buildings, sometimes a far wooded ridge, at a few hundred metres."""
    r, pieces = rng, []
    if r.random() < 0.5:
        z = r.uniform(300, 700)
        x = -z * 1.2
        while x < z * 1.2:
            w, h = r.uniform(15, 60), r.uniform(15, 90)
            if r.random() < 0.75:
                pieces.append(place(street, "building", rect_z(z, x, x + w, 0, h), pick(r, "building"), SKYLINE, z))
            x += w + (0 if r.random() < 0.6 else r.uniform(5, 40))
    if r.random() < 0.4:
        z = r.uniform(250, 500)
        xs = numpy.linspace(-z * 1.3, z * 1.3, 40)
        tops = r.uniform(6, 20) + numpy.cumsum(r.normal(0, 1.5, len(xs)))
        pts = [[x, 0, z] for x in (xs[0], xs[-1])][::-1] + [[x, max(t, 2), z] for x, t in zip(xs, tops)]
        pieces.append(place(street, "vegetation", pts, pick(r, "vegetation"), SKYLINE, z - 1))
    return pieces


def ground(rng, street):
    """Terrain, sidewalks, front gardens, the road and its strips, side streets, markings.

    Returns (pieces, street): the street now knows its side streets and its crosswalk.
    """
    r, zn, style = rng, street.z_near, street.style

    def flat(label, x0, x1, z0, z1, color):
        return place(street, label, ground_rect(x0, x1, z0, z1), color, GROUND, 0, ground=True)

    pieces = [flat("terrain", -_FAR, _FAR, zn, _FAR, pick(r, "terrain"))]
    road_color = pick(r, "road", 8, [style.road] if r.random() < 0.8 else None)
    walk_color = pick(r, "sidewalk", 10, [style.sidewalk] if r.random() < 0.7 else None)
    z_road_end = street.z_end if street.end == "buildings" else _FAR
    for s, side in street.sides.items():
        outer = side.curb + s * r.uniform(0.5, 1.5) if side.park else side.build + s * 60
        walk = flat("sidewalk", side.curb, outer, zn, z_road_end + 20, walk_color)
        _pave(rng, street, walk, side.curb, side.walk_out, walk_color)
        pieces.append(walk)
        if side.setback > 0 and not side.park:   # a front garden, or a paved forecourt
            garden = "terrain" if r.random() < 0.7 else "sidewalk"
            color = pick(r, "terrain") if garden == "terrain" else walk_color * r.uniform(0.85, 1.1)
            pieces.append(flat(garden, side.walk_out, side.build + s * 60, zn, street.z_end, color))
    road = flat("road", street.road[0], street.road[1], zn, z_road_end, road_color)
    pieces.append(road)
    for s, side in street.sides.items():
        if side.strip != "none":
            color = pick(r, "terrain") if side.strip == "terrain" else road_color * r.uniform(0.9, 1.15)
            pieces.append(flat(side.strip, side.edge, side.curb, zn, z_road_end, color))
    if street.end == "buildings":   # a cross street in front of the buildings that end the street
        pieces.append(flat("road", -_FAR, _FAR, street.z_end - r.uniform(9, 16), street.z_end, road_color))
    side_roads, sides = _side_streets(rng, street, road_color)
    crosswalk = _markings(rng, street, road, road_color)
    return pieces + side_roads, street._replace(sides=sides, crosswalk=crosswalk)


def _pave(rng, street, walk, x0, x1, color):
    """Paint paving joints and the curb onto the sidewalk ``walk``, which runs from ``x0`` to ``x1``."""
    if walk is None:
        return
    r = rng
    joint = color * r.uniform(0.7, 0.85)
    step = r.uniform(1.0, 2.5)
    z = street.z_bottom * 0.8
    while z < 35:
        paint(street, walk, [[x0, 0, z], [x1, 0, z]], joint, line=1)
        z += step * (1 + z / 25)   # joints farther apart with distance: fewer lines where they would blur
    curb = numpy.minimum(color * 1.25 + 15, 255)
    s = 1.0 if x1 > x0 else -1.0
    paint(street, walk, ground_rect(x0, x0 + s * 0.18, street.z_near, street.z_end), curb)


def _side_streets(rng, street, road_color):
    """Side streets leaving each side: (their road pieces, the sides with their ``gaps``)."""
    r, pieces, sides = rng, [], {}
    for s, side in street.sides.items():
        gaps = []
        z = r.uniform(8, 40)
        while z < street.z_end - 20:
            if r.random() < 0.5:
                width = r.uniform(7, 14)
                gaps.append((z, z + width))
                pieces.append(place(street, "road", ground_rect(side.edge, side.edge + s * 400, z, z + width),
                                    road_color, GROUND, 0, ground=True))
                z += width
            z += r.uniform(25, 80)
        sides[s] = side._replace(gaps=tuple(gaps))
    return pieces, sides


def _markings(rng, street, road, road_color):
    """Paint lane lines, edge lines, maybe a crosswalk and tyre tracks on ``road``: the crosswalk's depth or None."""
    r = rng
    paint_color = numpy.array([226, 226, 220]) * r.uniform(0.75, 1.0)
    x0, x1 = street.road
    lanes = max(1, int(round((x1 - x0) / 3.3)))
    width = r.uniform(0.1, 0.16)
    dash, gap = r.uniform(2, 4), r.uniform(3, 7)
    for k in range(1, lanes):
        x = x0 + k * (x1 - x0) / lanes
        z = street.z_near + r.uniform(0, dash + gap)
        while z < min(street.z_end, 120):
            paint(street, road, ground_rect(x - width / 2, x + width / 2, z, z + dash), paint_color)
            z += dash + gap
    if r.random() < 0.6:   # edge lines
        for x in (x0 + 0.3, x1 - 0.3):
            paint(street, road, ground_rect(x - width / 2, x + width / 2, street.z_near, min(street.z_end, 150)),
                  paint_color)
    crosswalk = None
    if r.random() < 0.3:
        crosswalk = r.uniform(street.z_bottom + 2, 30)
        x = x0 + 0.3
        while x < x1 - 0.5:
            paint(street, road, ground_rect(x, x + 0.5, crosswalk, crosswalk + 3.5), paint_color)
            x += 1.0
    for x in (-0.8, 0.8):   # darker tyre tracks
        paint(street, road, ground_rect(x - 0.3, x + 0.3, street.z_near, min(street.z_end, 150)), road_color * 0.9)
    return crosswalk
