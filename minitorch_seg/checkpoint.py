"""Checkpoints: one ``.npz`` of host arrays with the run's description as JSON inside it.

A checkpoint holds the model's parameters and buffers, the optimizer's state (momentum buffers,
Adam moments), the scheduler's counter, the epoch and step, the random generator's state and
what is needed to rebuild the model (name, options, number of classes, normalisation). Arrays are
host NumPy arrays, so a checkpoint written on the GPU loads on the CPU and back.

Writing is atomic: into a temporary file beside the target, flushed and fsync'ed, then renamed
over it. A crash (or a kill) in the middle of a save leaves the previous checkpoint intact.

The meta, one schema, each fact once:

- the model, in every checkpoint: ``model_name``, ``model_options``, ``num_classes`` (and from
  training ``normalization``), all ``load_model`` needs to rebuild it;
- a training run's: ``config``, the ``TrainConfig`` without its two model fields, which are
  the keys above; the run's state ``TRAINING_STATE`` and ``loss_sum``, ``loss_count``,
  ``data_root``, ``class_weight_values``; ``optimizer`` (its scalars; its arrays are arrays);
- ``rng`` (the generator when saved) and ``version``.

Checkpoints written before this schema also hold the model in ``config`` (``config["model"]``,
``config["model_options"]``); ``saved_config`` reads both, so they load and resume as before.
"""
import io
import json
import os
import tempfile
import zipfile

import numpy

from . import __version__, backend, models

META_KEY = "__meta__.json"
MODEL_PREFIX, OPTIMIZER_PREFIX = "model/", "optimizer/"


_UMASK = os.umask(0o022)  # reading the umask means setting it: once, at import
os.umask(_UMASK)


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or does not fit what it is loaded into."""


def atomic_write_bytes(path, payload):
    """Write ``payload`` to ``path`` so that readers see either the old file or the whole new one."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the mode open() would
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def save(path, model, optimizer=None, scheduler=None, **meta):
    """Save everything a resumed run needs to ``path`` (``.npz``); ``meta`` is any JSON-able data."""
    arrays = {MODEL_PREFIX + name: backend.to_numpy(value.data) for name, value in model.state_dict().items()}
    description = dict(meta, version=__version__, rng=backend.get_rng_state())
    if optimizer is not None:
        state = optimizer.state_dict()
        scalars = {}
        for index, values in state["state"].items():
            for name, value in values.items():
                if isinstance(value, numpy.ndarray) and value.ndim > 0:
                    arrays[f"{OPTIMIZER_PREFIX}{index}/{name}"] = value
                else:
                    scalars.setdefault(str(index), {})[name] = numpy.asarray(value).item()
        description["optimizer"] = {"param_groups": state["param_groups"], "scalars": scalars}
    if scheduler is not None:
        description["scheduler"] = scheduler.state_dict()
    arrays[META_KEY] = numpy.frombuffer(json.dumps(description).encode(), dtype=numpy.uint8)
    buffer = io.BytesIO()
    numpy.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)   # random bytes, a truncated file


def _unreadable(path, error):
    reason = str(error).split(". ")[0].rstrip(".")  # numpy's first sentence only: ours stays one sentence
    return CheckpointError(f"Checkpoint {path} is not a readable minitorch_seg checkpoint ({reason}).")


def read(path):
    """(meta dict, model state dict of host arrays, optimizer arrays) from a checkpoint file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode())
    except _UNREADABLE as error:
        raise _unreadable(path, error) from None
    model_state = {k[len(MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(MODEL_PREFIX)}
    optimizer_arrays = {k[len(OPTIMIZER_PREFIX):]: v for k, v in arrays.items() if k.startswith(OPTIMIZER_PREFIX)}
    return meta, model_state, optimizer_arrays


def read_meta(path):
    """The meta dict of a checkpoint file alone, without loading its arrays (errors as ``read``)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            return json.loads(archive[META_KEY].tobytes().decode())
    except _UNREADABLE as error:
        raise _unreadable(path, error) from None


# Training options added after checkpoints already existed, with the behaviour of the runs that predate them.
OPTIONS_BEFORE_THEY_EXISTED = {"input_scale": 1.0, "class_weights": "none"}


def saved_config(meta):
    """The training config a checkpoint's meta holds: its options, the ones it predates filled in,
    and the model's two fields from the model's keys (in older checkpoints, in ``config`` too)."""
    config = {**OPTIONS_BEFORE_THEY_EXISTED, **meta.get("config", {})}
    if "model_name" in meta:
        config["model"] = meta["model_name"]
    if "model_options" in meta:
        config["model_options"] = meta["model_options"]
    return config


TRAINING_STATE = ("epoch", "batch_in_epoch", "best_miou", "history", "scheduler", "rng")


def check_training_meta(meta, path):
    """Raise CheckpointError unless ``meta`` (from ``path``) holds what resuming a run needs."""
    missing = [key for key in TRAINING_STATE if key not in meta]
    if missing:
        raise CheckpointError(f"Checkpoint {path} holds no training state ({', '.join(missing)}); "
                              "resume from the last.npz of a run of minitorch-seg train.")


def restore_optimizer(optimizer, meta, optimizer_arrays):
    """Load the optimizer state that ``save`` split into arrays and JSON scalars."""
    saved = meta.get("optimizer")
    if saved is None:
        return
    state = {}
    for key, value in optimizer_arrays.items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in saved["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    for group in saved["param_groups"]:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})


def load_model(path, backend_name=None):
    """(model in eval mode, checkpoint meta) from a checkpoint file, on ``backend_name`` (default: current).

    A file that is no checkpoint of a known model raises ``CheckpointError``.
    """
    meta, state, _ = read(path)
    name, num_classes = meta.get("model_name"), meta.get("num_classes")
    if name not in models.available() or not isinstance(num_classes, int):
        raise CheckpointError(f"Checkpoint {path} names no known model (model_name {name!r}, num_classes "
                              f"{num_classes!r}); expected a checkpoint of minitorch-seg train.")
    with backend.use_backend(backend_name or backend.get_backend()):
        model = models.build(name, num_classes=num_classes, **meta.get("model_options", {}))
        own = model.state_dict()
        missing = sum(key not in state for key in own)
        unexpected = sum(key not in own for key in state)
        resized = sum(key in state and tuple(state[key].shape) != tuple(value.shape) for key, value in own.items())
        if missing or unexpected or resized:
            raise CheckpointError(
                f"Checkpoint {path} does not fit model {name!r}: of the model's {len(own)} tensors {missing} are "
                f"missing and {resized} have another shape, and {unexpected} in the file are not the model's.")
        model.load_state_dict(state)
    return model.eval(), meta
