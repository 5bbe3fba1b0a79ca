"""Window attention written the obvious ways: the references the tests trust and the lessons show.

- ``window_attention_composed``: ``functional.window_attention`` composed from differentiable
  ops (matmul, add, reshape, softmax), so autograd derives its backward; the tests check that it
  agrees with the fused Function's hand-derived backward, in value and gradient.
- ``window_attention_loops``: the same on NumPy arrays, one window and one head at a time.
"""
import numpy

from .. import functional as F
from ..tensor import Tensor


def window_attention_composed(q, k, v, bias=None, mask=None, scale=None):
    """softmax(q k^T * scale + bias + mask) v, step by step; the arguments of ``F.window_attention``."""
    windows, heads, n, d = q.shape
    scale = d ** -0.5 if scale is None else scale
    scores = F.matmul(q * scale, F.transpose(k, -2, -1))               # (B*nW, heads, N, N)
    if bias is not None:
        scores = scores + bias                                         # bias (heads, N, N) for every window
    if mask is not None:
        mask = mask if isinstance(mask, Tensor) else Tensor(mask)     # a raw array from the mask cache
        nw = mask.shape[0]
        scores = F.reshape(scores, (windows // nw, nw, heads, n, n))   # (B, nW, heads, N, N)
        scores = scores + F.unsqueeze(mask, 1)                         # mask (nW, 1, N, N) for every image
        scores = F.reshape(scores, (windows, heads, n, n))             # (B*nW, heads, N, N)
    return F.matmul(F.softmax(scores, -1), v)                          # (B*nW, heads, N, d)


def window_attention_loops(q, k, v, bias=None, mask=None, scale=None):
    """The same on NumPy arrays: a loop over windows and heads, one small attention each."""
    windows, heads, n, d = q.shape
    scale = d ** -0.5 if scale is None else scale
    out = numpy.empty(q.shape)
    for a in range(windows):
        for h in range(heads):
            scores = q[a, h] @ k[a, h].T * scale                       # (N, N): query i, key j
            if bias is not None:
                scores = scores + bias[h]
            if mask is not None:
                scores = scores + mask[a % mask.shape[0]]              # window a is window a mod nW of its image
            weights = numpy.exp(scores - scores.max(axis=1, keepdims=True))
            weights /= weights.sum(axis=1, keepdims=True)
            out[a, h] = weights @ v[a, h]
    return out
