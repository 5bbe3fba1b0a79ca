"""Batch, layer and group norm written the slow, obvious way: one loop per normalised set.

Each function takes NumPy arrays and follows its definition line by line: pick out one set of
values (a channel across the batch, a sample's trailing dims, a sample's group of channels),
standardise it with its own mean and biased variance, then scale and shift. The fast versions
in ``functional/norm.py`` and ``functional/sample_norm.py`` must agree with these (the tests check it).

>>> x = numpy.array([[1.0, 10.0], [3.0, 30.0]])      # (N=2, C=2)
>>> y, mean, var = batch_norm_loops(x, numpy.zeros(2), numpy.ones(2), training=True, eps=0.0)
>>> y.tolist(), mean.tolist(), var.tolist()          # running: 0.9 * old + 0.1 * batch (var unbiased)
([[-1.0, -1.0], [1.0, 1.0]], [0.2, 2.0], [1.1, 20.9])
"""
import numpy


def _standardize(values, mean, var, eps):
    return (values - mean) / numpy.sqrt(var + eps)


def batch_norm_loops(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch norm of x (N, C, *), a loop over channels; returns (y, new running_mean, new running_var).

    Training: each channel's values (all n, all positions) are standardised with their own mean
    and biased variance, and the running statistics move towards the batch ones (the variance
    unbiased, m / (m - 1) times the biased one). Eval: the running statistics standardise.
    The running arrays are not modified; updated copies are returned (None stays None).
    """
    y = numpy.empty(x.shape)
    new_mean = None if running_mean is None else numpy.array(running_mean, dtype=float)
    new_var = None if running_var is None else numpy.array(running_var, dtype=float)
    for c in range(x.shape[1]):
        values = x[:, c]                                   # (N, *): every value of channel c
        if training:
            mean, var = values.mean(), values.var()        # biased variance normalises
            m = values.size
            if new_mean is not None:
                new_mean[c] = (1 - momentum) * new_mean[c] + momentum * mean
            if new_var is not None:
                new_var[c] = (1 - momentum) * new_var[c] + momentum * var * m / (m - 1)
        else:
            mean, var = running_mean[c], running_var[c]
        y[:, c] = _standardize(values, mean, var, eps)
        if weight is not None:
            y[:, c] *= weight[c]
        if bias is not None:
            y[:, c] += bias[c]
    return y, new_mean, new_var


def layer_norm_loops(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer norm: a loop over every leading index of x (*, D...), each standardised over D...."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    leading = x.shape[:x.ndim - len(normalized_shape)]
    y = numpy.empty(x.shape)
    for index in numpy.ndindex(*leading):
        values = x[index]                                  # (D...): one sample's normalised dims
        y[index] = _standardize(values, values.mean(), values.var(), eps)
        if weight is not None:
            y[index] *= weight                             # elementwise over D...
        if bias is not None:
            y[index] += bias
    return y


def group_norm_loops(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group norm of x (N, C, *): a loop over samples and groups of C / num_groups channels."""
    batch, channels = x.shape[:2]
    per_group = channels // num_groups
    y = numpy.empty(x.shape)
    for n in range(batch):
        for group in range(num_groups):
            members = slice(group * per_group, (group + 1) * per_group)
            values = x[n, members]                         # (C/G, *): one sample's group of channels
            y[n, members] = _standardize(values, values.mean(), values.var(), eps)
    for c in range(channels):
        if weight is not None:
            y[:, c] *= weight[c]
        if bias is not None:
            y[:, c] += bias[c]
    return y
