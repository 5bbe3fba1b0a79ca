"""A third-party-style PyTorch segmentation script, written once against ``torch``, run with torch and
with minitorch_seg in its place; the losses, learning rates, metrics and final weights must agree in
float64.

The script (``make_model``, ``dice_loss``, ``train_and_evaluate``) is plain PyTorch: only the module
it is handed changes. It uses what typical U-Net repositories use: ``nn.ReLU(inplace=True)``,
``padding_mode='zeros'``, BatchNorm, PReLU, a transposed convolution, a dice loss from ``softmax`` and
``one_hot``, a ``DataLoader`` over a ``TensorDataset``, ``RMSprop`` with ``ReduceLROnPlateau``,
``clip_grad_norm_``, a ``GradScaler`` (disabled off the GPU), an EMA copy updated in place under
``no_grad``, ``save``/``load`` of the best checkpoint, and evaluation under ``inference_mode``.

The one thing passed in rather than drawn inside is the sample order: random draws differ between
the two libraries (another generator), so the loader gets the same ``sampler`` order on both sides.
"""
import copy

import numpy
import pytest

import minitorch_seg

pytestmark = pytest.mark.nn

NUM_CLASSES = 3
EPOCHS = 3


# ---- the "model file" ---------------------------------------------------------------------------------
def make_model(torch):
    nn = torch.nn

    class DoubleConv(nn.Module):
        """(conv => BN => ReLU) * 2"""

        def __init__(self, in_channels, out_channels, mid_channels=None):
            super().__init__()
            mid_channels = mid_channels or out_channels
            self.double_conv = nn.Sequential(
                nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False, padding_mode="zeros"),
                nn.BatchNorm2d(mid_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False, padding_mode="zeros"),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )

        def forward(self, x):
            return self.double_conv(x)

    class Up(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

        def forward(self, x1, x2):
            x1 = self.up(x1)
            return self.conv(torch.cat([x2, x1], dim=1))

    class TinyUNet(nn.Module):
        def __init__(self, n_channels, n_classes):
            super().__init__()
            self.inc = DoubleConv(n_channels, 4)
            self.down = nn.Sequential(nn.MaxPool2d(2), DoubleConv(4, 8))
            self.up = Up(8, 4)
            self.act = nn.PReLU(4)
            self.drop = nn.Dropout2d(p=0.0)
            self.outc = nn.Conv2d(4, n_classes, kernel_size=1)

        def forward(self, x):
            x1 = self.inc(x)
            x2 = self.down(x1)
            x = self.act(self.up(x2, x1))
            return self.outc(self.drop(x)).contiguous()

    return TinyUNet


# ---- the "losses file" ---------------------------------------------------------------------------------
def dice_loss(torch, logits, target, num_classes, eps=1e-6):
    F = torch.nn.functional
    probs = F.softmax(logits, dim=1)
    one_hot = F.one_hot(target, num_classes).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    intersection = torch.sum(probs * one_hot, dims)
    cardinality = torch.sum(probs + one_hot, dims)
    dice = (2.0 * intersection + eps) / (cardinality + eps)
    return 1.0 - dice.mean()


# ---- the "training script" ------------------------------------------------------------------------------
def train_and_evaluate(torch, images, masks, initial_state, order, workdir):
    nn, F = torch.nn, torch.nn.functional
    from_numpy = torch.from_numpy
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    dataset = torch.utils.data.TensorDataset(from_numpy(images), from_numpy(masks))
    train_set = torch.utils.data.Subset(dataset, list(range(6)))
    val_set = torch.utils.data.Subset(dataset, [6, 7])
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=2, sampler=order, num_workers=0,
                                               drop_last=True)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=2, shuffle=False)

    model = make_model(torch)(n_channels=3, n_classes=NUM_CLASSES).to(device=device, dtype=torch.float64)
    model.load_state_dict({k: torch.as_tensor(v) for k, v in initial_state.items()})
    model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.requires_grad_(False)

    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, weight_decay=1e-4, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=0,
                                                           threshold=0.05)
    scaler = torch.amp.GradScaler("cuda", enabled=torch.cuda.is_available() and False)

    history = {"loss": [], "grad_norm": [], "val_loss": [], "lr": [], "iou": []}
    best = float("inf")
    for epoch in range(EPOCHS):
        model.train()
        for batch_images, batch_masks in train_loader:
            batch_images = batch_images.to(device=device, dtype=torch.float64, non_blocking=True)
            batch_masks = batch_masks.to(device).long()
            optimizer.zero_grad(set_to_none=True)
            with torch.amp.autocast(device_type=device.type, enabled=False):
                logits = model(batch_images)
                loss = F.cross_entropy(logits, batch_masks)
                loss += dice_loss(torch, logits, batch_masks, NUM_CLASSES)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            scaler.step(optimizer)
            scaler.update()
            with torch.no_grad():
                for e, p in zip(ema.parameters(), model.parameters()):
                    e.mul_(0.9).add_(p.detach(), alpha=0.1)
            history["loss"].append(loss.item())
            history["grad_norm"].append(float(norm))

        val_loss, ious = evaluate(torch, model, val_loader, device)
        scheduler.step(val_loss)
        history["val_loss"].append(val_loss)
        history["iou"].append(ious)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        if val_loss < best:
            best = val_loss
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                        "best": best}, f"{workdir}/best.pt")

    checkpoint = torch.load(f"{workdir}/best.pt", map_location="cpu", weights_only=True)
    restored = make_model(torch)(n_channels=3, n_classes=NUM_CLASSES).double()
    restored.load_state_dict(checkpoint["model"])
    restored_loss, _ = evaluate(torch, restored.to(device), val_loader, device)
    return {
        "history": history,
        "best_epoch": checkpoint["epoch"],
        "restored_loss": restored_loss,
        "weights": {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()},
        "ema": {k: v.detach().cpu().numpy() for k, v in ema.state_dict().items()},
    }


def evaluate(torch, model, loader, device):
    F = torch.nn.functional
    model.eval()
    total, ious = 0.0, []
    with torch.inference_mode():
        for batch_images, batch_masks in loader:
            logits = model(batch_images.to(device))
            assert not torch.isnan(logits).any()
            total += F.cross_entropy(logits, batch_masks.to(device)).item()
            pred = logits.argmax(dim=1)
            for c in range(NUM_CLASSES):
                inter = ((pred == c) & (batch_masks == c)).sum()
                union = ((pred == c) | (batch_masks == c)).sum()
                ious.append((inter / union.clamp(min=1)).item())
    return total / len(loader), ious


# ---- running it both ways -----------------------------------------------------------------------------------
def data():
    rng = numpy.random.default_rng(0)
    images = rng.standard_normal((8, 3, 16, 16))
    masks = numpy.digitize(images[:, 0] + 0.5 * images[:, 1], [-0.5, 0.5]).astype(numpy.int64)   # learnable
    return images, masks


def test_the_same_script_trains_the_same_with_torch_and_minitorch_seg(torch, tmp_path):
    torch.set_default_dtype(torch.float32)              # both libraries start from their usual default
    images, masks = data()
    minitorch_seg.manual_seed(0)
    initial = make_model(minitorch_seg)(n_channels=3, n_classes=NUM_CLASSES).double()
    initial_state = {k: v.numpy().copy() for k, v in initial.state_dict().items()}
    order = [int(i) for i in numpy.random.default_rng(1).permutation(6)]
    (tmp_path / "mt").mkdir()
    (tmp_path / "torch").mkdir()

    ours = train_and_evaluate(minitorch_seg, images, masks, initial_state, order, tmp_path / "mt")
    theirs = train_and_evaluate(torch, images, masks, initial_state, order, tmp_path / "torch")

    assert len(ours["history"]["loss"]) == EPOCHS * 3
    for key in ("loss", "grad_norm", "val_loss", "restored_loss"):
        got = ours["history"][key] if key in ours["history"] else ours[key]
        expected = theirs["history"][key] if key in theirs["history"] else theirs[key]
        numpy.testing.assert_allclose(got, expected, rtol=1e-9, err_msg=key)
    numpy.testing.assert_allclose(ours["history"]["iou"], theirs["history"]["iou"], rtol=1e-12)
    assert ours["history"]["lr"] == theirs["history"]["lr"]
    assert ours["history"]["lr"][-1] < 1e-3                                      # the plateau rule did act
    assert ours["best_epoch"] == theirs["best_epoch"]
    assert ours["history"]["loss"][-1] < ours["history"]["loss"][0]              # it did learn
    assert list(ours["weights"]) == list(theirs["weights"])                       # the same state_dict names
    for name in ours["weights"]:
        numpy.testing.assert_allclose(ours["weights"][name], theirs["weights"][name], rtol=1e-8, atol=1e-12,
                                      err_msg=name)
        numpy.testing.assert_allclose(ours["ema"][name], theirs["ema"][name], rtol=1e-8, atol=1e-12, err_msg=name)
