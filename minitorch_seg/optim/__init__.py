"""``minitorch_seg.optim``: SGD, Adam, AdamW, RMSprop and ``lr_scheduler``, with torch's names and update rules."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
