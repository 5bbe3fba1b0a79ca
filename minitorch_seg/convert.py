"""Official checkpoints into our models: names mapped, every key accounted for in one table.

``convert_checkpoint(path, model_name, num_classes=19, **options)`` reads a PyTorch ``.pth``
(PyTorch is an optional extra, needed only to read the file), maps its names onto the registry
model ``model_name`` and returns ``Conversion(state_dict, table)``: the model's full state_dict
as host arrays, the checkpoint's values wherever a name and shape matched, and the table of
every key that did not load. ``convert_state_dict`` does the same for a dict already in memory,
and ``save_converted`` writes the result as a minitorch_seg checkpoint (``train.load_model``,
``minitorch-seg predict`` and ``evaluate`` read it).

How names map. The checkpoint's dict is unwrapped (``state_dict`` or ``model`` inside, as
mmsegmentation, HRNet and the Swin classification code save them) and the wrappers' prefixes
are stripped (``module.`` of DataParallel, ``model.`` of HRNet's FullModel). Each remaining key
is tried as it is, then under ``backbone.`` (a classification Swin checkpoint's keys for our
SwinSeg's encoder), then with mmcv's ConvModule names (``.conv.``/``.bn.``) as our Sequential's
(``.0.``/``.1.``). The first name our model has wins.

The table's rows: ``unused`` (in the checkpoint, not loaded: no such name, or the official
``relative_position_index``/``attn_mask`` buffers we compute per resolution), ``mismatch`` (the
name matched, the shape did not: not loaded, the initial value kept), ``missing`` (ours, not in
the checkpoint: the fresh model's initial value is kept).

>>> import numpy
>>> from minitorch_seg import models
>>> model = models.build("unet", width=4, depth=2, num_classes=3)
>>> state = {"module." + k: v.numpy() for k, v in model.state_dict().items()}
>>> state["module.aux.weight"] = numpy.zeros(2)
>>> conversion = convert_state_dict(state, "unet", num_classes=3, width=4, depth=2)
>>> print(format_table(conversion.table))
key               status detail
module.aux.weight unused no such name in unet
"""
import os
import re
from typing import NamedTuple

import numpy

from . import checkpoint, gemm, models
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD

PREFIXES = ("module.", "model.")
COMPUTED_BUFFERS = ("relative_position_index", "attn_mask")
CONTAINERS = ("state_dict", "model")


class ConvertError(ValueError):
    """A checkpoint that cannot be read or converted; one sentence naming it."""


class Conversion(NamedTuple):
    """``state_dict``: our names -> host arrays (the model's full state); ``table``: rows
    (key, status, detail) of every key that did not load, in checkpoint order, then missing."""

    state_dict: dict
    table: list


def read_pth(path):
    """The dict of arrays in a PyTorch checkpoint file (needs torch; reads tensors only, never code)."""
    try:
        import torch
    except ImportError:
        raise ConvertError("Reading a .pth checkpoint needs PyTorch; install it with "
                           "pip install 'minitorch-seg[torch]'.") from None
    gemm.torch_arrived()
    if not os.path.isfile(path):
        raise ConvertError(f"Checkpoint {path} does not exist.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a file it cannot read
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0].split(". ")[0].rstrip(".")
        raise ConvertError(f"Checkpoint {path} is not a readable PyTorch checkpoint of tensors ({reason}).") from None
    state = unwrap(data, path)
    return {key: _host(value, torch) for key, value in state.items() if isinstance(value, torch.Tensor)}


def _host(tensor, torch):
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.float()                   # float16, bfloat16: numpy has no bfloat16
    return tensor.numpy()


def unwrap(data, path="the checkpoint"):
    """The state dict inside a saved object: itself, or its ``state_dict`` or ``model`` entry."""
    if not isinstance(data, dict):
        raise ConvertError(f"{path} holds a {type(data).__name__}, not a dict of tensors.")
    for name in CONTAINERS:
        if isinstance(data.get(name), dict):
            return data[name]
    return data


def strip_prefixes(key, prefixes=PREFIXES):
    """``key`` without the wrappers' leading prefixes (``module.model.conv1.weight`` -> ``conv1.weight``)."""
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def candidates(key):
    """Our names an official key may have, in order of preference."""
    names = [key, "backbone." + key]
    conv_module = re.sub(r"\.conv\.(weight|bias)$", r".0.\1", key)
    conv_module = re.sub(r"\.bn\.(weight|bias|running_mean|running_var|num_batches_tracked)$", r".1.\1", conv_module)
    if conv_module != key:
        names.append(conv_module)
    return names


def convert_state_dict(state, model_name, num_classes=19, **options):
    """Map ``state`` (name -> array) onto ``models.build(model_name, num_classes, **options)``;
    returns a ``Conversion``."""
    if model_name not in models.available():
        raise ConvertError(f"Unknown model {model_name!r}; known models: {', '.join(models.available())}.")
    model = models.build(model_name, num_classes=num_classes, **options)
    ours = {key: value.numpy() for key, value in model.state_dict().items()}
    loaded, mismatched, table = {}, set(), []
    for original, value in state.items():
        value = numpy.asarray(value)
        key = strip_prefixes(original)
        if key.rsplit(".", 1)[-1] in COMPUTED_BUFFERS:
            table.append((original, "unused", "computed per resolution by minitorch_seg"))
            continue
        name = next((n for n in candidates(key) if n in ours), None)
        if name is None:
            table.append((original, "unused", f"no such name in {model_name}"))
        elif value.shape != ours[name].shape:
            table.append((original, "mismatch", f"checkpoint {value.shape}, {model_name} {name} {ours[name].shape}"))
            mismatched.add(name)
        elif name in loaded:
            table.append((original, "unused", f"{name} already loaded from another key"))
        else:
            loaded[name] = value.astype(ours[name].dtype, copy=False)
    table += [(name, "missing", "not in the checkpoint; the initial value is kept") for name in ours
              if name not in loaded and name not in mismatched]
    return Conversion({name: loaded.get(name, value) for name, value in ours.items()}, table)


def convert_checkpoint(path, model_name, num_classes=19, **options):
    """Read the PyTorch checkpoint at ``path`` and map it onto ``model_name``; returns a ``Conversion``."""
    return convert_state_dict(read_pth(path), model_name, num_classes, **options)


def format_table(table):
    """The rows as aligned text, a header first; a line saying so when every key loaded."""
    if not table:
        return "every key loaded: nothing unused, nothing missing"
    rows = [("key", "status", "detail")] + [tuple(map(str, row)) for row in table]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{row[0]:<{widths[0]}} {row[1]:<{widths[1]}} {row[2]}".rstrip() for row in rows)


def save_converted(out, conversion, model_name, num_classes=19, **options):
    """Write ``conversion`` as a minitorch_seg checkpoint (ImageNet normalisation, as the official
    models were trained with), loadable by ``train.load_model``; atomic."""
    model = models.build(model_name, num_classes=num_classes, **options)
    model.load_state_dict(conversion.state_dict)
    checkpoint.save(out, model, model_name=model_name, model_options=options, num_classes=num_classes,
                    normalization={"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
                    converted={"unused": sum(row[1] == "unused" for row in conversion.table),
                               "mismatch": sum(row[1] == "mismatch" for row in conversion.table),
                               "missing": sum(row[1] == "missing" for row in conversion.table)})
    return out
