"""``checkpoint(function, *args)``: torch's activation checkpointing, here a plain call.

Unlike PyTorch: no memory is saved. torch frees the block's activations after the forward and
recomputes them in the backward; here the block is simply run and recorded as usual, so the
gradients are the same and code written for torch runs unchanged, with ordinary memory use.

>>> import minitorch_seg as mt
>>> x = mt.ones(2, requires_grad=True)
>>> checkpoint(lambda t: (t * 3).sum(), x, use_reentrant=False)
tensor(6., grad_fn=<Sum>)
"""


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default", debug=False,
               preserve_rng_state=True, **kwargs):
    """``function(*args, **kwargs)``; torch's options are accepted and change nothing."""
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run ``functions`` (a Sequential or a list of modules) one after the other on ``input``."""
    for function in (functions.children() if hasattr(functions, "children") else functions):
        input = function(input)
    return input
