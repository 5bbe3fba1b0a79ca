"""Export our models: to ONNX files (``to_onnx``) and to PyTorch modules (``to_torch``).

``to_onnx(model, example_input, path)`` writes an ONNX file (opset 17, dynamic batch and image
size) built from our modules with the ``onnx`` package, for onnxruntime and every other ONNX
runtime. ``to_torch(model)`` returns a ``torch.nn.Module`` of the same architecture holding the
same weights, with our parameter names: the way to many machines is PyTorch's distributed
engine (``DistributedDataParallel``), and the weights come back with
``model.load_state_dict(twin.state_dict())``; ``minitorch_seg.export.ddp_recipe`` is that recipe,
runnable and tested.

Both need optional packages: ``pip install 'minitorch-seg[export]'`` (onnx, onnxruntime) and
``pip install 'minitorch-seg[torch]'``; importing this package needs neither.
"""
from .errors import ExportError


def _require(module, feature, extra):
    try:
        return __import__(module)
    except ImportError:
        raise ExportError(f"{feature} needs the {module} package; install it with "
                          f"pip install 'minitorch-seg[{extra}]'.") from None


def to_onnx(model, example_input, path):
    """Write ``model`` to ``path`` as ONNX; see ``minitorch_seg.export.onnx_export.to_onnx``."""
    _require("onnx", "export.to_onnx", "export")
    from .onnx_export import to_onnx as export

    return export(model, example_input, path)


def to_torch(model):
    """``model`` as a torch.nn.Module twin; see ``minitorch_seg.export.torch_model.to_torch``."""
    _require("torch", "export.to_torch", "torch")
    from .torch_model import to_torch as export

    return export(model)


__all__ = ["ExportError", "to_onnx", "to_torch"]
