"""Wrong answers to lesson 3's exercises (see ``tests/mutants/__init__.py``)."""
MUTANTS = {
    "confusion_matrix": [
        ("transposed: M[p, t] (rows the prediction)",
         [("c * t[keep] + p[keep]", "c * p[keep] + t[keep]")]),
        ("void pixels counted as class 0 (replaced, as lesson 2's loss does, but not dropped)",
         [("keep = t != ignore_index", "t = numpy.where(t == ignore_index, 0, t)\n    keep = t == t")]),
        ("minlength forgotten: a matrix that shrinks when the highest classes are absent",
         [("minlength=c * c)", ")")]),
        ("ignore_index hard-coded as 255",
         [("keep = t != ignore_index", "keep = t != 255")]),
        ("num_classes hard-coded as 19 (the default, Cityscapes')",
         [("c = num_classes", "c = 19")]),
        ("void pixels dropped where the prediction, not the target, is ignore_index",
         [("keep = t != ignore_index", "keep = p != ignore_index")]),
    ],
    "mean_iou": [
        ("classes that never occur counted as IoU 0 instead of left out",
         [("(tp[present] / union[present]).mean()", "(tp[present] / union[present]).sum() / len(tp)")]),
        ("the union double-counts the intersection: TP is not subtracted",
         [("union = m.sum(axis=0) + m.sum(axis=1) - tp", "union = m.sum(axis=0) + m.sum(axis=1)")]),
        ("the union is the row only (TP + FN: that is the class accuracy)",
         [("union = m.sum(axis=0) + m.sum(axis=1) - tp", "union = m.sum(axis=1)")]),
        ("classes predicted but absent from the truth left out of the mean",
         [("present = union > 0", "present = m.sum(axis=1) > 0")]),
        ("a plain mean over all classes: NaN as soon as one class never occurs",
         [("return float((tp[present] / union[present]).mean())",
           "with numpy.errstate(invalid='ignore'):\n        return float((tp / union).mean())")]),
    ],
    "soft_iou": [
        ("the backward treats the union as a constant (the quotient rule's second term forgotten)",
         [("d_j = (y * u - i * (1 - y)) / u ** 2", "d_j = y / u")]),
        ("void pixels counted: their probabilities enter the union",
         [("kept = p * keep", "kept = p")]),
        ("void pixels dropped in the forward but given a gradient in the backward",
         [("return -g * d_j * keep / y.shape[1], None", "return -g * d_j / y.shape[1], None")]),
        ("eps only in the denominator: an absent class scores 0, not 1",
         [("intersection = (kept * y).sum(axis=(0, 2, 3)) + eps", "intersection = (kept * y).sum(axis=(0, 2, 3))")]),
        ("a mean of per-image IoUs (sums over H and W only), not one IoU per class over the batch",
         [("intersection = (kept * y).sum(axis=(0, 2, 3)) + eps", "intersection = (kept * y).sum(axis=(2, 3)) + eps"),
          ("union = (kept + y - kept * y).sum(axis=(0, 2, 3)) + eps", "union = (kept + y - kept * y).sum(axis=(2, 3)) + eps"),
          ("i, u = intersection[:, None, None], union[:, None, None]",
           "i, u = intersection[:, :, None, None], union[:, :, None, None]"),
          ("return -g * d_j * keep / y.shape[1], None",
           "return -g * d_j * keep / y.shape[1] / y.shape[0], None")]),
        ("the backward forgets the 1 / C of the mean over classes",
         [("return -g * d_j * keep / y.shape[1], None", "return -g * d_j * keep, None")]),
    ],
}

# Found by a review in which a helper wrote its own wrong answers as a learner would; the
# grader accepted each until the strategies drew what exposes it.
MUTANTS['confusion_matrix'] += [
    ('void pixels dropped as target < num_classes (255 and C work, a void label of -1 is counted)',
     [('keep = t != ignore_index', 'keep = t < num_classes')]),
]
