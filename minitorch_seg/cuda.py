"""``cuda``: torch's ``torch.cuda`` questions, answered by the CuPy backend ("cuda" is CuPy here).

>>> import minitorch_seg as mt
>>> isinstance(mt.cuda.is_available(), bool)
True
"""
from . import amp, backend  # noqa: F401 - torch.cuda.amp is the same no-op module


def is_available():
    """True where CuPy imports and sees a GPU (the first call imports CuPy)."""
    return backend.cupy_unavailable_reason() is None


def device_count():
    """1 where a GPU is usable, else 0 (minitorch_seg uses one GPU)."""
    return 1 if is_available() else 0


def current_device():
    return 0


def manual_seed(seed):
    """Nothing to do: the GPU's random numbers derive from the generator ``minitorch_seg.manual_seed`` seeds."""


manual_seed_all = manual_seed


def synchronize(device=None):
    """Wait for the GPU's queued work (nothing to wait for without one)."""
    if is_available():
        backend.cupy_module().cuda.Device().synchronize()


def empty_cache():
    """Give CuPy's cached, unused device memory back (nothing without a GPU)."""
    if is_available():
        backend.cupy_module().get_default_memory_pool().free_all_blocks()
