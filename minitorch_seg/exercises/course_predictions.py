"""The lessons' "predict first" questions, each with the function that computes its true value from the library.

One or two per lesson, asked just before the cells that show the answer; see ``predictions`` for
the mechanism. The library modules a truth needs are imported inside it, so that importing
``exercises`` stays light.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from .predictions import Prediction, register


# ---- lesson 1: which input gradcheck flags --------------------------------------------------------
class _MeanAlongLastAxisBug(Function):
    """Lesson 1's ``MeanAlong`` with its planted bug: y = x.mean(axis=dim), the backward dividing by x.shape[-1].

    Right: each of the n = x.shape[dim] averaged inputs gets g / n. The bug takes n from the last
    axis, which is right whenever the last axis is axis ``dim`` or has the same size.
    """

    @staticmethod
    def forward(ctx, x, dim):
        ctx.shape, ctx.dim = x.shape, dim
        return x.mean(axis=dim)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        return xp.broadcast_to(xp.expand_dims(g, ctx.dim), ctx.shape) / ctx.shape[-1]   # the bug: shape[dim]


GRADCHECK_CANDIDATES = {"a": ((5,), 0), "b": ((3, 4), 1), "c": ((4, 4), 0), "d": ((3, 4), 0)}   # shape, dim


def _gradcheck_flags():
    from ..creation import randn
    from ..gradient_check import GradcheckError, gradcheck

    flagged = []
    for letter, (shape, dim) in GRADCHECK_CANDIDATES.items():
        try:
            gradcheck(lambda x, dim=dim: _MeanAlongLastAxisBug.apply(x, dim=dim),
                      (randn(*shape, dtype="float64", requires_grad=True),))
        except GradcheckError:
            flagged.append(letter)
    if len(flagged) != 1:
        raise AssertionError(f"gradcheck flags {flagged}; the question expects exactly one of the candidates.")
    return flagged[0]


register(Prediction(
    name="gradcheck_flags", lesson="01_autograd", kind="choice", choices=tuple(GRADCHECK_CANDIDATES),
    question="mean_along (section 5, with its planted bug) is gradchecked at four inputs: a) a (5,) vector, "
             "dim 0; b) a (3, 4) matrix, dim 1; c) a (4, 4) matrix, dim 0; d) a (3, 4) matrix, dim 0. "
             "Which one does gradcheck flag?",
    truth=_gradcheck_flags, wrong=("a", "b", "c"),
    explanation="The backward divides by the size of the last axis instead of axis dim's. That is right "
                "whenever the two are the same axis (a vector; dim 1 of a matrix) or happen to have the same "
                "size (a square matrix): only d divides by 4 where it should divide by 3."))


# ---- lesson 2: the loss of a uniform guess --------------------------------------------------------
def _uniform_loss():
    from .. import functional as F
    from ..creation import tensor, zeros

    target = tensor([[[0, 3, 18], [7, 11, 2]]])                                 # (1, 2, 3): any classes
    return F.cross_entropy(zeros(1, 19, 2, 3), target).item()


register(Prediction(
    name="uniform_loss", lesson="02_cross_entropy", kind="number", tolerance=0.05,
    question="A network whose 19 logits are equal at every pixel (each class equally likely, roughly what an "
             "untrained network says): what is its mean per-pixel cross-entropy?",
    truth=_uniform_loss, wrong=(0.0, 1.0, 1 / 19, 19.0),
    explanation="Equal logits give every class the probability 1/19, the true one included, so every pixel's "
                "loss is -log(1/19) = log 19, whatever the labels. A training curve should start near it."))


# ---- lesson 3: the mIoU of a model that sees 1/8 of the resolution --------------------------------
COARSE_SCENES, COARSE_SIZE, COARSE_FACTOR = 50, (128, 256), 8     # lesson 3's full validation set


def _coarse_miou():
    import numpy

    from .. import functional as F
    from ..creation import tensor
    from ..data import generate_scene, label_ids_to_train_ids
    from ..metrics import ConfusionMatrix

    matrix = ConfusionMatrix(num_classes=19)
    for index in range(COARSE_SCENES):
        truth = label_ids_to_train_ids(generate_scene("val", index, size=COARSE_SIZE).label_ids).astype(numpy.int64)
        labels = tensor(truth[None, None].astype(numpy.float32))                              # (1, 1, H, W)
        small = F.interpolate(labels, scale_factor=1 / COARSE_FACTOR, mode="nearest")
        back = F.interpolate(small, size=truth.shape, mode="nearest").numpy()[0, 0].astype(numpy.int64)
        matrix.update(numpy.where(back == 255, 0, back), truth)
    return float(matrix.compute()["miou"])


register(Prediction(
    name="coarse_miou", lesson="03_evaluation", kind="number", tolerance=0.1,
    question=f"A 'network' that gets the label of every {COARSE_FACTOR} x {COARSE_FACTOR} block right "
             f"(nearest-neighbour down to 1/{COARSE_FACTOR} of the resolution, then back up; 'road' where the "
             f"coarse label is void), scored on {COARSE_SCENES} generated validation scenes of "
             f"{COARSE_SIZE[0]} x {COARSE_SIZE[1]} (this lesson's full set): what mIoU, as a fraction from 0 to 1?",
    truth=_coarse_miou, wrong=(0.95, 0.85, 0.75, 0.2),
    explanation="Big regions survive, but everything thinner than the block (poles, signs, lights, distant "
                "people) vanishes and every boundary becomes a staircase. Those classes are few pixels, so "
                "pixel accuracy hardly moves; mIoU gives each of them the weight of the road, so it falls far "
                "more. The figure below shows both against the resolution."))


# ---- lesson 5: the output size of a strided transposed convolution ---------------------------------
def _transposed_conv_shape():
    from ..creation import zeros
    from ..nn import ConvTranspose2d

    up = ConvTranspose2d(16, 8, kernel_size=3, stride=2, padding=1)
    return tuple(up(zeros(2, 16, 7, 9)).shape)


register(Prediction(
    name="transposed_conv_shape", lesson="05_upsampling", kind="shape",
    question="x of shape (2, 16, 7, 9) goes through up = mt.nn.ConvTranspose2d(16, 8, kernel_size=3, stride=2, "
             "padding=1). What is the shape of up(x)?",
    truth=_transposed_conv_shape, wrong=((2, 8, 14, 18), (2, 16, 13, 17), (2, 8, 15, 19), (2, 16, 14, 18)),
    explanation="H_out = (H - 1) s - 2p + d (k - 1) + output_padding + 1: (7 - 1) 2 - 2 + 2 + 0 + 1 = 13 rows "
                "and (9 - 1) 2 - 2 + 2 + 1 = 17 columns, one short of 2x: with k = 3 and padding 1 it takes "
                "output_padding = 1 to reach exactly 2x. The channels are the layer's out_channels, 8."))


# ---- lesson 7: the receptive field of dilated convolutions -----------------------------------------
def _dilated_receptive_field():
    import numpy

    from .. import functional as F
    from ..creation import ones, zeros

    x = zeros(1, 1, 31, 31, dtype="float64", requires_grad=True)
    y = x
    for d in (1, 2, 4):
        y = F.conv2d(y, ones(1, 1, 3, 3, dtype="float64"), padding=d, dilation=d)
    y[0, 0, 15, 15].backward()
    columns = numpy.nonzero(x.grad.numpy()[0, 0].any(axis=0))[0]
    return int(columns.max() - columns.min() + 1)


register(Prediction(
    name="dilated_receptive_field", lesson="07_atrous", kind="integer",
    question="Three stacked 3 x 3 convolutions with dilations 1, 2 and 4 (stride 1, padding = dilation, so the "
             "map keeps its size): how many pixels wide is the receptive field of one output pixel?",
    truth=_dilated_receptive_field, wrong=(7, 9, 17, 27),
    explanation="Each 3 x 3 layer of dilation d widens the field by d pixels on each side, so it is "
                "1 + 2 (1 + 2 + 4) = 15 pixels. Adding the spans, 3 + 5 + 9, counts the centre pixel of every "
                "layer after the first once too often; without dilation the three layers reach only 7."))


# ---- lesson 7: what output stride 8 costs against 16 -----------------------------------------------
def _flop_ratio():
    from ..models import build
    from ..models.summary import layer_table

    flops = {os_: sum(row.flops for row in layer_table(build("deeplab", output_stride=os_), (1, 3, 128, 256)))
             for os_ in (8, 16)}
    return flops[8] / flops[16]


register(Prediction(
    name="flop_ratio_os8_os16", lesson="07_atrous", kind="number", tolerance=0.5,
    question="The project's DeepLabV3 (models.build('deeplab')) on a 128 x 256 input: how many times the FLOPs "
             "of output stride 16 does output stride 8 cost, the whole network counted?",
    truth=_flop_ratio, wrong=(1.0, 2.0, 4.0, 16.0),
    explanation="Only what runs after the skipped halving, layer3, layer4, ASPP and the head, computes 4 times "
                "the pixels; the stem, layer1 and layer2 cost the same at both output strides. The total is a "
                "mix of 1x and 4x: below 4, by how much the early stages weigh."))


# ---- lesson 9: the reach of W-MSA and then SW-MSA --------------------------------------------------
def _swin_reach():
    from ..creation import randn
    from ..nn import SwinTransformerBlock

    side, token = 16, (5, 6)
    blocks = [SwinTransformerBlock(8, num_heads=2, window_size=4, shift_size=shift).double() for shift in (0, 2)]
    x = randn(1, side * side, 8, dtype="float64", requires_grad=True)
    y = x
    for block in blocks:
        y = block(y, (side, side))
    y[0, token[0] * side + token[1]].sum().backward()
    return int((abs(x.grad.numpy()[0]).sum(axis=1) > 0).sum())


register(Prediction(
    name="swin_reach", lesson="09_swin", kind="integer",
    question="A 16 x 16 map of tokens, windows of 4 x 4: one W-MSA block, then one SW-MSA block (shift 2). How "
             "many input tokens can change the output token at row 5, column 6?",
    truth=_swin_reach, wrong=(16, 36, 48, 256),
    explanation="In the shifted grid, token (5, 6) attends within rows 2-5 and columns 6-9. Each of those 16 "
                "tokens carries what the first block gave it, its own regular window: rows 0-7 and columns "
                "4-11 in all, 8 x 8 = 64 tokens."))
