"""Adam and AdamW (torch's update rules, bias-corrected moments)."""
import math

from ..autograd import no_grad
from ..backend import get_array_module
from .optimizer import Optimizer


class Adam(Optimizer):
    """m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).

    ``weight_decay`` adds ``wd * p`` to g (L2, coupled); AdamW decays p directly instead.
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0 or eps < 0 or not all(0 <= b < 1 for b in betas) or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: invalid lr={lr}, betas={betas}, eps={eps} or weight_decay={weight_decay}.")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @no_grad()
    def step(self):
        for group, p, grad, state in self._parameters_with_grads():
            xp = get_array_module(p.data)
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            if wd and self.decoupled:
                p.data *= 1 - lr * wd
            elif wd:
                grad = grad + wd * p.data
            if "step" not in state:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(p.data)
                state["exp_avg_sq"] = xp.zeros_like(p.data)
            state["step"] += 1
            m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            denominator = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + group["eps"]
            p.data -= (lr / (1 - beta1 ** t)) * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay: p <- p (1 - lr * wd) before the Adam step (default wd 0.01)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
