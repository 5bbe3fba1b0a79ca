"""Normalisation layers with torch's names, arguments, buffers and defaults: BatchNorm2d LayerNorm GroupNorm.

The weight starts at 1 and the bias at 0 (so a fresh layer only standardises). BatchNorm2d's
``running_mean``, ``running_var`` and ``num_batches_tracked`` are buffers: saved in the
state_dict under torch's names (a torch checkpoint loads), moved by ``to()``, not learned.
Everything is created on the current backend in the default dtype (the count in int64).

>>> import minitorch_seg as mt
>>> from minitorch_seg import nn
>>> bn = nn.BatchNorm2d(3)
>>> bn
BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
>>> list(bn.state_dict())
['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
>>> y = bn(mt.randn(4, 3, 5, 5) * 2 + 1)     # training: batch statistics, running ones updated
>>> bn.num_batches_tracked.item(), bn.running_mean.shape
(1, (3,))
>>> nn.GroupNorm(2, 4), nn.LayerNorm((4, 5))
(GroupNorm(2, 4, eps=1e-05, affine=True), LayerNorm((4, 5), eps=1e-05, elementwise_affine=True))
"""
from .. import backend, dtypes
from .. import functional as F
from ..tensor import Tensor
from .module import Module, Parameter


def _filled(shape, value, dtype=None):
    """An array of ``value`` on the current backend, in the default dtype unless one is given."""
    return backend.current_module().full(shape, value, dtype=dtype or dtypes.get_default_dtype())


class BatchNorm2d(Module):
    """Batch normalisation of (N, C, H, W) inputs, one mean and variance per channel.

    In training it normalises with the batch statistics and updates the running ones:
    running <- (1 - momentum) running + momentum batch statistic (the unbiased variance), or,
    with ``momentum=None``, the cumulative average (momentum 1/num_batches_tracked). In eval it
    normalises with the running statistics. Without ``track_running_stats`` there are none and
    the batch statistics are used in both modes.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(_filled(num_features, 1))
            self.bias = Parameter(_filled(num_features, 0))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        stats = track_running_stats
        self.register_buffer("running_mean", Tensor(_filled(num_features, 0)) if stats else None)
        self.register_buffer("running_var", Tensor(_filled(num_features, 1)) if stats else None)
        self.register_buffer("num_batches_tracked", Tensor(_filled((), 0, dtypes.int64)) if stats else None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.fill_(0)
            self.running_var.fill_(1)
            self.num_batches_tracked.fill_(0)

    def forward(self, x):
        return self._normalise(x, F.batch_norm)

    def _normalise(self, x, function):
        """``function`` (``F.batch_norm``, or ``norm.batch_norm_relu`` from ``nn.Sequential``) with this
        layer's parameters, statistics and mode."""
        if x.ndim != 4:
            raise ValueError(f"BatchNorm2d expects a 4D input (N, C, H, W), got {x.ndim}D input of shape {x.shape}.")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            count = self.num_batches_tracked.data
            count += 1                                          # in place: the buffer stays the same array
            if self.momentum is None:                           # a 0-d array: the count never leaves the device
                momentum = (1 / count).astype(self.running_mean.dtype)
        use_batch_stats = self.training or not self.track_running_stats
        keep = not self.training or self.track_running_stats
        return function(x, self.running_mean if keep else None, self.running_var if keep else None,
                        self.weight, self.bias, use_batch_stats, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class GroupNorm(Module):
    """Group normalisation: each sample's channels in ``num_groups`` groups, each group standardised.

    The same in training and eval (no running statistics); weight and bias are per channel.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups}).")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        if affine:
            self.weight = Parameter(_filled(num_channels, 1))
            self.bias = Parameter(_filled(num_channels, 0))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims, with an elementwise affine."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_filled(shape, 1))
            self.bias = Parameter(_filled(shape, 0))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
