"""Tests and logic outside the graph, as in torch: isnan isinf isfinite, bitwise and/or/xor/not, one_hot.

Their outputs are bool or integer tensors, which carry no gradient.
"""
from ..backend import get_array_module, is_device_module, to_numpy


def _tensor(array):
    from ..tensor import Tensor
    return Tensor(array)


def _data(value):
    return getattr(value, "data", value)


def isnan(input):
    return _tensor(get_array_module(input.data).isnan(input.data))


def isinf(input):
    return _tensor(get_array_module(input.data).isinf(input.data))


def isfinite(input):
    return _tensor(get_array_module(input.data).isfinite(input.data))


def _integral(name, *values):
    for value in values:
        dtype = getattr(value, "dtype", None)
        if dtype is not None and dtype.kind not in "biu":
            raise TypeError(f"{name} is only defined for bool and integer tensors, got {dtype}.")
        if dtype is None and isinstance(value, float):
            raise TypeError(f"{name} is only defined for bool and integer values, got the float {value}.")


def _binary(name, ufunc, input, other):
    _integral(name, input, other)
    a, b = _data(input), _data(other)
    return _tensor(getattr(get_array_module(a, b), ufunc)(a, b))


def bitwise_and(input, other):
    """``a & b``: logical and on bool tensors, bitwise on integers."""
    return _binary("bitwise_and (&)", "bitwise_and", input, other)


def bitwise_or(input, other):
    """``a | b``: logical or on bool tensors, bitwise on integers."""
    return _binary("bitwise_or (|)", "bitwise_or", input, other)


def bitwise_xor(input, other):
    """``a ^ b``: logical xor on bool tensors, bitwise on integers."""
    return _binary("bitwise_xor (^)", "bitwise_xor", input, other)


def bitwise_not(input):
    """``~a``: logical not on a bool tensor, bitwise not on integers."""
    _integral("bitwise_not (~)", input)
    return _tensor(get_array_module(input.data).invert(input.data))


def logical_not(input):
    """True where ``input`` is zero (any dtype); a bool tensor."""
    return _tensor(get_array_module(input.data).logical_not(input.data))


def one_hot(tensor, num_classes=-1):
    """Class indices (int64, any shape S) as an int64 tensor (*S, num_classes) of zeros and ones.

    ``num_classes=-1`` takes one more than the largest index (read from the tensor; on the GPU that
    is a device-to-host transfer, so pass it there).
    """
    data = tensor.data
    if data.dtype.kind not in "iu":
        raise TypeError(f"one_hot is only applicable to index tensors (integer dtype), got {data.dtype}.")
    xp = get_array_module(data)
    if num_classes == -1:
        if data.size == 0:
            raise RuntimeError("one_hot: can not infer the number of classes from an empty tensor; pass num_classes.")
        num_classes = int(to_numpy(data.max())) + 1
    if data.size and not is_device_module(xp):     # the checks would cost a transfer per call on a GPU
        if int(data.min()) < 0:
            raise RuntimeError("one_hot: class values must be non-negative.")
        if int(data.max()) >= num_classes:
            raise RuntimeError(f"one_hot: class values must be smaller than num_classes ({num_classes}).")
    return _tensor((data[..., None] == xp.arange(num_classes)).astype(xp.int64))

