"""Data: Cityscapes-format datasets, paired transforms and the ``DataLoader``."""
from .loader import DataLoader
from .transforms import (IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, Compose, RandomScaleCropFlip, Resize, normalize,
                         normalize_chw, to_chw_float32)
