"""``amp``: torch's automatic mixed precision names, as no-ops (minitorch_seg computes in the dtype you give it).

``autocast`` runs its block unchanged; ``GradScaler`` scales nothing: ``scale(loss)`` returns the
loss, ``step(optimizer)`` calls ``optimizer.step()``, ``update`` and ``unscale_`` do nothing. So a
mixed-precision training loop written for torch runs here in full precision, unchanged.

Unlike PyTorch: no mixed precision, on the GPU either (cast the model with ``.half()``/``.to``
yourself); ``GradScaler.get_scale()`` is 1.0 and ``is_enabled()`` False.

>>> import minitorch_seg as mt
>>> with mt.amp.autocast("cuda", dtype=mt.float16):
...     mt.ones(2).dtype
dtype('float32')
"""
import functools


class autocast:  # noqa: N801 - torch's name
    """``with autocast(device_type, dtype=None, enabled=True, cache_enabled=None):`` - changes nothing."""

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        self.device_type, self.dtype, self.enabled = device_type, dtype, enabled

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return func(*args, **kwargs)
        return wrapper


class GradScaler:
    """Loss scaling for float16 training, here the identity (nothing is computed in float16 behind your back)."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        self.device = device

    def scale(self, outputs):
        """``outputs`` (a loss, or a list of them) unchanged."""
        return outputs

    def unscale_(self, optimizer):
        pass

    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step()``; its return value."""
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        pass

    def get_scale(self):
        return 1.0

    def is_enabled(self):
        return False

    def state_dict(self):
        return {}

    def load_state_dict(self, state_dict):
        pass
