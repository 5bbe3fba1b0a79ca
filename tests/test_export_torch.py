"""``export.to_torch`` and the DistributedDataParallel recipe (``export.ddp_recipe``).

The twins' float64 agreement with our models (outputs and every gradient) is in
tests/test_models.py; here: what the twin is (a plain ``torch.nn.Module``, our dtype and mode,
trainable by torch's optimizers), its weights coming back by ``load_state_dict``, and the recipe
run for real: one of our checkpoints trained further by two gloo processes on the CPU, the
replicas identical, the weights back in our model, which then computes what the trained twin
computes and scores better by our metrics.
"""
import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import checkpoint, models, train
from minitorch_seg.export import ExportError, to_torch

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.models


def toy_data(n=8, size=32, classes=3, block=8, seed=0):
    """Images whose colour (plus noise) tells the class, constant on 8x8 blocks; float32 and int64."""
    rng = numpy.random.default_rng(seed)
    labels = rng.integers(0, classes, (n, size // block, size // block)).repeat(block, 1).repeat(block, 2)
    colours = rng.uniform(-1, 1, (classes, 3))
    images = colours[labels].transpose(0, 3, 1, 2) + 0.1 * rng.standard_normal((n, 3, size, size))
    return images.astype(numpy.float32), labels.astype(numpy.int64)


def test_the_twin_is_a_torch_module_with_our_dtype_mode_and_weights():
    model = models.build("hrnet", num_classes=3, width=4, depth=1, stem_width=8).eval()
    twin = to_torch(model)
    assert isinstance(twin, torch.nn.Module) and not twin.training
    assert {p.dtype for p in twin.parameters()} == {torch.float32}
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(twin.state_dict()[key].numpy(), value.numpy())
    assert to_torch(model.double().train()).training and next(to_torch(model).parameters()).dtype == torch.float64
    with pytest.raises(ExportError, match=r"^to_torch converts the registry's models \(UNet, .*\), got Linear\.$"):
        to_torch(mt.nn.Linear(2, 2))


def test_a_torch_optimizer_step_comes_back_by_load_state_dict():
    model = models.build("unet", num_classes=3, width=4, depth=2)
    twin = to_torch(model)
    images, labels = toy_data(n=2)
    loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(images)), torch.from_numpy(labels))
    loss.backward()
    torch.optim.SGD(twin.parameters(), lr=0.1).step()
    model.load_state_dict(twin.state_dict())
    model.eval(), twin.eval()
    with mt.no_grad():
        ours = model(mt.tensor(images)).numpy()
    numpy.testing.assert_allclose(ours, twin(torch.from_numpy(images)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_ddp_recipe_continues_our_checkpoint_and_brings_it_back(tmp_path):
    from minitorch_seg.export.ddp_recipe import evaluate, train_ddp
    from minitorch_seg.export.torch_model import twin_class

    options = dict(width=4, depth=2)
    checkpoint.save(str(tmp_path / "ours.npz"), models.build("unet", num_classes=3, **options), model_name="unet",
                    model_options=options, num_classes=3)
    model, _ = train.load_model(str(tmp_path / "ours.npz"))
    images, labels = toy_data()
    before = {key: value.numpy().copy() for key, value in model.state_dict().items()}
    score_before = evaluate(model, images, labels)["miou"]

    state = train_ddp(model, images, labels, steps=12, world_size=2, lr=0.05, batch_size=2, workdir=str(tmp_path))

    for key, value in model.state_dict().items():                   # the recipe leaves the model alone
        numpy.testing.assert_array_equal(value.numpy(), before[key])
    other = torch.load(tmp_path / "rank1.pt", weights_only=True)
    parameters = [name for name, _ in twin_class("UNet")(**model.config).named_parameters()]
    assert all(torch.equal(state[name], other[name]) for name in parameters)     # DDP kept the replicas equal
    assert any(not numpy.array_equal(state[name].numpy(), before[name]) for name in parameters)
    model.load_state_dict(state)                                    # the weights come back
    twin = twin_class("UNet")(**model.config)
    twin.load_state_dict(state)
    with mt.no_grad():
        ours = model(mt.tensor(images)).numpy()
    numpy.testing.assert_allclose(ours, twin.eval()(torch.from_numpy(images)).detach().numpy(), rtol=1e-4, atol=1e-5)
    score_after = evaluate(model, images, labels)["miou"]
    assert score_after > score_before + 0.2, (score_before, score_after)
