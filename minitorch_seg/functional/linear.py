"""Matrix products: ``matmul`` (batched, broadcasting, 1-D operands as in torch) and ``linear``."""
from ..autograd import Function, sum_to_shape


class MatMul(Function):
    """Y = A @ B over the last two axes, leading axes broadcast; A (..., n, k), B (..., k, m).

    Backward: Y_ij = sum_k A_ik B_kj, so dY_ij/dA_ik = B_kj and dY_ij/dB_kj = A_ik:
        dL/dA = G @ B^T   (..., n, m) @ (..., m, k) -> (..., n, k)
        dL/dB = A^T @ G   (..., k, n) @ (..., n, m) -> (..., k, m)
    each summed back over the leading axes broadcasting added. A 1-D A is a row (1, k) and a
    1-D B a column (k, 1) whose added axis is removed from Y, as in torch; G gets it back first.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        need_a, need_b = ctx.needs_input_grad
        a2 = a[None, :] if a.ndim == 1 else a                          # (..., n, k)
        b2 = b[:, None] if b.ndim == 1 else b                          # (..., k, m)
        if a.ndim == 1:
            g = g[..., None, :] if b.ndim > 1 else g.reshape(1, 1)    # (..., 1, m)
        if b.ndim == 1 and a.ndim > 1:
            g = g[..., None]                                           # (..., n, 1)
        grad_a = grad_b = None
        if need_a:
            grad_a = sum_to_shape(g @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if need_b:
            grad_b = sum_to_shape(a2.swapaxes(-1, -2) @ g, b2.shape).reshape(b.shape)
        return grad_a, grad_b


class Linear(Function):
    """y = x W^T + b; x (..., in), W (out, in), b (out,) -> y (..., out).

    Backward, with the leading axes of x flattened into rows (X (R, in), G (R, out)):
        dL/dx = G W        (R, out) @ (out, in)
        dL/dW = G^T X      (out, R) @ (R, in): one GEMM over all rows at once
        dL/db = sum over rows of G
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_arrays
        need_x, need_w, need_b = ctx.needs_input_grad
        rows = g.reshape(-1, g.shape[-1])                              # (R, out)
        grad_x = (g @ weight) if need_x else None
        grad_w = (rows.T @ x.reshape(-1, x.shape[-1])) if need_w else None
        grad_b = rows.sum(axis=0) if need_b else None
        return grad_x, grad_w, grad_b


def matmul(input, other):
    """Matrix product with torch's rules: batched over leading dims, 1-D operands allowed."""
    from ..tensor import Tensor
    a_shape, b_shape = input.shape, other.shape
    if 0 in (len(a_shape), len(b_shape)):
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes {a_shape} and {b_shape}.")
    k_a = a_shape[-1]
    k_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a_shape} and {b_shape} do not match: the inner sizes {k_a} and {k_b} must be equal.")
    try:
        return MatMul.apply(input if isinstance(input, Tensor) else Tensor(input), other)
    except ValueError:
        raise ValueError(f"matmul: the batch dims of {a_shape} and {b_shape} cannot be broadcast together.") from None


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, weight (out_features, in_features)."""
    if input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input has {input.shape[-1]} features in its last dim but weight {weight.shape} "
                         f"expects {weight.shape[-1]}.")
    return Linear.apply(input, weight, bias)

