"""The top-level namespace's torch surface: where, sigmoid, isnan/isinf, argmax, from_numpy, as_tensor,
factories' device=/generator=, Generator, save/load, inference_mode and friends, cuda, nn.functional,
one_hot, channels_last, amp; and the doctests of the modules that provide them.
"""
import doctest
import importlib
import io
import os

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import functional as F
from minitorch_seg import nn
from minitorch_seg.testing import Arguments, broadcastable_pair, check_gradients, tensors
from hypothesis import strategies as st
from torch_compare import compare
from helpers import assert_one_sentence

pytestmark = pytest.mark.autograd


# ---- where ----------------------------------------------------------------------------------------
def test_where_matches_torch_with_broadcasting_and_numbers(torch):
    rng = numpy.random.default_rng(0)
    condition = rng.random((3, 4)) > 0.5
    a = mt.tensor(rng.standard_normal((3, 1)), requires_grad=True)
    b = mt.tensor(rng.standard_normal((4,)), requires_grad=True)
    compare(torch, lambda x, y: mt.where(mt.tensor(condition), x, y),
            lambda x, y: torch.where(torch.from_numpy(condition), x, y), [a, b])
    c = mt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    compare(torch, lambda x: mt.where(mt.tensor(condition), x, 0.0),
            lambda x: torch.where(torch.from_numpy(condition), x, 0.0), [c])
    ours = mt.where(mt.tensor(condition))
    theirs = torch.where(torch.from_numpy(condition))
    assert [i.tolist() for i in ours] == [i.tolist() for i in theirs]


@st.composite
def where_arguments(draw):
    a_shape, b_shape = draw(broadcastable_pair(max_dims=3))
    shape = numpy.broadcast_shapes(a_shape, b_shape)
    seed = draw(st.integers(0, 2 ** 16))
    condition = mt.tensor(numpy.random.default_rng(seed).random(shape) > 0.5)
    return Arguments(condition, draw(tensors(a_shape)), draw(tensors(b_shape)))


def test_where_gradients_by_finite_differences():
    check_gradients(lambda c, a, b: mt.where(c, a, b), where_arguments(), max_examples=15)


def test_where_needs_a_bool_condition():
    with pytest.raises(TypeError) as raised:
        mt.where(mt.ones(2), mt.ones(2), mt.zeros(2))
    assert_one_sentence(raised.value, "bool", "float32")


# ---- small functions --------------------------------------------------------------------------------
def test_sigmoid_isnan_isinf_isfinite_argmax_argmin_at_top_level_match_torch(torch):
    data = numpy.array([[1.0, numpy.nan, -numpy.inf], [numpy.inf, -2.0, 0.5]])
    x, t = mt.tensor(data), torch.tensor(data)
    for name in ("isnan", "isinf", "isfinite"):
        assert getattr(mt, name)(x).tolist() == getattr(torch, name)(t).tolist()
        assert getattr(x, name)().tolist() == getattr(t, name)().tolist() if hasattr(x, name) else True
    finite = numpy.array([[1.0, 3.0, -1.0], [2.0, 0.0, 5.0]])
    for args in [(), (0,), (1, True)]:
        assert mt.argmax(mt.tensor(finite), *args).tolist() == torch.argmax(torch.tensor(finite), *args).tolist()
        assert mt.argmin(mt.tensor(finite), *args).tolist() == torch.argmin(torch.tensor(finite), *args).tolist()
    y = mt.tensor(finite, requires_grad=True)
    compare(torch, mt.sigmoid, torch.sigmoid, [y])


# ---- from_numpy, as_tensor, factories --------------------------------------------------------------
def test_from_numpy_shares_memory_both_ways():
    array = numpy.arange(6.0).reshape(2, 3)
    x = mt.from_numpy(array)
    assert x.device == mt.device("cpu") and x.dtype == numpy.float64
    array[0, 0] = 42
    assert x[0, 0].item() == 42
    with mt.no_grad():
        x.add_(1)
    assert array[1, 2] == 6.0
    with mt.use_backend("strict"):
        assert mt.from_numpy(array).backend == "numpy"       # torch.from_numpy is always on the CPU
    with pytest.raises(TypeError) as raised:
        mt.from_numpy([1, 2])
    assert_one_sentence(raised.value, "numpy.ndarray", "list")


def test_as_tensor_shares_where_torch_shares(torch):
    array = numpy.arange(4.0)
    for lib in (mt, torch):
        assert numpy.shares_memory(lib.as_tensor(array).numpy(), array)
        assert not numpy.shares_memory(lib.as_tensor(array, dtype=lib.float32).numpy(), array)
        t = lib.as_tensor([1, 2])
        assert lib.as_tensor(t) is t and lib.as_tensor(t, dtype=lib.int64) is t
    assert mt.as_tensor([1.5]).dtype == numpy.float32 and mt.as_tensor(array, device="strict").backend == "strict"


def test_factories_take_device_and_follow_torchs_dtypes(torch):
    for make in (lambda lib: lib.zeros(2, 3, device="cpu"), lambda lib: lib.ones((2,), dtype=lib.float64),
                 lambda lib: lib.full((2,), 3), lambda lib: lib.full((2,), True), lambda lib: lib.full((2,), 1.5),
                 lambda lib: lib.tensor([1, 2], device="cpu"), lambda lib: lib.arange(3, device="cpu"),
                 lambda lib: lib.randint(0, 5, (3,)), lambda lib: lib.randint(5, (3,)), lambda lib: lib.randperm(4),
                 lambda lib: lib.zeros_like(lib.ones(2, dtype=lib.int64)), lambda lib: lib.full_like(lib.ones(2), 7)):
        torch.set_default_dtype(torch.float32)
        ours, theirs = make(mt), make(torch)
        assert ours.dtype.name == str(theirs.dtype).replace("torch.", "") and ours.shape == tuple(theirs.shape)
    assert mt.zeros(2, device="strict").backend == "strict"
    assert mt.ones_like(mt.zeros(2), device="strict").backend == "strict"
    assert mt.randn(2, 2, device=mt.device("strict")).backend == "strict"


# ---- Generator ----------------------------------------------------------------------------------------
def test_a_generator_gives_its_own_reproducible_stream():
    g = mt.Generator()
    assert g.manual_seed(7) is g and g.initial_seed() == 7
    first = mt.randn(5, generator=g).tolist()
    mt.manual_seed(0)
    global_draw = mt.rand(3).tolist()
    g.manual_seed(7)
    assert mt.randn(5, generator=g).tolist() == first
    mt.manual_seed(0)
    mt.randn(5, generator=mt.Generator().manual_seed(1))               # does not touch the global stream
    assert mt.rand(3).tolist() == global_draw
    state = g.get_state()
    a = mt.rand(4, generator=g).tolist()
    g.set_state(state)
    assert mt.rand(4, generator=g).tolist() == a
    assert sorted(mt.randperm(6, generator=g).tolist()) == list(range(6))
    with pytest.raises(TypeError) as raised:
        mt.rand(2, generator=numpy.random.default_rng(0))
    assert_one_sentence(raised.value, "Generator")


# ---- save and load ----------------------------------------------------------------------------------------
def test_save_and_load_a_state_dict_and_nested_data(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    optimizer = mt.optim.Adam(model.parameters())
    model(mt.randn(1, 2, 5, 5)).sum().backward()
    optimizer.step()
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3, "best": 0.25,
                  "history": [1.0, float("nan")], "shape": (2, 3), "name": "unet", "none": None,
                  "flags": {1: True, (2, 3): False}}
    path = tmp_path / "model.pt"
    mt.save(checkpoint, path)
    loaded = mt.load(path)
    assert set(loaded) == set(checkpoint) and loaded["epoch"] == 3 and loaded["shape"] == (2, 3)
    assert loaded["flags"] == {1: True, (2, 3): False} and numpy.isnan(loaded["history"][1])
    for key, value in checkpoint["model"].items():
        assert loaded["model"][key].dtype == value.dtype
        numpy.testing.assert_array_equal(loaded["model"][key].numpy(), value.numpy())
    assert loaded["model"]["1.num_batches_tracked"].dtype == numpy.int64
    fresh = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    fresh.load_state_dict(loaded["model"])
    again = mt.optim.Adam(fresh.parameters())
    again.load_state_dict(loaded["optimizer"])
    assert again.state_dict()["state"][0]["step"] == 1
    numpy.testing.assert_array_equal(again.state_dict()["state"][0]["exp_avg"],
                                     optimizer.state_dict()["state"][0]["exp_avg"])
    with numpy.load(path, allow_pickle=False) as archive:          # a plain npz: no pickle anywhere
        assert "__structure__.json" in archive.files


def test_load_restores_the_device_or_maps_it(tmp_path):
    path = tmp_path / "t.pt"
    mt.save({"a": mt.ones(2).to("strict").requires_grad_(), "p": nn.Parameter(mt.zeros(1).data)}, path)
    loaded = mt.load(path)
    assert loaded["a"].backend == "strict" and loaded["a"].requires_grad
    assert isinstance(loaded["p"], nn.Parameter)
    assert mt.load(path, map_location="cpu")["a"].backend == "numpy"
    assert mt.load(str(path), map_location=mt.device("cpu"), weights_only=True)["a"].device == mt.device("cpu")


def test_load_of_gpu_tensors_without_a_gpu_points_to_map_location(tmp_path):
    if mt.cuda.is_available():
        pytest.skip("CuPy works here: tensors saved on the GPU load there")
    path = tmp_path / "gpu.pt"
    structure = '{"w": {"__minitorch_seg__": "tensor", "index": 0, "device": "cuda", "requires_grad": false}}'
    with path.open("wb") as stream:
        numpy.savez(stream, **{"0": numpy.ones(2), "__structure__.json": numpy.frombuffer(structure.encode(), "uint8")})
    with pytest.raises(mt.backend.BackendError) as raised:
        mt.load(path)
    assert_one_sentence(raised.value, "'cuda'", "map_location='cpu'")
    assert mt.load(path, map_location="cpu")["w"].tolist() == [1.0, 1.0]


def test_save_writes_atomically_and_refuses_what_it_cannot_store(tmp_path):
    path = tmp_path / "model.pt"
    mt.save({"w": mt.ones(2)}, path)
    with pytest.raises(TypeError) as raised:
        mt.save({"w": mt.zeros(2), "model": nn.Linear(2, 2)}, path)
    assert_one_sentence(raised.value, "'model'", "Linear", "state_dict()")
    assert mt.load(path)["w"].tolist() == [1.0, 1.0]                  # the old file is intact
    assert os.listdir(tmp_path) == ["model.pt"]                        # and no temporary file is left


def test_save_and_load_through_a_file_object():
    buffer = io.BytesIO()
    mt.save([mt.arange(3), 2.5], buffer)
    buffer.seek(0)
    loaded = mt.load(buffer)
    assert loaded[0].tolist() == [0, 1, 2] and loaded[1] == 2.5


def test_load_of_a_missing_or_foreign_file_is_one_sentence(tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        mt.load(tmp_path / "nope.pt")
    assert_one_sentence(raised.value, "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip at all")
    with pytest.raises(RuntimeError) as raised:
        mt.load(tmp_path / "junk.pt")
    assert_one_sentence(raised.value, "junk.pt", "minitorch_seg.save")


# ---- gradient modes ------------------------------------------------------------------------------------
def test_inference_mode_enable_grad_and_set_grad_enabled():
    x = mt.ones(2, requires_grad=True)
    with mt.inference_mode():
        assert not (x * 2).requires_grad and not mt.is_grad_enabled()
        with mt.enable_grad():
            assert (x * 2).requires_grad
        assert not mt.is_grad_enabled()
    with mt.inference_mode(False):
        assert (x * 2).requires_grad
    assert mt.is_grad_enabled()

    @mt.inference_mode()
    def evaluate():
        return (x * 2).requires_grad
    assert evaluate() is False and mt.is_grad_enabled()
    with mt.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert mt.is_grad_enabled()
    mt.set_grad_enabled(False)
    assert not mt.is_grad_enabled()
    mt.set_grad_enabled(True)
    assert mt.is_grad_enabled()

    @mt.set_grad_enabled(False)
    def frozen():
        return mt.is_grad_enabled()
    assert mt.is_grad_enabled() and frozen() is False and mt.is_grad_enabled()


# ---- modules' names --------------------------------------------------------------------------------------
def test_nn_functional_is_the_functional_module_and_importable():
    assert mt.nn.functional is mt.functional
    module = importlib.import_module("minitorch_seg.nn.functional")
    assert module is mt.functional and module.relu is F.relu
    assert importlib.import_module("minitorch_seg.utils.data").DataLoader is mt.utils.data.DataLoader
    assert importlib.import_module("minitorch_seg.optim.lr_scheduler").ReduceLROnPlateau


def test_cuda_answers_without_a_gpu():
    assert isinstance(mt.cuda.is_available(), bool)
    assert mt.cuda.device_count() == int(mt.cuda.is_available())
    mt.cuda.manual_seed_all(0)
    mt.cuda.synchronize()
    mt.cuda.empty_cache()
    assert mt.cuda.amp.GradScaler is mt.amp.GradScaler


# ---- one_hot -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_classes", [-1, 5])
def test_one_hot_matches_torch(torch, num_classes, backend):
    data = numpy.array([[0, 2], [3, 1]])
    got = F.one_hot(mt.tensor(data), num_classes)
    expected = torch.nn.functional.one_hot(torch.tensor(data), num_classes)
    assert got.backend == backend and got.dtype == numpy.int64
    numpy.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("values, num_classes, needle", [([0, 3], 3, "smaller than num_classes"),
                                                          ([-1, 0], 3, "non-negative")])
def test_one_hot_out_of_range_is_one_sentence(values, num_classes, needle):
    with pytest.raises(RuntimeError) as raised:
        F.one_hot(mt.tensor(values), num_classes)
    assert_one_sentence(raised.value, needle)
    with pytest.raises(TypeError) as raised:
        F.one_hot(mt.ones(2), 3)
    assert_one_sentence(raised.value, "float32")


# ---- channels_last and amp -----------------------------------------------------------------------------------
def test_channels_last_is_accepted_and_changes_nothing():
    x = mt.randn(1, 2, 3, 3)
    assert x.to(memory_format=mt.channels_last) is x and x.contiguous(memory_format=mt.channels_last) is x
    model = nn.Conv2d(2, 2, 1)
    assert model.to(memory_format=mt.channels_last) is model
    with pytest.raises(TypeError) as raised:
        x.contiguous(memory_format="channels_last")
    assert_one_sentence(raised.value, "channels_last")


def test_grad_scaler_and_autocast_leave_the_training_step_unchanged():
    def train(use_amp):
        mt.manual_seed(0)
        model = nn.Linear(3, 1)
        optimizer = mt.optim.SGD(model.parameters(), lr=0.1)
        scaler = mt.amp.GradScaler("cuda", enabled=use_amp)
        for _ in range(3):
            optimizer.zero_grad()
            with mt.amp.autocast(device_type="cuda", dtype=mt.float16, enabled=use_amp):
                loss = model(mt.ones(2, 3)).pow(2).mean()
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            scaler.step(optimizer)
            scaler.update()
        return model.weight.tolist(), loss.dtype
    assert train(True) == train(False)
    assert train(True)[1] == numpy.float32
    assert mt.amp.GradScaler().get_scale() == 1.0 and mt.amp.GradScaler().state_dict() == {}


# ---- the modules' own examples -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["devices", "inplace", "generator", "grad_mode", "amp", "cuda", "serialization",
                                  "creation", "utils.checkpoint", "utils.data.dataset", "utils.data.dataloader",
                                  "functional.select", "functional.logical", "optim.plateau"])
def test_doctests(name):
    module = importlib.import_module(f"minitorch_seg.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
