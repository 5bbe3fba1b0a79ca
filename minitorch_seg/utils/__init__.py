"""``minitorch_seg.utils``: torch's ``torch.utils.data`` (datasets and the DataLoader) and ``torch.utils.checkpoint``."""
from . import checkpoint, data

__all__ = ["checkpoint", "data"]
