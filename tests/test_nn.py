"""nn: the Module API (registration, walking, buffers, state_dict, modes, moves, repr), the basic
layers against torch in float64, torch's default initialisation, and ``clip_grad_norm_``.

Where a structure is compared with torch, one builder takes the namespace (``mt.nn`` or
``torch.nn``) so both sides are built by the same lines.
"""
import math

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import nn
from minitorch_seg.testing import make
from torch_compare import compare
from helpers import assert_one_sentence, host

pytestmark = pytest.mark.nn


# ---- helpers ----------------------------------------------------------------------------------
def torch_state(module):
    """torch's state_dict as host NumPy arrays (what a converted checkpoint holds)."""
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def copy_weights(ours, theirs):
    loaded = ours.load_state_dict(torch_state(theirs))
    assert loaded.missing_keys == [] and loaded.unexpected_keys == []
    return ours


def block_class(ns, ones):
    """The same custom module in either namespace: an own parameter, a layer, a nested Sequential."""
    class Block(ns.Module):
        def __init__(self):
            super().__init__()
            self.proj = ns.Linear(3, 4)
            self.scale = ns.Parameter(ones(4))
            self.head = ns.Sequential(ns.ReLU(), ns.Linear(4, 2, bias=False))

        def forward(self, x):
            return self.head(self.proj(x) * self.scale)
    return Block


def mt_block():
    return block_class(nn, mt.ones)()


def torch_block(torch):
    return block_class(torch.nn, torch.ones)()


def nested(ns):
    """Every container and most layers, nested: used for walking, modes and repr."""
    return ns.Sequential(
        ns.Linear(3, 4),
        ns.ReLU(),
        ns.Sequential(ns.Linear(4, 4, bias=False), ns.GELU(), ns.Identity(), ns.Flatten()),
        ns.ModuleList([ns.Linear(4, 2), ns.LeakyReLU(0.2), ns.Tanh()]),
        ns.ModuleDict({"head": ns.Linear(2, 1), "act": ns.Sequential(ns.Sigmoid(), ns.Softmax(dim=1))}),
    )


# ---- registration and walking -----------------------------------------------------------------
def test_named_parameters_order_and_dotted_names_match_torch(torch):
    ours, theirs = mt_block(), torch_block(torch)
    names = [name for name, _ in ours.named_parameters()]
    assert names == ["scale", "proj.weight", "proj.bias", "head.1.weight"]
    assert names == [name for name, _ in theirs.named_parameters()]
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.parameters())


def test_plain_tensors_and_none_are_not_parameters():
    layer = nn.Linear(2, 2, bias=False)
    layer.note = mt.ones(2)                      # a plain tensor attribute: not learned
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert layer.bias is None
    assert list(layer.state_dict()) == ["weight"]


def test_reassigning_keeps_one_registration_in_torchs_order(torch):
    def build(ns, zeros):
        layer = ns.Linear(2, 2, bias=False)
        layer.bias = ns.Parameter(zeros(2))      # was a plain None attribute: now a parameter
        layer.weight = ns.Parameter(zeros(2, 2))  # re-assigned: keeps its place, first
        return layer

    ours, theirs = build(nn, mt.zeros), build(torch.nn, torch.zeros)
    assert isinstance(ours.bias, nn.Parameter) and ours.bias is dict(ours.named_parameters())["bias"]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == ["weight", "bias"]
    assert not host(ours.weight).any()
    ours.weight = nn.Linear(2, 2)                # a module now: no longer a parameter
    assert [n for n, _ in ours.named_parameters()] == ["bias", "weight.weight", "weight.bias"]


@pytest.mark.parametrize("tie", ["module", "parameter"])
def test_shared_parameters_counted_once_but_saved_under_every_name(torch, tie):
    def build(ns):
        first, second = ns.Linear(2, 2), ns.Linear(2, 2)
        if tie == "module":
            return ns.Sequential(first, ns.ReLU(), first)
        second.weight = first.weight
        return ns.Sequential(first, second)

    ours, theirs = build(nn).double(), build(torch.nn)
    names = [name for name, _ in ours.named_parameters()]
    assert names == [name for name, _ in theirs.named_parameters()]
    assert len(names) == (2 if tie == "module" else 3)
    assert len({id(p) for p in ours.parameters()}) == len(names)
    # torch saves a shared tensor under every name it is reachable by; loading torch's checkpoint works.
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(ours, theirs)
    for name, p in ours.named_parameters():
        numpy.testing.assert_array_equal(host(p), dict(theirs.named_parameters())[name].detach().numpy())


def test_named_modules_and_children_match_torch(torch):
    ours, theirs = nested(nn), nested(torch.nn)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [type(m).__name__ for _, m in ours.named_modules()] == [type(m).__name__ for _, m in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == ["0", "1", "2", "3", "4"]
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__ for m in theirs.children()]


def test_shared_module_is_one_child_and_one_module(torch):
    def build(ns):
        shared = ns.Linear(2, 2)
        return ns.Sequential(shared, ns.ReLU(), shared)

    ours, theirs = build(nn), build(torch.nn)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()] == ["", "0", "1"]
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__ for m in theirs.children()]


def test_apply_visits_children_first_in_torchs_order(torch):
    def visit_order(model):
        names = {id(m): n for n, m in model.named_modules()}
        order = []
        model.apply(lambda m: order.append(names[id(m)]))
        return order

    assert visit_order(nested(nn)) == visit_order(nested(torch.nn))
    order = visit_order(mt_block())
    assert order == ["proj", "head.0", "head.1", "head", ""]


def test_apply_can_reinitialise_every_linear():
    net = nested(nn)
    net.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert all(not host(p).any() for name, p in net.named_parameters() if name.endswith("weight"))
    assert any(host(p).any() for name, p in net.named_parameters() if name.endswith("bias"))


# ---- buffers, state_dict ------------------------------------------------------------------------
def buffers_class(ns, zeros, tensor):
    class WithBuffers(ns.Module):
        def __init__(self):
            super().__init__()
            self.linear = ns.Linear(3, 2)
            self.register_buffer("running_mean", zeros(2))
            self.register_buffer("count", tensor(0))         # int64: never cast by .to(dtype)
    return WithBuffers


def WithBuffers():  # noqa: N802 - reads as the class it builds
    return buffers_class(nn, mt.zeros, mt.tensor)()


def test_buffer_names_in_state_dict_match_torch(torch):
    ours, theirs = WithBuffers(), buffers_class(torch.nn, torch.zeros, torch.tensor)()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]


def test_buffers_are_saved_and_moved_but_not_parameters(backend):
    module = WithBuffers()
    assert [n for n, _ in module.named_parameters()] == ["linear.weight", "linear.bias"]
    assert [n for n, _ in module.named_buffers()] == ["running_mean", "count"]
    assert list(module.state_dict()) == ["running_mean", "count", "linear.weight", "linear.bias"]
    module.running_mean = mt.ones(2)                       # assigning keeps it a buffer, in its place
    assert list(module.state_dict())[0] == "running_mean"
    numpy.testing.assert_array_equal(host(module.state_dict()["running_mean"]), [1.0, 1.0])
    assert "running_mean" not in dict(module.named_parameters())

    other = "numpy" if backend != "numpy" else "strict"
    module.to(other)
    assert {b.backend for b in module.buffers()} == {p.backend for p in module.parameters()} == {other}
    module.to("float64")
    assert module.running_mean.dtype == numpy.float64 and module.linear.weight.dtype == numpy.float64
    assert module.count.dtype == numpy.int64
    numpy.testing.assert_array_equal(host(module.running_mean), [1.0, 1.0])


def test_state_dict_shares_data_and_round_trips(backend):
    source, target = mt_block(), mt_block()
    state = source.state_dict()
    assert list(state) == ["scale", "proj.weight", "proj.bias", "head.1.weight"]
    assert state["proj.weight"].data is source.proj.weight.data
    assert not state["proj.weight"].requires_grad
    assert any((host(source.proj.weight) != host(target.proj.weight)).ravel())

    weights_before = target.proj.weight
    result = target.load_state_dict(state)
    assert result == (([], [])) and result.missing_keys == [] and result.unexpected_keys == []
    assert target.proj.weight is weights_before                         # copied in, not replaced
    for name, value in source.state_dict().items():
        numpy.testing.assert_array_equal(host(target.state_dict()[name]), host(value))
    source.proj.weight.data[...] = 7.0                                   # a copy, not an alias
    assert not (host(target.proj.weight) == 7.0).any()


def test_load_state_dict_keeps_the_modules_backend_and_dtype(backend):
    with shim.use_backend("numpy"):
        checkpoint = {k: host(v).astype(numpy.float64) for k, v in mt_block().state_dict().items()}
    model = mt_block()                                    # float32 on the current backend
    model.load_state_dict(checkpoint)
    for name, p in model.named_parameters():
        assert p.backend == backend and p.dtype == numpy.float32
        numpy.testing.assert_array_equal(host(p), checkpoint[name].astype(numpy.float32))


def test_load_state_dict_missing_key_is_one_sentence_naming_it():
    model = nn.Sequential(nn.Linear(3, 2))
    state = model.state_dict()
    del state["0.bias"]
    with pytest.raises(RuntimeError) as raised:
        model.load_state_dict(state)
    assert_one_sentence(raised.value, "0.bias", "missing")


def test_load_state_dict_unexpected_key_is_one_sentence_naming_it():
    model = nn.Sequential(nn.Linear(3, 2))
    state = dict(model.state_dict(), **{"1.weight": mt.zeros(2, 2)})
    with pytest.raises(RuntimeError) as raised:
        model.load_state_dict(state)
    assert_one_sentence(raised.value, "1.weight", "unexpected")


def test_load_state_dict_size_mismatch_names_key_and_both_shapes():
    model = nn.Sequential(nn.Linear(3, 2))
    state = dict(model.state_dict(), **{"0.weight": numpy.zeros((3, 2))})
    for strict in (True, False):
        with pytest.raises(RuntimeError) as raised:
            model.load_state_dict(state, strict=strict)
        assert_one_sentence(raised.value, "0.weight", "size mismatch", "(3, 2)", "(2, 3)")
    assert host(model[0].weight).any()                      # nothing half-loaded


def test_load_state_dict_non_strict_returns_missing_and_unexpected():
    model = nn.Sequential(nn.Linear(3, 2))
    state = {"0.weight": numpy.full((2, 3), 0.5), "extra.weight": numpy.zeros(1)}
    bias_before = host(model[0].bias).copy()
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra.weight"]
    assert type(result).__name__ == "IncompatibleKeys" and result == (["0.bias"], ["extra.weight"])
    numpy.testing.assert_array_equal(host(model[0].weight), numpy.full((2, 3), 0.5, dtype=numpy.float32))
    numpy.testing.assert_array_equal(host(model[0].bias), bias_before)


# ---- modes and moves ----------------------------------------------------------------------------
def test_train_and_eval_reach_every_submodule():
    net = nested(nn)
    modules = list(net.modules())
    assert len(modules) == 17 and all(m.training for m in modules)
    assert net.eval() is net
    assert not any(m.training for m in modules)
    assert net.train() is net and all(m.training for m in modules)
    net.train(False)
    assert not any(m.training for m in modules)


def test_to_moves_and_casts_parameters_grads_and_buffers_in_place(backend):
    model = WithBuffers()
    parameters = list(model.parameters())
    x = make((5, 3), dtype="float32", requires_grad=False)
    model.linear(x).sum().backward()
    before = {n: host(p).copy() for n, p in model.named_parameters()}
    grads_before = {n: host(p.grad).copy() for n, p in model.named_parameters()}

    for target in ("strict", "numpy", backend):
        assert model.to(target) is model
        assert all(a is b for a, b in zip(model.parameters(), parameters))     # the same objects, moved
        for name, p in model.named_parameters():
            assert p.backend == target and p.grad.backend == target
            numpy.testing.assert_array_equal(host(p), before[name])
            numpy.testing.assert_array_equal(host(p.grad), grads_before[name])
        assert model.running_mean.backend == target and model.count.backend == target

    assert model.double() is model
    for name, p in model.named_parameters():
        assert p.dtype == numpy.float64 and p.grad.dtype == numpy.float64 and p.backend == backend
        numpy.testing.assert_array_equal(host(p), before[name].astype(numpy.float64))
    assert model.count.dtype == numpy.int64
    model.to("float32")
    assert {p.dtype for p in model.parameters()} == {numpy.dtype("float32")}
    out = model.linear(make((5, 3), dtype="float32", requires_grad=False))   # still usable where it now lives
    assert out.backend == backend and out.dtype == numpy.float32


def test_to_unknown_target_is_one_sentence():
    with pytest.raises(TypeError) as raised:
        nn.Linear(2, 2).to("complex64")
    assert_one_sentence(raised.value, "complex64")


def test_cross_entropy_class_weight_is_a_buffer_moved_with_the_module(backend):
    loss = nn.CrossEntropyLoss(weight=[1.0, 2.0, 0.5])
    assert list(loss.state_dict()) == ["weight"] and list(loss.parameters()) == []
    loss.to(backend).to("float64")
    assert loss.weight.backend == backend and loss.weight.dtype == numpy.float64
    logits = make((4, 3), requires_grad=False)
    target = mt.Tensor(shim.to_backend(numpy.array([0, 1, 2, 1])))
    value = loss(logits, target)
    assert value.backend == backend
    assert list(nn.CrossEntropyLoss().state_dict()) == []


# ---- repr -------------------------------------------------------------------------------------
def test_repr_of_nested_containers_matches_torch(torch):
    assert repr(nested(nn)) == repr(nested(torch.nn))
    assert repr(mt_block()) == repr(torch_block(torch))
    for build in (lambda ns: ns.Sequential(), lambda ns: ns.Linear(2, 3, bias=False), lambda ns: ns.GELU("tanh"),
                  lambda ns: ns.ModuleDict({}), lambda ns: ns.Flatten(0, 2)):
        assert repr(build(nn)) == repr(build(torch.nn))


def test_repr_literal():
    net = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), nn.Dropout(0.1)),
                        nn.ModuleDict({"out": nn.Linear(4, 2)}))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Dropout(p=0.1)\n"
        "  )\n"
        "  (2): ModuleDict(\n"
        "    (out): Linear(in_features=4, out_features=2, bias=True)\n"
        "  )\n"
        ")")


# ---- layers against torch -------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_backward_match_torch(torch, backend, bias):
    theirs = torch.nn.Linear(5, 3, bias=bias)
    ours = copy_weights(nn.Linear(5, 3, bias=bias).double(), theirs)
    x = make((2, 4, 5), seed=1)
    x_torch = torch.from_numpy(host(x)).requires_grad_(True)
    out, expected = ours(x), theirs(x_torch)
    assert out.backend == backend
    numpy.testing.assert_allclose(host(out), expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    upstream = numpy.random.default_rng(2).standard_normal(expected.shape)
    out.backward(mt.Tensor(shim.to_backend(upstream)))
    expected.backward(torch.from_numpy(upstream))
    numpy.testing.assert_allclose(host(x.grad), x_torch.grad.numpy(), rtol=1e-12, atol=1e-14)
    for name, p in theirs.named_parameters():
        numpy.testing.assert_allclose(host(getattr(ours, name).grad), p.grad.numpy(), rtol=1e-12, atol=1e-14,
                                      err_msg=name)


@pytest.mark.parametrize("name, kwargs", [("Identity", {}), ("ReLU", {}), ("GELU", {}),
                                          ("GELU", {"approximate": "tanh"}), ("LeakyReLU", {"negative_slope": 0.2}),
                                          ("Sigmoid", {}), ("Tanh", {}), ("Softmax", {"dim": 1})])
def test_activation_modules_match_torch(torch, name, kwargs):
    x = make((3, 4, 2), seed=3, low=-3, high=3, away_from=0.0)
    compare(torch, getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs), [x], rtol=1e-12, atol=1e-14)


def test_dropout_in_eval_is_identity_like_torch(torch):
    x = make((4, 5), seed=4)
    ours, theirs = nn.Dropout(0.7).eval(), torch.nn.Dropout(0.7).eval()
    compare(torch, ours, theirs, [x], rtol=0, atol=0)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_in_training_zeroes_and_rescales(backend, p):
    x = make((200, 100), seed=5, low=0.5, high=1.5)
    out = nn.Dropout(p)(x)
    out.backward(mt.Tensor(shim.to_backend(numpy.ones((200, 100)))))
    values, inputs, grad = host(out), host(x), host(x.grad)
    kept = values != 0
    if p < 1:
        numpy.testing.assert_allclose(values[kept], inputs[kept] / (1 - p), rtol=1e-15)
        numpy.testing.assert_allclose(grad, kept / (1 - p), rtol=1e-15)
    else:
        assert not kept.any() and not grad.any()
    # 20,000 draws: the zero fraction's standard deviation is at most 0.0035, so 0.02 is > 5 sigma.
    assert abs((1 - kept.mean()) - p) < 0.02


def test_dropout_mask_is_the_same_for_a_seed_on_every_backend():
    masks = []
    for name in ("numpy", "strict"):
        with shim.use_backend(name):
            mt.manual_seed(11)
            masks.append(host(nn.Dropout(0.5)(make((30, 30), requires_grad=False))) != 0)
    numpy.testing.assert_array_equal(masks[0], masks[1])
    mt.manual_seed(12)
    assert ((host(nn.Dropout(0.5)(make((30, 30), requires_grad=False))) != 0) != masks[0]).any()


def test_dropout_probability_outside_0_1_is_one_sentence():
    with pytest.raises(ValueError) as raised:
        nn.Dropout(1.5)
    assert_one_sentence(raised.value, "1.5")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_loss_matches_torch(torch, reduction, weighted):
    rng = numpy.random.default_rng(6)
    weight = [0.5, 2.0, 1.0, 1.5] if weighted else None
    ours = nn.CrossEntropyLoss(weight=weight, ignore_index=255, reduction=reduction)
    theirs = torch.nn.CrossEntropyLoss(weight=None if weight is None else torch.tensor(weight),
                                       ignore_index=255, reduction=reduction)
    for shape in [(6, 4), (2, 4, 3, 5)]:
        logits = make(shape, seed=7, low=-4, high=4)
        labels = rng.integers(0, 4, (shape[0],) + shape[2:])
        labels.reshape(-1)[::5] = 255                                   # some ignored pixels
        target = mt.Tensor(shim.to_backend(labels))
        compare(torch, ours, theirs, [logits, target], rtol=1e-12, atol=1e-14)


# ---- initialisation -------------------------------------------------------------------------------
@pytest.mark.parametrize("fan_in, fan_out", [(256, 64), (3, 2000)])
def test_linear_default_init_matches_torchs_bounds_and_statistics(torch, backend, fan_in, fan_out):
    layer = nn.Linear(fan_in, fan_out)
    theirs = torch.nn.Linear(fan_in, fan_out)
    bound = 1 / math.sqrt(fan_in)                       # kaiming_uniform(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / fan_in)
    assert layer.weight.backend == backend and layer.weight.dtype == mt.get_default_dtype()
    for ours, reference in ((host(layer.weight), theirs.weight.detach().numpy()),
                            (host(layer.bias), theirs.bias.detach().numpy())):
        assert numpy.abs(reference).max() <= bound                       # the oracle agrees on the bound
        assert numpy.abs(ours).max() <= bound
        # U(-b, b): spread over the whole interval, mean 0, variance b^2 / 3. Each bound is about 5 standard
        # deviations of its statistic (a 1-in-a-million miss): P(max |u| < (1 - t) b) = (1 - t)^n, about
        # 1e-6 at t = 14 / n; the sample variance over b^2 / 3 has variance (kurtosis 9/5 - 1) / n.
        n = ours.size
        assert numpy.abs(ours).max() > (1 - 14 / n) * bound
        assert abs(ours.mean()) < 5 * bound / math.sqrt(3 * n)
        if n > 1000:
            for values in (ours, reference):
                assert abs(values.var() / (bound ** 2 / 3) - 1) < 5 * math.sqrt(0.8 / n)


def test_same_seed_gives_the_same_initial_weights_on_every_backend(backend):
    def build(seed):
        mt.manual_seed(seed)
        return {n: host(p) for n, p in nested(nn).named_parameters()}

    with shim.use_backend("numpy"):
        reference = build(3)
    here = build(3)
    assert list(here) == list(reference)
    for name in reference:
        numpy.testing.assert_array_equal(here[name], reference[name], err_msg=name)
    assert any((build(4)[name] != reference[name]).any() for name in reference)


# ---- clip_grad_norm_ --------------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm, norm_type", [(0.5, 2.0), (1e3, 2.0), (0.5, 1.0), (0.3, float("inf")),
                                                 (1e3, float("inf"))])
def test_clip_grad_norm_matches_torch(torch, backend, max_norm, norm_type):
    rng = numpy.random.default_rng(8)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    values = [rng.standard_normal(s) for s in shapes]
    grads = [rng.standard_normal(s) for s in shapes]
    ours = [nn.Parameter(shim.to_backend(v.copy())) for v in values]
    theirs = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    for p, q, g in zip(ours[:2], theirs[:2], grads):                 # the last one has no gradient
        p.grad = mt.Tensor(shim.to_backend(g.copy()))
        q.grad = torch.from_numpy(g.copy())

    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, mt.Tensor) and total.backend == backend and total.shape == ()
    numpy.testing.assert_allclose(host(total), expected.numpy(), rtol=1e-13)
    clipped = max_norm < expected.item()
    for p, q, g in zip(ours[:2], theirs[:2], grads):
        numpy.testing.assert_allclose(host(p.grad), q.grad.numpy(), rtol=1e-13, atol=1e-15)
        assert clipped == (not numpy.allclose(host(p.grad), g))
    assert ours[2].grad is None
    if clipped:
        flat = numpy.concatenate([host(p.grad).ravel() for p in ours[:2]])
        norm = (numpy.abs(flat).max() if norm_type == float("inf")
                else (numpy.abs(flat) ** norm_type).sum() ** (1 / norm_type))
        assert norm == pytest.approx(max_norm, rel=1e-5)   # max_norm / (norm + 1e-6) is torch's rule


def test_clip_grad_norm_accepts_a_single_tensor_and_module_parameters(torch, backend):
    layer = nn.Linear(3, 2).double()
    theirs = torch.nn.Linear(3, 2)
    copy_weights(layer, theirs)
    x = make((4, 3), seed=9, requires_grad=False)
    (layer(x) ** 2).sum().backward()
    (theirs(torch.from_numpy(host(x))) ** 2).sum().backward()
    total = nn.utils.clip_grad_norm_(layer.parameters(), 0.1)
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.1)
    numpy.testing.assert_allclose(host(total), expected.numpy(), rtol=1e-13)
    numpy.testing.assert_allclose(host(layer.weight.grad), theirs.weight.grad.numpy(), rtol=1e-13)
    single = nn.utils.clip_grad_norm_(layer.bias, 1e-3)
    numpy.testing.assert_allclose(host(single), numpy.linalg.norm(theirs.bias.grad.numpy()), rtol=1e-13)
    assert numpy.linalg.norm(host(layer.bias.grad)) == pytest.approx(1e-3, rel=1e-3)


def test_sequential_lets_batch_norm_keep_its_centred_values_in_a_convs_output(monkeypatch):
    """A Conv2d's output inside a Sequential is read by nothing but the fused batch norm + ReLU after
    it, which then keeps x - mean in that memory (``scratch``): after a Conv2d as defined only, not
    after another layer, a Conv2d subclass or one whose forward was replaced, nor for the Sequential's
    own input, nor where the conv's output lies in its input's memory. Values, running statistics and
    every gradient are the layers' one at a time, bit for bit, and the caller's input stays as it was."""
    from minitorch_seg.nn import containers
    flags = []
    original = containers.batch_norm_relu
    monkeypatch.setattr(containers, "batch_norm_relu",
                        lambda *args, scratch=False: flags.append(scratch) or original(*args, scratch=scratch))

    class MyConv(nn.Conv2d):
        pass
    replaced = nn.Conv2d(3, 3, 3, padding=1)
    replaced.forward = lambda x: mt.functional.conv2d(x, replaced.weight, replaced.bias, padding=1)
    conv = nn.Conv2d(3, 3, 3, padding=1)
    cases = [([conv, nn.BatchNorm2d(3), nn.ReLU(), nn.BatchNorm2d(3), nn.ReLU()], [True, False]),
             ([MyConv(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU()], [False]),
             ([replaced, nn.BatchNorm2d(3), nn.ReLU()], [False]),
             ([nn.Conv2d(3, 3, 1), nn.Identity(), nn.BatchNorm2d(3), nn.ReLU()], [False]),
             ([nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 3, 1)], [False])]
    view = nn.Conv2d(3, 3, 1)                           # should a conv path ever hand back its input's memory
    monkeypatch.setattr(mt.functional, "conv2d", lambda x, w, *args, real=mt.functional.conv2d, **kwargs:
                        x[:, :] if w is view.weight else real(x, w, *args, **kwargs))
    cases.append(([view, nn.BatchNorm2d(3), nn.ReLU()], [False]))
    for layers, expected_flags in cases:
        buffers = [b for layer in layers for b in layer.buffers()]
        start = [host(b).copy() for b in buffers]
        runs = []
        for together in (True, False):
            for buffer, value in zip(buffers, start):                       # the same running statistics
                buffer.data[...] = value
            x = make((2, 3, 6, 5), seed=1, dtype="float32")
            before = host(x).copy()
            flags.clear()
            if together:
                y = nn.Sequential(*layers)(x)
            else:
                y = x
                for layer in layers:
                    y = layer(y)
            assert flags == (expected_flags if together else [])
            (y * make(y.shape, seed=2, dtype="float32", requires_grad=False)).sum().backward()
            numpy.testing.assert_array_equal(host(x), before)                 # the caller's input untouched
            params = [p for layer in layers for p in layer.parameters()]
            stats = [host(b).copy() for b in buffers]
            grads = [None if p.grad is None else host(p.grad).copy() for p in params]
            runs.append([host(y), host(x.grad)] + grads + stats)
            for p in params:
                p.grad = None
        for together, apart in zip(*runs):
            numpy.testing.assert_array_equal(together, apart)


def test_sequential_runs_batch_norm_then_relu_as_one_function(monkeypatch):
    """In a Sequential, a BatchNorm2d followed by a ReLU runs as ``batch_norm_relu`` (the same values
    and gradients, ``test_norm.py``), in training and in eval; a ReLU subclass, a forward replaced
    on the class or the instance, another layer between them or another norm do not."""
    from minitorch_seg.nn import containers
    fused = []
    original = containers.batch_norm_relu
    monkeypatch.setattr(containers, "batch_norm_relu", lambda *args, **kw: fused.append(1) or original(*args, **kw))

    class MyReLU(nn.ReLU):
        pass
    replaced = nn.ReLU()
    replaced.forward = lambda x: mt.functional.relu(x)
    x = make((2, 3, 4, 5), seed=0, dtype="float32")
    cases = [(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU()), 1),
             (nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(inplace=True), nn.BatchNorm2d(3), nn.ReLU()), 2),
             (nn.Sequential(nn.BatchNorm2d(3), MyReLU()), 0),
             (nn.Sequential(nn.BatchNorm2d(3), replaced), 0),
             (nn.Sequential(nn.BatchNorm2d(3), nn.Identity(), nn.ReLU()), 0),
             (nn.Sequential(nn.GroupNorm(1, 3), nn.ReLU()), 0),
             (nn.Sequential(nn.ReLU(), nn.BatchNorm2d(3)), 0)]
    patched = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU())
    monkeypatch.setattr(nn.ReLU, "forward", lambda self, x: mt.functional.relu(x))   # patched on the class
    patched(x)
    assert fused == []
    monkeypatch.undo()
    monkeypatch.setattr(containers, "batch_norm_relu", lambda *args, **kw: fused.append(1) or original(*args, **kw))
    for model, pairs in cases:
        for training in (True, False):
            model.train(training)
            fused.clear()
            y = model(x)
            assert len(fused) == pairs
            expected = x
            for module in model:          # one at a time: unfused
                expected = module(expected)
            numpy.testing.assert_array_equal(host(y), host(expected))
