"""The global random generator: one seeded host generator, so a seed gives the same weights on every backend.

``manual_seed`` seeds it (as ``torch.manual_seed``); initialisation, ``rand``/``randn``, dropout
and the data loader's shuffling draw from it unless given a ``Generator`` of their own. Draws are
made on the host and then moved, except ``random_uniform`` on CuPy, which draws on the GPU from a
generator seeded once from the host one (a dropout mask should not cross the bus).
``get_rng_state``/``set_rng_state`` save and restore the host generator in a checkpoint.

>>> manual_seed(3)
>>> first = host_generator().random(2)
>>> manual_seed(3)
>>> bool((host_generator().random(2) == first).all())
True
"""
import numpy

from .strict import StrictArray, strict_module

_host_generator = numpy.random.default_rng(0)
_device_generator = None   # CuPy's, made from the host generator at the first draw on the GPU
_seed = 0


def manual_seed(seed):
    """Seed the generator that initialisation, ``rand``/``randn`` and dropout draw from."""
    global _host_generator, _device_generator, _seed
    _seed = int(seed)
    _host_generator = numpy.random.default_rng(_seed)
    _device_generator = None


def host_generator():
    """The seeded NumPy generator (host); initial weights are drawn here, then moved."""
    return _host_generator


def get_rng_state():
    """The generators' state, as plain data for a checkpoint."""
    return {"seed": _seed, "host": _host_generator.bit_generator.state}


def set_rng_state(state):
    """Restore what ``get_rng_state`` returned (the GPU generator is reseeded from the host one)."""
    manual_seed(state["seed"])
    _host_generator.bit_generator.state = state["host"]


def random_uniform(xp, shape, dtype):
    """Uniform [0, 1) numbers made where ``xp`` keeps its arrays (on the GPU with CuPy)."""
    global _device_generator
    if xp is numpy or xp is strict_module:
        values = _host_generator.random(shape, dtype=numpy.float64).astype(dtype, copy=False)
        return values.view(StrictArray) if xp is strict_module else values
    if _device_generator is None:
        _device_generator = xp.random.default_rng(_host_generator.integers(2**63))
    return _device_generator.random(shape, dtype=dtype)
