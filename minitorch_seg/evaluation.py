"""Validation: a model's mIoU, pixel accuracy, per-class IoU and loss over a data loader.

``Trainer`` calls it after every epoch, ``minitorch-seg evaluate`` on a checkpoint; it is
``minitorch_seg.train.evaluate`` too.
"""
from . import backend
from . import functional as F
from .autograd import no_grad
from .data.labels import IGNORE_INDEX, NUM_CLASSES
from .metrics import ConfusionMatrix
from .predict import full_resolution_logits


@no_grad()
def evaluate(model, loader, num_classes=NUM_CLASSES, input_scale=1.0, weight=None, keep=0):
    """Validation metrics of ``model`` over ``loader``: mIoU, pixel accuracy, per-class IoU and loss.

    The predictions and the loss are taken at the labels' full resolution (``predict.
    full_resolution_logits``); ``loss`` is the cross-entropy with class weights ``weight`` (those
    of training, so the two losses compare), averaged over the images. ``loader`` may be any
    iterable of (images, labels) batches, such as a progress bar around a DataLoader. ``keep``:
    the predictions of the first ``keep`` images, (H, W) host arrays of class indices, are
    returned too, under ``"predictions"`` (the trainer draws its samples from them).
    """
    was_training = model.training
    model.eval()
    confusion = ConfusionMatrix(num_classes, IGNORE_INDEX)
    dtype = next(iter(model.parameters())).dtype  # the loader makes float32; a float64 model needs float64 input
    loss_sum, images_seen, kept = 0.0, 0, []
    for images, labels in loader:
        if images.dtype != dtype:
            images = images.to(dtype)
        logits = full_resolution_logits(model, images, input_scale)
        loss = F.cross_entropy(logits, labels, weight=weight, ignore_index=IGNORE_INDEX)
        loss_sum, images_seen = loss_sum + loss.item() * images.shape[0], images_seen + images.shape[0]
        predictions = logits.argmax(dim=1)
        confusion.update(predictions, labels)
        if len(kept) < keep:
            kept += list(backend.to_numpy(predictions[:keep - len(kept)].data))
    model.train(was_training)
    metrics = {**confusion.compute(), "loss": loss_sum / max(images_seen, 1)}
    if keep:
        metrics["predictions"] = kept
    return metrics
