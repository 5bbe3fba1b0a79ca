"""Lesson 3's exercises: the confusion matrix."""
from hypothesis import strategies as st

from .. import metrics
from ..testing import arguments, make_target, segmentation_targets
from .registry import Exercise, register


@st.composite
def _confusion_inputs(draw):
    classes = draw(st.integers(1, 6))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    target = draw(segmentation_targets(shape, classes, void=True, min_kept=0))
    prediction = make_target(shape, classes, seed=draw(st.integers(0, 2 ** 16)))
    return draw(arguments(prediction, target, num_classes=classes))


register(Exercise(
    name="confusion_matrix", lesson="03_evaluation", reference=metrics.confusion_matrix, inputs=_confusion_inputs,
    task="Write confusion_matrix(prediction, target, num_classes=19, ignore_index=255): class indices "
         "(N, H, W) each; return the (num_classes, num_classes) int64 array whose entry [t, p] counts the "
         "pixels of true class t predicted as p, skipping pixels whose target is ignore_index "
         "(one bincount, no loop over pixels).",
    drawn="batches 1-3, sides 1-6, 1-6 classes (some absent from a draw), void pixels from none to all.",
    gradients=False))
