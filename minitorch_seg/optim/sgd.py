"""SGD with momentum, dampening, Nesterov and weight decay (torch's update rule)."""
from ..autograd import no_grad
from .optimizer import Optimizer


class SGD(Optimizer):
    """g <- grad + weight_decay * p;  b <- momentum * b + (1 - dampening) * g (b = g at the first step);
    step direction d = g + momentum * b (Nesterov) or b;  p <- p - lr * d."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}.")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0.")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    @no_grad()
    def step(self):
        for group, p, grad, state in self._parameters_with_grads():
            if group["weight_decay"]:
                grad = grad + group["weight_decay"] * p.data
            momentum = group["momentum"]
            if momentum:
                buffer = state.get("momentum_buffer")
                if buffer is None:
                    buffer = state["momentum_buffer"] = grad.copy()
                else:
                    buffer *= momentum
                    buffer += (1 - group["dampening"]) * grad if group["dampening"] else grad   # 1 * g is g
                grad = grad + momentum * buffer if group["nesterov"] else buffer
            p.data -= group["lr"] * grad
