"""Lesson 11's exercises: two device-safe Functions, checked on NumPy and on the strict backend.

Each runs twice: on ``"numpy"`` (values and gradients against the reference) and on
``"strict"``, the CuPy stand-in whose arrays refuse to mix with host arrays and refuse every
implicit transfer (``float()``, ``.item()``, ``bool()``, ``numpy.asarray``). A solution that makes
its arrays with the op's module (``xp = mt.get_array_module(x)``) and keeps every number on the
device passes both; one that makes a host array (``numpy.zeros``, ``numpy.array``,
``numpy.asarray(x)``) or reads a number back passes the first and fails the second.

The references are composed from library ops, so their gradients are autograd's.
"""
from hypothesis import strategies as st

from ..testing import arguments, shapes, tensors
from .registry import Exercise, register


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(input))) along ``dim``, without overflow: torch.logsumexp's semantics.

    Args:
        input: a floating tensor of any shape (at least one dim).
        dim: an int or a tuple of ints (negative ones count from the end): the dims reduced.
        keepdim: keep the reduced dims with size 1 (True) or drop them (False).
    Returns:
        m + log(sum(exp(input - m))) along ``dim``, m the maximum along ``dim`` (a constant: the
        result does not depend on it), of ``input``'s shape with ``dim`` reduced.
    """
    m = input.detach().amax(dim, keepdim=True)
    return (input - m).exp().sum(dim, keepdim=keepdim).log() + input.detach().amax(dim, keepdim=keepdim)


@st.composite
def _logsumexp_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=4, max_side=5))
    scale = draw(st.sampled_from([3.0, 1000.0]))            # logits of +-1000: exp overflows, the shift does not
    ndim = len(shape)
    if draw(st.booleans()):
        dim = draw(st.integers(-ndim, ndim - 1))
    else:                                                    # several dims, each once, some negative
        axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        dim = tuple(a - ndim if draw(st.booleans()) else a for a in axes)
    return draw(arguments(tensors(shape, low=-scale, high=scale), dim, keepdim=draw(st.booleans())))


register(Exercise(
    name="logsumexp", lesson="11_gpu", reference=logsumexp, inputs=_logsumexp_inputs,
    task="Write logsumexp(input, dim, keepdim=False) as a Function: m + log(sum(exp(x - m))) along dim (an int "
         "or a tuple), m the maximum along dim, the reduced dims kept (size 1) or dropped; its backward derived "
         "on paper. Device-safe: every array made with xp = mt.get_array_module(x), no float(), .item() or "
         "host array: the check runs on the numpy and the strict backends.",
    drawn="1-4 dimensions of sides 1-5, dim an int or a tuple of dims (negative too), keepdim both ways, "
          "values in [-3, 3) or [-1000, 1000); on the numpy and the strict backend.",
    backends=("numpy", "strict")))


def normalize_channels(input, eps=1e-5):
    """Each channel of a batch standardised over the batch and the positions: batch norm's
    training-mode statistics, without the affine scale and shift.

    Args:
        input: (N, C, *) floating tensor: N samples, C channels, any number of spatial dims.
        eps: added to the variance inside the square root.
    Returns:
        (N, C, *): (x - mu_c) / sqrt(var_c + eps), mu_c and var_c the mean and the biased
        variance of channel c over the N samples and every position.
    """
    axes = (0,) + tuple(range(2, input.ndim))
    centred = input - input.mean(axes, keepdim=True)
    return centred / ((centred * centred).mean(axes, keepdim=True) + eps).sqrt()


@st.composite
def _normalize_inputs(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    spatial = draw(shapes(min_dims=0, max_dims=2, max_side=5))
    eps = draw(st.sampled_from([1e-5, 1e-5, 0.5]))
    return draw(arguments(tensors((n, c) + spatial), eps=eps))


register(Exercise(
    name="normalize_channels", lesson="11_gpu", reference=normalize_channels, inputs=_normalize_inputs,
    task="Write normalize_channels(input, eps=1e-5) as a Function: x (N, C, *) to (x - mu_c) / sqrt(var_c + eps) "
         "per channel c, mean and biased variance over the batch and every position, and its backward derived "
         "on paper. Device-safe: no loop over channels collecting numbers, no float(), .item() or host array: "
         "the check runs on the numpy and the strict backends.",
    drawn="batches 1-3, channels 1-4, 0-2 spatial dims of sides 1-5, eps 1e-5 or 0.5; on the numpy and the "
          "strict backend.",
    backends=("numpy", "strict")))
