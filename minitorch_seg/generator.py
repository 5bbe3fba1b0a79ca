"""``Generator``: a seeded source of random numbers of its own, for ``rand``/``randn``/``randperm``
and the data loader's shuffling (torch's ``generator=`` arguments).

Without one, those functions draw from the global generator that ``manual_seed`` seeds. Draws are
on the host (NumPy's PCG64), so a seed gives the same numbers on every backend.

Unlike PyTorch: the numbers differ from torch's for the same seed (another algorithm); a seed is
reproducible here, not across the two libraries.

>>> import minitorch_seg as mt
>>> g = mt.Generator().manual_seed(42)
>>> a = mt.randperm(5, generator=g)
>>> b = mt.randperm(5, generator=mt.Generator().manual_seed(42))
>>> a.tolist() == b.tolist()
True
"""
import numpy

from . import devices
from .random import host_generator


class Generator:
    """A random generator with its own state; ``Generator(device="cpu")``, then ``manual_seed(seed)``.

    Created unseeded it starts from fresh entropy, as torch's does from its default seed.
    """

    def __init__(self, device="cpu"):
        self.device = devices.device(device)
        self._seed = int(numpy.random.SeedSequence().entropy % 2 ** 63)
        self.rng = numpy.random.default_rng(self._seed)

    def manual_seed(self, seed):
        """Reseed; returns the generator, so ``Generator().manual_seed(0)`` is one expression."""
        self._seed = int(seed)
        self.rng = numpy.random.default_rng(self._seed)
        return self

    def seed(self):
        """Reseed from fresh entropy and return the new seed."""
        return self.manual_seed(numpy.random.SeedSequence().entropy % 2 ** 63)._seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The state, as plain data (a dict); ``set_state`` takes it back."""
        return {"seed": self._seed, "state": self.rng.bit_generator.state}

    def set_state(self, state):
        self.manual_seed(state["seed"])
        self.rng.bit_generator.state = state["state"]
        return self


def host_rng(generator=None):
    """The NumPy generator to draw from: ``generator``'s, or the global one ``manual_seed`` seeds."""
    if generator is None:
        return host_generator()
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a minitorch_seg.Generator, got {type(generator).__name__}.")
    return generator.rng
