"""``BackendError``: the one error of the array backends, raised by the shim and the strict array alike.

It lives in a module of its own, below both, so that ``strict`` can raise it without importing
``backend`` (which imports ``strict``): the modules import in one direction only.
"""


class BackendError(RuntimeError):
    """A backend was asked for that cannot be used here, or two backends were mixed."""
