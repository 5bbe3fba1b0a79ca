"""``Cityscapes``: the real dataset's folder layout, read as (image, target) pairs of host arrays.

    {root}/leftImg8bit/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png
    {root}/gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_labelIds.png
                                                              _gtFine_labelTrainIds.png  (optional)

Images and targets are paired by their stem (``{city}_{seq}_{frame}``). The names follow
torchvision's ``datasets.Cityscapes`` where it has them (``root``, ``split``, ``mode``,
``target_type``, ``transforms``, ``classes``, ``images``, ``targets``).

Unlike torchvision: samples are NumPy arrays, not PIL images (image uint8 (H, W, 3), target int64
(H, W)); targets are train ids (0..18, 255 = ignore) by default (``label_format="labelIds"`` gives
the raw ids); only ``target_type="semantic"`` and ``mode="fine"``; every problem with the files is a
``DatasetError`` whose one sentence names the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy
from PIL import Image

from .labels import IGNORE_INDEX, LABELS, NUM_CLASSES, label_ids_to_train_ids

__all__ = ["Cityscapes", "DatasetError"]

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"
_MAX_LABEL_ID = max(label.id for label in LABELS)   # 33
_MAKE_DATA = "(or run `minitorch-seg make-data`)"


class DatasetError(ValueError):
    """A dataset on disk is missing, incomplete or unreadable; the message names the file."""


class Cityscapes:
    """The Cityscapes fine annotations of one split, as ``(image, target)`` pairs.

    ``root``: the folder holding ``leftImg8bit/`` and ``gtFine/``; ``split``: "train", "val" or
    "test"; ``transforms``: a callable ``(image, target) -> anything``, applied last;
    ``label_format``: "trainIds" (default; read from ``_labelTrainIds.png`` where present, else mapped
    from ``_labelIds.png``) or "labelIds" (the raw ids 0..33).

    ``dataset[i]`` is ``(image uint8 (H, W, 3), target int64 (H, W))``, host arrays (the
    ``DataLoader`` moves batches to the device), or what ``transforms`` makes of them.
    """

    classes = LABELS
    num_classes = NUM_CLASSES
    ignore_index = IGNORE_INDEX
    splits = ("train", "val", "test")

    def __init__(self, root, split="train", mode="fine", target_type="semantic", transforms=None,
                 label_format="trainIds"):
        if split not in self.splits:
            raise DatasetError(f"Cityscapes: split must be one of {', '.join(self.splits)}, got {split!r}.")
        if mode != "fine":
            raise DatasetError(f"Cityscapes: only mode='fine' (gtFine) is supported, got {mode!r}.")
        if target_type != "semantic":
            raise DatasetError(f"Cityscapes: only target_type='semantic' is supported, got {target_type!r}.")
        if label_format not in ("trainIds", "labelIds"):
            raise DatasetError(f"Cityscapes: label_format must be 'trainIds' or 'labelIds', got {label_format!r}.")
        self.root, self.split, self.mode, self.target_type = Path(root), split, mode, target_type
        self.transforms, self.label_format = transforms, label_format
        self.images, self.targets = self._pair()

    def _pair(self):
        image_dir = self.root / "leftImg8bit" / self.split
        label_dir = self.root / "gtFine" / self.split
        if not image_dir.is_dir():
            raise DatasetError(f"Cityscapes: {image_dir} does not exist; expected the Cityscapes layout "
                               f"leftImg8bit/{{split}}/{{city}}/*{IMAGE_SUFFIX} {_MAKE_DATA}.")
        if not label_dir.is_dir():
            raise DatasetError(f"Cityscapes: {label_dir} does not exist; expected the labels "
                               f"gtFine/{{split}}/{{city}}/*{LABEL_IDS_SUFFIX} beside leftImg8bit {_MAKE_DATA}.")
        images, targets = [], []
        for city in sorted(p for p in image_dir.iterdir() if p.is_dir()):
            for image in sorted(city.glob(f"*{IMAGE_SUFFIX}")):
                stem = image.name[:-len(IMAGE_SUFFIX)]
                label_ids = label_dir / city.name / f"{stem}{LABEL_IDS_SUFFIX}"
                train_ids = label_dir / city.name / f"{stem}{TRAIN_IDS_SUFFIX}"
                if self.label_format == "trainIds" and train_ids.is_file():
                    target = train_ids
                elif label_ids.is_file():
                    target = label_ids
                else:
                    raise DatasetError(f"Cityscapes: no label for image {image} (expected {label_ids}).")
                images.append(str(image))
                targets.append(str(target))
        if not images:
            raise DatasetError(f"Cityscapes: {image_dir} holds no images; expected "
                               f"{{city}}/*{IMAGE_SUFFIX} in it {_MAKE_DATA}.")
        return images, targets

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self._check_index(index)
        mode, image = _read(self.images[index], "image")
        if image.ndim != 3 or image.shape[2] != 3:
            raise DatasetError(f"Cityscapes: image {self.images[index]} has mode {mode}; expected an RGB PNG.")
        target = self.target(index)
        if target.shape != image.shape[:2]:
            raise DatasetError(f"Cityscapes: label {self.targets[index]} is {target.shape[0]}x{target.shape[1]} but its "
                               f"image {self.images[index]} is {image.shape[0]}x{image.shape[1]}.")
        if self.transforms is not None:
            return self.transforms(image, target)
        return image, target

    def target(self, index):
        """The label image of item ``index`` alone, int64 (H, W), in ``label_format``, untransformed."""
        self._check_index(index)
        target_path = self.targets[index]
        mode, target = _read(target_path, "label")
        if target.ndim != 2:
            raise DatasetError(f"Cityscapes: label {target_path} has mode {mode}; "
                               "expected a single-channel image of label ids.")
        target = target.astype(numpy.int64)
        if target_path.endswith(TRAIN_IDS_SUFFIX):
            bad = (target >= NUM_CLASSES) & (target != IGNORE_INDEX) | (target < 0)
            expected = f"a train id (0..{NUM_CLASSES - 1} or {IGNORE_INDEX})"
        else:
            bad = (target > _MAX_LABEL_ID) | (target < 0)
            expected = f"a Cityscapes label id (0..{_MAX_LABEL_ID})"
        if bad.any():
            raise DatasetError(f"Cityscapes: label {target_path} holds the value {int(target[bad][0])}, "
                               f"which is not {expected}.")
        if self.label_format == "trainIds" and not target_path.endswith(TRAIN_IDS_SUFFIX):
            target = label_ids_to_train_ids(target)
        return target

    def _check_index(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"Cityscapes: index {index} is out of range for {len(self)} images.")

    def __repr__(self):
        return (f"Cityscapes(root={str(self.root)!r}, split={self.split!r}, label_format={self.label_format!r}): "
                f"{len(self)} images")


def _read(path, what):
    """(mode, pixels) of an image file, decoded fully (an image as RGB), or one sentence naming it."""
    try:
        with Image.open(path) as file:
            file.load()
            mode = file.mode
            if what == "image" and mode in ("RGBA", "L", "P", "LA"):
                return mode, numpy.asarray(file.convert("RGB"))
            return mode, numpy.asarray(file)
    except (OSError, SyntaxError, ValueError) as error:   # PIL's UnidentifiedImageError is an OSError
        raise DatasetError(f"Cityscapes: cannot read {what} {path} ({error}).") from None
