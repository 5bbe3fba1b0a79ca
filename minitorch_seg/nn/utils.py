"""``clip_grad_norm_``: scale all gradients together so their global norm is at most ``max_norm``."""
from ..autograd import no_grad
from ..backend import get_array_module
from ..tensor import Tensor


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Return the total norm (a tensor) and scale gradients by min(1, max_norm / (norm + 1e-6)).

    The scale is applied unconditionally (a multiply by 1 when within bounds), as torch does, so
    no value is read back from the device to decide.
    """
    grads = [p.grad.data for p in ([parameters] if isinstance(parameters, Tensor) else parameters) if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    xp = get_array_module(*grads)
    if norm_type == float("inf"):
        total = xp.stack([xp.abs(g).max() for g in grads]).max()
    else:
        total = xp.stack([(xp.abs(g) ** norm_type).sum() for g in grads]).sum() ** (1.0 / norm_type)
    scale = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= scale.astype(g.dtype)
    return Tensor(total)
