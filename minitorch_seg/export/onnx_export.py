"""``to_onnx``: one of our models as an ONNX file, built node by node from its modules with the ``onnx`` package.

No tracing and no torch: each module class has an emitter (``onnx_layers``, ``onnx_models``,
``onnx_swin``) that writes its eval-mode forward as ONNX operators (opset 17), reading the
weights from the module. The graph's input ``input`` is (batch, channels, height, width) with
batch, height and width dynamic; its output ``logits`` is (batch, num_classes, height, width).
Weights are stored as float32 and the graph computes in float32.
"""
import numpy

from ..autograd import no_grad
from ..checkpoint import atomic_write_bytes
from . import onnx_models, onnx_swin  # noqa: F401 - registers the models' emitters
from .onnx_graph import Graph
from .onnx_layers import emit


def to_onnx(model, example_input, path):
    """Write ``model`` (eval mode: BatchNorm's running statistics, no dropout) to ``path`` as ONNX.

    ``example_input`` (N, C, H, W) is run through the model once, so a wrong input raises the
    model's own error here, and gives the channel count; the file takes any batch and image
    size the model takes. The file is written atomically (a temporary file, then a rename).
    Returns ``path``.
    """
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(example_input)
        graph = Graph(numpy.float32)
        image = graph.input("input", [None, example_input.shape[1], None, None])
        proto = graph.build([emit(graph, model, image)], ["logits"])
    finally:
        model.train(was_training)
    atomic_write_bytes(path, proto.SerializeToString())
    return path
