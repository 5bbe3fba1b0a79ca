"""``export.to_onnx``: every registry model as an ONNX file that onnxruntime runs as our forward does.

Each model (BatchNorm statistics moved by a training step, then eval) is exported once and run
by onnxruntime at two sizes and batch sizes that the file was not built at, and compared with
our float32 forward: the error over the largest logit at most 1e-5 (measured: at most 1.6e-6,
Swin-T and HRNet-W48). The Swin cases pad their stage maps (64x96: 8x12 and 4x6 maps in windows
of 8 or 7), so the in-graph padding, shift and mask are exercised; ``mask_padding`` and
``align_corners`` variants too. Skipped without onnx and onnxruntime (``pip install 'minitorch-seg[export]'``).
"""
import sys

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import models, nn
from minitorch_seg.export import ExportError, to_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.models

SIZES = [(1, 3, 64, 96), (2, 3, 96, 64)]
CASES = {name: (name, {}) for name in ["deeplab", "hrnet", "segnet", "swin", "unet", "hrnet_w18"]}
CASES["swin-mask_padding"] = ("swin", dict(mask_padding=True))
CASES["hrnet-align_corners"] = ("hrnet", dict(align_corners=True))
SLOW = {name: (name, {}) for name in ["swin_t", "hrnet_w32", "hrnet_w48"]}


def exported(name, options, path):
    """The model with moved BatchNorm statistics, in eval mode, and its ONNX session."""
    model = models.build(name, num_classes=5, **options)
    with mt.no_grad():
        model(mt.randn(2, 3, 64, 64))                     # training mode: the running statistics move
    model.eval()
    to_onnx(model, mt.randn(1, 3, 64, 64), path)
    return model, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def max_error(model, session, shape, seed=1):
    x = numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32)
    with mt.no_grad():
        ours = model(mt.tensor(x)).numpy()
    theirs = session.run(None, {"input": x})[0]
    assert theirs.shape == ours.shape == (shape[0], 5) + shape[2:]
    return float(numpy.abs(ours - theirs).max() / numpy.abs(ours).max())


def check(name, options, tmp_path):
    model, session = exported(name, options, tmp_path / f"{name}.onnx")
    for shape in SIZES:
        error = max_error(model, session, shape)
        assert error <= 1e-5, f"{name} {options} at {shape}: error {error:.2e}"
    assert model.training is False


@pytest.mark.parametrize("name, options", CASES.values(), ids=CASES.keys())
def test_onnxruntime_computes_our_forward(name, options, tmp_path):
    check(name, options, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name, options", SLOW.values(), ids=SLOW.keys())
def test_onnxruntime_computes_our_forward_for_the_large_official_models(name, options, tmp_path):
    check(name, options, tmp_path)


def test_the_file_is_opset_17_with_dynamic_batch_and_size(tmp_path):
    model = models.build("unet", width=4, depth=2)
    to_onnx(model, mt.randn(1, 3, 32, 32), tmp_path / "unet.onnx")
    proto = onnx.load(tmp_path / "unet.onnx")
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert proto.producer_name == "minitorch_seg" and model.training             # the mode is restored
    (image,), (logits,) = proto.graph.input, proto.graph.output
    dims = image.type.tensor_type.shape.dim
    assert image.name == "input" and logits.name == "logits"
    assert [d.dim_value for d in dims] == [0, 3, 0, 0] and all(dims[i].dim_param for i in (0, 2, 3))
    assert image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_what_cannot_be_exported_is_one_sentence(tmp_path, monkeypatch):
    class Odd(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ExportError) as error:
        to_onnx(Odd(), mt.randn(1, 3, 32, 32), tmp_path / "odd.onnx")
    text = str(error.value)
    assert text.startswith("to_onnx cannot export the module Odd; it knows ") and "\n" not in text
    assert not (tmp_path / "odd.onnx").exists()
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ExportError, match=r"needs the onnx package; install it with pip install 'minitorch-seg\["):
        to_onnx(models.build("unet"), mt.randn(1, 3, 32, 32), tmp_path / "unet.onnx")
