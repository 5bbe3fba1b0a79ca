"""The global random generator: one seeded host generator, so a seed gives the same weights on every backend.

``manual_seed`` seeds it (as ``torch.manual_seed``); initialisation, ``rand``/``randn``, dropout
and the data loader's shuffling draw from it unless given a ``Generator`` of their own. Draws are
made on the host and then moved, except ``random_uniform`` on CuPy, which draws on the GPU from a
generator seeded once from the host one (a dropout mask should not cross the bus).
``get_rng_state``/``set_rng_state`` save and restore the host generator in a checkpoint, and
``fork_rng()`` (torch's name) gives a block a generator of its own: whatever the block seeds or
draws, the global generator is as it was when the block ends (``Trainer`` runs in one).

The CuPy generator has no state to save: ``set_rng_state`` (and so a resumed run) makes it again
from the host generator at the next draw on the GPU. Its numbers (dropout's masks on CuPy) then
differ from those of a run that was never stopped; everything drawn on the host is exact.

>>> manual_seed(3)
>>> first = host_generator().random(2)
>>> manual_seed(3)
>>> bool((host_generator().random(2) == first).all())
True
>>> manual_seed(3)
>>> with fork_rng():
...     manual_seed(7)
...     _ = host_generator().random(5)
>>> bool((host_generator().random(2) == first).all())   # seed 3's first draws, as if the block never ran
True
"""
import contextlib
import copy

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


def seed_state(seed):
    """The state ``manual_seed(seed)`` would give, for ``set_rng_state``, without touching the generator."""
    return {"seed": int(seed), "host": numpy.random.default_rng(int(seed)).bit_generator.state}


@contextlib.contextmanager
def fork_rng():
    """Inside the block, seeding and drawing change a copy of the global generator; after it, the
    generator is the one from before the block, in the state it had (torch.random.fork_rng)."""
    global _host_generator, _device_generator, _seed
    saved = _host_generator, _device_generator, _seed
    _host_generator, _device_generator = copy.deepcopy(_host_generator), None
    try:
        yield
    finally:
        _host_generator, _device_generator, _seed = saved


def random_uniform(xp, shape, dtype):
    """Uniform [0, 1) numbers made where ``xp`` keeps its arrays (on the GPU with CuPy)."""
    global _device_generator
    if xp is numpy or xp is strict_module:
        values = _host_generator.random(shape, dtype=numpy.float64).astype(dtype, copy=False)
        return values.view(StrictArray) if xp is strict_module else values
    if _device_generator is None:
        _device_generator = xp.random.default_rng(_host_generator.integers(2**63))
    return _device_generator.random(shape, dtype=dtype)
