"""The layout of one street, a value every builder reads: camera, sun, road, the two sides, sky.

``plan_street`` draws it first. Two things are decided later, with the ground, because they are
drawn from the generator there (moving a draw would change every scene after it): where side
streets leave each side (``Side.gaps``) and where a crosswalk crosses the road
(``Street.crosswalk``). The ground stage returns the street with them filled in, and the later
stages (buildings, furniture, traffic, people) receive that one.

>>> import numpy
>>> from minitorch_seg.data.synth.palette import city_style
>>> rng = numpy.random.default_rng(0)
>>> street = plan_street(rng, (64, 128), city_style(rng))
>>> sorted(street.sides), street.crosswalk, street.end in ("buildings", "trees", "open")
([-1.0, 1.0], None, True)
>>> left, right = street.sides[-1.0], street.sides[1.0]
>>> bool(left.build <= left.walk_out <= left.curb <= left.edge < 0 < right.edge <= right.curb <= right.walk_out)
True
"""
from __future__ import annotations

from typing import NamedTuple

import numpy

from .geometry import Camera
from .palette import SKIES, CityStyle

__all__ = ["Side", "Street", "plan_street"]


class Side(NamedTuple):
    """One side of the street, X positions from the road outwards (s = -1.0 left, 1.0 right)."""
    edge: float       # the road's edge
    strip: str        # between the road and the curb: "none", "terrain" or "parking"
    curb: float       # where the sidewalk starts
    walk_out: float   # where the sidewalk ends
    build: float      # the building line
    setback: float    # metres from the sidewalk to the building line (a front garden)
    park: bool        # no buildings on this side: a park
    gaps: tuple = ()  # (z0, z1) where side streets leave; decided with the ground


class Street(NamedTuple):
    """One straight street, in metres: X to the right, Y up, Z forward from the camera."""
    size: tuple           # (height, width) of the picture in pixels
    style: CityStyle      # what the city's streets have in common
    camera: Camera
    sunny: bool
    sun_side: float       # the side the sun shines on (its facades are lit): -1.0 or 1.0
    sun_dx: float         # how far cast shadows lean sideways, away from the sun
    end: str              # what closes the street: "buildings", "trees" or "open"
    road: tuple           # (x0, x1), the road's edges
    z_end: float          # the depth where the street ends
    sides: dict           # {-1.0: Side, 1.0: Side}
    sky: tuple            # (zenith, horizon, cloud) RGB colours
    crosswalk: float | None = None   # the depth of a crosswalk; decided with the ground

    @property
    def z_bottom(self):
        """The depth of the nearest ground in view (on the bottom row)."""
        return self.camera.f * self.camera.height / (self.size[0] - self.camera.horizon)

    @property
    def z_near(self):
        """A near limit for the ground and long planes, safely below the frame."""
        return 0.5 * self.z_bottom


def _plan_side(rng, s, edge):
    """One side of the street, from the road's ``edge`` outwards in the direction ``s``."""
    strip = rng.choice(["none", "none", "none", "terrain", "parking"])
    strip_w = 0.0 if strip == "none" else rng.uniform(0.8, 2.4)
    walk = rng.uniform(1.8, 5.0)
    setback = 0.0 if rng.random() < 0.6 else rng.uniform(1.0, 5.0)
    curb = edge + s * strip_w
    walk_out = curb + s * walk
    return Side(edge=edge, strip=strip, curb=curb, walk_out=walk_out, build=walk_out + s * setback, setback=setback,
                park=rng.random() < 0.12)


def plan_street(rng, size, style):
    """Draw a street's layout from ``rng``: a ``Street`` for a picture of ``size`` (height, width)."""
    height, width = size
    camera = Camera(f=width * rng.uniform(0.95, 1.25), cx=width * rng.uniform(0.4, 0.6),
                    horizon=height * rng.uniform(0.36, 0.5), height=rng.uniform(1.3, 1.75))
    sunny = rng.random() < 0.6
    sun_side = 1.0 if rng.random() < 0.5 else -1.0
    sun_dx = -sun_side * rng.uniform(0.3, 1.2)
    end = rng.choice(["buildings", "trees", "open"], p=[0.55, 0.25, 0.2])
    road = (-rng.uniform(2.5, 9.0), rng.uniform(2.2, 6.0))
    z_end = rng.uniform(50, 220)
    sides = {s: _plan_side(rng, s, road[0] if s < 0 else road[1]) for s in (-1.0, 1.0)}
    kind = rng.integers(len(SKIES)) if sunny else 2 - (rng.random() < 0.3)   # no clear sky without sun
    sky = tuple(numpy.asarray(c, numpy.float64) for c in SKIES[int(kind)])
    return Street(size=(height, width), style=style, camera=camera, sunny=sunny, sun_side=sun_side, sun_dx=sun_dx,
                  end=end, road=road, z_end=z_end, sides=sides, sky=sky)
