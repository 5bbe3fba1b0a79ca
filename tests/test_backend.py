"""The array-module shim and the strict backend that stands in for CuPy in tests.

The key test (``test_planted_host_arrays_...``) shows why the strict backend exists: two ops that
quietly make host arrays run under NumPy and are caught under strict, as CuPy would catch them.
"""
import operator

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg.autograd import Function
from minitorch_seg.backend import BackendError, StrictArray

pytestmark = pytest.mark.backend

IMPLICIT = r"strict backend: {} would copy a device array to the host implicitly; use minitorch_seg\.backend\.to_numpy"


def strict(values, dtype="float64"):
    return shim.to_backend(numpy.asarray(values, dtype=dtype), "strict")


# ---- get_array_module -------------------------------------------------------------------------
def test_get_array_module():
    assert shim.get_array_module(numpy.zeros(2)) is numpy
    assert shim.get_array_module(numpy.float32(1.0)) is numpy
    assert shim.get_array_module(strict([1.0])) is shim.strict_module
    assert shim.get_array_module(strict([1.0]), None, 2.0, 3, True) is shim.strict_module
    assert shim.get_array_module(None, 1.5) is numpy              # nothing to go on: the default
    assert shim.get_array_module() is numpy


def test_get_array_module_refuses_mixed_backends_and_foreign_objects():
    with pytest.raises(BackendError, match=r"two backends \(numpy and strict\); move them to one with tensor\.to"):
        shim.get_array_module(numpy.zeros(2), strict([1.0]))
    with pytest.raises(BackendError, match="Expected an array of one of the backends numpy, cupy, strict, got list"):
        shim.get_array_module([1.0, 2.0])


def test_mixing_a_numpy_and_a_strict_tensor_in_one_op_raises():
    host = mt.tensor([1.0, 2.0])
    device = host.to("strict")
    for op in (operator.add, operator.mul, operator.matmul):
        with pytest.raises(BackendError, match=r"An op got arrays from two backends \(numpy and strict\)"):
            op(host, device)
    with pytest.raises(BackendError, match=r"two backends \(strict and numpy\)"):
        device - host


# ---- choosing a backend -----------------------------------------------------------------------
def test_set_backend_unknown_name_names_the_backends():
    with pytest.raises(BackendError, match=r"Unknown backend 'nope'; expected one of numpy, cupy, strict\."):
        shim.set_backend("nope")
    assert shim.get_backend() == "numpy"
    with pytest.raises(BackendError, match="Unknown backend"):
        shim.to_backend(numpy.zeros(1), "gpu")


def test_set_backend_and_factories():
    try:
        mt.set_backend("strict")
        assert shim.get_backend() == "strict" and shim.current_module() is shim.strict_module
        for t in (mt.zeros(2), mt.tensor([1.0]), mt.arange(3), mt.full((2,), 1.0), mt.rand(2)):
            assert t.backend == "strict" and isinstance(t.data, StrictArray)
    finally:
        mt.set_backend("numpy")
    assert mt.zeros(2).backend == "numpy"


def test_use_backend_restores_the_previous_backend_even_on_exception():
    with shim.use_backend("strict") as xp:
        assert xp is shim.strict_module and shim.get_backend() == "strict"
        with shim.use_backend("numpy"):
            assert shim.get_backend() == "numpy"
        assert shim.get_backend() == "strict"
    assert shim.get_backend() == "numpy"
    with pytest.raises(KeyError):
        with shim.use_backend("strict"):
            raise KeyError("boom")
    assert shim.get_backend() == "numpy"
    with pytest.raises(BackendError):
        with shim.use_backend("nope"):
            pass
    assert shim.get_backend() == "numpy"


@pytest.fixture
def no_cupy():
    if shim.cupy_unavailable_reason() is None:
        pytest.skip("CuPy works here: the missing-CuPy message cannot be shown")


def test_set_backend_cupy_without_cupy_names_both_extras(no_cupy, monkeypatch):
    monkeypatch.setattr(shim, "_cuda_driver_major", lambda: None)     # no driver to pick one extra
    with pytest.raises(BackendError) as raised:
        shim.set_backend("cupy")
    message = str(raised.value)
    assert "minitorch-seg[cuda12]" in message and "minitorch-seg[cuda13]" in message
    assert "cupy backend needs CuPy" in message
    assert message == shim.cupy_unavailable_reason()
    assert shim.get_backend() == "numpy"
    with pytest.raises(BackendError, match=r"minitorch-seg\[cuda12\].*minitorch-seg\[cuda13\]"):
        mt.tensor([1.0]).to("cupy")


@pytest.mark.parametrize("major, extra", [(12, "cuda12"), (13, "cuda13")])
def test_the_missing_cupy_message_picks_the_extra_for_a_visible_driver(no_cupy, monkeypatch, major, extra):
    monkeypatch.setattr(shim, "_cuda_driver_major", lambda: major)
    message = shim.cupy_unavailable_reason()
    assert f"pip install 'minitorch-seg[{extra}]' (the visible driver supports CUDA {major})" in message
    other = "cuda13" if extra == "cuda12" else "cuda12"
    assert other not in message


# ---- moving arrays ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_to_numpy_and_to_backend_round_trip(dtype):
    host = (numpy.arange(6).reshape(2, 3) % 2).astype(dtype)
    device = shim.to_backend(host, "strict")
    assert isinstance(device, StrictArray) and device.dtype == host.dtype and device.shape == (2, 3)
    back = shim.to_numpy(device)
    assert type(back) is numpy.ndarray and back.dtype == host.dtype
    numpy.testing.assert_array_equal(back, host)
    assert shim.to_backend(host, "numpy") is host                  # already there: no copy
    assert shim.to_backend(device, "strict") is device
    assert type(shim.to_backend(device, "numpy")) is numpy.ndarray


def test_to_backend_defaults_to_the_current_backend_and_takes_python_data():
    with shim.use_backend("strict"):
        assert isinstance(shim.to_backend(numpy.zeros(2)), StrictArray)
        a = shim.asarray([1, 2], dtype="float32")
    assert isinstance(a, StrictArray) and a.dtype == numpy.float32
    assert shim.to_numpy([1.0, 2.0]).tolist() == [1.0, 2.0]


def test_a_tensor_moves_to_strict_and_back():
    x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    s = x.to("strict")
    assert s.backend == "strict" and isinstance(s.data, StrictArray) and s.requires_grad and s.is_leaf
    assert x.to("numpy") is x and s.to("strict") is s
    (s * s).sum().backward()                                   # the graph runs on strict
    assert s.grad.backend == "strict" and x.grad is None       # a move is not recorded in the graph
    numpy.testing.assert_array_equal(s.grad.numpy(), 2 * x.numpy())
    back = s.to("numpy")
    assert back.backend == "numpy" and type(back.data) is numpy.ndarray and back.requires_grad
    numpy.testing.assert_array_equal(back.numpy(), x.numpy())
    # The Tensor's own exits are sanctioned doors, unlike the raw strict array's.
    assert type(s.numpy()) is numpy.ndarray and s.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert s.sum().item() == 10.0 and float(s.sum()) == 10.0


# ---- the strict array's manners ------------------------------------------------------------------
@pytest.mark.parametrize("leave, what", [
    (float, r"float\(\)"), (int, r"int\(\)"), (bool, r"bool\(\)"), (complex, r"complex\(\)"),
    (operator.index, r"operator\.index\(\)"), (lambda a: a.item(), r"\.item\(\)"),
    (lambda a: a.tolist(), r"\.tolist\(\)"), (lambda a: a.__array__(), "numpy.asarray/__array__"),
])
def test_strict_arrays_refuse_implicit_host_conversion(leave, what):
    a = strict([2.0])                    # one element: on NumPy all of these would succeed
    with pytest.raises(BackendError, match=IMPLICIT.format(what)):
        leave(a)
    assert float(shim.to_numpy(a)[0]) == 2.0                 # the sanctioned door works


def test_strict_arrays_refuse_branching_on_a_reduction():
    a = strict([1.0, 2.0])
    total = a.sum()
    assert isinstance(total, StrictArray) and total.shape == ()   # not a numpy.float64
    with pytest.raises(BackendError, match=IMPLICIT.format(r"bool\(\)")):
        if total > 1:
            pass


def test_a_host_array_escaping_through_numpy_asarray_is_refused_where_it_matters():
    a = strict([1.0, 2.0])
    host = numpy.asarray(a)              # NumPy hands back the base class of a subclass: no __array__
    assert type(host) is numpy.ndarray
    with pytest.raises(BackendError, match=r"numpy\.add got a host numpy array mixed with device arrays"):
        host + a
    with pytest.raises(BackendError, match=r"numpy\.stack got a host numpy array"):
        numpy.stack([a, numpy.ones(2)])
    with pytest.raises(BackendError, match=r"strict\.asarray got a host numpy array"):
        shim.strict_module.asarray(host)
    with pytest.raises(BackendError, match=IMPLICIT.format(r"float\(\)")):
        numpy.array([a[0], a[1]])        # building a host array from device elements


def test_strict_indexing_one_element_gives_a_0d_strict_array():
    a = strict([[1.0, 2.0], [3.0, 4.0]])
    e = a[1, 0]
    assert isinstance(e, StrictArray) and e.shape == () and e.dtype == numpy.float64
    assert not isinstance(e, (float, numpy.generic))
    assert shim.to_numpy(e) == 3.0
    assert isinstance(a[0], StrictArray) and a[0].shape == (2,)
    assert isinstance(a[strict([1], "int64")], StrictArray)      # a strict index array is unwrapped


def test_strict_namespace_makes_strict_arrays():
    xp = shim.strict_module
    for array in (xp.zeros((2, 2)), xp.ones(3), xp.arange(4), xp.asarray([1.0, 2.0]),
                  xp.exp(xp.zeros(2)), xp.maximum(xp.ones(2), 0.5), xp.linalg.norm(xp.ones(4))):
        assert isinstance(array, StrictArray)
    assert shim.to_numpy(xp.linalg.norm(xp.ones(4))) == 2.0
    assert shim.module_name(xp) == "strict" and shim.module_name(numpy) == "numpy"
    assert shim.is_device_module(xp) and not shim.is_device_module(numpy)


# ---- the key test: planted host arrays -------------------------------------------------------
class HostZeros(Function):
    """y = x, computed as ``numpy.zeros(x.shape) + x``: a host array made inside an op."""

    @staticmethod
    def forward(ctx, x):
        return numpy.zeros(x.shape) + x

    @staticmethod
    def backward(ctx, g):
        return g


class HostAsarray(Function):
    """y = 2x, computed as ``numpy.asarray(x) * 2``: the op's array silently copied to the host."""

    @staticmethod
    def forward(ctx, x):
        return numpy.asarray(x) * 2

    @staticmethod
    def backward(ctx, g):
        return 2 * g


class HostBackward(Function):
    """y = 2x, with a backward that makes its gradient on the host."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return numpy.asarray(g) * 2


@pytest.mark.parametrize("requires_grad", [True, False])
def test_planted_host_arrays_run_on_numpy_and_are_caught_on_strict(requires_grad):
    x = mt.tensor([1.0, -2.0], dtype="float64", requires_grad=requires_grad)
    numpy.testing.assert_array_equal(HostZeros.apply(x).numpy(), [1.0, -2.0])
    numpy.testing.assert_array_equal(HostAsarray.apply(x).numpy(), [2.0, -4.0])

    s = x.to("strict")
    with pytest.raises(BackendError, match=r"strict backend: numpy\.add got a host numpy array"):
        HostZeros.apply(s)
    with pytest.raises(BackendError, match=r"HostAsarray\.forward returned a ndarray for inputs on strict; "
                                           r"it made a host array on the device path"):
        HostAsarray.apply(s)


def test_a_host_array_made_in_backward_is_caught_on_strict():
    x = mt.tensor([1.0, -2.0], requires_grad=True)
    HostBackward.apply(x).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])

    s = mt.tensor([1.0, -2.0], requires_grad=True).to("strict")
    with pytest.raises(BackendError, match=r"HostBackward\.backward returned a ndarray for gradients on strict"):
        HostBackward.apply(s).sum().backward()
    assert s.grad is None                                     # nothing host-side leaked into .grad


def test_the_library_ops_run_on_strict(backend):
    # The counterpart: ordinary ops pass the same checks, so the failures above are the plants.
    x = mt.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    y = ((x @ x).relu().exp() / (x * x + 1.0)).mean()
    y.backward()
    assert x.grad.backend == backend and y.backend == backend
    assert numpy.isfinite(x.grad.numpy()).all()


# ---- counting device-to-host transfers ------------------------------------------------------------
class _PlantedFloat(mt.nn.Module):
    """A layer with a hidden transfer: float() of a device array, as a careless scale factor would."""

    def __init__(self):
        super().__init__()
        self.linear = mt.nn.Linear(3, 3)

    def forward(self, x):
        scale = float(x.data.max())  # the planted transfer
        return self.linear(x) * scale


def test_transfer_counter_catches_a_float_planted_inside_a_layer():
    with shim.use_backend("strict"):
        layer, x = _PlantedFloat(), mt.randn(2, 3)
        with shim.count_transfers() as counter:
            with pytest.raises(shim.BackendError, match=r"float\(\)"):
                layer(x)
    assert counter.count == 1 and counter.paths == {"float()": 1}


def test_a_training_step_transfers_only_the_loss():
    """A whole step (forward, cross-entropy, backward, SGD) moves one number to the host: the loss."""
    with shim.use_backend("strict"):
        model = mt.nn.Sequential(mt.nn.Linear(4, 8), mt.nn.ReLU(), mt.nn.Linear(8, 3))
        optimizer = mt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x, y = mt.randn(5, 4), mt.tensor([0, 1, 2, 255, 1])
        with shim.count_transfers() as counter:
            for _ in range(3):
                loss = mt.functional.cross_entropy(model(x), y, ignore_index=255)
                optimizer.zero_grad()
                loss.backward()
                mt.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                loss.item()
    assert counter.count == 3 and counter.paths == {"to_numpy": 3}


def test_host_arrays_are_not_counted():
    with shim.count_transfers() as counter:
        mt.tensor([1.0, 2.0]).numpy()
        mt.tensor(3.0).item()
    assert counter.count == 0


# ---- the shim's neighbours: one idea each, imported in one direction ---------------------------------
NEIGHBOURS = ("errors", "diagnostics", "strict", "random", "special")


def test_the_shims_neighbours_do_not_import_it():
    """``backend`` imports strict, random, special and diagnostics; none of them imports ``backend``
    back (no cycle), so each reads on its own."""
    import ast
    import importlib
    for name in NEIGHBOURS:
        module = importlib.import_module(f"minitorch_seg.{name}")
        tree = ast.parse(open(module.__file__).read())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
                     and not node.module for alias in node.names}
        assert "backend" not in imported, f"minitorch_seg.{name} imports backend"


def test_the_moved_names_are_still_the_shims():
    from minitorch_seg import diagnostics, errors, random, special, strict
    for name in ("count_transfers", "TransferCounter", "tune_host_allocator", "blas_info"):
        assert getattr(shim, name) is getattr(diagnostics, name)
    assert shim.StrictArray is strict.StrictArray and shim.strict_module is strict.strict_module
    assert shim.BackendError is errors.BackendError and shim.erf is special.erf
    for name in ("manual_seed", "host_generator", "get_rng_state", "set_rng_state", "random_uniform"):
        assert getattr(shim, name) is getattr(random, name)
    assert mt.manual_seed is random.manual_seed


def test_erf_of_float32_stays_on_its_backend_and_matches_the_float64_erf():
    scipy_special = pytest.importorskip("scipy.special")
    x = numpy.linspace(-5, 5, 70001).astype(numpy.float32)          # more than one chunk
    on_strict = shim.erf(strict(x, "float32"))
    assert isinstance(on_strict, StrictArray) and on_strict.dtype == numpy.float32
    numpy.testing.assert_allclose(shim.to_numpy(on_strict), scipy_special.erf(x.astype(numpy.float64)), atol=5e-7)
    numpy.testing.assert_array_equal(shim.to_numpy(on_strict), shim.erf(x))
