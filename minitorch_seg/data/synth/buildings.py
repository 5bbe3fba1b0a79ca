"""The planes along and across the street: facades with windows, walls, fences, hedges, lots, parks.

Each side of the street is walked from near to far: a building (sometimes with a pitched roof, a
shop front, a wall or a fence in front), an empty lot with trees, or the end wall of a building
that starts after a side street. A side with no buildings is a park. The street itself ends in
a row of facades facing the camera, a tree line, or nothing (it runs to the horizon).
"""
from __future__ import annotations

import numpy

from .furniture import tree
from .geometry import ellipse, front_plane, ground_rect, rect_x, rect_z, side_plane
from .palette import pick
from .pieces import PLANES, STREET_END, cast_shadow, paint, paint_many, place

__all__ = ["street_end", "facades"]


# ---------------------------------------------------------------------------------------------
# Across the street, at its end.
# ---------------------------------------------------------------------------------------------
def street_end(rng, street):
    """What closes the street at ``street.z_end``: facades facing us, a tree line, or nothing."""
    r, z, pieces = rng, street.z_end, []
    if street.end == "buildings":
        x = -z * 1.5
        while x < z * 1.5:
            w = r.uniform(8, 22)
            h = r.uniform(*street.style.height_range)
            pieces += _facing_facade(rng, street, x, x + w, h, z)
            x += w
    elif street.end == "trees":
        xs = numpy.linspace(-z * 1.5, z * 1.5, 60)
        tops = numpy.maximum(r.uniform(6, 14) + numpy.cumsum(r.normal(0, 0.8, len(xs))), 2)
        pts = [[xs[-1], 0, z], [xs[0], 0, z]] + [[x, t, z] for x, t in zip(xs, tops)]
        thing = place(street, "vegetation", pts, pick(r, "vegetation"), STREET_END, z)
        for _ in range(12):   # lighter and darker leaf blobs
            x = r.uniform(xs[0], xs[-1])
            y = r.uniform(1, numpy.interp(x, xs, tops))
            paint(street, thing, front_plane(x, y, z, ellipse(7, r.uniform(1.5, 4), rng=r, jitter=0.3)),
                  thing.color * r.uniform(0.7, 1.3) if thing is not None else (0, 0, 0))
        pieces.append(thing)
    return pieces


def _facing_facade(rng, street, x0, x1, h, z):
    """A facade facing the camera at depth z, from x0 to x1 and ``h`` metres high, with windows."""
    r = rng
    color = pick(r, "building", 14, street.style.building_colors)
    thing = place(street, "building", rect_z(z, x0, x1, 0, h), color, STREET_END, z)
    if thing is None:
        return []
    glass = pick(r, "glass", 8)
    fw, fh = r.uniform(2.5, 3.5), r.uniform(2.8, 3.4)
    if street.camera.pixels(fh, z) < 2.5:   # floors too thin to show windows
        return [thing]
    y, x = [a.ravel() for a in numpy.meshgrid(numpy.arange(r.uniform(1, 3), h - 1.5, fh),
                                              numpy.arange(x0 + 0.8, x1 - 1.0, fw))]
    corners = numpy.stack([numpy.stack([x + dx, y + dy, numpy.full_like(x, z)], axis=-1)
                           for dx, dy in ((0, 0), (0, fh / 2), (fw / 2, fh / 2), (fw / 2, 0))], axis=1)  # (n, 4, 3)
    paint_many(street, thing, corners, glass * r.uniform(0.8, 1.3, (len(x), 1)))
    return [thing]


# ---------------------------------------------------------------------------------------------
# Along the street.
# ---------------------------------------------------------------------------------------------
def facades(rng, street):
    """The buildings along both sides (or a park), with walls, fences and hedges in front."""
    r, pieces = rng, []
    for s, side in street.sides.items():
        if side.park:
            pieces += _park(rng, street, s, side)
            continue
        gaps = side.gaps
        z = r.uniform(1.0, 6.0)
        while z < street.z_end:
            crossing = next((g for g in gaps if g[0] <= z + 0.5 < g[1]), None)
            if crossing is not None:   # skip the side street; the next building shows its end wall
                z = crossing[1]
                pieces += _end_wall(rng, street, s, side, z)
                continue
            next_gap = min([g[0] for g in gaps if g[0] > z] + [street.z_end])
            length = min(r.uniform(8, 40), next_gap - z)
            if length < 3:
                z = next_gap
                continue
            if r.random() < 0.15 and z > 10:
                pieces += _lot(rng, street, s, side, z, z + length)
            else:
                pieces += _building(rng, street, s, side, z, z + length)
                if side.setback > 0.5 and r.random() < street.style.wall_rate:
                    pieces += _boundary(rng, street, s, side, z, z + length)
            z += length
    return pieces


def _building(rng, street, s, side, z0, z1):
    """A facade on the building line from z0 to z1: lit or shaded, windows, maybe a roof and a shop."""
    r = rng
    x = side.build
    h = r.uniform(*street.style.height_range)
    color = pick(r, "building", 14, street.style.building_colors)
    lit = street.sun_side == s
    shade = (r.uniform(1.05, 1.2) if lit else r.uniform(0.62, 0.8)) if street.sunny else r.uniform(0.9, 1.0)
    thing = place(street, "building", rect_x(x, 0, h, z0, z1), color * shade, PLANES, abs(x), plane_x=x)
    if thing is None:
        return []
    pieces = [thing]
    if r.random() < 0.35:   # a pitched roof seen from the street
        rise, run = r.uniform(2, 5), r.uniform(3, 6)
        roof = [[x, h, z0], [x + s * run, h + rise, z0], [x + s * run, h + rise, z1], [x, h, z1]]
        pieces.append(place(street, "building", roof, pick(r, "roof") * shade, PLANES, abs(x) + 0.01, plane_x=x))
    # windows: a grid of floors and bays in perspective
    glass = pick(r, "glass", 8)
    floor, bay = r.uniform(2.8, 3.6), r.uniform(2.2, 3.8)
    ww, wh = bay * r.uniform(0.35, 0.6), floor * r.uniform(0.4, 0.6)
    shop = r.random() < 0.4
    y_start = floor if shop else r.uniform(0.8, 1.4)
    ys = numpy.arange(y_start + 0.4, h - wh - 0.3, floor)
    zs = numpy.arange(z0 + 0.6, z1 - ww - 0.2, bay)
    zs = zs[street.camera.pixels(wh, zs) >= 1.5]   # windows smaller than that blur into the wall
    y, z = [a.ravel() for a in numpy.meshgrid(ys, zs)]
    corners = numpy.stack([numpy.stack([numpy.full_like(y, x), y + dy, z + dz], axis=-1)
                           for dy, dz in ((0, 0), (wh, 0), (wh, ww), (0, ww))], axis=1)  # (n, 4, 3)
    paint_many(street, thing, corners, glass * shade * r.uniform(0.75, 1.35, (len(y), 1)))
    if shop:   # a shop window and its sign on the ground floor
        paint(street, thing, rect_x(x, 0.2, floor * 0.8, z0 + 0.5, z1 - 0.5), pick(r, "glass", 12) * shade)
        paint(street, thing, rect_x(x, floor * 0.8, floor * 0.95, z0 + 0.3, z1 - 0.3), pick(r, "sign", 20) * shade)
    if street.sunny and s != street.sun_side:   # the shaded side's buildings shade the street
        reach = min(h * r.uniform(0.3, 0.9), abs(x) + 3)
        pieces.append(cast_shadow(street, ground_rect(x, x - s * reach, z0, z1)))
    return pieces


def _end_wall(rng, street, s, side, z):
    """The end wall of a building that starts after a side street, facing the camera at depth z."""
    r = rng
    x = side.build
    h = r.uniform(*street.style.height_range)
    color = pick(r, "building", 14, street.style.building_colors) * 0.85
    return [place(street, "building", rect_z(z, x, x + s * 40, 0, h), color, PLANES, abs(x) + 1, depth=z)]


def _boundary(rng, street, s, side, z0, z1):
    """A wall, a fence or a hedge along the outer edge of the sidewalk, from z0 to z1."""
    r = rng
    x = side.walk_out
    kind = r.choice(["wall", "fence", "vegetation"], p=[0.4, 0.4, 0.2])
    h = r.uniform(0.6, 2.2)
    if kind == "vegetation":
        zs = numpy.linspace(z0, z1, max(3, int((z1 - z0) / 1.2)))
        tops = h + r.normal(0, 0.12, len(zs))
        pts = [[x, 0, z1], [x, 0, z0]] + [[x, t, z] for z, t in zip(zs, tops)]
        return [place(street, "vegetation", pts, pick(r, "vegetation"), PLANES, abs(x), plane_x=x)]
    color = pick(r, kind)
    thing = place(street, kind, rect_x(x, 0, h, z0, z1), color, PLANES, abs(x), plane_x=x)
    if thing is None:
        return []
    if kind == "wall":   # with a lighter coping on top
        paint(street, thing, rect_x(x, h - 0.12, h, z0, z1), color * 1.2)
        return [thing]
    # a fence: solid boards, or a see-through mesh of bars between posts and rails
    thing.see_through = r.random() < 0.5
    bar = color * (r.uniform(0.5, 0.8) if not thing.see_through else 1.0)
    step = r.uniform(0.12, 0.3) if thing.see_through else r.uniform(0.15, 2.5)
    z = z0
    while z < z1 and street.camera.pixels(step, z) >= 2:
        paint(street, thing, [[x, 0, z], [x, h, z]], bar, line=1)
        z += step
    if z < z1:   # too far to see the bars: a solid band
        paint(street, thing, rect_x(x, 0, h, z, z1), bar * 0.9)
    for y in (0.1 * h, 0.95 * h):
        paint(street, thing, [[x, y, z0], [x, y, z1]], bar * 0.8, line=max(1, int(street.camera.pixels(0.06, z0))))
    return [thing]


def _lot(rng, street, s, side, z0, z1):
    """An empty lot from z0 to z1: terrain, trees, and a set-back building behind."""
    r = rng
    pieces = [place(street, "terrain", ground_rect(side.walk_out, side.walk_out + s * 40, z0, z1), pick(r, "terrain"),
                    PLANES, abs(side.walk_out) + 50, plane_x=side.walk_out + s * 20)]
    back = side.build + s * r.uniform(12, 30)
    h = r.uniform(*street.style.height_range)
    pieces.append(place(street, "building", rect_x(back, 0, h, z0 - 5, z1 + 5),
                        pick(r, "building", 14, street.style.building_colors), PLANES, abs(back), plane_x=back))
    for z in numpy.arange(z0 + 2, z1 - 1, r.uniform(3, 7)):
        xt = side.walk_out + s * r.uniform(1, 8)
        pieces += tree(rng, street, xt, z, layer=PLANES, order=abs(xt))
    return pieces


def _park(rng, street, s, side):
    """No buildings on this side: a tree line above terrain, maybe behind a hedge, wall or fence."""
    r = rng
    x = side.curb + s * r.uniform(2, 6)
    zs = numpy.linspace(street.z_near * 2, street.z_end, 80)
    tops = r.uniform(5, 12) + numpy.cumsum(r.normal(0, 0.4, len(zs)))
    tops = numpy.clip(tops, 2, 25)
    pts = [[x, 0, zs[-1]], [x, 0, zs[0]]] + [[x, t, z] for z, t in zip(zs, tops)]
    thing = place(street, "vegetation", pts, pick(r, "vegetation"), PLANES, abs(x), plane_x=x)
    if thing is not None:
        for _ in range(25):   # lighter and darker leaf blobs
            z = r.uniform(zs[0], zs[-1] * 0.6)
            y = r.uniform(1, numpy.interp(z, zs, tops))
            blob = side_plane(x, y, z, ellipse(7, r.uniform(0.8, 2.0), rng=r, jitter=0.3))
            paint(street, thing, blob, thing.color * r.uniform(0.7, 1.3))
    pieces = [thing]
    if r.random() < 0.5:
        pieces += _boundary(rng, street, s, side._replace(walk_out=side.curb + s * 1.5), street.z_near * 2,
                            street.z_end)
    return pieces
