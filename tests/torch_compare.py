"""One helper to compare an op with its PyTorch counterpart: forward and every input's gradient."""
import numpy

import minitorch_seg as mt
from minitorch_seg import backend as shim


def to_torch(torch, tensor):
    t = torch.from_numpy(numpy.array(shim.to_numpy(tensor.data)))
    if tensor.requires_grad:
        t.requires_grad_(True)
    return t


def compare(torch, ours, theirs, inputs, rtol=1e-7, atol=1e-9, seed=0):
    """Run ``ours(*inputs)`` and ``theirs(*torch_inputs)`` and compare outputs and gradients.

    The outputs are contracted with the same random upstream gradient; every input that
    requires grad must get the same gradient on both sides. Returns our output.
    """
    torch_inputs = [to_torch(torch, t) if isinstance(t, mt.Tensor) else t for t in inputs]
    out, expected = ours(*inputs), theirs(*torch_inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    expecteds = expected if isinstance(expected, (tuple, list)) else (expected,)
    rng = numpy.random.default_rng(seed)
    ours_total, theirs_total = None, None
    for o, e in zip(outs, expecteds):
        numpy.testing.assert_allclose(o.numpy(), e.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
        if o.requires_grad and e.requires_grad:
            u = rng.standard_normal(o.shape)
            term_o = (o * mt.Tensor(shim.to_backend(u.astype(o.dtype), o.backend))).sum()
            term_e = (e * torch.from_numpy(u.astype(numpy.dtype(o.dtype)))).sum()
            ours_total = term_o if ours_total is None else ours_total + term_o
            theirs_total = term_e if theirs_total is None else theirs_total + term_e
    if ours_total is None:
        return out
    ours_total.backward()
    theirs_total.backward()
    for index, (a, b) in enumerate(zip(inputs, torch_inputs)):
        if isinstance(a, mt.Tensor) and a.requires_grad:
            assert a.grad is not None, f"input {index} got no gradient"
            numpy.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol,
                                          err_msg=f"gradient of input {index}")
    return out
