"""One synthetic street scene: the polygons of a Cityscapes annotation first, then a picture of them.

How a scene is made:

1. A pinhole camera at driver height looks down a straight street; its focal length, horizon row
   and vanishing point are drawn at random. Everything is placed in metres on that street
   (X to the right, Y up from the ground, Z forward).
2. Each thing becomes one polygon with a Cityscapes label, projected through the camera, clipped
   to the frame and rounded to integer pixels, in painter's order: layers (sky, skyline, ground,
   street end, the planes along the street, objects, ego vehicle), far to near inside a layer.
   The label image is exactly the rasterisation of those polygons, in that order, with PIL's
   ``ImageDraw.polygon``: what the official ``json2labelImg`` does with the ``_polygons.json``.
3. The picture is rendered from the same polygons: a base colour per object, drawn from
   distributions that overlap between classes on purpose (grey cars, grey roads, grey walls,
   grey poles, green fences...); details that do not change the label (windows, lane markings,
   car windows and wheels, clothes, sign faces); per-class texture noise; cast shadows on the
   ground; a lit and a shaded side of the street; haze with distance; exposure, white balance and
   gamma; sensor noise and a little blur. So colour alone says little: shape and context decide.

Everything random comes from the generator passed in, so a seed gives the same bytes.

>>> import numpy
>>> scene = render_scene(numpy.random.default_rng(0), size=(64, 128))
>>> scene.image.shape, scene.image.dtype, scene.label_ids.dtype, scene.instance_ids.dtype
((64, 128, 3), dtype('uint8'), dtype('uint8'), dtype('uint16'))
>>> scene.annotation["imgHeight"], scene.annotation["imgWidth"], scene.annotation["objects"][0]["label"]
(64, 128, 'sky')
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy

from .labels import label_ids_to_colors
from .render import rasterize, render_picture

__all__ = ["Scene", "render_scene", "CityStyle", "city_style"]

Scene = namedtuple("Scene", ["image", "label_ids", "instance_ids", "color", "annotation"])
Scene.__doc__ = """One generated frame: image uint8 (H, W, 3), label_ids uint8 (H, W), instance_ids
uint16 (H, W) (id * 1000 + k for instance classes), color uint8 (H, W, 4) as ``_gtFine_color.png``,
and annotation, the ``_polygons.json`` dict."""

# Painter's layers, drawn in this order; inside a layer, larger ``order`` (farther) first.
SKY, SKYLINE, GROUND, STREET_END, PLANES, OBJECTS, EGO = range(7)


# ---------------------------------------------------------------------------------------------
# Geometry: the camera, clipping, hulls.
# ---------------------------------------------------------------------------------------------
class _Camera:
    """A pinhole at ``height`` metres above a flat ground, looking along +Z, no roll or pitch."""

    def __init__(self, f, cx, horizon, height):
        self.f, self.cx, self.horizon, self.height = f, cx, horizon, height

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


def _clip(points, width, height):
    """Sutherland-Hodgman: the part of a polygon inside [0, width-1] x [0, height-1]."""
    for axis, limit, keep_above in ((0, 0.0, True), (0, width - 1.0, False), (1, 0.0, True), (1, height - 1.0, False)):
        if not points:
            return points
        out = []
        prev = points[-1]
        prev_in = prev[axis] >= limit if keep_above else prev[axis] <= limit
        for cur in points:
            cur_in = cur[axis] >= limit if keep_above else cur[axis] <= limit
            if cur_in != prev_in:
                t = (limit - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
            prev, prev_in = cur, cur_in
        points = out
    return points


def _integer_polygon(uv, width, height):
    """Clip, round to integer pixels, drop repeated points; None if fewer than 3 points remain."""
    points = _clip([(float(u), float(v)) for u, v in uv], width, height)
    out = []
    for u, v in points:
        p = [int(math.floor(u + 0.5)), int(math.floor(v + 0.5))]
        if not out or p != out[-1]:
            out.append(p)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out if len(out) >= 3 else None


def _hull(points):
    """Convex hull (Andrew's monotone chain) of (n, 2) points, counter-clockwise."""
    pts = sorted(set(map(tuple, numpy.asarray(points, numpy.float64).tolist())))
    if len(pts) < 3:
        return pts

    def half(seq):
        chain = []
        for p in seq:
            while len(chain) >= 2 and ((chain[-1][0] - chain[-2][0]) * (p[1] - chain[-2][1]) -
                                       (chain[-1][1] - chain[-2][1]) * (p[0] - chain[-2][0])) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(reversed(pts))
    return lower[:-1] + upper[:-1]


def _circle(n, rx=1.0, ry=None, start=0.0, rng=None, jitter=0.0):
    """n points on an ellipse (optionally with radial jitter): (n, 2)."""
    t = start + numpy.arange(n) * (2 * math.pi / n)
    r = 1.0 + (rng.uniform(-jitter, jitter, n) if jitter else 0.0)
    return numpy.stack([rx * r * numpy.cos(t), (ry or rx) * r * numpy.sin(t)], axis=1)


def _front(x, y, z, local):
    """Local (a, b) metres in the fronto-parallel plane at depth z, offset to (x, y): (n, 3)."""
    local = numpy.asarray(local, numpy.float64)
    return numpy.column_stack([x + local[:, 0], y + local[:, 1], numpy.full(len(local), z)])


def _side(x, y, z, local):
    """Local (a, b) metres in the plane X = x (a runs along Z), offset to (y, z): (n, 3)."""
    local = numpy.asarray(local, numpy.float64)
    return numpy.column_stack([numpy.full(len(local), x), y + local[:, 1], z + local[:, 0]])


def _box(x0, x1, y0, y1, z0, z1):
    return numpy.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], numpy.float64)


def _rect_x(x, y0, y1, z0, z1):
    """A rectangle on the plane X = x (a facade along the street)."""
    return numpy.array([[x, y0, z0], [x, y1, z0], [x, y1, z1], [x, y0, z1]], numpy.float64)


def _rect_z(z, x0, x1, y0, y1):
    """A rectangle facing the camera at depth z."""
    return numpy.array([[x0, y0, z], [x0, y1, z], [x1, y1, z], [x1, y0, z]], numpy.float64)


def _ground(x0, x1, z0, z1):
    return numpy.array([[x0, 0, z0], [x1, 0, z0], [x1, 0, z1], [x0, 0, z1]], numpy.float64)


# ---------------------------------------------------------------------------------------------
# Colours: each class draws from several families, and the families overlap between classes.
# ---------------------------------------------------------------------------------------------
_C = {
    "building": [(150, 145, 135), (178, 162, 130), (122, 121, 126), (160, 98, 78), (192, 186, 176),
                 (112, 102, 96), (140, 150, 162), (200, 172, 122), (96, 104, 100), (170, 130, 120)],
    "wall": [(150, 150, 145), (128, 124, 114), (152, 94, 74), (182, 176, 164), (100, 100, 96)],
    "fence": [(112, 116, 116), (48, 72, 56), (132, 96, 62), (42, 42, 44), (160, 160, 156)],
    "road": [(78, 78, 84), (96, 95, 100), (112, 110, 112), (70, 68, 72), (124, 120, 122)],
    "sidewalk": [(132, 130, 128), (152, 112, 102), (166, 156, 136), (108, 108, 112), (176, 174, 170)],
    "terrain": [(86, 114, 56), (118, 124, 72), (128, 110, 82), (98, 120, 76)],
    "vegetation": [(56, 86, 36), (72, 100, 42), (46, 70, 40), (94, 110, 46), (122, 104, 52), (60, 96, 70)],
    "pole": [(122, 122, 122), (80, 86, 80), (42, 46, 46), (152, 152, 146), (62, 80, 66)],
    "car": [(220, 220, 218), (176, 178, 180), (112, 114, 116), (32, 32, 34), (36, 46, 90), (150, 28, 26),
            (62, 92, 150), (52, 72, 56), (182, 162, 122), (84, 84, 90)],
    "truck": [(222, 222, 220), (170, 40, 34), (50, 82, 150), (120, 122, 124), (60, 100, 64)],
    "bus": [(228, 198, 44), (196, 44, 40), (226, 228, 226), (44, 110, 180)],
    "cloth": [(26, 26, 28), (46, 52, 82), (122, 122, 126), (202, 202, 196), (160, 42, 46), (172, 152, 122),
              (92, 62, 46), (62, 92, 62), (142, 162, 192), (210, 182, 62), (110, 90, 120)],
    "skin": [(226, 190, 160), (192, 150, 120), (142, 102, 76), (96, 70, 56)],
    "hair": [(40, 30, 26), (92, 62, 36), (190, 160, 102), (132, 132, 132)],
    "bicycle": [(30, 30, 32), (176, 176, 180), (150, 30, 30), (40, 70, 140), (50, 90, 60), (200, 200, 200)],
    "sign": [(192, 30, 36), (34, 72, 160), (230, 190, 40), (36, 120, 72), (226, 226, 222)],
    "light_box": [(36, 36, 36), (52, 58, 52), (172, 142, 44), (70, 70, 74)],
    "static": [(60, 70, 60), (120, 120, 118), (90, 70, 52), (40, 40, 42)],
    "ego": [(30, 30, 34), (142, 142, 148), (62, 66, 78), (200, 200, 204)],
    "glass": [(40, 46, 56), (70, 82, 100), (32, 34, 38), (110, 126, 146)],
    "roof": [(112, 56, 46), (80, 80, 86), (140, 80, 60), (60, 60, 64)],
}

# Sky: (zenith, horizon, cloud) colours for clear, hazy, overcast and evening skies.
_SKIES = [((62, 116, 196), (168, 198, 230), (236, 240, 246)),
          ((120, 150, 190), (200, 210, 220), (232, 234, 238)),
          ((150, 154, 164), (206, 206, 208), (178, 180, 186)),
          ((84, 104, 156), (232, 170, 122), (214, 160, 150))]


def _pick(rng, family, jitter=14.0, subset=None):
    colors = _C[family] if subset is None else [_C[family][i] for i in subset]
    base = numpy.asarray(colors[rng.integers(len(colors))], numpy.float64)
    return numpy.clip(base + rng.normal(0.0, jitter, 3) + rng.normal(0.0, jitter), 0, 255)


CityStyle = namedtuple("CityStyle", ["building_colors", "height_range", "road", "sidewalk", "tree_rate",
                                     "wall_rate", "bus_color"])
CityStyle.__doc__ = "What one city's streets have in common (facade palette, heights, paving, greenery)."


def city_style(rng):
    """Draw a city's style from ``rng``."""
    n = len(_C["building"])
    return CityStyle(building_colors=tuple(rng.choice(n, size=rng.integers(4, 8), replace=False).tolist()),
                     height_range=(float(rng.uniform(6, 10)), float(rng.uniform(16, 30))),
                     road=int(rng.integers(len(_C["road"]))), sidewalk=int(rng.integers(len(_C["sidewalk"]))),
                     tree_rate=float(rng.uniform(0.3, 0.8)), wall_rate=float(rng.uniform(0.3, 0.7)),
                     bus_color=int(rng.integers(len(_C["bus"]))))


# ---------------------------------------------------------------------------------------------
# The scene under construction.
# ---------------------------------------------------------------------------------------------
class _Thing:
    """One annotated polygon, plus what the renderer needs: base colour, depth, details."""

    __slots__ = ("label", "polygon", "color", "layer", "order", "depth", "plane_x", "ground", "details", "plates",
                 "see_through")

    def __init__(self, label, polygon, color, layer, order, depth, plane_x, ground):
        self.label, self.polygon, self.color = label, polygon, color
        self.layer, self.order, self.depth, self.plane_x, self.ground = layer, order, depth, plane_x, ground
        self.see_through = False  # a bicycle, a mesh fence: what is behind shows between its details
        self.details = []  # (kind "poly" | "line", [(u, v), ...], rgb, width)
        self.plates = []   # license-plate polygons: written to the json after this thing, never drawn


class _Builder:
    """Composes one street: ``build()`` returns its things in painter's order."""

    def __init__(self, rng, size, style):
        self.rng, (self.H, self.W), self.style = rng, size, style
        self.things = []
        self.shadows = []  # ground polygons in pixels, darkened when sunny
        r = rng
        self.cam = _Camera(f=self.W * r.uniform(0.95, 1.25), cx=self.W * r.uniform(0.4, 0.6),
                           horizon=self.H * r.uniform(0.36, 0.5), height=r.uniform(1.3, 1.75))
        # the nearest ground depth in view, and a near limit that is safely below the frame
        self.z_bottom = self.cam.f * self.cam.height / (self.H - self.cam.horizon)
        self.z_near = 0.5 * self.z_bottom
        self.sunny = r.random() < 0.6
        self.sun_side = 1.0 if r.random() < 0.5 else -1.0   # the side of the street the sun shines on
        self.sun_dx = -self.sun_side * r.uniform(0.3, 1.2)   # shadows fall away from the sun

    # -- adding things -------------------------------------------------------------------------
    def add(self, label, points, color, layer, order, *, hull=False, plane_x=None, ground=False, depth=None,
            projected=False):
        uv = numpy.asarray(points, numpy.float64) if projected else self.cam.project(points)
        if hull:
            uv = _hull(uv)
        polygon = _integer_polygon(uv, self.W, self.H)
        if polygon is None:
            return None
        thing = _Thing(label, polygon, numpy.asarray(color, numpy.float64), layer, order,
                       order if depth is None else depth, plane_x, ground)
        self.things.append(thing)
        return thing

    def detail(self, thing, points, rgb, *, line=0, projected=False):
        """Paint ``points`` (a polygon, or a polyline ``line`` pixels wide) onto ``thing`` only."""
        if thing is None:
            return
        uv = numpy.asarray(points, numpy.float64) if projected else self.cam.project(points)
        if not numpy.all(numpy.abs(uv) < 1e5):
            return
        color = tuple(int(min(max(c, 0), 255)) for c in rgb)
        thing.details.append(("line" if line else "poly", [tuple(p) for p in uv.tolist()], color, line))

    def details(self, thing, polygons, colors):
        """Many polygon details at once: ``polygons`` (n, k, 3) points, ``colors`` (n, 3)."""
        if thing is None or len(polygons) == 0:
            return
        uvs = self.cam.project(polygons).tolist()
        colors = numpy.clip(numpy.asarray(colors), 0, 255).astype(int).tolist()
        thing.details.extend(("poly", [tuple(p) for p in uv], tuple(c), 0) for uv, c in zip(uvs, colors))

    def shadow(self, points):
        if self.sunny:
            self.shadows.append([tuple(p) for p in self.cam.project(points).tolist()])

    def min_width(self, metres, z, pixels=1.0):
        """``metres`` widened so that it covers at least ``pixels`` pixels at depth z."""
        return max(metres, pixels * z / self.cam.f)

    # -- the street ----------------------------------------------------------------------------
    def layout(self):
        r = self.rng
        self.road = (-r.uniform(2.5, 9.0), r.uniform(2.2, 6.0))            # road edges, X
        self.z_end = r.uniform(50, 220)
        self.sides = {}
        for s in (-1.0, 1.0):
            edge = self.road[0] if s < 0 else self.road[1]
            strip = r.choice(["none", "none", "none", "terrain", "parking"])
            strip_w = 0.0 if strip == "none" else r.uniform(0.8, 2.4)
            walk = r.uniform(1.8, 5.0)
            setback = 0.0 if r.random() < 0.6 else r.uniform(1.0, 5.0)
            curb = edge + s * strip_w
            walk_out = curb + s * walk
            self.sides[s] = dict(edge=edge, strip=strip, curb=curb, walk_out=walk_out,
                                 build=walk_out + s * setback, setback=setback,
                                 park=r.random() < 0.12, gaps=[])

    def sky(self):
        kind = self.rng.integers(len(_SKIES)) if self.sunny else 2 - (self.rng.random() < 0.3)
        self.sky_colors = [numpy.asarray(c, numpy.float64) for c in _SKIES[int(kind)]]
        self.add("sky", [(0, 0), (self.W - 1, 0), (self.W - 1, self.H - 1), (0, self.H - 1)],
                 self.sky_colors[1], SKY, 1e9, projected=True, depth=1e9)

    def skyline(self):
        r = self.rng
        if r.random() < 0.5:
            z = r.uniform(300, 700)
            x = -z * 1.2
            while x < z * 1.2:
                w, h = r.uniform(15, 60), r.uniform(15, 90)
                if r.random() < 0.75:
                    self.add("building", _rect_z(z, x, x + w, 0, h), _pick(r, "building"), SKYLINE, z)
                x += w + (0 if r.random() < 0.6 else r.uniform(5, 40))
        if r.random() < 0.4:
            z = r.uniform(250, 500)
            xs = numpy.linspace(-z * 1.3, z * 1.3, 40)
            tops = r.uniform(6, 20) + numpy.cumsum(r.normal(0, 1.5, len(xs)))
            pts = [[x, 0, z] for x in (xs[0], xs[-1])][::-1] + [[x, max(t, 2), z] for x, t in zip(xs, tops)]
            self.add("vegetation", pts, _pick(r, "vegetation"), SKYLINE, z - 1)

    def ground_plane(self):
        r, zn, st = self.rng, self.z_near, self.style
        far = 500.0
        self.add("terrain", _ground(-far, far, zn, far), _pick(r, "terrain"), GROUND, 0, ground=True)
        road_color = _pick(r, "road", 8, [st.road] if r.random() < 0.8 else None)
        walk_color = _pick(r, "sidewalk", 10, [st.sidewalk] if r.random() < 0.7 else None)
        z_road_end = self.z_end if self.end_kind == "buildings" else far
        for s, side in self.sides.items():
            if side["park"]:
                outer = side["curb"] + s * r.uniform(0.5, 1.5)
            else:
                outer = side["build"] + s * 60
            walk = self.add("sidewalk", _ground(side["curb"], outer, zn, z_road_end + 20), walk_color, GROUND, 0,
                            ground=True)
            self.paving(walk, side["curb"], side["walk_out"], walk_color)
            if side["setback"] > 0 and not side["park"]:
                garden = "terrain" if r.random() < 0.7 else "sidewalk"
                color = _pick(r, "terrain") if garden == "terrain" else walk_color * r.uniform(0.85, 1.1)
                self.add(garden, _ground(side["walk_out"], side["build"] + s * 60, zn, self.z_end), color, GROUND, 0,
                         ground=True)
        road = self.add("road", _ground(self.road[0], self.road[1], zn, z_road_end), road_color, GROUND, 0,
                        ground=True)
        for s, side in self.sides.items():
            if side["strip"] != "none":
                color = _pick(r, "terrain") if side["strip"] == "terrain" else road_color * r.uniform(0.9, 1.15)
                self.add(side["strip"], _ground(side["edge"], side["curb"], zn, z_road_end), color, GROUND, 0,
                         ground=True)
        if self.end_kind == "buildings":  # a cross street in front of the buildings that end the street
            self.add("road", _ground(-far, far, self.z_end - r.uniform(9, 16), self.z_end), road_color, GROUND, 0,
                     ground=True)
        self.side_streets(road_color)
        self.markings(road, road_color)

    def paving(self, walk, x0, x1, color):
        """Paving joints and the curb on a sidewalk: details only."""
        if walk is None:
            return
        r = self.rng
        joint = color * r.uniform(0.7, 0.85)
        step = r.uniform(1.0, 2.5)
        z = self.z_bottom * 0.8
        while z < 35:
            self.detail(walk, [[x0, 0, z], [x1, 0, z]], joint, line=1)
            z += step * (1 + z / 25)
        curb = numpy.minimum(color * 1.25 + 15, 255)
        s = 1.0 if x1 > x0 else -1.0
        self.detail(walk, _ground(x0, x0 + s * 0.18, self.z_near, self.z_end), curb)

    def side_streets(self, road_color):
        """Gaps between buildings where a side street leaves: decided here, drawn as ground."""
        r = self.rng
        for s, side in self.sides.items():
            z = r.uniform(8, 40)
            while z < self.z_end - 20:
                if r.random() < 0.5:
                    width = r.uniform(7, 14)
                    side["gaps"].append((z, z + width))
                    self.add("road", _ground(side["edge"], side["edge"] + s * 400, z, z + width), road_color, GROUND, 0,
                             ground=True)
                    z += width
                z += r.uniform(25, 80)

    def markings(self, road, road_color):
        r = self.rng
        paint = numpy.array([226, 226, 220]) * r.uniform(0.75, 1.0)
        x0, x1 = self.road
        lanes = max(1, int(round((x1 - x0) / 3.3)))
        width = r.uniform(0.1, 0.16)
        dash, gap = r.uniform(2, 4), r.uniform(3, 7)
        for k in range(1, lanes):
            x = x0 + k * (x1 - x0) / lanes
            z = self.z_near + r.uniform(0, dash + gap)
            while z < min(self.z_end, 120):
                self.detail(road, _ground(x - width / 2, x + width / 2, z, z + dash), paint)
                z += dash + gap
        if r.random() < 0.6:  # edge lines
            for x in (x0 + 0.3, x1 - 0.3):
                self.detail(road, _ground(x - width / 2, x + width / 2, self.z_near, min(self.z_end, 150)), paint)
        if r.random() < 0.3:  # a crosswalk
            z = r.uniform(self.z_bottom + 2, 30)
            self.crosswalk = z
            x = x0 + 0.3
            while x < x1 - 0.5:
                self.detail(road, _ground(x, x + 0.5, z, z + 3.5), paint)
                x += 1.0
        else:
            self.crosswalk = None
        # darker tyre tracks
        for x in (-0.8, 0.8):
            self.detail(road, _ground(x - 0.3, x + 0.3, self.z_near, min(self.z_end, 150)), road_color * 0.9)

    def street_end(self):
        r = self.rng
        z = self.z_end
        if self.end_kind == "buildings":
            x = -z * 1.5
            while x < z * 1.5:
                w = r.uniform(8, 22)
                h = r.uniform(*self.style.height_range)
                self.facade_front(x, x + w, h, z)
                x += w
        elif self.end_kind == "trees":
            xs = numpy.linspace(-z * 1.5, z * 1.5, 60)
            tops = numpy.maximum(r.uniform(6, 14) + numpy.cumsum(r.normal(0, 0.8, len(xs))), 2)
            pts = [[xs[-1], 0, z], [xs[0], 0, z]] + [[x, t, z] for x, t in zip(xs, tops)]
            thing = self.add("vegetation", pts, _pick(r, "vegetation"), STREET_END, z)
            self.foliage(thing, xs, tops, z)

    def facade_front(self, x0, x1, h, z):
        r = self.rng
        color = _pick(r, "building", 14, self.style.building_colors)
        thing = self.add("building", _rect_z(z, x0, x1, 0, h), color, STREET_END, z)
        if thing is None:
            return
        glass = _pick(r, "glass", 8)
        fw, fh = r.uniform(2.5, 3.5), r.uniform(2.8, 3.4)
        if self.cam.pixels(fh, z) < 2.5:
            return
        y, x = [a.ravel() for a in numpy.meshgrid(numpy.arange(r.uniform(1, 3), h - 1.5, fh),
                                                  numpy.arange(x0 + 0.8, x1 - 1.0, fw))]
        corners = numpy.stack([numpy.stack([x + dx, y + dy, numpy.full_like(x, z)], axis=-1)
                               for dx, dy in ((0, 0), (0, fh / 2), (fw / 2, fh / 2), (fw / 2, 0))], axis=1)  # (n, 4, 3)
        self.details(thing, corners, glass * r.uniform(0.8, 1.3, (len(x), 1)))

    def facades(self):
        """The buildings along both sides (or a park), with walls, fences and hedges in front."""
        r = self.rng
        for s, side in self.sides.items():
            if side["park"]:
                self.park(s, side)
                continue
            gaps = side["gaps"]
            z = r.uniform(1.0, 6.0)
            while z < self.z_end:
                street = next((g for g in gaps if g[0] <= z + 0.5 < g[1]), None)
                if street is not None:
                    z = street[1]
                    self.building_front_face(s, side, z)
                    continue
                next_gap = min([g[0] for g in gaps if g[0] > z] + [self.z_end])
                length = min(r.uniform(8, 40), next_gap - z)
                if length < 3:
                    z = next_gap
                    continue
                if r.random() < 0.15 and z > 10:  # an empty lot with trees
                    self.lot(s, side, z, z + length)
                else:
                    self.building(s, side, z, z + length)
                    if side["setback"] > 0.5 and r.random() < self.style.wall_rate:
                        self.boundary(s, side, z, z + length)
                z += length

    def building(self, s, side, z0, z1):
        r = self.rng
        x = side["build"]
        h = r.uniform(*self.style.height_range)
        color = _pick(r, "building", 14, self.style.building_colors)
        lit = self.sun_side == s
        shade = (r.uniform(1.05, 1.2) if lit else r.uniform(0.62, 0.8)) if self.sunny else r.uniform(0.9, 1.0)
        thing = self.add("building", _rect_x(x, 0, h, z0, z1), color * shade, PLANES, abs(x), plane_x=x)
        if thing is None:
            return
        if r.random() < 0.35:  # a pitched roof seen from the street
            rise, run = r.uniform(2, 5), r.uniform(3, 6)
            roof = [[x, h, z0], [x + s * run, h + rise, z0], [x + s * run, h + rise, z1], [x, h, z1]]
            self.add("building", roof, _pick(r, "roof") * shade, PLANES, abs(x) + 0.01, plane_x=x)
        # windows: a grid of floors and bays in perspective
        glass = _pick(r, "glass", 8)
        floor, bay = r.uniform(2.8, 3.6), r.uniform(2.2, 3.8)
        ww, wh = bay * r.uniform(0.35, 0.6), floor * r.uniform(0.4, 0.6)
        shop = r.random() < 0.4
        y_start = floor if shop else r.uniform(0.8, 1.4)
        ys = numpy.arange(y_start + 0.4, h - wh - 0.3, floor)
        zs = numpy.arange(z0 + 0.6, z1 - ww - 0.2, bay)
        zs = zs[self.cam.pixels(wh, zs) >= 1.5]   # windows smaller than that blur into the wall
        y, z = [a.ravel() for a in numpy.meshgrid(ys, zs)]
        corners = numpy.stack([numpy.stack([numpy.full_like(y, x), y + dy, z + dz], axis=-1)
                               for dy, dz in ((0, 0), (wh, 0), (wh, ww), (0, ww))], axis=1)  # (n, 4, 3)
        self.details(thing, corners, glass * shade * r.uniform(0.75, 1.35, (len(y), 1)))
        if shop:
            self.detail(thing, _rect_x(x, 0.2, floor * 0.8, z0 + 0.5, z1 - 0.5), _pick(r, "glass", 12) * shade)
            self.detail(thing, _rect_x(x, floor * 0.8, floor * 0.95, z0 + 0.3, z1 - 0.3), _pick(r, "sign", 20) * shade)
        self.building_shadow(s, side, z0, z1, h)

    def building_front_face(self, s, side, z):
        """The end wall of a building that starts after a side street, facing the camera."""
        r = self.rng
        x = side["build"]
        h = r.uniform(*self.style.height_range)
        color = _pick(r, "building", 14, self.style.building_colors) * 0.85
        self.add("building", _rect_z(z, x, x + s * 40, 0, h), color, PLANES, abs(x) + 1, depth=z)

    def building_shadow(self, s, side, z0, z1, h):
        if self.sunny and s != self.sun_side:
            reach = min(h * self.rng.uniform(0.3, 0.9), abs(side["build"]) + 3)
            self.shadow(_ground(side["build"], side["build"] - s * reach, z0, z1))

    def boundary(self, s, side, z0, z1):
        """A wall, a fence or a hedge along the outer edge of the sidewalk."""
        r = self.rng
        x = side["walk_out"]
        kind = r.choice(["wall", "fence", "vegetation"], p=[0.4, 0.4, 0.2])
        h = r.uniform(0.6, 2.2)
        if kind == "vegetation":
            zs = numpy.linspace(z0, z1, max(3, int((z1 - z0) / 1.2)))
            tops = h + r.normal(0, 0.12, len(zs))
            pts = [[x, 0, z1], [x, 0, z0]] + [[x, t, z] for z, t in zip(zs, tops)]
            self.add("vegetation", pts, _pick(r, "vegetation"), PLANES, abs(x), plane_x=x)
            return
        color = _pick(r, kind)
        thing = self.add(kind, _rect_x(x, 0, h, z0, z1), color, PLANES, abs(x), plane_x=x)
        if thing is None:
            return
        if kind == "wall":
            self.detail(thing, _rect_x(x, h - 0.12, h, z0, z1), color * 1.2)
            return
        # a fence: solid boards, or a see-through mesh of bars between posts and rails
        thing.see_through = r.random() < 0.5
        bar = color * (r.uniform(0.5, 0.8) if not thing.see_through else 1.0)
        step = r.uniform(0.12, 0.3) if thing.see_through else r.uniform(0.15, 2.5)
        z = z0
        while z < z1 and self.cam.pixels(step, z) >= 2:
            self.detail(thing, [[x, 0, z], [x, h, z]], bar, line=1)
            z += step
        if z < z1:   # too far to see the bars: a solid band
            self.detail(thing, _rect_x(x, 0, h, z, z1), bar * 0.9)
        for y in (0.1 * h, 0.95 * h):
            self.detail(thing, [[x, y, z0], [x, y, z1]], bar * 0.8, line=max(1, int(self.cam.pixels(0.06, z0))))

    def lot(self, s, side, z0, z1):
        """An empty lot: terrain, trees and a set-back building behind."""
        r = self.rng
        self.add("terrain", _ground(side["walk_out"], side["walk_out"] + s * 40, z0, z1), _pick(r, "terrain"), PLANES,
                 abs(side["walk_out"]) + 50, plane_x=side["walk_out"] + s * 20)
        back = side["build"] + s * r.uniform(12, 30)
        h = r.uniform(*self.style.height_range)
        self.add("building", _rect_x(back, 0, h, z0 - 5, z1 + 5), _pick(r, "building", 14, self.style.building_colors),
                 PLANES, abs(back), plane_x=back)
        for z in numpy.arange(z0 + 2, z1 - 1, r.uniform(3, 7)):
            xt = side["walk_out"] + s * r.uniform(1, 8)
            self.tree(xt, z, layer=PLANES, order=abs(xt))

    def park(self, s, side):
        """No buildings on this side: a hedge or a tree line above terrain."""
        r = self.rng
        x = side["curb"] + s * r.uniform(2, 6)
        zs = numpy.linspace(self.z_near * 2, self.z_end, 80)
        tops = r.uniform(5, 12) + numpy.cumsum(r.normal(0, 0.4, len(zs)))
        tops = numpy.clip(tops, 2, 25)
        pts = [[x, 0, zs[-1]], [x, 0, zs[0]]] + [[x, t, z] for z, t in zip(zs, tops)]
        thing = self.add("vegetation", pts, _pick(r, "vegetation"), PLANES, abs(x), plane_x=x)
        if thing is not None:
            for _ in range(25):
                z = r.uniform(zs[0], zs[-1] * 0.6)
                y = r.uniform(1, numpy.interp(z, zs, tops))
                blob = _side(x, y, z, _circle(7, r.uniform(0.8, 2.0), rng=r, jitter=0.3))
                self.detail(thing, blob, thing.color * r.uniform(0.7, 1.3))
        if r.random() < 0.5:
            self.boundary(s, dict(side, walk_out=side["curb"] + s * 1.5), self.z_near * 2, self.z_end)

    # -- street furniture ----------------------------------------------------------------------
    def furniture(self):
        r = self.rng
        for s, side in self.sides.items():
            x_curb = side["curb"] + s * r.uniform(0.3, 0.7)
            if r.random() < self.style.tree_rate:   # an avenue of trees
                step = r.uniform(7, 14)
                for z in numpy.arange(r.uniform(3, 10), min(self.z_end, 90), step):
                    if r.random() < 0.85:
                        self.tree(x_curb + s * r.uniform(0, 0.6), z + r.uniform(-1, 1))
            if r.random() < 0.8:   # street lamps
                step = r.uniform(15, 35)
                for z in numpy.arange(r.uniform(5, 20), min(self.z_end, 120), step):
                    self.lamp(x_curb, z, s)
            for _ in range(r.poisson(1.2)):   # traffic signs on their own posts
                self.sign_post(x_curb + s * r.uniform(0, 0.5), r.uniform(5, 45), facing=(s > 0 or r.random() < 0.5))
            for _ in range(r.poisson(0.5)):   # bins and boxes: "static", ignored in evaluation
                self.static(side["walk_out"] - s * r.uniform(0.3, 0.8), r.uniform(5, 40))
            for g0, _ in side["gaps"]:     # traffic lights at the side streets
                if g0 < 70 and r.random() < 0.7:
                    self.light_post(x_curb, g0 - r.uniform(0.5, 2), s, facing=s > 0 or r.random() < 0.6)
        if r.random() < 0.3:   # lights hanging over the road
            z = r.uniform(15, 45)
            x = self.road[1] + 0.5
            self.pole(x, z, r.uniform(5.5, 7), arm=(-1.0, r.uniform(3, (self.road[1] - self.road[0]) * 0.8)))
            for k in range(1 + (r.random() < 0.5)):
                self.traffic_light(x - r.uniform(1.5, 5), z - 0.2, r.uniform(4.5, 5.5), facing=True)

    def pole(self, x, z, height, width=None, arm=None, color=None):
        r = self.rng
        width = self.min_width(width or r.uniform(0.14, 0.26), z)
        color = _pick(r, "pole") if color is None else color
        thing = self.add("pole", _rect_z(z, x - width / 2, x + width / 2, 0, height), color, OBJECTS, z)
        self.detail(thing, _rect_z(z, x, x + width / 2, 0, height), color * 0.75)
        self.shadow(_ground(x - width, x + self.sun_dx * height * 0.4, z, z + width))
        if arm is not None:
            direction, length = arm
            t = self.min_width(0.1, z)
            pts = [[x, height - t, z], [x, height, z], [x + direction * length, height, z],
                   [x + direction * length, height - t, z]]
            self.add("pole", pts, color, OBJECTS, z - 0.01)
        return color

    def lamp(self, x, z, s):
        r = self.rng
        height = r.uniform(6, 9)
        arm = r.uniform(0.8, 2.0)
        color = self.pole(x, z, height, arm=(-s, arm))
        head = [[x - s * arm - 0.35, height - 0.25, z - 0.02], [x - s * arm + 0.35, height - 0.25, z - 0.02],
                [x - s * arm + 0.3, height + 0.05, z - 0.02], [x - s * arm - 0.3, height + 0.05, z - 0.02]]
        self.add("pole", head, color, OBJECTS, z - 0.02)
        if r.random() < 0.25:
            self.sign(x, r.uniform(2.2, 3.0), z - 0.05, facing=s > 0 or r.random() < 0.5)

    def sign_post(self, x, z, facing):
        r = self.rng
        top = r.uniform(2.3, 3.2)
        self.pole(x, z, top, width=r.uniform(0.06, 0.1))
        self.sign(x, top, z - 0.05, facing)
        if r.random() < 0.3:
            self.sign(x, top - r.uniform(0.7, 0.9), z - 0.05, facing)

    def sign(self, x, y, z, facing):
        """A sign plate centred at (x, y, z): its front is "traffic sign", its back is "static"."""
        r = self.rng
        shape = r.choice(["circle", "triangle", "rect", "octagon", "diamond"], p=[0.35, 0.2, 0.3, 0.05, 0.1])
        size = r.uniform(0.5, 0.85)
        if shape == "circle":
            local = _circle(12, size / 2)
        elif shape == "octagon":
            local = _circle(8, size / 2, start=math.pi / 8)
        elif shape == "diamond":
            local = _circle(4, size / 2)
        elif shape == "triangle":
            local = _circle(3, size / 2, start=math.pi / 2 if r.random() < 0.8 else -math.pi / 2)
        else:
            w, h = size * r.uniform(0.7, 1.6), size * r.uniform(0.6, 1.0)
            local = numpy.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        points = _front(x, y, z, local)
        if not facing:
            self.add("static", points, numpy.full(3, r.uniform(110, 170)), OBJECTS, z)
            return
        kind = {"circle": [0, 1], "octagon": [0], "triangle": [0], "diamond": [2], "rect": [1, 3, 4, 2]}[shape]
        color = _pick(r, "sign", 12, kind)
        thing = self.add("traffic sign", points, color, OBJECTS, z)
        inner = numpy.array([230, 230, 226]) if color[0] > 150 and color[2] < 100 and shape != "diamond" else \
            numpy.array([240, 240, 236]) * r.uniform(0.8, 1.0)
        self.detail(thing, _front(x, y, z, local * r.uniform(0.55, 0.8)), inner if shape != "rect" else color * 0.8)
        if r.random() < 0.6:
            self.detail(thing, _front(x, y, z, [[-size * 0.2, 0], [size * 0.2, 0]]), (30, 30, 30), line=1)

    def light_post(self, x, z, s, facing):
        r = self.rng
        top = r.uniform(2.6, 3.6)
        self.pole(x, z, top + r.uniform(0, 1.5), width=r.uniform(0.1, 0.16))
        self.traffic_light(x, z - 0.1, top, facing)

    def traffic_light(self, x, z, y, facing):
        r = self.rng
        w, h = 0.34, r.uniform(0.8, 1.0)
        w = self.min_width(w, z, 2.0)
        housing = _pick(r, "light_box", 8)
        thing = self.add("traffic light", _rect_z(z, x - w / 2, x + w / 2, y - h / 2, y + h / 2), housing, OBJECTS, z)
        if facing and thing is not None:
            lit = r.integers(3)
            lamps = [(230, 40, 30), (240, 170, 30), (60, 220, 120)]
            for k in range(3):
                color = lamps[k] if k == lit else (55, 55, 55)
                self.detail(thing, _front(x, y + (1 - k) * h / 3.2, z, _circle(8, w * 0.32)), color)

    def tree(self, x, z, layer=OBJECTS, order=None):
        r = self.rng
        order = z if order is None else order
        trunk_h, radius = r.uniform(1.8, 3.5), r.uniform(1.2, 3.2)
        trunk_w = self.min_width(r.uniform(0.2, 0.4), z)
        bark = numpy.array([92, 74, 56]) * r.uniform(0.6, 1.3)
        self.add("vegetation", _rect_z(z, x - trunk_w / 2, x + trunk_w / 2, 0, trunk_h + radius * 0.5), bark,
                 layer, order)
        crown = _front(x, trunk_h + radius * 0.8, z, _circle(16, radius, radius * r.uniform(0.8, 1.2), rng=r,
                                                             jitter=0.22))
        color = _pick(r, "vegetation")
        thing = self.add("vegetation", crown, color, layer, order - 0.001)
        for _ in range(6):
            a, b = r.normal(0, radius * 0.4, 2)
            blob = _front(x + a, trunk_h + radius * 0.8 + b, z, _circle(7, radius * r.uniform(0.2, 0.45), rng=r,
                                                                         jitter=0.3))
            self.detail(thing, blob, color * r.uniform(0.65, 1.35))
        self.shadow(_ground(x - radius + self.sun_dx * 3, x + radius + self.sun_dx * 3, z - radius * 0.6,
                            z + radius * 0.6))

    def foliage(self, thing, xs, tops, z):
        r = self.rng
        for _ in range(12):
            x = r.uniform(xs[0], xs[-1])
            y = r.uniform(1, numpy.interp(x, xs, tops))
            self.detail(thing, _front(x, y, z, _circle(7, r.uniform(1.5, 4), rng=r, jitter=0.3)),
                        thing.color * r.uniform(0.7, 1.3) if thing is not None else (0, 0, 0))

    def static(self, x, z):
        r = self.rng
        w, h = r.uniform(0.4, 1.0), r.uniform(0.8, 1.4)
        self.add("static", _rect_z(z, x - w / 2, x + w / 2, 0, h), _pick(r, "static"), OBJECTS, z)

    # -- traffic -------------------------------------------------------------------------------
    def traffic(self):
        r = self.rng
        x0, x1 = self.road
        for s, side in self.sides.items():   # parked rows along the road's edges
            if r.random() < 0.6:
                x = side["edge"] - s * r.uniform(0.95, 1.2)
                z = r.uniform(self.z_bottom, 15)
                far = r.uniform(30, 80)
                while z < far:
                    length = r.uniform(3.8, 4.9)
                    if r.random() < 0.8 and not self.in_gap(side, z, z + length):
                        self.car(x, z, heading=1 if r.random() < 0.7 else -1, length=length)
                    z += length + r.uniform(0.4, 6)
                if r.random() < 0.5:   # beyond that, a row too far to tell the cars apart
                    self.car_group(x, z + r.uniform(5, 15), r.uniform(15, 40))
        lanes = max(1, int(round((x1 - x0) / 3.3)))
        centres = [x0 + (k + 0.5) * (x1 - x0) / lanes for k in range(lanes)]
        for _ in range(r.poisson(1.6)):     # moving traffic
            x = centres[r.integers(lanes)] + r.normal(0, 0.25)
            z = r.uniform(self.z_bottom + 2, 70)
            heading = 1 if x > -1.5 else -1
            kind = r.choice(["car", "truck", "bus"], p=[0.74, 0.14, 0.12])
            getattr(self, kind)(x, z, heading=heading)
        if r.random() < 0.1:
            x = centres[-1] + r.normal(0, 0.4)
            self.motorcycle(x, r.uniform(self.z_bottom + 2, 40))

    def in_gap(self, side, z0, z1):
        return any(g0 - 1 < z1 and z0 < g1 + 1 for g0, g1 in side["gaps"])

    def vehicle(self, label, x, z, parts, color, glass_band, heading, wheels=2):
        """One vehicle from its boxes: the silhouette is the hull of their projections.

        ``parts``: boxes (x0, x1, y0, y1, z0, z1) relative to (x, 0, z), the near face at z.
        ``glass_band``: (y0, y1, z0, z1, half_width) of the cabin's windows.
        """
        r = self.rng
        points = numpy.concatenate([_box(x + a, x + b, c, d, z + e, z + g) for a, b, c, d, e, g in parts])
        thing = self.add(label, points, color, OBJECTS, z, hull=True)
        if thing is None:
            return None
        half = max(max(abs(p[0]), abs(p[1])) for p in parts)
        length = max(p[5] for p in parts)
        body_top = min(p[3] for p in parts)
        glass = _pick(r, "glass", 8)
        # the side that faces the camera, slightly darker, with its windows and wheels
        xs = x - math.copysign(half, x) if abs(x) > half else None
        if xs is not None:
            self.detail(thing, _rect_x(xs, 0.25, body_top, z, z + length), color * 0.82)
            y0, y1, g0, g1, gw = glass_band
            xg = x - math.copysign(gw, x)
            self.detail(thing, _rect_x(xg, y0, y1, z + g0, z + g1), glass * 0.9)
            for zc in numpy.linspace(z + 0.8, z + length - 0.8, wheels):
                self.detail(thing, _side(xs, 0.32, zc, _circle(10, 0.33)), (24, 24, 26))
        # the near face: bumper, window, lights, plate
        y0, y1, g0, _, gw = glass_band
        self.detail(thing, _rect_z(z, x - half, x + half, 0.12, 0.32), color * 0.45)
        self.detail(thing, _rect_z(z + g0 * 0.5, x - gw * 0.9, x + gw * 0.9, y0, y1), glass)
        lamp = (200, 30, 26) if heading > 0 else (236, 232, 206)
        for sgn in (-1, 1):
            xl = x + sgn * (half - 0.22)
            self.detail(thing, _rect_z(z - 0.01, xl - 0.14, xl + 0.14, body_top - 0.3, body_top - 0.15), lamp)
            self.detail(thing, _rect_z(z - 0.01, x + sgn * (half - 0.35) - 0.15, x + sgn * (half - 0.35) + 0.15, 0,
                                       0.14), (22, 22, 24))
        plate = _rect_z(z - 0.02, x - 0.26, x + 0.26, 0.36, 0.48)
        self.detail(thing, plate, (222, 222, 212))
        polygon = _integer_polygon(self.cam.project(plate), self.W, self.H)
        if polygon is not None:
            thing.plates.append(polygon)
        self.shadow(_ground(x - half - 0.1, x + half + 0.1 + self.sun_dx * 1.2, z - 0.2, z + length + 0.2))
        return thing

    def car(self, x, z, heading=1, length=None):
        r = self.rng
        w, length, h = r.uniform(1.65, 1.9), length or r.uniform(3.8, 4.9), r.uniform(1.35, 1.6)
        body = r.uniform(0.8, 0.95)
        c0, c1 = (0.3, 0.78) if heading > 0 else (0.22, 0.7)
        parts = [(-w / 2, w / 2, 0, body, 0, length),
                 (-w * 0.42, w * 0.42, body, h, length * c0, length * c1)]
        return self.vehicle("car", x, z, parts, _pick(r, "car"), (body + 0.08, h - 0.06, length * c0 + 0.1,
                                                                  length * c1 - 0.1, w * 0.42), heading)

    def car_group(self, x, z, length):
        r = self.rng
        points = _box(x - 0.9, x + 0.9, 0, 1.45, z, z + length)
        thing = self.add("cargroup", points, _pick(r, "car"), OBJECTS, z, hull=True)
        for zc in numpy.arange(z, z + length, 4.6):
            self.detail(thing, _rect_z(zc, x - 0.9, x + 0.9, 0.1, 1.4), _pick(r, "car"))

    def truck(self, x, z, heading=1):
        r = self.rng
        w, box_l, cab_l, h = r.uniform(2.3, 2.55), r.uniform(5, 8), 2.2, r.uniform(3.0, 3.8)
        if heading > 0:   # we see the cargo box first
            parts = [(-w / 2, w / 2, 0.3, h, 0, box_l), (-w / 2 + 0.05, w / 2 - 0.05, 0, 2.9, box_l, box_l + cab_l)]
            band = (1.8, 2.6, box_l + 0.2, box_l + cab_l - 0.3, w / 2 - 0.05)
        else:
            parts = [(-w / 2 + 0.05, w / 2 - 0.05, 0, 2.9, 0, cab_l), (-w / 2, w / 2, 0.3, h, cab_l, cab_l + box_l)]
            band = (1.6, 2.6, 0.1, cab_l - 0.4, w / 2 - 0.05)
        thing = self.vehicle("truck", x, z, parts, _pick(r, "truck"), band, heading, wheels=3)
        if thing is not None and heading > 0:
            self.detail(thing, [[x, 0.4, z - 0.01], [x, h - 0.1, z - 0.01]], thing.color * 0.5, line=1)

    def bus(self, x, z, heading=1):
        r = self.rng
        w, length, h = 2.55, r.uniform(11, 13), r.uniform(3.0, 3.3)
        color = _pick(r, "bus", 10, [self.style.bus_color] if r.random() < 0.8 else None)
        parts = [(-w / 2, w / 2, 0, h, 0, length)]
        self.vehicle("bus", x, z, parts, color, (1.1, 2.6, 0.4, length - 0.4, w / 2), heading, wheels=2)

    def motorcycle(self, x, z):
        r = self.rng
        parts = [(-0.35, 0.35, 0, 1.1, 0, 2.0)]
        thing = self.vehicle("motorcycle", x, z, parts, _pick(r, "car"), (0.8, 1.0, 0.5, 1.2, 0.2), 1, wheels=2)
        if thing is not None:
            self.rider(x, z + 0.9, on="motorcycle")

    # -- people --------------------------------------------------------------------------------
    def people(self):
        r = self.rng
        for s, side in self.sides.items():
            lo, hi = sorted((side["curb"], side["walk_out"]))
            for _ in range(r.poisson(2.2)):
                z = r.uniform(self.z_bottom + 1, 55)
                x = r.uniform(lo + 0.3, hi - 0.3)
                for k in range(1 if r.random() < 0.7 else r.integers(2, 5)):   # alone or in a group
                    self.person(x + r.normal(0, 0.4) * k, z + r.uniform(0, 1.2) * k)
            for _ in range(r.poisson(0.35)):   # parked bicycles
                self.bicycle(side["walk_out"] - s * 0.5, r.uniform(5, 40), along=True)
        if self.crosswalk is not None:
            for _ in range(r.poisson(2.0)):
                self.person(r.uniform(*self.road), self.crosswalk + r.uniform(0.3, 3), view="side")
        x0, x1 = self.road
        for _ in range(r.poisson(0.9)):   # cyclists
            if r.random() < 0.75:   # riding along the right edge of the road, seen from behind
                x, z = x1 - r.uniform(0.6, 1.4), r.uniform(self.z_bottom + 1.5, 45)
                self.bicycle(x, z, along=True)
                self.rider(x, z + 0.5)
            else:   # crossing the street, seen from the side
                x, z = r.uniform(x0 + 1, x1 - 1), r.uniform(self.z_bottom + 3, 35)
                self.bicycle(x, z, along=False)
                self.rider(x, z - 0.02, view="side")

    def _figure(self, height, view, riding=False):
        """A person's outline in local metres (a across, b up), feet at b = 0; plus the leg region."""
        r = self.rng
        k = height / 1.75
        narrow = 0.6 if view == "side" else 1.0
        sw, hw = r.uniform(0.19, 0.24) * narrow, r.uniform(0.14, 0.18) * narrow
        fs = r.uniform(0.15, 0.32) if view == "side" else r.uniform(0.05, 0.14)
        ao = r.uniform(0.0, 0.06) + (0.06 if riding else 0.0)
        hr = r.uniform(0.1, 0.12)
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

    def person(self, x, z, view=None, height=None):
        r = self.rng
        view = view or ("side" if r.random() < 0.35 else "front")
        height = height or (r.uniform(1.55, 1.95) if r.random() < 0.9 else r.uniform(1.0, 1.4))
        outline, legs, head = self._figure(height, view)
        if r.random() < 0.5:
            outline[:, 0] *= -1
            legs[:, 0] *= -1
        top = _pick(r, "cloth", 16)
        thing = self.add("person", _front(x, 0, z, outline), top, OBJECTS, z)
        self.dress(thing, x, 0, z, legs, head)
        self.shadow(_ground(x - 0.25, x + 0.25 + self.sun_dx * height * 0.5, z - 0.2, z + 0.2))

    def rider(self, x, z, view="front", on="bicycle"):
        r = self.rng
        seat = 0.35 if on == "bicycle" else 0.45
        outline, legs, head = self._figure(r.uniform(1.5, 1.85), view, riding=True)
        outline[:, 1] = numpy.where(outline[:, 1] < 0.92, outline[:, 1] * 0.75, outline[:, 1] - 0.23)
        legs[:, 1] = numpy.where(legs[:, 1] < 0.92, legs[:, 1] * 0.75, legs[:, 1] - 0.23)
        head = (head[0], head[1] - 0.23, head[2])
        top = _pick(r, "cloth", 16)
        thing = self.add("rider", _front(x, seat, z, outline), top, OBJECTS, z)
        self.dress(thing, x, seat, z, legs, head)

    def dress(self, thing, x, y, z, legs, head):
        r = self.rng
        if thing is None:
            return
        self.detail(thing, _front(x, y, z, legs), _pick(r, "cloth", 16))
        hx, hy, hr = head
        self.detail(thing, _front(x, y, z, _circle(8, hr * 0.9, hr, start=0.0) + (hx, hy)), _pick(r, "skin", 8))
        hair = _circle(8, hr * 0.95, hr * 1.02, start=0.0)[:5] + (hx, hy + 0.01)
        self.detail(thing, _front(x, y, z, hair), _pick(r, "hair", 10))

    def bicycle(self, x, z, along=True):
        r = self.rng
        wheel, base = 0.34, r.uniform(1.0, 1.1)
        color = _pick(r, "bicycle", 12)
        ring = _circle(12, wheel)
        if along:   # wheels in the plane X = x, one behind the other
            wheels = [_side(x, wheel, z + dz, ring) for dz in (0.0, base)]
            frame = [[x, 0.95, z + 0.3], [x - 0.3, 1.05, z + base - 0.1], [x + 0.3, 1.05, z + base - 0.1]]
        else:       # wheels facing the camera
            d = 1.0 if r.random() < 0.5 else -1.0
            wheels = [_front(x + d * dx, wheel, z, ring) for dx in (-base / 2, base / 2)]
            frame = [[x - d * 0.15, 0.95, z], [x + d * (base / 2 - 0.1), 1.05, z]]
        thing = self.add("bicycle", numpy.concatenate(wheels + [numpy.array(frame)]), color * 0.5, OBJECTS,
                         z + 0.01, hull=True)
        if thing is None:
            return
        thing.see_through = True   # as in Cityscapes, the label covers the gaps between the spokes
        for w in wheels:
            uv = self.cam.project(w)
            self.detail(thing, numpy.vstack([uv, uv[:1]]), (26, 26, 28), line=max(1, int(self.cam.pixels(0.06, z))),
                        projected=True)
        self.detail(thing, numpy.array([w.mean(axis=0) for w in wheels] + [frame[0]]), color,
                    line=max(1, int(self.cam.pixels(0.04, z))))

    # -- the car we sit in -----------------------------------------------------------------------
    def ego(self):
        r = self.rng
        if r.random() < 0.45:
            return
        depth = self.H * r.uniform(0.05, 0.12)
        xs = numpy.linspace(0, self.W - 1, 17)
        t = (xs - self.W / 2) / (self.W / 2)
        ys = self.H - 1 - depth * (1 - 0.45 * t ** 2)
        pts = [(self.W - 1, self.H - 1), (0, self.H - 1)] + list(zip(xs, ys))
        color = _pick(r, "ego", 10)
        thing = self.add("ego vehicle", pts, color, EGO, 0, projected=True, depth=1.0)
        stripe = [(x, y + depth * 0.3) for x, y in zip(xs, ys)]
        self.detail(thing, numpy.array(list(zip(xs, ys)) + stripe[::-1]), numpy.minimum(color * 1.5 + 40, 255),
                    projected=True)

    def build(self):
        r = self.rng
        self.end_kind = r.choice(["buildings", "trees", "open"], p=[0.55, 0.25, 0.2])
        self.layout()
        self.sky()
        self.skyline()
        self.ground_plane()
        self.street_end()
        self.facades()
        self.furniture()
        self.traffic()
        self.people()
        self.ego()
        order = sorted(range(len(self.things)), key=lambda i: (self.things[i].layer, -self.things[i].order, i))
        return [self.things[i] for i in order]


def render_scene(rng, size=(128, 256), style=None):
    """One street scene drawn from ``rng``: a ``Scene`` (image, labels, instances, colours, polygons).

    ``size``: (height, width) in pixels; ``style``: a ``CityStyle`` (drawn from ``rng`` if None).
    """
    style = city_style(rng) if style is None else style
    builder = _Builder(rng, size, style)
    things = builder.build()
    objects = []
    for t in things:
        objects.append({"label": t.label, "polygon": t.polygon})
        objects.extend({"label": "license plate", "polygon": p} for p in t.plates)
    annotation = {"imgHeight": int(size[0]), "imgWidth": int(size[1]), "objects": objects}
    label_ids, instance_ids, index = rasterize(annotation)
    # ``rasterize`` skips only the license plates, which are not things: its object i is things[i - 1]
    image = render_picture(builder.rng, things, index, builder.cam, builder.sky_colors, builder.shadows)
    color = numpy.concatenate([label_ids_to_colors(label_ids), numpy.full(label_ids.shape + (1,), 255, numpy.uint8)],
                              axis=-1)
    return Scene(image, label_ids, instance_ids, color, annotation)

