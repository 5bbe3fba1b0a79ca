"""``summary(model, input_size)``: each layer's output shape, parameters and FLOPs, from one traced forward.

How the layers are seen. This library has no forward hooks, so ``trace`` runs the model once
with every module's ``forward`` shadowed by a recording wrapper (an instance attribute, which
``Module.__call__``'s ``self.forward`` finds before the class's method), and removes the
wrappers afterwards, even if the forward raises. Each call is recorded in the order it starts,
with its inputs and output. ``summary`` runs it under ``no_grad`` in eval mode (so BatchNorm's
running statistics are not touched) and restores the mode.

The rows are the leaf modules (and WindowAttention, whose attention products are its own work
beside its qkv/proj children); a module called twice (a shared ReLU) gets a row per call and
its parameters once. Work done by plain functions inside a forward (``F.interpolate``,
``F.cat``, additions) has no row.

FLOPs, counting a multiply-add as 2, for the whole input batch:
    Conv2d           2 * kh kw * C_in / groups * C_out * H_out W_out * N
    ConvTranspose2d  2 * kh kw * C_in * C_out / groups * H_in W_in * N   (every input pixel spreads a kernel)
    Linear           2 * in_features * out_features * rows
    WindowAttention  4 * windows * heads * n^2 * d   (q k^T and P v, n tokens per window, d per head;
                     the softmax, bias and mask, about 5 per score, are not counted)
Norms, activations, pooling and resampling are elementwise and are not counted: a few percent of
the FLOPs here, though not of the time.

>>> from minitorch_seg import nn
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
>>> summary(net, (1, 3, 32, 32))
Layer (type)  Output shape    Params    FLOPs
0 (Conv2d)    (1, 8, 32, 32)     224   442.4K
1 (ReLU)      (1, 8, 32, 32)       0        0
2 (Conv2d)    (1, 2, 32, 32)      18    32.8K
Total params: 242
Total FLOPs: 475.1K for input (1, 3, 32, 32)
"""
from dataclasses import dataclass
from typing import Any

from ..autograd import no_grad
from ..creation import zeros
from ..nn import Conv2d, ConvTranspose2d, Linear, WindowAttention
from ..tensor import Tensor


@dataclass
class Call:
    """One module call seen by ``trace``: its dotted name, the module, its inputs and output."""
    name: str
    module: Any
    inputs: tuple
    output: Any = None


def trace(model, *inputs):
    """Run ``model(*inputs)`` and return (output, [Call, ...]) for every module call, in starting order."""
    calls = []
    modules = list(model.named_modules())

    def recording(name, module, forward):
        def wrapper(*args, **kwargs):
            call = Call(name or type(module).__name__, module, args)
            calls.append(call)
            call.output = forward(*args, **kwargs)
            return call.output
        return wrapper

    saved = [(module, module.__dict__.get("forward")) for _, module in modules]
    try:
        for name, module in modules:
            object.__setattr__(module, "forward", recording(name, module, module.forward))
        output = model(*inputs)
    finally:
        for module, previous in saved:
            if previous is None:
                module.__dict__.pop("forward", None)
            else:
                object.__setattr__(module, "forward", previous)
    return output, calls


def _first_tensor(value):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def flops(module, inputs, output):
    """The FLOPs of one call by the formulas in the module docstring (0 for uncounted layer types)."""
    x, y = _first_tensor(inputs), _first_tensor(output)
    if isinstance(module, Conv2d):
        kh, kw = module.kernel_size
        n, c_out, h, w = y.shape
        return 2 * kh * kw * module.in_channels // module.groups * c_out * h * w * n
    if isinstance(module, ConvTranspose2d):
        kh, kw = module.kernel_size
        n, c_in, h, w = x.shape
        return 2 * kh * kw * c_in * module.out_channels // module.groups * h * w * n
    if isinstance(module, Linear):
        return 2 * module.in_features * module.out_features * (y.numel() // module.out_features)
    if isinstance(module, WindowAttention):
        windows, n, c = x.shape
        return 4 * windows * n * n * c                                     # heads * d = c
    return 0


@dataclass
class Row:
    name: str
    type: str
    output_shape: str
    params: int
    flops: int


def _shape_text(value):
    if isinstance(value, Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_shape_text(v) for v in value) + "]"
    return repr(value)


def _is_row(module):
    return not module._modules or isinstance(module, WindowAttention)


def layer_table(model, input_size):
    """The rows ``summary`` prints: one per call of a leaf module (and WindowAttention), in call order."""
    parameter = next(model.parameters(), None)
    x = zeros(*input_size) if parameter is None else zeros(*input_size, dtype=parameter.dtype).to(parameter.backend)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            _, calls = trace(model, x)
    finally:
        model.train(was_training)
    rows, counted = [], set()
    for call in calls:
        if not _is_row(call.module):
            continue
        own = sum(p.numel() for p in call.module._parameters.values() if p is not None)
        params = 0 if id(call.module) in counted else own
        counted.add(id(call.module))
        rows.append(Row(call.name, type(call.module).__name__, _shape_text(call.output), params,
                        flops(call.module, call.inputs, call.output)))
    return rows


def _si(number):
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if number >= size:
            return f"{number / size:.1f}{unit}"
    return str(number)


def summary(model, input_size, file=None):
    """Print a table of ``model``'s layers for an input of ``input_size`` (N, C, H, W): output shape,
    parameters and FLOPs of each, then the totals. Runs one forward (eval mode, no graph)."""
    rows = layer_table(model, input_size)
    labels = [f"{row.name} ({row.type})" for row in rows]
    width_label = max([len("Layer (type)")] + [len(label) for label in labels]) + 2
    width_shape = max([len("Output shape")] + [len(row.output_shape) for row in rows]) + 2
    width_params = max([len("Params")] + [len(f"{row.params:,}") for row in rows])
    lines = [f"{'Layer (type)':<{width_label}}{'Output shape':<{width_shape}}{'Params':>{width_params}}{'FLOPs':>9}"]
    for label, row in zip(labels, rows):
        lines.append(f"{label:<{width_label}}{row.output_shape:<{width_shape}}{row.params:>{width_params},}"
                     f"{_si(row.flops):>9}")
    total_params = sum(p.numel() for p in model.parameters())
    lines.append(f"Total params: {total_params:,}")
    lines.append(f"Total FLOPs: {_si(sum(row.flops for row in rows))} for input {tuple(input_size)}")
    print("\n".join(lines), file=file)
