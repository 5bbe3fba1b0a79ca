"""ONNX for the CNN models: U-Net, HRNet, DeepLabV3, SegNet and the blocks they share.

Each emitter follows its class's ``forward`` line by line, reading the weights from the module
itself; every size comes from the graph (``Shape``), so batch and image size stay dynamic.
"""
from ..models.common import BasicBlock, Bottleneck
from ..models.deeplab import ASPP, DeepLabV3, DilatedResNet, ImagePooling
from ..models.hrnet import HighResolutionModule, HRNet
from ..models.segnet import SegNet
from ..models.unet import UNet
from .onnx_layers import emit, emitter, interpolate


# ---- shared blocks -------------------------------------------------------------------------------
@emitter(BasicBlock)
def basic_block(g, m, x):
    shortcut = x if m.downsample is None else emit(g, m.downsample, x)
    y = g.op("Relu", emit(g, m.bn1, emit(g, m.conv1, x)))
    return g.op("Relu", g.op("Add", emit(g, m.bn2, emit(g, m.conv2, y)), shortcut))


@emitter(Bottleneck)
def bottleneck(g, m, x):
    shortcut = x if m.downsample is None else emit(g, m.downsample, x)
    y = g.op("Relu", emit(g, m.bn1, emit(g, m.conv1, x)))
    y = g.op("Relu", emit(g, m.bn2, emit(g, m.conv2, y)))
    return g.op("Relu", g.op("Add", emit(g, m.bn3, emit(g, m.conv3, y)), shortcut))


# ---- U-Net ---------------------------------------------------------------------------------------
@emitter(UNet)
def unet(g, m, x):
    """Inputs with H and W multiples of 2**(depth-1), as the model's check requires: every
    transposed conv then meets its skip's size exactly (the forward's pad is a no-op)."""
    skips = []
    for level, block in enumerate(m.down):
        x = emit(g, block, x if level == 0 else emit(g, m.pool, x))
        skips.append(x)
    x = skips.pop()
    for block in m.up:
        x = emit(g, block.conv, g.op("Concat", skips.pop(), emit(g, block.up, x), axis=1))
    return emit(g, m.head, x)


# ---- HRNet ---------------------------------------------------------------------------------------
@emitter(HighResolutionModule)
def high_resolution_module(g, m, xs):
    xs = [emit(g, branch, x) for branch, x in zip(m.branches, xs)]
    fused = []
    for i, row in enumerate(m.fuse_layers):
        total = None
        for j, layer in enumerate(row):
            y = emit(g, layer, xs[j])
            if j > i:
                y = interpolate(g, y, xs[i], m.align_corners)
            total = y if total is None else g.op("Add", total, y)
        fused.append(g.op("Relu", total))
    return fused


@emitter(HRNet)
def hrnet(g, m, image):
    x = g.op("Relu", emit(g, m.bn1, emit(g, m.conv1, image)))
    x = g.op("Relu", emit(g, m.bn2, emit(g, m.conv2, x)))
    xs = [emit(g, m.layer1, x)]
    for stage in range(2, m.num_stages + 1):
        layers = getattr(m, f"transition{stage - 1}")
        xs = [emit(g, layer, xs[i] if i < len(xs) else xs[-1]) for i, layer in enumerate(layers)]
        for module in getattr(m, f"stage{stage}"):
            xs = emit(g, module, xs)
    ups = [xs[0]] + [interpolate(g, y, xs[0], m.align_corners) for y in xs[1:]]
    logits = emit(g, m.last_layer, g.op("Concat", *ups, axis=1))
    return interpolate(g, logits, image, m.align_corners)


# ---- DeepLabV3 -----------------------------------------------------------------------------------
@emitter(DilatedResNet)
def dilated_resnet(g, m, x):
    x = emit(g, m.maxpool, g.op("Relu", emit(g, m.bn1, emit(g, m.conv1, x))))
    for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
        x = emit(g, layer, x)
    return x


@emitter(ImagePooling)
def image_pooling(g, m, x):
    y = emit(g, m.conv, g.op("GlobalAveragePool", x))                     # (N, C_out, 1, 1)
    return g.op("Expand", y, g.shape_of(1, 1, g.op("Shape", x, start=2, end=4)))


@emitter(ASPP)
def aspp(g, m, x):
    return emit(g, m.project, g.op("Concat", *[emit(g, conv, x) for conv in m.convs], axis=1))


@emitter(DeepLabV3)
def deeplab(g, m, image):
    return interpolate(g, emit(g, m.classifier, emit(g, m.backbone, image)), image)


# ---- SegNet --------------------------------------------------------------------------------------
@emitter(SegNet)
def segnet(g, m, x):
    switches = []
    for encoder in m.encoders:
        x = emit(g, encoder, x)
        before = x
        x, indices = emit(g, m.pool, x)
        switches.append((indices, g.op("Shape", before)))
    for level in reversed(range(len(m.decoders))):
        indices, shape = switches[level]
        x = g.op("MaxUnpool", x, indices, shape, kernel_shape=list(m.unpool.kernel_size),
                 strides=list(m.unpool.stride), pads=list(m.unpool.padding) * 2)
        x = emit(g, m.decoders[level], x)
    return emit(g, m.classifier, x)
