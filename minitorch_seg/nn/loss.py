"""Loss modules beyond ``CrossEntropyLoss`` (in layers.py): ``BCEWithLogitsLoss``."""
from .. import creation
from .. import functional as F
from .module import Module


class BCEWithLogitsLoss(Module):
    """``F.binary_cross_entropy_with_logits`` as a module; ``weight`` and ``pos_weight`` are buffers (moved by ``.to``)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__()
        if size_average is not None or reduce is not None:
            raise TypeError("BCEWithLogitsLoss: size_average and reduce are deprecated; use reduction.")
        self.register_buffer("weight", None if weight is None else creation.as_tensor(weight))
        self.register_buffer("pos_weight", None if pos_weight is None else creation.as_tensor(pos_weight))
        self.reduction = reduction

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
