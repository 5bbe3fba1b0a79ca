"""The segmentation models: shapes, parameter counts by formula, state_dict, printing, summary, torch twins,
learning, gradients, and what makes each model what it is (HRNet's resolution, DeepLab's taps,
SegNet's switches).

Parameter counts are recomputed here from each architecture's description, layer by layer, not
read from the model; the official HRNetV2-W18's is the one counted on the official code. The torch
twins of every model (``minitorch_seg.export``'s, behind the optional torch extra) are written
from the official code's structure with the same parameter names: ``export.to_torch`` loads our
state_dict into them unchanged, and outputs and every parameter's gradient agree in float64.
"""
import io
import re

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import functional as F
from minitorch_seg import models, optim, parallel
from minitorch_seg.models.summary import layer_table, trace
from minitorch_seg.testing import make
from helpers import assert_one_sentence, host

pytestmark = pytest.mark.models

NAMES = ["deeplab", "hrnet", "segnet", "swin", "unet"]                  # the small models, for two CPU cores
OFFICIAL = ["hrnet_w18", "hrnet_w32", "hrnet_w48", "swin_t"]            # the official architectures
# Tiny widths for the float64 gradient checks (Swin's window 4 shifts at a 32x32 input).
TINY = {
    "unet": dict(width=4, depth=3),
    "hrnet": dict(width=4, depth=1, stem_width=8),
    "swin": dict(width=8, depths=(2, 2, 1, 1), num_heads=(1, 2, 2, 4), window_size=4, decoder_channels=8),
    "deeplab": dict(width=4, depth=1, dropout=0.0),
    "segnet": dict(width=4, depth=1),
}


def count(model):
    return sum(p.numel() for p in model.parameters())


# ---- shapes, names, bad input -------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_logits_have_the_input_size_at_two_sizes(backend, name):
    model = models.build(name, num_classes=5)
    for shape in [(2, 3, 64, 64), (1, 3, 32, 96)]:
        y = model(mt.randn(*shape))
        assert y.shape == (shape[0], 5) + shape[2:]
        assert y.backend == backend


def test_the_registry_lists_every_model():
    assert models.available() == sorted(NAMES + OFFICIAL)
    with pytest.raises(ValueError, match="known models: deeplab, hrnet, hrnet_w18, hrnet_w32, hrnet_w48, segnet, "
                                         "swin, swin_t, unet") as error:
        models.build("resnet")
    assert_one_sentence(error.value)


@pytest.mark.parametrize("name", ["hrnet_w18", "swin_t"])
def test_official_models_give_logits_at_the_input_size(name):
    model = models.build(name, num_classes=5).eval()
    with mt.no_grad():
        assert model(mt.randn(1, 3, 64, 96)).shape == (1, 5, 64, 96)


@pytest.mark.parametrize("name", NAMES + OFFICIAL)
def test_config_rebuilds_the_same_model(name):
    model = models.build(name, num_classes=7)
    assert model.config["num_classes"] == 7
    again = type(model)(**model.config)
    shapes = [(k, v.shape) for k, v in model.state_dict().items()]
    assert [(k, v.shape) for k, v in again.state_dict().items()] == shapes
    assert again.config == model.config


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_clear_sentence(name):
    model = models.build(name, **TINY[name])
    for shape in [(1, 4, 64, 64), (1, 1, 64, 64), (1, 3, 60, 64), (1, 3, 64, 48), (3, 64, 64)]:
        with pytest.raises(ValueError, match=r"expects images \(N, 3, H, W\) with H and W multiples of 32") as error:
            model(mt.zeros(*shape))
        assert_one_sentence(error.value)
        assert str(shape) in str(error.value)


@pytest.mark.parametrize("name", NAMES)
def test_print_shows_the_structure(name):
    model = models.build(name)
    text = repr(model)
    assert text.startswith(type(model).__name__ + "(")
    for child in model._modules:
        assert f"({child}): " in text
    assert "Conv2d(" in text and "BatchNorm2d(" in text


# ---- parameter counts, from the architectures' descriptions --------------------------------------
def conv(cin, cout, k, bias=False):
    return cin * cout * k * k + (cout if bias else 0)


def bn(c):
    return 2 * c            # weight and bias (running statistics are buffers)


ln = bn


def linear(cin, cout, bias=True):
    return cin * cout + (cout if bias else 0)


def basic_block(cin, cout, stride=1):
    shortcut = conv(cin, cout, 1) + bn(cout) if cin != cout or stride != 1 else 0
    return conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3) + bn(cout) + shortcut


def unet_params(classes, width=16, depth=4):
    ch = [width * 2 ** level for level in range(depth)]
    double = lambda a, b: conv(a, b, 3) + bn(b) + conv(b, b, 3) + bn(b)  # noqa: E731
    down = double(3, ch[0]) + sum(double(a, b) for a, b in zip(ch, ch[1:]))
    up = sum(a * b * 2 * 2 + b + double(2 * b, b) for a, b in zip(ch[::-1], ch[-2::-1]))   # 2x2 transposed conv
    return down + up + conv(ch[0], classes, 1, bias=True)


def bottleneck(cin, planes):
    out = 4 * planes
    shortcut = conv(cin, out, 1) + bn(out) if cin != out else 0
    return conv(cin, planes, 1) + bn(planes) + conv(planes, planes, 3) + bn(planes) + conv(planes, out, 1) + bn(out) + \
        shortcut


def hrnet_params(classes, width=16, depth=2, num_branches=4, num_modules=(1, 1, 1), stem_width=32,
                 stage1_block="basic"):
    stem = conv(3, stem_width, 3) + bn(stem_width) + conv(stem_width, stem_width, 3) + bn(stem_width)
    if stage1_block == "bottleneck":    # planes stem_width, to 4 stem_width channels
        total = stem + bottleneck(stem_width, stem_width) + (depth - 1) * bottleneck(4 * stem_width, stem_width)
        previous = [4 * stem_width]
    else:
        total = stem + depth * basic_block(stem_width, stem_width)
        previous = [stem_width]
    for branches, modules in zip(range(2, num_branches + 1), num_modules):
        ch = [width * 2 ** b for b in range(branches)]
        total += sum(conv(p, c, 3) + bn(c) for p, c in zip(previous, ch) if p != c)   # kept branches
        total += conv(previous[-1], ch[-1], 3) + bn(ch[-1])                            # the new one, one halving
        module = sum(depth * basic_block(c, c) for c in ch)
        for i in range(branches):
            for j in range(branches):
                if j > i:     # up: 1x1 conv + BN
                    module += conv(ch[j], ch[i], 1) + bn(ch[i])
                elif j < i:   # down: i - j strided 3x3 convs, all but the last keeping branch j's width
                    module += (i - j - 1) * (conv(ch[j], ch[j], 3) + bn(ch[j])) + conv(ch[j], ch[i], 3) + bn(ch[i])
        total += modules * module
        previous = ch
    c = sum(previous)
    return total + conv(c, c, 1, bias=True) + bn(c) + conv(c, classes, 1, bias=True)


def swin_params(classes, width=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=8, mlp_ratio=4,
                decoder_channels=64):
    dims = [width * 2 ** s for s in range(len(depths))]
    total = conv(3, width, 4, bias=True) + ln(width)                               # patch embedding
    for s, (c, depth, heads) in enumerate(zip(dims, depths, num_heads)):
        table = (2 * window_size - 1) ** 2 * heads                                 # relative position bias
        block = ln(c) + linear(c, 3 * c) + table + linear(c, c) + ln(c) + linear(c, mlp_ratio * c) + \
            linear(mlp_ratio * c, c)
        total += depth * block + ln(c)                                              # + the stage's output norm
        if s < len(depths) - 1:
            total += ln(4 * c) + linear(4 * c, 2 * c, bias=False)                    # patch merging
    d = decoder_channels
    head = sum(conv(c, d, 1) + bn(d) for c in dims) + (len(dims) - 1) * (conv(d, d, 3) + bn(d))
    head += conv(len(dims) * d, d, 3) + bn(d) + conv(d, classes, 1, bias=True)
    return total + head


def deeplab_params(classes, width=32, depth=2, rates=3, aspp_channels=None):
    a = aspp_channels or 4 * width
    total = conv(3, width, 3) + bn(width)
    previous = width
    for c in (width, 2 * width, 4 * width, 8 * width):
        total += basic_block(previous, c) + (depth - 1) * basic_block(c, c)
        previous = c
    aspp = conv(previous, a, 1) + bn(a) + rates * (conv(previous, a, 3) + bn(a)) + conv(previous, a, 1, bias=True)
    aspp += conv((2 + rates) * a, a, 1) + bn(a)
    return total + aspp + conv(a, a, 3) + bn(a) + conv(a, classes, 1, bias=True)


def segnet_params(classes, width=16, depth=2, levels=4):
    ch = [width * 2 ** level for level in range(levels)]
    cbr = lambda a, b: conv(a, b, 3) + bn(b)  # noqa: E731
    encoder = sum(cbr(a, b) + (depth - 1) * cbr(b, b) for a, b in zip([3] + ch, ch))
    decoder = sum((depth - 1) * cbr(c, c) + cbr(c, ch[max(level - 1, 0)]) for level, c in enumerate(ch))
    return encoder + decoder + conv(ch[0], classes, 3, bias=True)


FORMULAS = {"unet": unet_params, "hrnet": hrnet_params, "swin": swin_params, "deeplab": deeplab_params,
            "segnet": segnet_params}
OTHER_OPTIONS = {
    "unet": dict(width=8, depth=3),
    "hrnet": dict(width=8, depth=1, num_branches=3, num_modules=(2, 1), stem_width=16),
    "swin": dict(width=16, depths=(2, 2, 4, 2), num_heads=(2, 2, 4, 4), window_size=4, decoder_channels=32),
    "deeplab": dict(width=8, depth=1, aspp_channels=24),
    "segnet": dict(width=8, depth=3, levels=3),
}


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_match_the_formulas(name):
    assert count(models.build(name, num_classes=19)) == FORMULAS[name](19)
    options = OTHER_OPTIONS[name]
    assert count(models.build(name, num_classes=7, **options)) == FORMULAS[name](7, **options)


OFFICIAL_HRNET = dict(depth=4, num_modules=(1, 4, 3), stem_width=64, stage1_block="bottleneck")


def test_official_hrnet_parameter_counts():
    """HRNetV2-W18 with 19 classes: 9,641,119, as counted on the official seg_hrnet.py; W32 and W48
    (and W18 with 7 classes, and a bottleneck stage 1 in a small network) against the formula."""
    assert count(models.build("hrnet_w18", num_classes=19)) == 9_641_119 == hrnet_params(19, 18, **OFFICIAL_HRNET)
    assert count(models.build("hrnet_w18", num_classes=7)) == hrnet_params(7, 18, **OFFICIAL_HRNET)
    for width in (32, 48):
        assert count(models.build(f"hrnet_w{width}", num_classes=19)) == hrnet_params(19, width, **OFFICIAL_HRNET)
    small = dict(width=4, depth=2, num_branches=3, num_modules=(1, 2), stem_width=8, stage1_block="bottleneck")
    assert count(models.build("hrnet", num_classes=5, **small)) == hrnet_params(5, **small)


def test_official_hrnet_names_are_the_official_ones():
    """A sample of seg_hrnet.py's names and shapes for W18 (stage 1 of Bottlenecks, 4 blocks per branch)."""
    shapes = {k: v.shape for k, v in models.build("hrnet_w18", num_classes=19).state_dict().items()}
    assert shapes["conv1.weight"] == (64, 3, 3, 3) and shapes["conv2.weight"] == (64, 64, 3, 3)
    assert shapes["layer1.0.conv3.weight"] == shapes["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert "layer1.1.downsample.0.weight" not in shapes and "layer1.3.bn3.running_var" in shapes
    assert shapes["transition1.0.0.weight"] == (18, 256, 3, 3) and shapes["transition1.1.0.0.weight"] == (36, 256, 3, 3)
    assert shapes["transition2.2.0.0.weight"] == (72, 36, 3, 3) and "transition2.0.0.weight" not in shapes
    assert shapes["stage3.3.branches.2.3.conv2.weight"] == (72, 72, 3, 3)
    assert "stage3.4.branches.0.0.conv1.weight" not in shapes
    assert shapes["stage4.2.fuse_layers.3.0.2.0.weight"] == (144, 18, 3, 3)
    assert shapes["stage4.2.fuse_layers.0.3.0.weight"] == (18, 144, 1, 1)
    assert shapes["last_layer.0.weight"] == (270, 270, 1, 1) and shapes["last_layer.3.weight"] == (19, 270, 1, 1)


def test_swin_t_parameter_count():
    """The backbone's official 27,520,698, plus our UPerHead at 512 channels by the formula."""
    model = models.build("swin_t", num_classes=19)
    assert count(model.backbone) == 27_520_698
    assert count(model) == swin_params(19, width=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7,
                                       decoder_channels=512)


# ---- state_dict --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    model = models.build(name, **TINY[name])
    model(mt.randn(2, 3, 32, 64))                         # training: BatchNorm's running statistics move
    saved = {k: host(v).copy() for k, v in model.state_dict().items()}   # as a checkpoint file holds them
    mt.manual_seed(1)
    other = models.build(name, **TINY[name])
    assert any(not numpy.array_equal(saved[k], host(v)) for k, v in other.state_dict().items())
    other.load_state_dict(saved)
    for key, value in other.state_dict().items():
        numpy.testing.assert_array_equal(host(value), saved[key], err_msg=key)
    x = mt.randn(1, 3, 32, 64)
    model.eval(), other.eval()
    numpy.testing.assert_array_equal(host(model(x)), host(other(x)))


# ---- summary -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_summary_rows_totals_and_conv_flops(name):
    model = models.build(name)
    size = (1, 3, 64, 128)
    out = io.StringIO()
    models.summary(model, size, file=out)
    text = out.getvalue()
    rows = layer_table(model, size)
    assert len(text.splitlines()) == len(rows) + 3
    assert f"Total params: {count(model):,}" in text and "Total FLOPs: " in text
    assert sum(row.params for row in rows) == count(model)
    assert model.training                                  # the mode is restored
    conv_rows = [row for row in rows if row.type == "Conv2d"]
    assert conv_rows and all(row.flops > 0 for row in conv_rows)
    first = conv_rows[0]
    module = dict(model.named_modules())[first.name]
    n, c_out, h, w = eval(first.output_shape)
    kh, kw = module.kernel_size
    assert first.flops == 2 * kh * kw * module.in_channels * c_out * h * w * n


def test_summary_flops_by_hand():
    rows = {row.name: row for row in layer_table(models.build("hrnet"), (1, 3, 64, 128))}
    assert rows["conv1"].flops == 2 * 3 * 3 * 3 * 32 * 32 * 64                     # 3 -> 32 channels at 32x64
    assert rows["conv1"].output_shape == "(1, 32, 32, 64)"
    rows = {row.name: row for row in layer_table(models.build("unet"), (2, 3, 64, 64))}
    assert rows["up.0.up"].flops == 2 * 2 * 2 * 128 * 64 * 8 * 8 * 2              # 2x2 transposed conv from 8x8
    rows = {row.name: row for row in layer_table(models.build("swin"), (1, 3, 64, 64))}
    attention = rows["backbone.layers.0.blocks.0.attn"]                          # 16x16 map: 4 windows of 64
    assert attention.flops == 4 * 4 * 64 * 64 * 32 and attention.output_shape == "(4, 64, 32)"
    assert rows["backbone.layers.0.blocks.0.attn.qkv"].flops == 2 * 32 * 96 * 256


# ---- torch twins -------------------------------------------------------------------------------
SMALL_OFFICIAL_HRNET = dict(width=4, depth=2, num_branches=3, num_modules=(1, 2), stem_width=8,
                           stage1_block="bottleneck", align_corners=True)
TWIN_CASES = {"hrnet-64x64": ("hrnet", {}, (1, 3, 64, 64)), "hrnet-32x64": ("hrnet", {}, (1, 3, 32, 64)),
              "hrnet-32x32": ("hrnet", {}, (2, 3, 32, 32)),
              "hrnet-official-structure-64x96": ("hrnet", SMALL_OFFICIAL_HRNET, (2, 3, 64, 96)),
              "swin-64x64": ("swin", {}, (1, 3, 64, 64)), "swin-32x64": ("swin", {}, (1, 3, 32, 64)),
              "swin-96x96": ("swin", {}, (1, 3, 96, 96)),
              "swin-mask_padding-96x96": ("swin", dict(mask_padding=True), (1, 3, 96, 96)),
              "swin-window7-96x64": ("swin", dict(width=8, window_size=7, num_heads=(1, 2, 2, 4), decoder_channels=8),
                                     (2, 3, 96, 64)),
              "unet-32x64": ("unet", {}, (2, 3, 32, 64)),
              "deeplab-64x64": ("deeplab", dict(dropout=0.0), (2, 3, 64, 64)),
              "segnet-32x64": ("segnet", {}, (2, 3, 32, 64))}


def twin_errors(torch, name, options, shape):
    """Our model and ``export.to_torch``'s twin on the same input in float64, training mode: the
    errors of the output, the input gradient and the parameter gradients, each over its largest
    value (BatchNorm over a 1x1 or 1x2 map is ill-conditioned, so entries near zero carry the
    rounding of large ones); also checks names, order, dtype, mode and the running statistics."""
    from minitorch_seg.export import to_torch

    ours = models.build(name, **options).double()
    theirs = to_torch(ours)
    assert list(theirs.state_dict()) == list(ours.state_dict()) and theirs.training
    assert all(p.dtype == torch.float64 for p in theirs.parameters())
    x = make(shape, seed=1)
    tx = torch.from_numpy(host(x)).requires_grad_(True)
    out, expected = ours(x), theirs(tx)
    expected_out = expected.detach().numpy()
    errors = {"output": numpy.abs(host(out) - expected_out).max() / numpy.abs(expected_out).max()}
    upstream = numpy.random.default_rng(0).standard_normal(out.shape)
    (out * mt.tensor(upstream)).sum().backward()
    (expected * torch.from_numpy(upstream)).sum().backward()
    errors["input gradient"] = numpy.abs(host(x.grad) - tx.grad.numpy()).max() / numpy.abs(tx.grad.numpy()).max()
    theirs_parameters = dict(theirs.named_parameters())
    scale = max(numpy.abs(p.grad.numpy()).max() for p in theirs_parameters.values())
    errors["parameter gradients"] = max(numpy.abs(host(p.grad) - theirs_parameters[key].grad.numpy()).max() / scale
                                        for key, p in ours.named_parameters())
    for key, buffer in theirs.state_dict().items():          # the running statistics moved alike
        numpy.testing.assert_allclose(host(ours.state_dict()[key]), buffer.numpy(), rtol=1e-9, atol=1e-12, err_msg=key)
    return errors


@pytest.mark.parametrize("name, options, shape", TWIN_CASES.values(), ids=TWIN_CASES.keys())
def test_torch_twin_loads_our_state_dict_and_agrees_in_float64(torch, name, options, shape):
    """``export.to_torch``: the twin built from ``model.config`` holds our state_dict under the same
    names in the same order; the output agrees to 1e-10 and the gradients of the input and of
    every parameter to 1e-7 of the largest (measured: at most 2e-9 for HRNet, whose lowest branch
    is 1x1 or 1x2 at these sizes, 3e-14 for the others). 64x64 shifts Swin's first stage; 32x64 pads its
    last two stages (4x8 and 2x4 maps) up to one shifted window; 96x96 pads its second stage
    (12x12 in windows of 8), masked with ``mask_padding``."""
    errors = twin_errors(torch, name, options, shape)
    assert errors["output"] <= 1e-10 and errors["input gradient"] <= 1e-7 and errors["parameter gradients"] <= 1e-7, \
        errors


# ---- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_whole_model_gradcheck_in_float64(name):
    """Every layer's hand-derived backward composed: the input gradient along 16 random directions
    (the parameters' gradients are checked against torch's by the twins)."""
    model = models.build(name, **TINY[name]).double()
    x = make((2, 3, 32, 32), seed=3)
    assert mt.gradcheck(model, (x,))


# ---- learning ----------------------------------------------------------------------------------
def toy_batch(classes=19, n=2, size=64, block=16, seed=0):
    """Images whose colour (plus noise) tells the class, constant on 16x16 blocks: learnable by every model."""
    rng = numpy.random.default_rng(seed)
    labels = rng.integers(0, classes, (n, size // block, size // block)).repeat(block, 1).repeat(block, 2)
    colours = rng.uniform(-1, 1, (classes, 3))
    images = colours[labels].transpose(0, 3, 1, 2) + 0.1 * rng.standard_normal((n, 3, size, size))
    return mt.tensor(images.astype(numpy.float32)), mt.tensor(labels)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_small_batch(name):
    """The default model, seed 0, float32, Adam: the loss falls below 20% of its first value within
    100 steps (measured: 5 to 25 steps; U-Net takes 30 at lr 1e-2, 17 at 3e-2)."""
    model = models.build(name)
    x, y = toy_batch()
    optimizer = optim.Adam(model.parameters(), lr=3e-2 if name == "unet" else 1e-2)
    losses = []
    with parallel.tile_threads():      # as Trainer.run does; outside it each xdist worker ran OpenBLAS on two spinning threads
        for _ in range(100):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if losses[-1] < 0.2 * losses[0]:
                break
    assert losses[-1] < 0.2 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses)} steps"


# ---- what makes each model itself --------------------------------------------------------------
def test_hrnet_highest_resolution_branch_never_drops_below_a_quarter():
    model = models.build("hrnet")
    h, w = 64, 128
    with mt.no_grad():
        _, calls = trace(model, mt.randn(1, 3, h, w))
    sizes = {call.name: call.output for call in calls}
    assert sizes["conv2"].shape[2:] == (h // 4, w // 4) and sizes["layer1"].shape[2:] == (h // 4, w // 4)
    stages = [call for call in calls if re.fullmatch(r"stage\d\.\d+", call.name)]
    assert [len(call.output) for call in stages] == [2, 3, 4]          # branches added in parallel
    for call in stages:                                                  # branch b at 1/2**(b+2), branch 0 at 1/4
        assert [y.shape[2:] for y in call.output] == [(h >> (b + 2), w >> (b + 2)) for b in range(len(call.output))]
    branch0 = [call for call in calls if re.match(r"stage\d\.\d+\.branches\.0(\.|$)", call.name)]
    assert branch0 and all(call.output.shape[2:] == (h // 4, w // 4) for call in branch0)
    assert sizes["last_layer"].shape[2:] == (h // 4, w // 4)
    assert model.stage4[0].fuse_layers[0][3][0].kernel_size == (1, 1)    # up: 1x1 conv (+ upsample)
    assert [step[0].stride for step in model.stage4[0].fuse_layers[3][0]] == [(2, 2)] * 3   # down: strided 3x3


def test_deeplab_rates_fit_the_map_and_every_off_centre_tap_is_read():
    """At the default 128x256 input the ASPP map is 8x16; for each atrous branch, the gradient of one
    output pixel reaches exactly its nine taps, rate apart, all inside the map. At the paper's
    rate 18 it would reach only the centre: a 1x1 conv."""
    model = models.build("deeplab").eval()
    with mt.no_grad():
        feature = host(model.backbone(mt.randn(1, 3, 128, 256)))
    assert feature.shape[2:] == (8, 16)
    aspp = model.classifier[0]
    assert aspp.atrous_rates == (1, 2, 3)

    def taps_read(conv, probe):
        x = mt.tensor(feature, requires_grad=True)
        conv(x)[0, :, probe[0], probe[1]].sum().backward()
        return {tuple(p) for p in numpy.argwhere(numpy.abs(host(x.grad)).sum(axis=(0, 1)) > 0)}

    for branch, rate in zip(aspp.convs[1:4], aspp.atrous_rates):
        conv = branch[0]
        assert conv.dilation == (rate, rate) and 2 * rate + 1 <= min(feature.shape[2:])
        probe = (rate, rate)
        assert taps_read(conv, probe) == {(rate + dy, rate + dx) for dy in (-rate, 0, rate) for dx in (-rate, 0, rate)}
    paper = mt.nn.Conv2d(feature.shape[1], 4, 3, padding=18, dilation=18)
    assert taps_read(paper, (4, 8)) == {(4, 8)}
    assert models.build("deeplab", output_stride=8).classifier[0].atrous_rates == (2, 4, 6)


def test_segnet_unpools_at_the_encoders_switches():
    model = models.build("segnet")
    with mt.no_grad():
        _, calls = trace(model, mt.randn(1, 3, 64, 64))
    pools = [call for call in calls if call.name == "pool"]
    unpools = [call for call in calls if call.name == "unpool"]
    assert len(pools) == len(unpools) == 4
    for pool, unpool in zip(pools, reversed(unpools)):
        before, (pooled, switches) = host(pool.inputs[0]), pool.output
        assert unpool.inputs[1] is switches                              # the decoder got this level's switches
        n, c, h, w = before.shape
        flat = host(switches).reshape(n, c, -1)
        # the switches are the argmax positions of the pooled windows
        numpy.testing.assert_array_equal(numpy.take_along_axis(before.reshape(n, c, -1), flat, 2),
                                         host(pooled).reshape(n, c, -1))
        # the unpooled map holds its input exactly at the switches and zeros everywhere else
        values, unpooled = host(unpool.inputs[0]).reshape(n, c, -1), host(unpool.output).reshape(n, c, -1)
        numpy.testing.assert_array_equal(numpy.take_along_axis(unpooled, flat, 2), values)
        elsewhere = numpy.ones_like(unpooled, dtype=bool)
        numpy.put_along_axis(elsewhere, flat, False, 2)
        assert not unpooled[elsewhere].any()


def test_swin_blocks_alternate_regular_and_shifted_windows():
    model = models.build("swin")
    for layer in model.backbone.layers:
        assert [block.shift_size for block in layer.blocks] == [(0, 0), (4, 4)] * (len(layer.blocks) // 2)
    assert [layer.downsample is not None for layer in model.backbone.layers] == [True, True, True, False]
    with mt.no_grad():
        feats = model.backbone(mt.randn(1, 3, 128, 256))
    assert [f.shape for f in feats] == [(1, 32 * 2 ** s, 32 >> s, 64 >> s) for s in range(4)]
