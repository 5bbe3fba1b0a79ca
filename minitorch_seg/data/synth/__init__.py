"""Synthetic street scenes: the polygons of a Cityscapes annotation first, then a picture of them.

How a scene is made (one module per step):

1. ``street``: a pinhole camera (``geometry``) at driver height looks down a straight street;
   its focal length, horizon row and vanishing point are drawn at random, and so is the layout,
   a ``Street`` value every later stage reads: the road's edges, the two sides (curb, sidewalk,
   building line), the sun and the sky. Everything is placed in metres (X to the right, Y up
   from the ground, Z forward).
2. The builders, functions of the generator and the street, each return the pieces they made
   (``pieces``): ``ground`` (sky, skyline, road, sidewalks, side streets, markings),
   ``buildings`` (the end of the street, facades, walls, fences, lots, parks), ``furniture``
   (trees, lamps, signs, traffic lights), ``traffic`` (cars, trucks, buses, the ego vehicle) and
   ``people`` (pedestrians, riders, bicycles). Each thing is one polygon with a Cityscapes label,
   projected through the camera, clipped to the frame and rounded to integer pixels.
3. ``scene``: the things in painter's order (sky, skyline, ground, street end, the planes along
   the street, objects, ego vehicle; far to near inside a layer) are the ``_polygons.json``; the
   label image is exactly their rasterisation with PIL's ``ImageDraw.polygon``, as the official
   ``json2labelImg`` does it (``data/render.py``).
4. The picture is rendered from the same polygons (``data/render.py``): a base colour per object,
   drawn from families that overlap between classes on purpose (``palette``: grey cars, grey
   roads, grey walls, grey poles, green fences...); details that do not change the label
   (windows, lane markings, car windows and wheels, clothes, sign faces); per-class texture
   noise; cast shadows on the ground; a lit and a shaded side of the street; haze with distance;
   exposure, white balance and gamma; sensor noise and a little blur. So colour alone says
   little: shape and context decide.

Everything random comes from the generator passed in, so a seed gives the same bytes.

>>> import numpy
>>> scene = render_scene(numpy.random.default_rng(0), size=(64, 128))
>>> scene.image.shape, scene.image.dtype, scene.label_ids.dtype, scene.instance_ids.dtype
((64, 128, 3), dtype('uint8'), dtype('uint8'), dtype('uint16'))
>>> scene.annotation["imgHeight"], scene.annotation["imgWidth"], scene.annotation["objects"][0]["label"]
(64, 128, 'sky')
"""
from .palette import CityStyle, city_style
from .scene import Scene, render_scene

__all__ = ["Scene", "render_scene", "CityStyle", "city_style"]
