"""Segment image files with a trained model: trainId, labelId, colour and overlay PNGs, and a legend.

For each input ``street.png`` (or ``street.jpg``) it writes, under ``out``:

- ``trainIds/street.png``: train ids 0..18, what our metrics read;
- ``labelIds/street.png``: Cityscapes label ids, what the official evaluation reads;
- ``color/street.png``: the prediction in the Cityscapes palette alone, as the Cityscapes tools
  write ``*_color.png``;
- ``overlay/street.png``: that palette blended over the image, to see what was found where;

and once per call ``legend.png``, each palette colour beside its class name. The outputs are
named by the input's file name, as the Cityscapes tools expect, so two inputs whose names give
the same output name (``a/street.png`` and ``b/street.png``, or ``street.png`` and
``street.jpg``) are refused before anything is written (``output_names``): predict them into two
``out`` folders. The same file given twice is predicted once.

Images of any size are padded up to a multiple of 32 for the model and cropped back, so
predictions are at full resolution. A model trained at ``input_scale`` s < 1 (the default job
trains at half the data's resolution) sees each image resized by s, and its logits are resized
back (bilinear) before the argmax, so predictions are at full resolution then too.
"""
import os

import numpy
from PIL import Image

from . import backend
from . import functional as F
from .autograd import no_grad
from .checkpoint import saved_config
from .data.labels import train_ids_to_colors, train_ids_to_label_ids
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize, to_chw_float32
from .runs import write_png
from .tensor import Tensor

__all__ = ["FOLDERS", "ImageError", "full_resolution_logits", "output_names", "predict_files", "predict_train_ids",
           "read_image", "segment"]

MULTIPLE = 32
FOLDERS = ("trainIds", "labelIds", "color", "overlay")
LEGEND = "legend.png"


class ImageError(ValueError):
    """An input image that cannot be read, or inputs whose outputs would overwrite each other."""


def read_image(path):
    try:
        with Image.open(path) as image:
            return numpy.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise ImageError(f"Cannot read image {path} ({error}).") from None


@no_grad()
def full_resolution_logits(model, images, input_scale=1.0):
    """Logits (N, C, H, W) of a normalised batch (N, 3, H, W) of any size, at the batch's resolution.

    The models take sides that are multiples of 32: the batch is padded at the bottom and right
    (with 0, the normalised mean colour) and the logits cropped back. With ``input_scale`` s != 1
    the model sees the batch resized by s (bilinear) and the logits are resized back to H x W,
    as Cityscapes models trained at a fraction of 2048x1024 are evaluated at full resolution.
    """
    height, width = images.shape[2:]
    if input_scale != 1.0:
        images = F.interpolate(images, scale_factor=input_scale, mode="bilinear", align_corners=False)
    small_h, small_w = images.shape[2:]
    pad_h, pad_w = -small_h % MULTIPLE, -small_w % MULTIPLE
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
    logits = model(images)[:, :, :small_h, :small_w]
    if (small_h, small_w) != (height, width):
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return logits


@no_grad()
def segment(model, images, input_scale=1.0):
    """Predicted train ids (N, H, W) for a normalised batch (N, 3, H, W) of any size (``full_resolution_logits``)."""
    return full_resolution_logits(model, images, input_scale).argmax(dim=1)


def predict_train_ids(model, image, mean=IMAGENET_MEAN, std=IMAGENET_STD, input_scale=1.0):
    """Train ids (H, W) uint8 for one uint8 (H, W, 3) image, at its own resolution."""
    x = to_chw_float32(normalize(image, mean, std))[None]                    # (1, 3, H, W)
    return segment(model, Tensor(backend.to_backend(x)), input_scale)[0].numpy().astype(numpy.uint8)


def output_names(paths):
    """{input path: output file name}, each file once; ImageError if two files would share a name."""
    names, owners, seen = {}, {}, set()
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            continue
        name = os.path.splitext(os.path.basename(path))[0] + ".png"
        if name in owners:
            raise ImageError(f"{owners[name]} and {path} would both be written as {name}; "
                             "predict them into different --out folders.")
        seen.add(real)
        owners[name], names[path] = path, name
    return names


def predict_files(model, meta, paths, out, alpha=0.5):
    """Write the four PNGs for each image path and ``legend.png``; yields the paths written."""
    from .viz import palette_legend
    norm, input_scale = meta.get("normalization", {}), saved_config(meta)["input_scale"]
    for path, name in output_names(paths).items():
        image = read_image(path)
        train_ids = predict_train_ids(model, image, norm.get("mean", IMAGENET_MEAN), norm.get("std", IMAGENET_STD),
                                      input_scale)
        colors = train_ids_to_colors(train_ids)
        overlay = (alpha * colors + (1 - alpha) * image).astype(numpy.uint8)
        for folder, array in zip(FOLDERS, (train_ids, train_ids_to_label_ids(train_ids).astype(numpy.uint8),
                                           colors, overlay)):
            target = os.path.join(out, folder, name)
            write_png(target, array)
            yield target
    legend = os.path.join(out, LEGEND)
    write_png(legend, palette_legend())
    yield legend

