"""Polygons to pictures: the label images of a ``_polygons.json``, and the rendered photograph.

``rasterize`` is what the official ``json2labelImg``/``json2instanceImg`` compute, done once for
both (and for the object index the renderer needs). ``render_picture`` turns a scene's objects,
already in painter's order, into an RGB image: base colours, details clipped to their object,
see-through objects, the sky, per-class texture, cast shadows, haze, and the camera's exposure,
white balance, gamma, vignette, noise and blur.
"""
from __future__ import annotations

import numpy
from PIL import Image, ImageDraw, ImageFilter

from .labels import NAME_TO_LABEL

__all__ = ["rasterize", "render_picture"]


# ---------------------------------------------------------------------------------------------
# Annotation -> label images.
# ---------------------------------------------------------------------------------------------
def _label_of(name):
    """The table entry of a json label name; "cargroup" and friends are their class."""
    if name not in NAME_TO_LABEL and name.endswith("group"):
        return NAME_TO_LABEL[name[:-len("group")]], True
    return NAME_TO_LABEL[name], False


def rasterize(annotation):
    """label_ids uint8 (H, W) and instance_ids uint16 (H, W) of a ``_polygons.json`` annotation.

    What the official ``json2labelImg`` and ``json2instanceImg`` compute: polygons drawn in the
    json's order with ``ImageDraw.polygon``, background "unlabeled", deleted objects and labels with
    a negative id (license plate) skipped, "<class>group" drawn as its class (and, in the instance
    image, as the bare class id), instance classes as ``id * 1000 + k`` with k counting per class.
    Also returns the object index image (int32, 0 = background, i = i-th drawn object).
    """
    size = (annotation["imgWidth"], annotation["imgHeight"])
    index_image = Image.new("I", size, 0)
    draw = ImageDraw.Draw(index_image)
    label_of, instance_of = [0], [0]
    counts = {}
    for obj in annotation["objects"]:
        if obj.get("deleted"):
            continue
        label, group = _label_of(obj["label"])
        if label.id < 0:
            continue
        instance = label.id
        if label.has_instances and not group:
            instance = label.id * 1000 + counts.get(label.name, 0)
            counts[label.name] = counts.get(label.name, 0) + 1
        label_of.append(label.id)
        instance_of.append(instance)
        draw.polygon([tuple(p) for p in obj["polygon"]], fill=len(label_of) - 1)
    index = numpy.asarray(index_image, numpy.int32)
    label_ids = numpy.asarray(label_of, numpy.uint8)[index]
    instance_ids = numpy.asarray(instance_of, numpy.uint16)[index]
    return label_ids, instance_ids, index


# ---------------------------------------------------------------------------------------------
# Rendering the picture.
# ---------------------------------------------------------------------------------------------
def _label_table(values, default=0.0):
    table = numpy.full(256, default, numpy.float32)
    for name, value in values.items():
        table[NAME_TO_LABEL[name].id] = value
    return table


# texture amplitudes per label (fine grain, blotches, large patches) and a green/yellow hue wobble
_FINE = _label_table({"road": 0.07, "sidewalk": 0.06, "parking": 0.07, "building": 0.05, "wall": 0.07, "fence": 0.05,
                      "pole": 0.03, "vegetation": 0.2, "terrain": 0.16, "sky": 0.01, "person": 0.05, "rider": 0.05,
                      "car": 0.03, "truck": 0.03, "bus": 0.03, "motorcycle": 0.04, "bicycle": 0.05, "static": 0.06,
                      "traffic sign": 0.03, "traffic light": 0.03, "ego vehicle": 0.02}, 0.04)
_BLOTCH = _label_table({"road": 0.05, "sidewalk": 0.06, "building": 0.07, "wall": 0.08, "vegetation": 0.16,
                        "terrain": 0.12, "car": 0.06, "truck": 0.05, "bus": 0.05, "person": 0.05}, 0.03)
_PATCH = _label_table({"road": 0.08, "sidewalk": 0.06, "building": 0.06, "wall": 0.06, "vegetation": 0.1,
                       "terrain": 0.12, "car": 0.08}, 0.02)
_HUE = _label_table({"vegetation": 1.0, "terrain": 0.8})
_ON_GROUND = _label_table({"road": 1, "sidewalk": 1, "parking": 1, "terrain": 1, "ground": 1})
_SKY_ID = NAME_TO_LABEL["sky"].id


def _smooth_noise(rng, size, cells):
    """Gaussian noise on a coarse grid of ``cells`` rows, bilinearly resized to ``size``: (H, W) float32."""
    H, W = size
    h, w = max(2, cells), max(2, int(round(cells * W / H)))
    coarse = rng.standard_normal((h, w)).astype(numpy.float32)
    return numpy.asarray(Image.fromarray(coarse, mode="F").resize((W, H), Image.BILINEAR), numpy.float32)


def render_picture(rng, things, index, camera, sky_colors, shadows):
    """The RGB picture, uint8 (H, W, 3), of ``things`` (in painter's order).

    ``index``: their object index image (``rasterize``'s third result: i is ``things[i - 1]``);
    each thing has ``label``, ``polygon``, ``color``, ``depth``, ``ground`` (its depth follows
    the image row), ``plane_x`` (it lies on the plane X = plane_x, so its depth follows the
    column), ``see_through`` and ``details``; ``camera``: ``f``, ``cx``, ``horizon``, ``height``;
    ``sky_colors``: (zenith, horizon, cloud) RGB; ``shadows``: polygons in pixels cast on the ground.
    """
    r, (H, W), cam = rng, index.shape, camera
    n = len(things) + 1
    base = numpy.zeros((n, 3), numpy.float32)
    depth = numpy.full(n, 1e9, numpy.float32)
    plane_x = numpy.zeros(n, numpy.float32)
    kind = numpy.zeros(n, numpy.int8)   # 0 constant depth, 1 ground (depth from the row), 2 plane X = const
    label = numpy.zeros(n, numpy.uint8)
    see_through = numpy.zeros(n, bool)
    for i, t in enumerate(things, 1):
        base[i], depth[i], see_through[i] = t.color, t.depth, t.see_through
        label[i] = _label_of(t.label)[0].id
        if t.ground:
            kind[i] = 1
        elif t.plane_x is not None:
            kind[i], plane_x[i] = 2, t.plane_x

    # what each pixel shows: its object, or, through a see-through one, the object behind it
    appear = index
    if see_through.any():
        under = Image.new("I", (W, H), 0)
        draw = ImageDraw.Draw(under)
        for i, t in enumerate(things, 1):
            if not t.see_through:
                draw.polygon([tuple(p) for p in t.polygon], fill=i)
        appear = numpy.where(see_through[index], numpy.asarray(under, numpy.int32), index)
    material = label[appear]   # (H, W) label ids of the visible surface
    rgb = base[appear]   # (H, W, 3)

    # details: drawn with their owner's index, kept only where the owner is what we see
    detail = Image.new("RGB", (W, H))
    owner = Image.new("I", (W, H), 0)
    draw_rgb, draw_owner = ImageDraw.Draw(detail), ImageDraw.Draw(owner)
    for i, t in enumerate(things, 1):
        for kind_, points, color, width in t.details:
            if kind_ == "poly":
                draw_rgb.polygon(points, fill=color)
                draw_owner.polygon(points, fill=i)
            else:
                draw_rgb.line(points, fill=color, width=width)
                draw_owner.line(points, fill=i, width=width)
    owner = numpy.asarray(owner, numpy.int32)
    seen = (owner == index) | (owner == appear)
    rgb = numpy.where(seen[..., None], numpy.asarray(detail, numpy.float32), rgb)

    # the sky: a gradient from the zenith to the horizon, with clouds
    rows = numpy.arange(H, dtype=numpy.float32)[:, None]
    cols = numpy.arange(W, dtype=numpy.float32)[None, :]
    zenith, horizon, cloud = sky_colors
    t = numpy.clip(rows / max(cam.horizon, 1.0), 0, 1)[..., None]
    sky = zenith * (1 - t) + horizon * t   # (H, 1, 3)
    clouds = numpy.clip(_smooth_noise(r, (H, W), 5) * r.uniform(0.3, 0.8) + r.uniform(-0.6, 0.2), 0, 1)[..., None]
    sky = sky * (1 - clouds) + cloud * clouds
    is_sky = (material == _SKY_ID)[..., None]
    rgb = numpy.where(is_sky, sky, rgb)

    # texture: multiplicative noise at three scales, amplitudes by class
    fine = r.standard_normal((H, W)).astype(numpy.float32)
    blotch = _smooth_noise(r, (H, W), H // 3)
    patch = _smooth_noise(r, (H, W), 6)
    gain = 1 + _FINE[material] * fine + _BLOTCH[material] * blotch + _PATCH[material] * patch
    rgb = rgb * gain[..., None]
    hue = _HUE[material] * _smooth_noise(r, (H, W), H // 8) * 18
    rgb = rgb + hue[..., None] * numpy.array([1.0, 0.5, -0.6], numpy.float32)

    # cast shadows on the ground
    if shadows:
        mask = Image.new("L", (W, H), 0)
        draw = ImageDraw.Draw(mask)
        for polygon in shadows:
            if numpy.all(numpy.abs(numpy.asarray(polygon)) < 1e5):
                draw.polygon(polygon, fill=255)
        mask = numpy.asarray(mask.filter(ImageFilter.BoxBlur(0.7)), numpy.float32) / 255
        rgb = rgb * (1 - r.uniform(0.35, 0.6) * mask * _ON_GROUND[material])[..., None]

    # haze: far things fade toward the horizon's colour
    ground_depth = cam.f * cam.height / numpy.maximum(rows - cam.horizon, 0.3)
    plane_depth = numpy.abs(cam.f * plane_x[appear] / numpy.where(numpy.abs(cols - cam.cx) < 0.5, 0.5, cols - cam.cx))
    kinds = kind[appear]
    d = numpy.where(kinds == 1, ground_depth, numpy.where(kinds == 2, plane_depth, depth[appear]))
    visibility = r.uniform(150, 700)
    haze = (1 - numpy.exp(-numpy.minimum(d, 5000) / visibility)) * (1 - is_sky[..., 0])
    rgb = rgb * (1 - haze[..., None]) + horizon * haze[..., None]

    # the camera: exposure, white balance, gamma, vignette, noise, a little blur
    exposure = r.uniform(0.7, 1.3) * (1.0 if shadows else r.uniform(0.75, 1.0))
    balance = r.uniform(0.9, 1.1, 3).astype(numpy.float32)
    rgb = numpy.clip(rgb * exposure * balance, 0, 255)
    rgb = 255 * (rgb / 255) ** r.uniform(0.8, 1.2)
    radius = ((rows - H / 2) / H) ** 2 + ((cols - W / 2) / W) ** 2
    rgb = rgb * (1 - r.uniform(0.0, 0.5) * radius)[..., None]
    rgb = rgb + r.standard_normal((H, W, 3)).astype(numpy.float32) * r.uniform(1.5, 5.0)
    image = Image.fromarray(numpy.clip(rgb + 0.5, 0, 255).astype(numpy.uint8))
    image = image.filter(ImageFilter.GaussianBlur(r.uniform(0.3, 0.8)))
    return numpy.asarray(image)
