"""Data types: torch's names for NumPy's dtypes (CuPy uses the same), and the default dtype.

>>> resolve("float64"), resolve(float32)
(dtype('float64'), dtype('float32'))
>>> resolve("complex64")
Traceback (most recent call last):
...
TypeError: Unknown dtype 'complex64'; expected one of float16, float32, float64, int32, int64, uint8, bool.
"""
import numpy

float16 = half = numpy.dtype("float16")
float32 = float = numpy.dtype("float32")  # noqa: A001 - torch's alias
float64 = double = numpy.dtype("float64")
int32 = int = numpy.dtype("int32")  # noqa: A001
int64 = long = numpy.dtype("int64")
uint8 = numpy.dtype("uint8")
bool = numpy.dtype("bool")  # noqa: A001

KNOWN = {d.name: d for d in (float16, float32, float64, int32, int64, uint8, bool)}
_TORCH_ALIASES = {"float": float32, "double": float64, "half": float16, "int": int32, "long": int64}
_default = float32


def resolve(dtype):
    """A numpy.dtype from a dtype, a NumPy scalar type or a name; one clear error otherwise."""
    if isinstance(dtype, str) and dtype in _TORCH_ALIASES:
        return _TORCH_ALIASES[dtype]  # NumPy reads "float" as float64 and "int" as int64; torch does not
    try:
        resolved = numpy.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in KNOWN:
        raise TypeError(f"Unknown dtype {dtype!r}; expected one of {', '.join(KNOWN)}.")
    return resolved


def set_default_dtype(dtype):
    """The floating dtype factories and layers use when none is given (float32 to start with)."""
    global _default
    dtype = resolve(dtype)
    if dtype.kind != "f":
        raise TypeError(f"The default dtype must be a floating dtype, got {dtype.name}.")
    _default = dtype


def get_default_dtype():
    return _default


def is_floating(dtype):
    return numpy.dtype(dtype).kind == "f"


class memory_format:  # noqa: N801 - torch's name
    """torch's memory formats, accepted by ``Tensor.to``/``contiguous``/``Module.to`` with no effect.

    Unlike PyTorch: arrays are always laid out as their ops make them (row-major NCHW for new
    ones); ``channels_last`` changes nothing, so code that asks for it runs unchanged.
    """

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
preserve_format = memory_format("preserve_format")
MEMORY_FORMATS = (contiguous_format, channels_last, preserve_format)


def check_memory_format(value):
    """``value`` if it is one of the memory formats (or None); a one-sentence TypeError otherwise."""
    if value is not None and not any(value is m for m in MEMORY_FORMATS):
        raise TypeError(f"memory_format must be one of contiguous_format, channels_last, preserve_format, got {value!r}.")
    return value
