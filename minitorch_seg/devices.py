"""``device``: torch's device names mapped onto the backends, "cpu" = NumPy and "cuda" = CuPy.

A tensor's ``.device`` is where its array lives; ``tensor.to("cuda")``, ``.cuda()``, ``.cpu()``
and the factories' ``device=`` move arrays between backends through ``backend.to_backend``.
The backend names themselves ("numpy", "cupy") are accepted as device names too, and "strict"
is the test backend (NumPy underneath with CuPy's manners, see ``backend``).

>>> device("cuda:0")
device(type='cuda', index=0)
>>> str(device("cpu")), device("numpy") == device("cpu")
('cpu', True)
>>> device("tpu")
Traceback (most recent call last):
...
RuntimeError: Unknown device 'tpu'; expected 'cpu', 'cuda', 'cuda:0' or a backend name (numpy, cupy, strict).
"""
from . import backend

BACKEND_OF = {"cpu": "numpy", "cuda": "cupy", "strict": "strict"}
TYPE_OF = {name: type_ for type_, name in BACKEND_OF.items()}


class device:  # noqa: N801 - torch's name
    """Where a tensor lives: ``device("cpu")``, ``device("cuda")``, ``device("cuda", 0)``, ``device("cuda:0")``.

    Unlike PyTorch: one GPU only (index 0, the device CuPy is using). The module is ``devices``
    (plural), so that ``minitorch_seg.device`` is this class and never the module.
    """

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):  # noqa: A002 - torch's argument name
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device() expects a string such as 'cpu' or 'cuda', got {type!r}.")
        name = type
        if ":" in name:
            name, _, number = name.partition(":")
            if index is not None or not number.isdigit():
                raise RuntimeError(f"Invalid device string {type!r}; expected e.g. 'cuda:0'.")
            index = int(number)
        name = TYPE_OF.get(name, name)
        if name not in BACKEND_OF:
            raise RuntimeError(f"Unknown device {type!r}; expected 'cpu', 'cuda', 'cuda:0' or a backend name "
                               f"({', '.join(backend.BACKENDS)}).")
        if index is not None and index != 0:
            raise RuntimeError(f"Device {name}:{index} is not available: minitorch_seg uses one device of each "
                               "type, index 0.")
        object.__setattr__(self, "type", name)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name, value):
        raise AttributeError("device is immutable.")

    @property
    def backend(self):
        """The backend name of this device: "numpy", "cupy" or "strict"."""
        return BACKEND_OF[self.type]

    def __eq__(self, other):
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"


def of_backend(name):
    """The device a tensor of backend ``name`` reports (CuPy: 'cuda:0', as torch's tensors do)."""
    return device("cuda", 0) if name == "cupy" else device(TYPE_OF[name])


def is_device(target):
    """True for a device, or a string that names one (used by ``to`` to tell devices from dtypes)."""
    if isinstance(target, device):
        return True
    if not isinstance(target, str):
        return False
    return target.partition(":")[0] in BACKEND_OF or target in TYPE_OF


def backend_of(target):
    """The backend name for a device or a device string; BackendError (one sentence) when it cannot be used here."""
    name = device(target).backend
    try:
        backend.module_for(name)
    except backend.BackendError as error:   # CuPy or the GPU is missing: the shim's reason, in one sentence
        reason = str(error)
        raise backend.BackendError(f"Device {str(target)!r} is the {name} backend here, and "
                                   f"{reason[0].lower() + reason[1:]}") from None
    return name
