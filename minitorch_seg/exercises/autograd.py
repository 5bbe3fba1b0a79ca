"""Lesson 1's exercises: softplus (a Function with a hand-derived backward) and add with broadcasting.

``softplus`` has no library function, so its reference is defined here, composed from library
ops (its gradient is autograd's); ``add``'s reference is the library's ``functional.add``.
"""
from hypothesis import strategies as st

from .. import functional as F
from ..tensor import Tensor
from ..testing import arguments, broadcastable_pair, make, shapes, tensors
from .registry import Exercise, register


def softplus(input, beta=1.0, threshold=20.0):
    """Softplus with torch.nn.functional.softplus's semantics: a smooth relu.

    ``input`` any shape -> the same shape. ``beta`` > 0 sharpens the bend, ``threshold`` is
    where the function turns linear:

        softplus(x) = 1/beta * log(1 + exp(beta * x))   where beta * x <= threshold
                      x                                   where beta * x >  threshold

    (above the threshold the two differ by less than exp(-threshold) / beta). Composed from library
    ops: log(1 + e^z) = relu(z) + log(1 + e^-|z|) with z = beta * x, so exp never sees a positive
    exponent and nothing overflows, even at |x| = 2000; the branch is picked with a constant 0/1
    mask. Its gradient is autograd's: sigmoid(beta * x) below the threshold, 1 above, and 0 at
    exactly x = 0 (relu's and abs's choice there; torch gives 1/2, the exercise never draws 0).

    >>> import minitorch_seg as mt
    >>> [round(v, 4) for v in softplus(mt.tensor([-1000.0, 0.0, 1.0, 30.0])).tolist()]
    [0.0, 0.6931, 1.3133, 30.0]
    """
    z = input * beta
    smooth = (z.relu() + (1 + (-z.abs()).exp()).log()) / beta
    linear = (z > threshold).to(input.dtype)          # 1 where beta * x > threshold; a constant: no gradient
    return linear * input + (1 - linear) * smooth


@st.composite
def _softplus_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=5))
    beta = draw(st.sampled_from([0.5, 1.0, 2.0]))
    threshold = draw(st.sampled_from([1.0, 2.0, 20.0]))
    scale = draw(st.sampled_from([3.0, 30.0, 2000.0]))     # |x| up to 2000: a naive exp(beta x) overflows
    # values of beta * x drawn at least 0.1 away from the threshold, so that finite differences
    # never straddle the switch from the curve to the line
    z = make(shape, draw(st.integers(0, 2 ** 16)), -scale * beta, scale * beta, away_from=threshold,
             requires_grad=False)
    return draw(arguments(Tensor(z.data / beta, requires_grad=True), beta=beta, threshold=threshold))


register(Exercise(
    name="softplus", lesson="01_autograd", reference=softplus, inputs=_softplus_inputs, fast_examples=12,
    task="Write softplus(input, beta=1.0, threshold=20.0) as a Function: 1/beta * log(1 + exp(beta x)) "
         "elementwise, and x itself where beta * x > threshold (torch's semantics), without overflow at "
         "|x| = 2000; its backward is the derivative you derived, times the upstream gradient.",
    drawn="1-3 dimensions of sides 1-5, beta 0.5, 1 or 2, threshold 1, 2 or 20, x up to 3, 30 or 2000 in "
          "magnitude, beta * x at least 0.1 away from the threshold."))


@st.composite
def _add_inputs(draw):
    a, b = draw(broadcastable_pair())
    return draw(arguments(tensors(a), tensors(b)))


register(Exercise(
    name="add", lesson="01_autograd", reference=F.add, inputs=_add_inputs,
    task="Write add(input, other) as a Function: input + other with NumPy's broadcasting, and its backward: "
         "one gradient per input, each of exactly that input's shape (an element copied to several outputs "
         "gets the sum of their gradients).",
    drawn="pairs of shapes of 1-4 dimensions, sides 1-4, that broadcast together: equal, one with fewer "
          "axes or sizes 1, and both expanded at once ((3, 1) with (1, 4))."))
