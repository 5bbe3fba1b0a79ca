"""A one-minute demo: a per-pixel classifier with 3x3 context, trained on generated toy scenes.

It stands in for ``minitorch-seg train`` until the models, the Cityscapes-format data and the
training loop land; it exercises the whole engine: factories, movement ops, linear layers,
cross-entropy with ignored pixels, Adam, a cosine schedule after a linear warm-up.
"""
import time

import numpy

from . import backend, functional as F, nn, optim
from .tensor import Tensor

CLASSES = ("sky", "road", "car")


def toy_scenes(count, height, width, seed):
    """Sky above a horizon, road below, cars on the road; colours overlap, so context matters."""
    rng = numpy.random.default_rng(seed)
    images = numpy.empty((count, 3, height, width), dtype=numpy.float32)
    labels = numpy.empty((count, height, width), dtype=numpy.int64)
    rows = numpy.arange(height)[:, None]
    cols = numpy.arange(width)[None, :]
    for i in range(count):
        horizon = rng.integers(height // 3, 2 * height // 3)
        label = numpy.where(rows < horizon, 0, 1) + 0 * cols
        for _ in range(rng.integers(1, 4)):
            top = rng.integers(horizon - 2, height - 4)
            left = rng.integers(0, width - 6)
            label[top:top + rng.integers(3, 7), left:left + rng.integers(5, 12)] = 2
        palette = numpy.array([[0.45, 0.6, 0.85], [0.45, 0.45, 0.5], [0.7, 0.3, 0.3]]) * rng.uniform(0.7, 1.2)
        images[i] = palette[label].transpose(2, 0, 1) + rng.normal(0, 0.2, (3, height, width))
        label[rows[:, 0] == horizon] = 255  # the horizon line is ambiguous: ignored, as in Cityscapes
        labels[i] = label
    return images, labels


class PixelClassifier(nn.Module):
    """Each pixel's 3x3 neighbourhood (27 numbers) through a two-layer MLP."""

    def __init__(self, hidden=32, classes=len(CLASSES)):
        super().__init__()
        self.fc1 = nn.Linear(27, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):                                                   # (N, 3, H, W)
        n, _, h, w = x.shape
        padded = F.pad(x, (1, 1, 1, 1))                                     # (N, 3, H+2, W+2)
        shifted = [padded[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
        features = F.cat(shifted, dim=1).permute(0, 2, 3, 1)                # (N, H, W, 27)
        logits = self.fc2(F.relu(self.fc1(features)))                       # (N, H, W, classes)
        return logits.permute(0, 3, 1, 2)                                   # (N, classes, H, W)


def confusion(prediction, label, classes):
    keep = label != 255
    return numpy.bincount(classes * label[keep] + prediction[keep], minlength=classes ** 2).reshape(classes, classes)


def run(steps=150, batch=8, size=32, seed=0, out=print):
    backend.manual_seed(seed)
    images, labels = toy_scenes(64, size, size, seed)
    val_images, val_labels = toy_scenes(16, size, size, seed + 1)
    model = PixelClassifier()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    warmup = optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=10)
    cosine = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps - 10)
    schedule = optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[10])
    rng = numpy.random.default_rng(seed)
    start = time.perf_counter()
    for step in range(steps):
        pick = rng.choice(len(images), batch, replace=False)
        x, y = Tensor(backend.to_backend(images[pick])), Tensor(backend.to_backend(labels[pick]))
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            out(f"step {step:4d}  loss {loss.item():.4f}")
    model.eval()
    prediction = model(Tensor(backend.to_backend(val_images))).argmax(dim=1).numpy()
    matrix = confusion(prediction, val_labels, len(CLASSES))
    iou = numpy.diag(matrix) / (matrix.sum(0) + matrix.sum(1) - numpy.diag(matrix))
    accuracy = numpy.diag(matrix).sum() / matrix.sum()
    out(f"validation: mIoU {iou.mean():.3f}, pixel accuracy {accuracy:.3f} "
        f"({', '.join(f'{c} {v:.2f}' for c, v in zip(CLASSES, iou))}); {time.perf_counter() - start:.1f} s")
    return iou.mean()
