"""RMSprop (torch's update rule and defaults)."""
from ..autograd import no_grad
from ..backend import get_array_module
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """Per parameter, with g the gradient (plus ``weight_decay * p`` when given):

        v <- alpha v + (1 - alpha) g^2                      (the running mean of g^2, from 0)
        centered:  a <- a + (1 - alpha) (g - a),  d = sqrt(v - a^2) + eps   (a: the running mean of g)
        else:      d = sqrt(v) + eps
        momentum:  b <- momentum b + g / d,  p <- p - lr b
        else:      p <- p - lr g / d

    Defaults as torch: lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False):
        if lr < 0 or eps < 0 or momentum < 0 or weight_decay < 0 or alpha < 0:
            raise ValueError(f"RMSprop: lr, alpha, eps, weight_decay and momentum must be >= 0, got lr={lr}, "
                             f"alpha={alpha}, eps={eps}, weight_decay={weight_decay}, momentum={momentum}.")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered))

    @no_grad()
    def step(self):
        for group, p, grad, state in self._parameters_with_grads():
            xp = get_array_module(p.data)
            alpha, momentum = group["alpha"], group["momentum"]
            if group["weight_decay"]:
                grad = grad + group["weight_decay"] * p.data
            if "step" not in state:
                state["step"] = 0
                state["square_avg"] = xp.zeros_like(p.data)
                if momentum > 0:
                    state["momentum_buffer"] = xp.zeros_like(p.data)
                if group["centered"]:
                    state["grad_avg"] = xp.zeros_like(p.data)
            state["step"] += 1
            square_avg = state["square_avg"]
            square_avg *= alpha
            square_avg += (1 - alpha) * grad * grad
            if group["centered"]:
                grad_avg = state["grad_avg"]
                grad_avg += (1 - alpha) * (grad - grad_avg)
                avg = xp.sqrt(square_avg - grad_avg * grad_avg)
            else:
                avg = xp.sqrt(square_avg)
            avg += group["eps"]
            if momentum > 0:
                buffer = state["momentum_buffer"]
                buffer *= momentum
                buffer += grad / avg
                p.data -= group["lr"] * buffer
            else:
                p.data -= group["lr"] * (grad / avg)
