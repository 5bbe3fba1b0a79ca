"""Official checkpoints into our models (``minitorch_seg.convert``), with checkpoints made here by torch twins.

No download: each checkpoint is written with ``torch.save`` the way the official code saves it
(HRNet's FullModel under ``model.`` with its loss's weights; mmsegmentation's ``state_dict`` with
``backbone.``, ConvModule names and heads we do not have; Swin's classification ``model`` with
its classifier), from the official segmentation backbone's twin (tests/test_official_swin.py) or
from ``export.to_torch``'s twins. Converted, the weights give the twin's outputs in float64.
"""
import re

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import models, train
from minitorch_seg.convert import ConvertError, convert_checkpoint, format_table, save_converted
from test_official_swin import official_swin, perturbed

pytestmark = pytest.mark.models

SWIN = dict(width=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=7, decoder_channels=8)
BACKBONE = dict(embed_dim=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=7)


def image(shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape)


def relative_error(ours, theirs):
    return float(numpy.abs(ours - theirs).max() / numpy.abs(theirs).max())


def loaded(name, conversion, **options):
    model = models.build(name, **options)
    model.load_state_dict(conversion.state_dict)
    return model.double().eval()


def test_official_hrnet_w18_checkpoint_loads_by_name(torch, tmp_path):
    """HRNet's FullModel saves ``model.``-prefixed weights beside its loss's: all of HRNetV2-W18
    loads, the loss's weight is reported unused, and the outputs are the twin's."""
    from minitorch_seg.export import to_torch

    source = perturbed(models.build("hrnet_w18", num_classes=19).double(), seed=1, scale=0.01)
    twin = to_torch(source).eval().float()                  # checkpoints hold float32
    state = {"model." + k: v for k, v in twin.state_dict().items()} | {"loss.criterion.weight": torch.ones(19)}
    path = tmp_path / "hrnet_w18.pth"
    torch.save(state, path)
    conversion = convert_checkpoint(path, "hrnet_w18", num_classes=19)
    assert conversion.table == [("loss.criterion.weight", "unused", "no such name in hrnet_w18")]
    assert list(conversion.state_dict) == list(twin.state_dict())
    x = image((1, 3, 32, 64))
    with mt.no_grad():
        ours = loaded("hrnet_w18", conversion)(mt.tensor(x)).numpy()
    assert relative_error(ours, twin.double()(torch.from_numpy(x)).detach().numpy()) <= 1e-10


def test_an_older_checkpoint_without_batch_counters_reports_them_missing(torch, tmp_path):
    from minitorch_seg.export import to_torch

    options = dict(width=4, depth=1, num_modules=(1, 1, 1), stem_width=8, stage1_block="bottleneck")
    twin = to_torch(models.build("hrnet", **options))
    state = {k: v for k, v in twin.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    conversion = convert_checkpoint(tmp_path / "old.pth", "hrnet", **options)
    counters = [k for k in twin.state_dict() if k.endswith("num_batches_tracked")]
    assert counters and [(row[0], row[1]) for row in conversion.table] == [(k, "missing") for k in counters]
    models.build("hrnet", **options).load_state_dict(conversion.state_dict)   # strict: nothing absent


def mmseg_checkpoint(torch, official, twin, classes=19):
    """mmsegmentation's layout: the official backbone under ``backbone.``, the head with ConvModule
    names, a pyramid pooling module and an auxiliary head that our head does not have."""
    state = {"backbone." + k: v for k, v in official.state_dict().items()}
    for key, value in twin.state_dict().items():
        if key.startswith("decode_head."):
            key = re.sub(r"\.0\.(weight|bias)$", r".conv.\1", key)
            state[re.sub(r"\.1\.(weight|bias|running_mean|running_var|num_batches_tracked)$", r".bn.\1", key)] = value
    state["decode_head.psp_modules.0.1.conv.weight"] = torch.zeros(8, 96, 1, 1)
    state["auxiliary_head.conv_seg.weight"] = torch.zeros(classes, 8, 1, 1)
    return {"meta": {"CLASSES": tuple(f"class{i}" for i in range(classes))}, "state_dict": state}


def test_mmseg_swin_checkpoint_gives_the_official_backbones_features(torch, tmp_path):
    from minitorch_seg.export import to_torch

    official = official_swin(torch)(**BACKBONE)
    twin = to_torch(perturbed(models.build("swin", **SWIN).double(), seed=2)).eval().float()
    official.load_state_dict({k[len("backbone."):]: v for k, v in twin.state_dict().items()
                              if k.startswith("backbone.")}, strict=False)
    torch.save(mmseg_checkpoint(torch, official.float(), twin), tmp_path / "upernet_swin.pth")
    conversion = convert_checkpoint(tmp_path / "upernet_swin.pth", "swin", **SWIN)
    statuses = {(key.rsplit(".", 1)[-1] if "relative_position_index" in key else key, status)
                for key, status, _ in conversion.table}
    assert statuses == {("relative_position_index", "unused"), ("decode_head.psp_modules.0.1.conv.weight", "unused"),
                        ("auxiliary_head.conv_seg.weight", "unused")}
    model = loaded("swin", conversion, **SWIN)
    x = image((1, 3, 70, 100))
    with mt.no_grad():
        feats = model.backbone(mt.tensor(x))
        logits = model(mt.tensor(image((1, 3, 64, 96))))
    for ours, theirs in zip(feats, official.double()(torch.from_numpy(x))):
        assert relative_error(ours.numpy(), theirs.detach().numpy()) <= 1e-10
    theirs = twin.double()(torch.from_numpy(image((1, 3, 64, 96)))).detach().numpy()
    assert relative_error(logits.numpy(), theirs) <= 1e-10


def test_classification_swin_checkpoint_fills_the_backbone(torch, tmp_path):
    """The Swin classification code saves ``{"model": ...}`` without ``backbone.``, with a final norm
    and a classifier instead of the four output norms and a head."""
    official = official_swin(torch)(**BACKBONE).float()
    state = {k: v for k, v in official.state_dict().items() if not k.startswith("norm")}
    state |= {"norm.weight": torch.ones(96), "norm.bias": torch.zeros(96), "head.weight": torch.zeros(1000, 96),
              "head.bias": torch.zeros(1000)}
    torch.save({"model": state, "epoch": 300}, tmp_path / "swin_tiny_patch4_window7_224.pth")
    conversion = convert_checkpoint(tmp_path / "swin_tiny_patch4_window7_224.pth", "swin", **SWIN)
    unused = {key for key, status, _ in conversion.table if status == "unused"}
    missing = {key for key, status, _ in conversion.table if status == "missing"}
    assert {"norm.weight", "norm.bias", "head.weight", "head.bias"} <= unused
    assert all(key.endswith("relative_position_index") for key in unused - {"norm.weight", "norm.bias", "head.weight",
                                                                            "head.bias"})
    assert all(key.startswith("decode_head.") or key.startswith("backbone.norm") for key in missing)
    assert "backbone.layers.1.blocks.1.attn.relative_position_bias_table" not in missing
    numpy.testing.assert_array_equal(conversion.state_dict["backbone.layers.3.blocks.0.mlp.fc2.weight"],
                                     state["layers.3.blocks.0.mlp.fc2.weight"].numpy())


def test_other_classes_are_a_mismatch_and_keep_the_initial_head(torch, tmp_path):
    from minitorch_seg.export import to_torch

    options = dict(width=4, depth=1, num_modules=(1, 1, 1), stem_width=8)
    torch.save(to_torch(models.build("hrnet", num_classes=150, **options)).state_dict(), tmp_path / "ade.pth")
    conversion = convert_checkpoint(tmp_path / "ade.pth", "hrnet", num_classes=19, **options)
    assert [(key, status) for key, status, _ in conversion.table] == [("last_layer.3.weight", "mismatch"),
                                                                     ("last_layer.3.bias", "mismatch")]
    assert "checkpoint (150, 60, 1, 1), hrnet last_layer.3.weight (19, 60, 1, 1)" in conversion.table[0][2]
    assert conversion.state_dict["last_layer.3.weight"].shape == (19, 60, 1, 1)
    text = format_table(conversion.table)
    assert text.splitlines()[0].split() == ["key", "status", "detail"] and len(text.splitlines()) == 3


def test_saved_conversion_is_a_checkpoint_predict_can_load(torch, tmp_path):
    from minitorch_seg.export import to_torch

    options = dict(width=4, depth=2)
    twin = to_torch(models.build("unet", num_classes=5, **options)).eval()
    torch.save({"state_dict": {"module." + k: v for k, v in twin.state_dict().items()}}, tmp_path / "unet.pth")
    conversion = convert_checkpoint(tmp_path / "unet.pth", "unet", num_classes=5, **options)
    assert format_table(conversion.table) == "every key loaded: nothing unused, nothing missing"
    save_converted(tmp_path / "unet.npz", conversion, "unet", num_classes=5, **options)
    model, meta = train.load_model(str(tmp_path / "unet.npz"))
    assert meta["model_name"] == "unet" and meta["model_options"] == options
    x = image((1, 3, 32, 64)).astype(numpy.float32)
    with mt.no_grad():
        ours = model(mt.tensor(x)).numpy()
    numpy.testing.assert_allclose(ours, twin.float()(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_errors_are_one_sentence(torch, tmp_path, monkeypatch):
    def message(call):
        with pytest.raises(ConvertError) as error:
            call()
        text = str(error.value)
        assert text.endswith(".") and "\n" not in text, text
        return text

    assert "does not exist" in message(lambda: convert_checkpoint(tmp_path / "none.pth", "unet"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert "not a readable PyTorch checkpoint" in message(lambda: convert_checkpoint(tmp_path / "junk.pth", "unet"))
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    assert "holds a Tensor, not a dict" in message(lambda: convert_checkpoint(tmp_path / "tensor.pth", "unet"))
    torch.save({}, tmp_path / "empty.pth")
    assert "known models" in message(lambda: convert_checkpoint(tmp_path / "empty.pth", "resnet"))
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    assert "pip install 'minitorch-seg[torch]'" in message(lambda: convert_checkpoint(tmp_path / "empty.pth", "unet"))


def test_the_package_imports_without_torch_and_onnx():
    """The optional extras stay optional: every module imports without them (as pytest's doctest
    collection does), and what needs them says which extra to install."""
    import subprocess
    import sys

    script = """
import importlib, pkgutil, sys
sys.modules["torch"] = sys.modules["onnx"] = None
import minitorch_seg
for module in pkgutil.walk_packages(minitorch_seg.__path__, "minitorch_seg."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
from minitorch_seg import models
from minitorch_seg.export import ExportError, to_onnx, to_torch
from minitorch_seg.export.torch_hrnet import HRNet
for call in (lambda: to_torch(models.build("unet")), lambda: to_onnx(models.build("unet"), None, "x.onnx"), HRNet):
    try:
        call()
    except ExportError as error:
        print(error)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "export.to_torch needs the torch package; install it with pip install 'minitorch-seg[torch]'.",
        "export.to_onnx needs the onnx package; install it with pip install 'minitorch-seg[export]'.",
        "The torch twins need PyTorch; install it with pip install 'minitorch-seg[torch]'."]
