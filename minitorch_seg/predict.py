"""Segment image files with a trained model: trainId, labelId and colour-overlay PNGs.

For each input ``street.png`` it writes, under ``out``:
``trainIds/street.png`` (0..18, what our metrics read), ``labelIds/street.png`` (Cityscapes label
ids, what the official evaluation reads) and ``color/street.png`` (the Cityscapes palette blended
over the image). Images of any size are padded up to a multiple of 32 for the model and cropped
back, so predictions are at full resolution. A model trained at ``input_scale`` s < 1 (the
default job trains at half the data's resolution) sees each image resized by s, and its logits
are resized back (bilinear) before the argmax, so predictions are at full resolution then too.
"""
import io
import os

import numpy
from PIL import Image

from . import backend
from . import functional as F
from .autograd import no_grad
from .checkpoint import atomic_write_bytes, saved_config
from .data.labels import train_ids_to_colors, train_ids_to_label_ids
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize, to_chw_float32
from .tensor import Tensor

MULTIPLE = 32


def read_image(path):
    try:
        with Image.open(path) as image:
            return numpy.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read image {path} ({error}).") from None


@no_grad()
def segment(model, images, input_scale=1.0):
    """Predicted train ids (N, H, W) for a normalised batch (N, 3, H, W) of any size.

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
    return logits.argmax(dim=1)


def predict_train_ids(model, image, mean=IMAGENET_MEAN, std=IMAGENET_STD, input_scale=1.0):
    """Train ids (H, W) uint8 for one uint8 (H, W, 3) image, at its own resolution."""
    x = to_chw_float32(normalize(image, mean, std))[None]                    # (1, 3, H, W)
    return segment(model, Tensor(backend.to_backend(x)), input_scale)[0].numpy().astype(numpy.uint8)


def _write_png(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def predict_files(model, meta, paths, out, alpha=0.5):
    """Write the three PNGs for each image path; yields the paths written."""
    norm, input_scale = meta.get("normalization", {}), saved_config(meta)["input_scale"]
    for path in paths:
        image = read_image(path)
        train_ids = predict_train_ids(model, image, norm.get("mean", IMAGENET_MEAN), norm.get("std", IMAGENET_STD),
                                      input_scale)
        stem = os.path.splitext(os.path.basename(path))[0] + ".png"
        overlay = (alpha * train_ids_to_colors(train_ids) + (1 - alpha) * image).astype(numpy.uint8)
        for folder, array in (("trainIds", train_ids), ("labelIds", train_ids_to_label_ids(train_ids).astype(numpy.uint8)),
                              ("color", overlay)):
            target = os.path.join(out, folder, stem)
            _write_png(target, array)
            yield target
