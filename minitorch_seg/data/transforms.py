"""Paired image/label transforms on the host: random scale, crop and flip; resize; normalisation.

Every transform takes and returns ``(image, label)``: image uint8 (H, W, 3), label integer
(H, W), and a ``numpy.random.Generator`` it draws all its randomness from (the loader passes one
seeded by (seed, epoch, index), so a sample's augmentation does not depend on which thread made
it or on what was drawn before). Image and label always move together: the image is resampled
bilinearly (Pillow), the label by nearest neighbour (a label has no "between" classes), and
pixels that come from outside the image are filled with ``IGNORE_INDEX`` (255) in the label,
the same value the loss and the metrics skip.

>>> import numpy
>>> image = numpy.zeros((4, 6, 3), numpy.uint8); label = numpy.arange(24).reshape(4, 6)
>>> t = RandomScaleCropFlip((4, 8), scale_range=(0.5, 0.5), flip=False)
>>> image2, label2 = t(image, label, numpy.random.default_rng(0))
>>> image2.shape, label2.shape
((4, 8, 3), (4, 8))
>>> label2                                # half size, then padded with 255 to the crop
array([[  7,   9,  11, 255, 255, 255, 255, 255],
       [ 19,  21,  23, 255, 255, 255, 255, 255],
       [255, 255, 255, 255, 255, 255, 255, 255],
       [255, 255, 255, 255, 255, 255, 255, 255]])
"""
from __future__ import annotations

import numpy
from PIL import Image

IGNORE_INDEX = 255
# ImageNet's statistics (RGB, on [0, 1] images), the usual choice for Cityscapes with pretrained
# or from-scratch backbones alike.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MEAN_COLOUR = tuple(int(round(255 * m)) for m in IMAGENET_MEAN)  # (124, 116, 104): normalises to ~0

__all__ = ["IGNORE_INDEX", "IMAGENET_MEAN", "IMAGENET_STD", "MEAN_COLOUR", "Compose", "RandomScaleCropFlip",
           "Resize", "normalize", "normalize_chw",
           "to_chw_float32"]


# --------------------------------------------------------------------------------------------
# Resampling one window of a scaled image: the scaled image is never built in full.
# --------------------------------------------------------------------------------------------
def _nearest_indices(start, count, scale, size):
    """Source indices of output pixels start..start+count-1 of an axis scaled by ``scale``.

    Output pixel i has its centre at i + 0.5, which is (i + 0.5) / scale in the source; the
    nearest source pixel is its floor (clipped at the border).
    """
    return numpy.minimum(((numpy.arange(start, start + count) + 0.5) / scale).astype(numpy.int64), size - 1)


def _resample_window(array, scale_yx, top, left, height, width, bilinear):
    """The window [top:top+height, left:left+width] of ``array`` scaled by ``scale_yx``.

    The same as resizing the whole array to round(H * s_y) x round(W * s_x) and then cropping
    (bilinear values may differ by a level or two of rounding), but only the window is computed
    (Pillow's ``box`` argument for bilinear, index arithmetic for nearest), which matters for
    2048 x 1024 Cityscapes images cropped to a fraction of that.
    """
    sy, sx = scale_yx
    if bilinear:
        box = (left / sx, top / sy, (left + width) / sx, (top + height) / sy)
        return numpy.asarray(Image.fromarray(array).resize((width, height), Image.BILINEAR, box=box))
    rows = _nearest_indices(top, height, sy, array.shape[0])
    cols = _nearest_indices(left, width, sx, array.shape[1])
    return array[rows[:, None], cols[None, :]]                     # (height, width[, 3])


def _check_pair(image, label):
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != numpy.uint8:
        raise ValueError(f"Expected an image uint8 (H, W, 3), got {image.dtype} {image.shape}.")
    if label.shape != image.shape[:2]:
        raise ValueError(f"Label of shape {label.shape} does not match image of shape {image.shape}.")


def _pair(size):
    return (int(size), int(size)) if numpy.isscalar(size) else (int(size[0]), int(size[1]))


# --------------------------------------------------------------------------------------------
# Transforms.
# --------------------------------------------------------------------------------------------
class RandomScaleCropFlip:
    """Scale by s ~ U(scale_range), crop ``crop_size`` (h, w) at a random place, flip with p = 1/2.

    Draws, in this order and always all of them (so the stream never depends on the image):
    the scale, the crop's top, the crop's left, the flip. The scaled size is round(H s) x
    round(W s); where it is smaller than the crop, the crop starts at 0 on that axis and the
    rest is padding: ``IGNORE_INDEX`` in the label, ``fill`` (default the ImageNet mean colour,
    which normalises to about 0) in the image, on the bottom/right.

    ``image_interpolation``: "bilinear" (default) or "nearest" (exact colours; tests use it to
    check that image and label stay aligned pixel for pixel).
    """

    def __init__(self, crop_size, scale_range=(0.75, 1.25), flip=True, fill=MEAN_COLOUR,
                 ignore_index=IGNORE_INDEX, image_interpolation="bilinear"):
        if image_interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"image_interpolation must be 'bilinear' or 'nearest', got {image_interpolation!r}.")
        low, high = scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}.")
        self.crop_size, self.scale_range, self.flip = _pair(crop_size), (float(low), float(high)), bool(flip)
        self.fill, self.ignore_index = numpy.asarray(fill, numpy.uint8), ignore_index
        self.bilinear = image_interpolation == "bilinear"

    def __call__(self, image, label, rng):
        _check_pair(image, label)
        (h, w), (crop_h, crop_w) = image.shape[:2], self.crop_size
        s = rng.uniform(*self.scale_range)
        scaled_h, scaled_w = max(1, int(round(h * s))), max(1, int(round(w * s)))
        top = int(rng.integers(0, max(scaled_h - crop_h, 0) + 1))
        left = int(rng.integers(0, max(scaled_w - crop_w, 0) + 1))
        flip = self.flip and rng.random() < 0.5
        valid_h, valid_w = min(crop_h, scaled_h), min(crop_w, scaled_w)
        scale_yx = (scaled_h / h, scaled_w / w)

        out_image = numpy.empty((crop_h, crop_w, 3), numpy.uint8)
        out_image[...] = self.fill
        out_label = numpy.full((crop_h, crop_w), self.ignore_index, dtype=label.dtype)
        out_image[:valid_h, :valid_w] = _resample_window(image, scale_yx, top, left, valid_h, valid_w, self.bilinear)
        out_label[:valid_h, :valid_w] = _resample_window(label, scale_yx, top, left, valid_h, valid_w, False)
        if flip:
            out_image, out_label = out_image[:, ::-1], out_label[:, ::-1]
        return numpy.ascontiguousarray(out_image), numpy.ascontiguousarray(out_label)

    def __repr__(self):
        return (f"RandomScaleCropFlip(crop_size={self.crop_size}, scale_range={self.scale_range}, "
                f"flip={self.flip})")


class Resize:
    """Resize to ``size`` (h, w): the image bilinearly, the label by nearest. No randomness."""

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, image, label, rng=None):
        _check_pair(image, label)
        (h, w), (out_h, out_w) = image.shape[:2], self.size
        scale_yx = (out_h / h, out_w / w)
        return (_resample_window(image, scale_yx, 0, 0, out_h, out_w, True),
                _resample_window(label, scale_yx, 0, 0, out_h, out_w, False))

    def __repr__(self):
        return f"Resize(size={self.size})"


class Compose:
    """Apply paired transforms in order, all drawing from the same generator."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, label, rng=None):
        for transform in self.transforms:
            image, label = transform(image, label, rng)
        return image, label

    def __repr__(self):
        return f"Compose({self.transforms})"


def normalize(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """uint8 images (..., H, W, 3) to float32 (x / 255 - mean) / std, channels last.

    >>> normalize(numpy.full((1, 1, 3), 255, numpy.uint8), mean=(0.5,) * 3, std=(0.5,) * 3)
    array([[[1., 1., 1.]]], dtype=float32)
    """
    mean, std = numpy.asarray(mean, numpy.float32), numpy.asarray(std, numpy.float32)
    out = images.astype(numpy.float32)
    out *= 1 / (255 * std)
    out -= mean / std
    return out


def normalize_chw(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """``to_chw_float32(normalize(images, mean, std))`` in one pass: uint8 (..., H, W, 3) to float32 (..., 3, H, W).

    Each channel is written once, straight into the channels-first result (no float32 temporary
    in the channels-last layout, no strided copy of one): about 10x faster on a batch of crops.
    """
    mean, std = numpy.asarray(mean, numpy.float32), numpy.asarray(std, numpy.float32)
    scale, offset = 1 / (255 * std), mean / std
    chw = numpy.moveaxis(images, -1, -3)                           # (..., 3, H, W), a view of uint8
    out = numpy.empty(chw.shape, numpy.float32)
    for c in range(3):
        numpy.multiply(chw[..., c, :, :], scale[c], out=out[..., c, :, :], dtype=numpy.float32)
        out[..., c, :, :] -= offset[c]
    return out


def to_chw_float32(images):
    """Channels-last (..., H, W, 3) to a contiguous float32 (..., 3, H, W), as the models take it."""
    return numpy.ascontiguousarray(numpy.moveaxis(images, -1, -3), dtype=numpy.float32)
