# Solutions to lesson 3's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks); the last cells answer its
# "predict first" questions. Try first.

# %% {"exercise": "confusion_matrix"}
def confusion_matrix(prediction, target, num_classes=19, ignore_index=255):
    """M[t, p] = the number of kept pixels of true class t predicted as p; (C, C) int64."""
    p = prediction.numpy().ravel()
    t = target.numpy().ravel()
    keep = t != ignore_index                                  # void pixels are not counted at all
    c = num_classes
    counts = numpy.bincount(c * t[keep] + p[keep], minlength=c * c)   # pixel (t, p) lands in bin C t + p
    return counts.reshape(c, c)                               # rows: truth, columns: prediction

# %% {"exercise": "mean_iou"}
def mean_iou(matrix):
    """The mean of IoU_c = TP_c / (TP_c + FP_c + FN_c) over the classes that occur; NaN if none does."""
    m = numpy.asarray(matrix, dtype=numpy.float64)
    tp = numpy.diag(m)
    union = m.sum(axis=0) + m.sum(axis=1) - tp                # TP + FP (column) + FN (row)
    present = union > 0                                       # seen in the truth or predicted
    if not present.any():
        return float("nan")
    return float((tp[present] / union[present]).mean())

# %% {"exercise": "soft_iou"}
class SoftIoU(Function):
    """1 - mean_c J_c, J_c = (I_c + eps) / (U_c + eps), I_c = sum p y, U_c = sum (p + y - p y) over kept pixels.

    Backward: dI_c/dp_i = y_i and dU_c/dp_i = 1 - y_i on kept pixels (0 on void ones), so by the
    quotient rule dJ_c/dp_i = (y_i (U_c + eps) - (I_c + eps) (1 - y_i)) / (U_c + eps)^2, and the
    loss's gradient is -1/C times that.
    """

    @staticmethod
    def forward(ctx, p, target, ignore_index, eps):
        classes = p.shape[1]
        keep = (target != ignore_index)[:, None]                                     # (N, 1, H, W)
        y = numpy.eye(classes)[numpy.where(keep[:, 0], target, 0)].transpose(0, 3, 1, 2) * keep   # (N, C, H, W)
        kept = p * keep
        intersection = (kept * y).sum(axis=(0, 2, 3)) + eps                          # (C,)  I + eps
        union = (kept + y - kept * y).sum(axis=(0, 2, 3)) + eps                      # (C,)  U + eps
        ctx.save_for_backward(y, keep, intersection, union)
        return 1 - (intersection / union).mean()

    @staticmethod
    def backward(ctx, g):
        y, keep, intersection, union = ctx.saved_arrays
        i, u = intersection[:, None, None], union[:, None, None]                     # (C, 1, 1): broadcast
        d_j = (y * u - i * (1 - y)) / u ** 2                                         # (N, C, H, W)
        return -g * d_j * keep / y.shape[1], None


def soft_iou(input, target, ignore_index=255, eps=1.0):
    return SoftIoU.apply(input, target, ignore_index=ignore_index, eps=eps)

# %% {"prediction": "coarse_miou"}
answer = 0.5                     # a guess: right within 0.1
