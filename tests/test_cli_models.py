"""``minitorch-seg convert`` and ``minitorch-seg export``: the library's converter and ONNX export behind the CLI."""
import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import checkpoint, cli, models, train

pytestmark = pytest.mark.cli


def test_convert_writes_a_checkpoint_that_gives_the_twins_outputs(torch, tmp_path, capsys):
    from minitorch_seg.export import to_torch
    twin = to_torch(models.build("hrnet", num_classes=5)).eval().float()
    pth = tmp_path / "official.pth"
    torch.save({"model." + k: v for k, v in twin.state_dict().items()} | {"loss.weight": torch.ones(5)}, pth)
    out = tmp_path / "hrnet.npz"
    assert cli.main(["convert", str(pth), "--model", "hrnet", "--num-classes", "5", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out) and "loss.weight" in captured.err     # the table of unused keys
    model, _ = train.load_model(out)
    x = numpy.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(numpy.float32)
    with mt.no_grad():
        ours = model(mt.tensor(x)).numpy()
    numpy.testing.assert_allclose(ours, twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert cli.main(["convert", str(pth), "--model", "hrnet", "--num-classes", "5", "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_export_writes_onnx_that_onnxruntime_runs_like_our_forward(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime", reason="export needs onnxruntime (pip install 'minitorch-seg[export]')")
    pytest.importorskip("onnx")
    model = models.build("unet", num_classes=4).eval()
    ckpt = tmp_path / "unet.npz"
    checkpoint.save(ckpt, model, model_name="unet", num_classes=4)
    out = tmp_path / "unet.onnx"
    assert cli.main(["export", str(ckpt), "--out", str(out), "--size", "32x64"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    loaded, _ = train.load_model(ckpt)
    x = numpy.random.default_rng(0).standard_normal((2, 3, 64, 32)).astype(numpy.float32)   # another size
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    with mt.no_grad():
        numpy.testing.assert_allclose(got, loaded(mt.tensor(x)).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["export", "missing.npz", "--out", "x.onnx"], "does not exist"),
    (["convert", "missing.pth", "--model", "hrnet_w18", "--out", "x.npz"], "missing.pth"),
])
def test_bad_inputs_are_one_sentence_and_status_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
