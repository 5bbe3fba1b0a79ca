"""``save`` and ``load``: torch's names for writing a state_dict (or nested dicts, lists and tuples of
tensors, arrays, numbers and strings) to a file and reading it back.

The format is a NumPy ``.npz`` archive with no pickle in it: every tensor or array is one entry,
and the structure around them is JSON (``__structure__.json``), in which each tensor is a
reference to its entry together with its device and ``requires_grad``. Loading never runs code
from the file (``allow_pickle=False``). Writing to a path is atomic (a temporary file, then a
rename: ``checkpoint.atomic_write_bytes``), so a crash mid-save leaves the old file intact.

Unlike PyTorch: only this data can be saved, not arbitrary Python objects (a whole module, a
lambda): one clear error names what could not be stored; save the module's ``state_dict()``.
Tensors that shared memory are loaded as separate copies.

>>> import io, minitorch_seg as mt
>>> buffer = io.BytesIO()
>>> mt.save({"w": mt.ones(2), "epoch": 3, "names": ("a", "b")}, buffer)
>>> _ = buffer.seek(0)
>>> mt.load(buffer)
{'w': tensor([1., 1.]), 'epoch': 3, 'names': ('a', 'b')}
"""
import io
import json
import os
import zipfile

import numpy

from . import backend, devices
from .checkpoint import atomic_write_bytes
from .tensor import Tensor

STRUCTURE_KEY = "__structure__.json"
_MARK = "__minitorch_seg__"     # a dict holding this key is one of ours (a tensor, a tuple, a dict with odd keys)


def _encode(value, arrays, where):
    if isinstance(value, Tensor):
        arrays.append(backend.to_numpy(value.data))
        kind = "parameter" if type(value).__name__ == "Parameter" else "tensor"
        return {_MARK: kind, "index": len(arrays) - 1, "device": value.device.type,
                "requires_grad": bool(value.requires_grad)}
    if backend.backend_name_or_none(value) is not None and not isinstance(value, numpy.generic):
        arrays.append(backend.to_numpy(value))
        return {_MARK: "ndarray", "index": len(arrays) - 1, "backend": backend.backend_name(value)}
    if isinstance(value, numpy.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if type(value) is list else {_MARK: "tuple", "items": items}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _MARK not in value:
            return {k: _encode(v, arrays, f"{where}[{k!r}]") for k, v in value.items()}
        return {_MARK: "dict", "items": [[_encode(k, arrays, f"{where} key"), _encode(v, arrays, f"{where}[{k!r}]")]
                                         for k, v in value.items()]}
    if isinstance(value, (devices.device,)):
        return {_MARK: "device", "name": str(value)}
    raise TypeError(f"save cannot store {where}, a {type(value).__name__}; it stores tensors, arrays, numbers, "
                    "strings, None and dicts, lists and tuples of them (save a module's state_dict(), not the module).")


def _decode(value, arrays, map_location):
    if isinstance(value, list):
        return [_decode(v, arrays, map_location) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(_MARK)
    if kind is None:
        return {k: _decode(v, arrays, map_location) for k, v in value.items()}
    if kind in ("tensor", "parameter"):
        name = _backend_for(map_location if map_location is not None else value["device"], map_location)
        data = backend.to_backend(arrays[value["index"]], name)
        if kind == "parameter":
            from .nn import Parameter
            return Parameter(data, requires_grad=value["requires_grad"])
        return Tensor(data, requires_grad=value["requires_grad"])
    if kind == "ndarray":
        name = value["backend"] if map_location is None else _backend_for(map_location, map_location)
        return backend.to_backend(arrays[value["index"]], name)
    if kind == "tuple":
        return tuple(_decode(v, arrays, map_location) for v in value["items"])
    if kind == "dict":
        return {_hashable(_decode(k, arrays, map_location)): _decode(v, arrays, map_location) for k, v in value["items"]}
    if kind == "device":
        return devices.device(value["name"])
    raise ValueError(f"load: unknown entry kind {kind!r} in the file's structure.")


def _backend_for(device, map_location):
    try:
        return devices.backend_of(device)
    except backend.BackendError:
        if map_location is not None:
            raise
        raise backend.BackendError(f"load: the file holds tensors saved on {str(device)!r}, which cannot be used here "
                                   "(CuPy or a GPU is missing); pass map_location='cpu' to load them on the CPU.") from None


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def save(obj, f):
    """Write ``obj`` to ``f``, a path (written atomically) or a binary file object; see the module docstring."""
    arrays = []
    structure = _encode(obj, arrays, "the object")
    entries = {f"{i}": a for i, a in enumerate(arrays)}
    entries[STRUCTURE_KEY] = numpy.frombuffer(json.dumps(structure).encode(), dtype=numpy.uint8)
    buffer = io.BytesIO()
    numpy.savez(buffer, **entries)
    if isinstance(f, (str, os.PathLike)):
        atomic_write_bytes(os.fspath(f), buffer.getvalue())
    else:
        f.write(buffer.getvalue())


def load(f, map_location=None, weights_only=True, **kwargs):
    """Read what ``save`` wrote: tensors go back to the device they were saved from, or to ``map_location``.

    ``map_location`` is a device or device name ("cpu", "cuda"); ``weights_only`` is accepted (this
    format only ever holds data). ``f`` is a path or a binary file object.
    """
    if map_location is not None and not devices.is_device(map_location):
        raise TypeError(f"load: map_location must be a device or a device name such as 'cpu', got {map_location!r}.")
    name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "the file object")
    if isinstance(f, (str, os.PathLike)) and not os.path.isfile(f):
        raise FileNotFoundError(f"load: {name} does not exist.")
    try:
        with numpy.load(f, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        structure = json.loads(arrays.pop(STRUCTURE_KEY).tobytes().decode())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).split(". ")[0].rstrip(".")
        raise RuntimeError(f"load: {name} is not a file written by minitorch_seg.save ({reason}).") from None
    ordered = [arrays[f"{i}"] for i in range(len(arrays))]
    return _decode(structure, ordered, map_location)
