"""Elementwise arithmetic and math with broadcasting: add sub mul div neg pow exp log sqrt abs.

Notation: ``g`` is the upstream gradient dL/dy, shaped like the output ``y``. When an input was
broadcast, its gradient is ``g``'s contribution summed back to the input's shape
(``autograd.sum_to_shape``). Python numbers may stand for either operand; they stay Python numbers
(NumPy's and CuPy's "weak scalars"), so ``float32_tensor * 2.0`` stays float32.
"""
from ..autograd import Function, sum_to_shape
from ..backend import errstate, get_array_module


def _shape(a):
    return getattr(a, "shape", ())


class Add(Function):
    """y = a + b.  Backward: dy/da = dy/db = 1, so dL/da = g, dL/db = g (each summed to shape)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        return a + b

    @staticmethod
    def backward(ctx, g):
        need_a, need_b = ctx.needs_input_grad
        return (sum_to_shape(g, ctx.shapes[0]) if need_a else None,
                sum_to_shape(g, ctx.shapes[1]) if need_b else None)


class Sub(Function):
    """y = a - b.  Backward: dL/da = g, dL/db = -g."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        return a - b

    @staticmethod
    def backward(ctx, g):
        need_a, need_b = ctx.needs_input_grad
        return (sum_to_shape(g, ctx.shapes[0]) if need_a else None,
                sum_to_shape(-g, ctx.shapes[1]) if need_b else None)


class Mul(Function):
    """y = a * b.  Backward: dy/da = b, dy/db = a, so dL/da = g * b, dL/db = g * a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        need_a, need_b = ctx.needs_input_grad
        return (sum_to_shape(g * b, _shape(a)) if need_a else None,
                sum_to_shape(g * a, _shape(b)) if need_b else None)


class Div(Function):
    """y = a / b.  Backward: dL/da = g / b;  dy/db = -a / b^2 = -y / b, so dL/db = -g * y / b."""

    @staticmethod
    def forward(ctx, a, b):
        y = a / b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved_arrays
        need_a, need_b = ctx.needs_input_grad
        g_over_b = g / b
        return (sum_to_shape(g_over_b, _shape(a)) if need_a else None,
                sum_to_shape(-g_over_b * y, _shape(b)) if need_b else None)


class Neg(Function):
    """y = -x.  Backward: dL/dx = -g."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """y = a ** b (either may be a Python number).

    Backward: dy/da = b * a^(b-1), so dL/da = g * b * a^(b-1);
    dy/db = a^b * ln a = y * ln a, so dL/db = g * y * ln a (defined for a > 0).
    At the edges torch takes the limits, and so do we: dy/da = 0 where b = 0 (a^0 is constant,
    even at a = 0 where a^(b-1) is infinite), and dy/db = 0 where a = 0 and b >= 0 (0^b is constant
    for b > 0, where y ln a would be 0 * -inf).
    """

    @staticmethod
    def forward(ctx, a, b):
        with errstate(divide="ignore", invalid="ignore"):     # 0 ** -1 is inf, as in torch, silently
            y = a ** b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved_arrays
        need_a, need_b = ctx.needs_input_grad
        xp = get_array_module(g)
        grad_a = grad_b = None
        with errstate(divide="ignore", invalid="ignore"):     # the edges, replaced by their limits
            if need_a:
                grad_a = sum_to_shape(xp.where(b == 0, 0, g * b * a ** (b - 1)).astype(g.dtype, copy=False),
                                      _shape(a))
            if need_b:
                # A Python-number base becomes a 0-d array of y's dtype first: xp.log(2.0) is a float64
                # scalar that would upcast a float32 gradient.
                a = a if hasattr(a, "dtype") else xp.asarray(a, dtype=y.dtype)
                constant = (a == 0) & (b >= 0)
                grad_b = sum_to_shape(xp.where(constant, 0, g * y * xp.log(a)).astype(g.dtype, copy=False),
                                      _shape(b))
        return grad_a, grad_b


class Exp(Function):
    """y = e^x.  Backward: dy/dx = e^x = y, so dL/dx = g * y (y saved, not x)."""

    @staticmethod
    def forward(ctx, x):
        with errstate(over="ignore"):  # e^1000 is inf, as in torch, without a warning
            y = get_array_module(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_arrays
        return g * y


class Log(Function):
    """y = ln x.  Backward: dL/dx = g / x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return get_array_module(x).log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g / x


class Sqrt(Function):
    """y = sqrt(x).  Backward: dy/dx = 1 / (2 sqrt x) = 1 / (2y), so dL/dx = g / (2y)."""

    @staticmethod
    def forward(ctx, x):
        y = get_array_module(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_arrays
        return g / (2 * y)


class Abs(Function):
    """y = |x|.  Backward: dL/dx = g * sign(x) (0 at x = 0, as torch)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return get_array_module(x).abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g * get_array_module(x).sign(x)


class Clone(Function):
    """y = x as a new array.  Backward: dL/dx = g."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


class Cast(Function):
    """y = x converted to ``dtype``.  Backward: the gradient converted back to x's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


def _kind(value):
    """'b', 'i' or 'f' (numbers and tensors alike), None for anything else."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        return "i" if dtype.kind == "u" else dtype.kind
    return "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f" if isinstance(value, float) else None


def _promoted(function, input, other):
    """torch's type promotion where NumPy's differs: an integer (or bool) tensor meets a float.

    With a Python float, or with ``/`` of two integers, the integer tensor becomes the default float
    dtype (float32: ``int64_tensor / 2`` is float32 in torch, float64 in NumPy); with a float
    tensor it takes that tensor's dtype (int64 with float32 is float32, not float64).
    """
    from ..dtypes import get_default_dtype
    kinds = (_kind(input), _kind(other))
    if None in kinds or "f" not in kinds and not (function is Div and kinds != ("b", "b")):
        return input, other
    operands = [input, other]
    for i, (value, kind) in enumerate(zip(operands, kinds)):
        partner = operands[1 - i]
        if kind in "bi" and hasattr(value, "dtype"):
            float_partner = kinds[1 - i] == "f" and hasattr(partner, "dtype")
            operands[i] = cast(value, partner.dtype if float_partner else get_default_dtype())
    return tuple(operands)


def _broadcasting(function, input, other):
    input, other = _promoted(function, input, other)
    try:
        return function.apply(input, other)
    except ValueError as error:
        if "broadcast" not in str(error):
            raise
        raise ValueError(f"{function.__name__.lower()}: shapes {tuple(_shape(input))} and {tuple(_shape(other))} "
                         "cannot be broadcast together (trailing sizes must match or be 1).") from None


def add(input, other):
    return _broadcasting(Add, input, other)


def sub(input, other):
    return _broadcasting(Sub, input, other)


def mul(input, other):
    return _broadcasting(Mul, input, other)


def div(input, other):
    return _broadcasting(Div, input, other)


def neg(input):
    return Neg.apply(input)


def pow(input, exponent):  # noqa: A001 - torch's name
    return _broadcasting(Pow, input, exponent)


def exp(input):
    return Exp.apply(input)


def log(input):
    return Log.apply(input)


def sqrt(input):
    return Sqrt.apply(input)


def abs(input):  # noqa: A001 - torch's name
    return Abs.apply(input)


def clone(input):
    return Clone.apply(input)


def cast(input, dtype):
    return Cast.apply(input, dtype=dtype)
