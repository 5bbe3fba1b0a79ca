"""The Cityscapes label table, written once: 34 labels plus 'license plate', and the lookups built on it.

The values are those of the official ``cityscapesscripts/helpers/labels.py`` (same order, same
numbers, same colours); only the field names follow torchvision's ``Cityscapes.classes``
(``train_id`` for ``trainId`` and so on).

- ``id``: the value stored in ``*_gtFine_labelIds.png`` (0..33; license plate has -1 and is never
  drawn into a label image).
- ``train_id``: the 19 training classes 0..18 (road .. bicycle); every other label trains as 255,
  the ignore index. The official table gives license plate ``train_id`` -1; the lookups here map it
  (and anything else outside the table) to 255.

>>> import numpy
>>> [NAME_TO_LABEL[name].id for name in ("road", "car", "license plate")]
[7, 26, -1]
>>> label_ids_to_train_ids(numpy.array([0, 7, 8, 26, 33, -1]))
array([255,   0,   1,  13,  18, 255])
>>> CLASS_NAMES[:3], len(CLASS_NAMES)
(('road', 'sidewalk', 'building'), 19)
>>> train_ids_to_colors(numpy.array([[0, 255]], numpy.uint8)).tolist()
[[[128, 64, 128], [0, 0, 0]]]
"""
from __future__ import annotations

from collections import namedtuple

import numpy

from .. import backend as shim

__all__ = ["Label", "LABELS", "NAME_TO_LABEL", "ID_TO_LABEL", "TRAIN_ID_TO_LABEL", "CLASS_NAMES", "NUM_CLASSES",
           "IGNORE_INDEX", "IGNORE_COLOR", "TRAIN_ID_PALETTE", "label_ids_to_train_ids", "train_ids_to_label_ids",
           "train_ids_to_colors", "label_ids_to_colors"]

Label = namedtuple("Label", ["name", "id", "train_id", "category", "category_id", "has_instances",
                             "ignore_in_eval", "color"])

LABELS = (
    #     name                     id  train_id  category        cat_id  has_inst ignore  color
    Label("unlabeled",              0,  255,     "void",          0,     False,   True,   (0, 0, 0)),
    Label("ego vehicle",            1,  255,     "void",          0,     False,   True,   (0, 0, 0)),
    Label("rectification border",   2,  255,     "void",          0,     False,   True,   (0, 0, 0)),
    Label("out of roi",             3,  255,     "void",          0,     False,   True,   (0, 0, 0)),
    Label("static",                 4,  255,     "void",          0,     False,   True,   (0, 0, 0)),
    Label("dynamic",                5,  255,     "void",          0,     False,   True,   (111, 74, 0)),
    Label("ground",                 6,  255,     "void",          0,     False,   True,   (81, 0, 81)),
    Label("road",                   7,  0,       "flat",          1,     False,   False,  (128, 64, 128)),
    Label("sidewalk",               8,  1,       "flat",          1,     False,   False,  (244, 35, 232)),
    Label("parking",                9,  255,     "flat",          1,     False,   True,   (250, 170, 160)),
    Label("rail track",            10,  255,     "flat",          1,     False,   True,   (230, 150, 140)),
    Label("building",              11,  2,       "construction",  2,     False,   False,  (70, 70, 70)),
    Label("wall",                  12,  3,       "construction",  2,     False,   False,  (102, 102, 156)),
    Label("fence",                 13,  4,       "construction",  2,     False,   False,  (190, 153, 153)),
    Label("guard rail",            14,  255,     "construction",  2,     False,   True,   (180, 165, 180)),
    Label("bridge",                15,  255,     "construction",  2,     False,   True,   (150, 100, 100)),
    Label("tunnel",                16,  255,     "construction",  2,     False,   True,   (150, 120, 90)),
    Label("pole",                  17,  5,       "object",        3,     False,   False,  (153, 153, 153)),
    Label("polegroup",             18,  255,     "object",        3,     False,   True,   (153, 153, 153)),
    Label("traffic light",         19,  6,       "object",        3,     False,   False,  (250, 170, 30)),
    Label("traffic sign",          20,  7,       "object",        3,     False,   False,  (220, 220, 0)),
    Label("vegetation",            21,  8,       "nature",        4,     False,   False,  (107, 142, 35)),
    Label("terrain",               22,  9,       "nature",        4,     False,   False,  (152, 251, 152)),
    Label("sky",                   23,  10,      "sky",           5,     False,   False,  (70, 130, 180)),
    Label("person",                24,  11,      "human",         6,     True,    False,  (220, 20, 60)),
    Label("rider",                 25,  12,      "human",         6,     True,    False,  (255, 0, 0)),
    Label("car",                   26,  13,      "vehicle",       7,     True,    False,  (0, 0, 142)),
    Label("truck",                 27,  14,      "vehicle",       7,     True,    False,  (0, 0, 70)),
    Label("bus",                   28,  15,      "vehicle",       7,     True,    False,  (0, 60, 100)),
    Label("caravan",               29,  255,     "vehicle",       7,     True,    True,   (0, 0, 90)),
    Label("trailer",               30,  255,     "vehicle",       7,     True,    True,   (0, 0, 110)),
    Label("train",                 31,  16,      "vehicle",       7,     True,    False,  (0, 80, 100)),
    Label("motorcycle",            32,  17,      "vehicle",       7,     True,    False,  (0, 0, 230)),
    Label("bicycle",               33,  18,      "vehicle",       7,     True,    False,  (119, 11, 32)),
    Label("license plate",         -1,  -1,      "vehicle",       7,     False,   True,   (0, 0, 142)),
)

NAME_TO_LABEL = {label.name: label for label in LABELS}
ID_TO_LABEL = {label.id: label for label in LABELS}
# As the official ``trainId2label``: where several labels share a train id, the first one listed wins.
TRAIN_ID_TO_LABEL = {label.train_id: label for label in reversed(LABELS)}

NUM_CLASSES = 19
IGNORE_INDEX = 255
IGNORE_COLOR = (0, 0, 0)
CLASS_NAMES = tuple(TRAIN_ID_TO_LABEL[t].name for t in range(NUM_CLASSES))
TRAIN_ID_PALETTE = numpy.array([TRAIN_ID_TO_LABEL[t].color for t in range(NUM_CLASSES)], numpy.uint8)  # (19, 3)


def _lookup_tables():
    """256-entry tables indexed by a label id (or train id) in 0..255."""
    id_to_train = numpy.full(256, IGNORE_INDEX, numpy.int64)
    id_to_color = numpy.zeros((256, 3), numpy.uint8)
    for label in LABELS:
        if label.id >= 0:
            id_to_train[label.id] = label.train_id if 0 <= label.train_id < NUM_CLASSES else IGNORE_INDEX
            id_to_color[label.id] = label.color
    train_to_id = numpy.full(256, TRAIN_ID_TO_LABEL[IGNORE_INDEX].id, numpy.int64)
    train_to_id[:NUM_CLASSES] = [TRAIN_ID_TO_LABEL[t].id for t in range(NUM_CLASSES)]
    train_to_color = numpy.tile(numpy.array(IGNORE_COLOR, numpy.uint8), (256, 1))
    train_to_color[:NUM_CLASSES] = TRAIN_ID_PALETTE
    return {"id_to_train": id_to_train, "id_to_color": id_to_color,
            "train_to_id": train_to_id, "train_to_color": train_to_color}


_TABLES = _lookup_tables()
_device_tables = {}  # (table name, backend name) -> the table on that backend, moved once


def _lookup(table, values):
    """``table[values]`` on the backend of ``values``; values outside 0..255 read entry 255.

    Entry 255 is the ignore entry of every table, so -1 (license plate) and anything out of range
    lands there.
    """
    xp = shim.get_array_module(values)
    name = shim.module_name(xp)
    key = (table, name)
    if key not in _device_tables:
        _device_tables[key] = shim.to_backend(_TABLES[table], name)
    if values.dtype.kind == "i":
        values = xp.clip(values.astype(numpy.int64, copy=False), -1, 255) & 255  # -1 -> 255
    elif values.dtype.kind != "u":
        raise TypeError(f"Expected an integer array of label ids, got dtype {values.dtype}.")
    return _device_tables[key][values]


def label_ids_to_train_ids(label_ids):
    """Train ids (0..18, 255 = ignore) of an integer array of label ids, on the array's backend.

    The result has the input's dtype. Ids outside the table (and license plate's -1) give 255.
    """
    return _lookup("id_to_train", label_ids).astype(label_ids.dtype, copy=False)


def train_ids_to_label_ids(train_ids):
    """Label ids of an integer array of train ids: the first label of each train id; 255 -> 0 (unlabeled)."""
    return _lookup("train_to_id", train_ids).astype(train_ids.dtype, copy=False)


def train_ids_to_colors(train_ids):
    """RGB colours, uint8 (..., 3), of train ids; 255 (and anything not a class) is ``IGNORE_COLOR``."""
    return _lookup("train_to_color", train_ids)


def label_ids_to_colors(label_ids):
    """RGB colours, uint8 (..., 3), of label ids, as in ``*_gtFine_color.png``."""
    return _lookup("id_to_color", label_ids)
