"""A small ONNX graph builder: named values, constants as initializers, and shape arithmetic.

Everything the exporters emit goes through ``Graph.op`` (one node, fresh output names) and
``Graph.const`` (an initializer). Sizes that depend on the input (the image's height and width,
a padded size, a window count) are 1-D int64 tensors of one element computed inside the graph
(``dim``, ``arith``), so the exported model takes any batch and image size.

The ``onnx`` package is an optional extra: this module imports without it (``export.to_onnx``
says what to install before building anything).
"""
import numpy

try:
    import onnx
    from onnx import helper, numpy_helper
except ImportError:
    onnx = helper = numpy_helper = None

OPSET = 17
INT_MAX = numpy.iinfo(numpy.int64).max


class Graph:
    """The nodes, initializers and inputs of one ONNX graph under construction."""

    def __init__(self, dtype=numpy.float32):
        self.dtype = numpy.dtype(dtype)
        self.nodes, self.initializers, self.inputs = [], [], []
        self._count = 0
        self._ints = {}

    def name(self, hint="t"):
        self._count += 1
        return f"{hint}_{self._count}"

    def input(self, name, shape):
        """A graph input of the graph's float dtype; ``None`` in ``shape`` marks a dynamic axis."""
        dims = [d if d is not None else f"{name}_dim{i}" for i, d in enumerate(shape)]
        self.inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(self.dtype), dims))
        return name

    def const(self, value, hint="const", dtype=None):
        """An initializer holding ``value`` (the graph's float dtype unless ``dtype``)."""
        array = numpy.array(value, dtype=dtype or self.dtype, order="C")     # 0-d stays 0-d
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def ints(self, *values):
        """A 1-D int64 constant (shared between uses)."""
        if values not in self._ints:
            self._ints[values] = self.const(numpy.array(values, dtype=numpy.int64), "ints", numpy.int64)
        return self._ints[values]

    def op(self, op_type, *inputs, outputs=1, **attributes):
        """Add one node; returns its output name (or a list of ``outputs`` names)."""
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=names[0], **attributes))
        return names[0] if outputs == 1 else names

    # ---- shapes as values ------------------------------------------------------------------------
    def dim(self, x, axis):
        """Size of ``x`` along ``axis`` as a 1-D int64 tensor of one element."""
        bounds = dict(start=axis) if axis == -1 else dict(start=axis, end=axis + 1)
        return self.op("Shape", x, **bounds)

    def arith(self, op_type, a, b):
        """Elementwise int64 arithmetic on shape values; ints become constants."""
        a = self.ints(a) if isinstance(a, int) else a
        b = self.ints(b) if isinstance(b, int) else b
        return self.op(op_type, a, b)

    def shape_of(self, *parts):
        """A 1-D int64 shape from ints and shape values, in order."""
        return self.op("Concat", *[self.ints(p) if isinstance(p, int) else p for p in parts], axis=0)

    def reshape(self, x, *parts):
        return self.op("Reshape", x, self.shape_of(*parts))

    def slice(self, x, starts, ends, axes):
        """x[starts:ends] along ``axes``; each bound an int or a shape value."""
        return self.op("Slice", x, self.shape_of(*starts), self.shape_of(*ends), self.ints(*axes))

    def build(self, outputs, names, rank=4):
        """The ModelProto with ``outputs`` renamed to ``names`` (float, ``rank`` dynamic axes), checked."""
        for value, name in zip(outputs, names):
            self.nodes.append(helper.make_node("Identity", [value], [name]))
        float_type = helper.np_dtype_to_tensor_dtype(self.dtype)
        graph = helper.make_graph(self.nodes, "minitorch_seg", self.inputs,
                                  [helper.make_tensor_value_info(n, float_type, [None] * rank) for n in names],
                                  self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="minitorch_seg")
        model.ir_version = min(model.ir_version, 8)     # readable by onnxruntime releases from 1.14 on
        onnx.checker.check_model(model, full_check=True)
        return model

