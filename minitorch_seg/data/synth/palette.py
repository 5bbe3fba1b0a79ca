"""The colours things are painted with: families that overlap between classes, skies, a city's style.

Each class draws its base colour from several families, and the families overlap on purpose
(grey cars, grey roads, grey walls, grey poles, green fences...): colour alone says little about
the class, so a model has to use shape and context.

>>> import numpy
>>> rng = numpy.random.default_rng(0)
>>> pick(rng, "road", jitter=0.0, subset=[1])   # without jitter: the family's member itself
array([ 96.,  95., 100.])
>>> style = city_style(rng)
>>> 4 <= len(style.building_colors) < 8, 6 <= style.height_range[0] < 10 <= 16 <= style.height_range[1] < 30
(True, True)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy

__all__ = ["FAMILIES", "SKIES", "pick", "CityStyle", "city_style"]

# RGB families per class, or per part ("cloth", "skin", "glass"...).
FAMILIES = {
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
SKIES = [((62, 116, 196), (168, 198, 230), (236, 240, 246)),
         ((120, 150, 190), (200, 210, 220), (232, 234, 238)),
         ((150, 154, 164), (206, 206, 208), (178, 180, 186)),
         ((84, 104, 156), (232, 170, 122), (214, 160, 150))]


def pick(rng, family, jitter=14.0, subset=None):
    """One colour of ``family`` (or of its members ``subset``), jittered per channel and overall: (3,) float64."""
    colors = FAMILIES[family] if subset is None else [FAMILIES[family][i] for i in subset]
    base = numpy.asarray(colors[rng.integers(len(colors))], numpy.float64)
    return numpy.clip(base + rng.normal(0.0, jitter, 3) + rng.normal(0.0, jitter), 0, 255)


class CityStyle(NamedTuple):
    """What one city's streets have in common (facade palette, heights, paving, greenery).

    ``building_colors``: the members of the "building" family its facades use; ``height_range``:
    (lowest, highest) building in metres; ``road``, ``sidewalk``, ``bus_color``: its usual member
    of those families; ``tree_rate``, ``wall_rate``: how often a side has trees, a plot a wall.
    """
    building_colors: tuple
    height_range: tuple
    road: int
    sidewalk: int
    tree_rate: float
    wall_rate: float
    bus_color: int


def city_style(rng):
    """Draw a city's style from ``rng``."""
    n = len(FAMILIES["building"])
    return CityStyle(building_colors=tuple(rng.choice(n, size=rng.integers(4, 8), replace=False).tolist()),
                     height_range=(float(rng.uniform(6, 10)), float(rng.uniform(16, 30))),
                     road=int(rng.integers(len(FAMILIES["road"]))),
                     sidewalk=int(rng.integers(len(FAMILIES["sidewalk"]))),
                     tree_rate=float(rng.uniform(0.3, 0.8)), wall_rate=float(rng.uniform(0.3, 0.7)),
                     bus_color=int(rng.integers(len(FAMILIES["bus"]))))
