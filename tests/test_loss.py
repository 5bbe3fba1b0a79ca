"""Softmax cross-entropy: (N, C) and (N, C, H, W), class weights, ignore_index, reductions."""
import math
import warnings

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minitorch_seg as mt
from minitorch_seg import functional as F, parallel
from minitorch_seg.testing import layouts, make
from torch_compare import compare
from helpers import host

pytestmark = pytest.mark.loss

GRAD_EXAMPLES = 12
TORCH_EXAMPLES = 6
IGNORE = -100                  # torch's default ignore_index, which is ours
STREAM_TILES = parallel.STREAM_TILES
seeds = st.integers(0, 2**16)


@st.composite
def ce_case(draw):
    """Logits (N, C) or (N, C, H, W), a target with some pixels ignored (never all), options."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    spatial = draw(st.sampled_from([(), (1, 1), (2, 3), (3, 2)]))
    logits_shape = (n, c) + spatial
    rng = numpy.random.default_rng(draw(seeds))
    target = rng.integers(0, c, (n,) + spatial)
    target[rng.random(target.shape) < draw(st.sampled_from([0.0, 0.3]))] = IGNORE
    target.flat[0] = rng.integers(0, c)                 # at least one pixel counts
    weighted = draw(st.booleans())
    return (logits_shape, draw(layouts(len(logits_shape))), target, weighted,
            draw(st.sampled_from(["mean", "sum", "none"])), draw(seeds))


def build(case):
    logits_shape, layout, target, weighted, reduction, seed = case
    x = make(logits_shape, seed=seed, layout=layout, low=-3.0, high=3.0)
    t = mt.tensor(target)
    w = make(logits_shape[1:2], seed=seed + 1, low=0.2, high=2.0, requires_grad=False) if weighted else None
    return x, t, w, reduction


def numpy_cross_entropy(x, target, weight=None, ignore_index=IGNORE, reduction="mean"):
    """The definition, class axis moved last: -w_y log softmax(x)_y per kept pixel, then reduced."""
    logits = numpy.moveaxis(x, 1, -1)                              # (N, *S, C)
    log_probs = logits - numpy.log(numpy.exp(logits).sum(axis=-1, keepdims=True))
    keep = target != ignore_index
    safe = numpy.where(keep, target, 0)
    picked = numpy.take_along_axis(log_probs, safe[..., None], axis=-1)[..., 0]
    w = (numpy.ones(x.shape[1]) if weight is None else weight)[safe] * keep
    losses = -picked * w
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / w.sum()


# ---- the seed's formula --------------------------------------------------------------------------
def test_equals_the_seed_image_loss_hand_computed(backend):
    """N = 1: L_CE = -1/(HW) sum_{h,w} sum_c Y[h,w,c] log softmax(x)[h,w,c], Y one-hot, by loops."""
    rng = numpy.random.default_rng(3)
    C, H, W = 4, 2, 3
    logits = rng.standard_normal((1, C, H, W))
    labels = rng.integers(0, C, (H, W))
    total = 0.0
    for h in range(H):
        for w in range(W):
            scores = [logits[0, c, h, w] for c in range(C)]
            normaliser = sum(math.exp(s) for s in scores)
            for c in range(C):
                one_hot = 1.0 if labels[h, w] == c else 0.0
                total += one_hot * math.log(math.exp(scores[c]) / normaliser)
    expected = -total / (H * W)
    x = mt.tensor(logits, dtype="float64", requires_grad=True)
    loss = F.cross_entropy(x, mt.tensor(labels[None]))
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    softmax = numpy.exp(logits) / numpy.exp(logits).sum(axis=1, keepdims=True)
    one_hot = numpy.moveaxis(numpy.eye(C)[labels], -1, 0)[None]    # (1, C, H, W)
    numpy.testing.assert_allclose(x.grad.numpy(), (softmax - one_hot) / (H * W), rtol=1e-12, atol=1e-15)


def test_hand_computed_two_classes(backend):
    x = mt.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype="float64", requires_grad=True)
    t = mt.tensor([0, IGNORE, 1])
    # kept rows: -log(e^2 / (e^2 + 1)) and -log(1/2)
    first, third = math.log(1 + math.exp(-2)), math.log(2)
    assert F.cross_entropy(x, t).item() == pytest.approx((first + third) / 2, rel=1e-12)
    assert F.cross_entropy(x, t, reduction="sum").item() == pytest.approx(first + third, rel=1e-12)
    numpy.testing.assert_allclose(F.cross_entropy(x, t, reduction="none").numpy(), [first, 0.0, third], rtol=1e-12)
    weight = mt.tensor([3.0, 1.0], dtype="float64")
    assert F.cross_entropy(x, t, weight=weight).item() == pytest.approx((3 * first + third) / 4, rel=1e-12)


# ---- gradient check, NumPy, torch ------------------------------------------------------------------
@settings(max_examples=GRAD_EXAMPLES)
@given(case=ce_case())
def test_gradcheck(backend, case):
    x, t, w, reduction = build(case)
    assert mt.gradcheck(lambda logits: F.cross_entropy(logits, t, weight=w, reduction=reduction), (x,))


def test_a_retained_graph_keeps_what_the_loss_saved(backend):
    """The last backward writes the gradient into the memory of the softmax terms it saved; with
    ``retain_graph=True`` that is not the last, and each backward gives the same gradient."""
    x, t, w, _ = build(((2, 3, 2, 3), None, numpy.array([[[0, 1, IGNORE], [2, 2, 0]], [[1, 0, 2], [IGNORE, 1, 1]]]),
                        True, "mean", 5))
    loss = F.cross_entropy(x, t, weight=w)
    grads = []
    for retain in (True, True, False):
        x.grad = None
        loss.backward(retain_graph=retain)
        grads.append(host(x.grad).copy())
    numpy.testing.assert_array_equal(grads[0], grads[1])
    numpy.testing.assert_array_equal(grads[0], grads[2])


@settings(max_examples=GRAD_EXAMPLES)
@given(case=ce_case())
def test_forward_matches_numpy(backend, case):
    x, t, w, reduction = build(case)
    y = F.cross_entropy(x, t, weight=w, reduction=reduction)
    expected = numpy_cross_entropy(host(x), host(t), None if w is None else host(w), reduction=reduction)
    assert y.shape == numpy.shape(expected) and y.backend == backend
    numpy.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-15)


def composed_cross_entropy(x, target, weight, reduction):
    """The loss from ``log_softmax`` and elementwise products, differentiated by autograd: an oracle
    that shares no code with ``CrossEntropy``."""
    t, classes = host(target), x.shape[1]
    keep, wide = t != IGNORE, (1, classes) + (1,) * (t.ndim - 1)
    class_weight = numpy.ones(classes) if weight is None else host(weight)
    chosen = (numpy.arange(classes).reshape(wide) == numpy.where(keep, t, 0)[:, None]) & keep[:, None]
    losses = -(F.log_softmax(x, 1) * mt.tensor(chosen * class_weight.reshape(wide))).sum(1)     # (N, *S)
    if reduction == "none":
        return losses
    total = losses.sum()
    return total if reduction == "sum" else total / float((chosen * class_weight.reshape(wide)).sum())


@pytest.mark.parametrize("threads", [1, 3])
@settings(max_examples=GRAD_EXAMPLES)
@given(case=ce_case(), tile_bytes=st.sampled_from([8, 40, 200, STREAM_TILES.bytes]))
def test_in_tiles_of_pixels_or_of_samples_on_several_threads(backend, threads, case, tile_bytes, monkeypatch):
    """The softmaxes run in tiles on the host threads (``loss._pixel_runs``): runs of one sample's
    pixels, or of whole samples where a sample fills less than half a tile. In tiles of 1 to 25
    float64 values or whole, on 1 or 3 threads, the loss and its gradient are those of the loss
    composed from log_softmax."""
    monkeypatch.setattr(parallel, "host_threads", lambda: threads)
    monkeypatch.setattr(parallel, "STREAM_TILES", STREAM_TILES._replace(bytes=tile_bytes))
    results = []
    for loss in (F.cross_entropy, composed_cross_entropy):
        x, t, w, reduction = build(case)
        y = loss(x, t, w, reduction=reduction)
        y.sum().backward()
        results.append((y.numpy(), host(x.grad)))
    for ours, composed in zip(*results):
        numpy.testing.assert_allclose(ours, composed, rtol=1e-12, atol=1e-14)


@settings(max_examples=TORCH_EXAMPLES)
@given(case=ce_case())
def test_matches_torch(backend, torch, case):
    x, t, w, reduction = build(case)
    torch_target = torch.from_numpy(host(t).copy())
    torch_weight = None if w is None else torch.from_numpy(host(w).copy())
    compare(torch, lambda logits: F.cross_entropy(logits, t, weight=w, reduction=reduction),
            lambda logits: torch.nn.functional.cross_entropy(logits, torch_target, weight=torch_weight,
                                                             ignore_index=IGNORE, reduction=reduction), [x])


def test_other_ignore_index_matches_torch(backend, torch):
    x = make((3, 4, 2, 2), seed=1)
    target = numpy.random.default_rng(2).integers(0, 4, (3, 2, 2))
    target[0, 0, 0] = target[2, 1, 1] = -100
    t = mt.tensor(target)
    compare(torch, lambda logits: F.cross_entropy(logits, t, ignore_index=-100),
            lambda logits: torch.nn.functional.cross_entropy(logits, torch.from_numpy(target)), [x])


def test_float32_stays_float32(backend):
    x = make((2, 3, 2, 2), seed=1, dtype="float32")
    w = mt.tensor([1.0, 2.0, 0.5], dtype="float64")        # weights are cast to the logits' dtype
    loss = F.cross_entropy(x, mt.tensor(numpy.zeros((2, 2, 2), dtype=numpy.int64)), weight=w)
    loss.backward()
    assert loss.dtype == numpy.float32 and x.grad.dtype == numpy.float32


# ---- edge cases -------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2, 2)])
def test_an_empty_batch_gives_an_empty_or_zero_loss_and_an_empty_gradient(backend, reduction, shape):
    x = make(shape, seed=1)
    loss = F.cross_entropy(x, mt.tensor(numpy.zeros((0,) + shape[2:], dtype=numpy.int64)), reduction=reduction)
    assert loss.shape == (((0,) + shape[2:]) if reduction == "none" else ())
    loss.sum().backward()
    assert x.grad.shape == shape
    assert reduction == "none" or loss.item() == 0.0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_ignored_gives_zero_loss_and_zero_gradient(backend, reduction):
    """Unlike PyTorch (NaN for "mean"): nothing to learn from gives 0, and no NaN reaches the weights."""
    x = make((2, 3, 2, 2), seed=1)
    t = mt.tensor(numpy.full((2, 2, 2), IGNORE))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, t, reduction=reduction)
        loss.sum().backward()
    assert (loss.numpy() == 0).all()
    numpy.testing.assert_array_equal(x.grad.numpy(), numpy.zeros((2, 3, 2, 2)))


def test_large_logits_in_float32_stay_finite(backend):
    x = mt.tensor([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]], dtype="float32", requires_grad=True)
    t = mt.tensor([1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, t)
        loss.backward()
    assert numpy.isfinite(loss.item()) and numpy.isfinite(x.grad.numpy()).all()
    # row 0: -log softmax_1 = 1e4 (+ e^-1e4); row 1: -log softmax_0 = 2e4 + log 2
    assert loss.item() == pytest.approx((1e4 + 2e4 + math.log(2)) / 2, rel=1e-6)
    numpy.testing.assert_allclose(x.grad.numpy(), [[0.5, -0.5, 0.0], [-0.5, 0.25, 0.25]], atol=1e-6)


# ---- errors -------------------------------------------------------------------------------------
def test_errors(backend):
    x = make((2, 3, 4, 4), seed=0)
    good = mt.tensor(numpy.zeros((2, 4, 4), dtype=numpy.int64))
    with pytest.raises(ValueError,
                       match=r"cross_entropy: target has shape \(2, 4\) but input \(2, 3, 4, 4\) needs \(2, 4, 4\)"):
        F.cross_entropy(x, mt.tensor(numpy.zeros((2, 4), dtype=numpy.int64)))
    with pytest.raises(TypeError, match="cross_entropy: target must hold integer class indices, got dtype float"):
        F.cross_entropy(x, mt.tensor(numpy.zeros((2, 4, 4))))
    with pytest.raises(ValueError, match="cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'max'"):
        F.cross_entropy(x, good, reduction="max")
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \(3,\), got \(4,\)"):
        F.cross_entropy(x, good, weight=mt.ones(4))
    with pytest.raises(ValueError, match=r"cross_entropy: input must be \(N, C\) or \(N, C, H, W\) logits"):
        F.cross_entropy(make((3,), seed=0), mt.tensor([0, 1, 2]))


@pytest.mark.parametrize("bad", [3, -1, 254])
def test_out_of_range_class(bad):
    """Checked on the host only (on a GPU the check would cost a transfer each step), so NumPy here."""
    x = make((2, 3), seed=0)
    with pytest.raises(ValueError,
                       match=f"cross_entropy: target holds {bad}, outside 0..2 and not the ignore_index 255"):
        F.cross_entropy(x, mt.tensor([0, bad]), ignore_index=255)
    with pytest.raises(ValueError, match="outside 0..2 and not the ignore_index -100"):
        F.cross_entropy(x, mt.tensor([0, 255]))          # torch's default: 255 is an error unless passed
