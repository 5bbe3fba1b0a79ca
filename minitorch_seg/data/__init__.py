"""Data: Cityscapes-format datasets, paired transforms, the ``DataLoader`` and ``InMemory`` (decoded samples kept)."""
from .loader import DataLoader
from .memory import InMemory
from .transforms import (IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, Compose, RandomScaleCropFlip, Resize, normalize,
                         normalize_chw, to_chw_float32)
from . import labels
from .cityscapes import Cityscapes, DatasetError
from .generate import GENERATOR_VERSION, default_dataset_root, generate_scene, make_dataset
from .labels import (CLASS_NAMES, LABELS, NUM_CLASSES, TRAIN_ID_PALETTE, Label, label_ids_to_colors,
                     label_ids_to_train_ids, train_ids_to_colors, train_ids_to_label_ids)
