"""``minitorch_seg.utils.data``: torch's Dataset, TensorDataset, Subset, ConcatDataset, random_split,
DataLoader and default_collate, for code written against ``torch.utils.data``.

(The project's own Cityscapes-style datasets and loader live in ``minitorch_seg.data``.)
"""
from .dataloader import DataLoader, default_collate
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split

__all__ = ["ConcatDataset", "DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]
