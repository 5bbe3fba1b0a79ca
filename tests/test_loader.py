"""DataLoader and paired transforms: batches, order, augmentation alignment, padding, prefetch, resume."""
import inspect
import threading

import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend as shim
from minitorch_seg import functional as F
from minitorch_seg.data import DataLoader, InMemory, RandomScaleCropFlip, Resize
from minitorch_seg.data import transforms as T
from minitorch_seg.train import FirstImages
from minitorch_seg.metrics import ConfusionMatrix

pytestmark = pytest.mark.data

IGNORE = 255


def colour_of(label):
    """An image colour that encodes the label exactly (classes 0..18 and 255 give distinct colours)."""
    label = numpy.asarray(label)
    return numpy.stack([label * 13 % 256, label * 7 % 256, (label * 3 + 1) % 256], axis=-1).astype(numpy.uint8)


class BlockDataset:
    """Labels made of random rectangles of classes (some 255), images coloured by their labels.

    Sample i's label is i at pixel (0, 0) when ``mark_index`` (to see the order); sizes vary with i.
    """

    def __init__(self, n=7, size=(20, 28), vary=False, mark_index=False, fail_at=None):
        self.n, self.size, self.vary, self.mark_index, self.fail_at = n, size, vary, mark_index, fail_at
        self.loads = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise RuntimeError(f"cannot read sample {i}")
        self.loads += 1
        rng = numpy.random.default_rng(1000 + i)
        h, w = self.size
        if self.vary:
            h, w = h + i % 3, w + 2 * (i % 2)
        label = numpy.full((h, w), rng.integers(0, 19), numpy.int64)
        for _ in range(6):
            y, x = rng.integers(0, h - 3), rng.integers(0, w - 3)
            label[y:y + rng.integers(3, 9), x:x + rng.integers(3, 11)] = rng.choice([*range(19), IGNORE])
        if self.mark_index:
            label[0, 0] = i
        return colour_of(label), label


def collect(loader):
    return [(images.numpy().copy(), labels.numpy().copy()) for images, labels in loader]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for (images_a, labels_a), (images_b, labels_b) in zip(a, b):
        numpy.testing.assert_array_equal(images_a, images_b)
        numpy.testing.assert_array_equal(labels_a, labels_b)


# --------------------------------------------------------------------------------------------
# Batches, order.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_shapes_dtypes_and_normalisation(drop_last):
    dataset = BlockDataset(n=7)
    loader = DataLoader(dataset, batch_size=3, drop_last=drop_last, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    batches = collect(loader)
    assert len(loader) == len(batches) == (2 if drop_last else 3)
    assert [b[0].shape for b in batches] == [(3, 3, 20, 28)] * 2 + ([] if drop_last else [(1, 3, 20, 28)])
    assert batches[0][0].dtype == numpy.float32 and batches[0][1].dtype == numpy.int64
    image, label = dataset[4]                                   # batch 1, position 1, no shuffling
    expected = (image / 255.0 - [0.5, 0.25, 0.0]) / [0.5, 0.25, 1.0]
    numpy.testing.assert_allclose(batches[1][0][1], expected.transpose(2, 0, 1), rtol=1e-6, atol=1e-6)
    numpy.testing.assert_array_equal(batches[1][1][1], label)


def test_shuffle_order_depends_only_on_seed_and_epoch():
    def served(seed, epoch, prefetch=True):
        loader = DataLoader(BlockDataset(n=9, mark_index=True), batch_size=4, shuffle=True, seed=seed,
                            prefetch=prefetch)
        loader.set_epoch(epoch)
        return numpy.concatenate([labels[:, 0, 0] for _, labels in collect(loader)])

    numpy.testing.assert_array_equal(served(3, 2), numpy.random.default_rng([3, 2]).permutation(9))
    numpy.testing.assert_array_equal(served(3, 2), served(3, 2, prefetch=False))
    assert sorted(served(3, 5)) == list(range(9))
    assert not numpy.array_equal(served(3, 2), served(3, 5)) and not numpy.array_equal(served(3, 2), served(4, 2))
    plain = DataLoader(BlockDataset(n=9, mark_index=True), batch_size=4)
    plain.set_epoch(7)
    numpy.testing.assert_array_equal(numpy.concatenate([labels[:, 0, 0] for _, labels in collect(plain)]),
                                     numpy.arange(9))


def test_samples_of_different_sizes_need_a_transform():
    with pytest.raises(ValueError, match="differ in size"):
        collect(DataLoader(BlockDataset(n=4, vary=True), batch_size=2, prefetch=False))
    loader = DataLoader(BlockDataset(n=4, vary=True), batch_size=2, transform=RandomScaleCropFlip(16))
    assert [b[0].shape for b in collect(loader)] == [(2, 3, 16, 16)] * 2


# --------------------------------------------------------------------------------------------
# Augmentation: image and label move together; padding is 255.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_scale_crop_flip_keeps_image_and_label_aligned(seed):
    image, label = BlockDataset(vary=True)[seed % 7]
    rng = numpy.random.default_rng([5, 0, seed])
    nearest = RandomScaleCropFlip((24, 24), scale_range=(0.5, 1.5), fill=(9, 9, 9), image_interpolation="nearest")
    out_image, out_label = nearest(image, label, rng)
    assert out_image.shape == (24, 24, 3) and out_label.shape == (24, 24) and out_label.dtype == label.dtype
    padded = (out_image == 9).all(axis=-1)
    numpy.testing.assert_array_equal(out_image[~padded], colour_of(out_label[~padded]))   # pixel for pixel
    assert (out_label[padded] == IGNORE).all()

    # Bilinear: away from label edges (5 x 5 windows of one class) the colour is the class's colour.
    rng = numpy.random.default_rng([5, 0, seed])
    out_image, out_label = RandomScaleCropFlip((24, 24), scale_range=(0.5, 1.5))(image, label, rng)
    windows = numpy.lib.stride_tricks.sliding_window_view(out_label, (5, 5))
    flat = (windows == windows[..., 2:3, 2:3]).all(axis=(-1, -2)) & (windows[..., 2, 2] != IGNORE)
    inside = numpy.zeros_like(out_label, bool)
    inside[2:-2, 2:-2] = flat
    difference = numpy.abs(out_image[inside].astype(int) - colour_of(out_label[inside]).astype(int))
    assert inside.any() and difference.max() <= 1


def test_scale_crop_flip_draws_scale_position_and_flip():
    image, label = BlockDataset()[0]
    flip = RandomScaleCropFlip((20, 28), scale_range=(1.0, 1.0))
    outcomes = {flip(image, label, numpy.random.default_rng(s))[1].tobytes() for s in range(20)}
    assert outcomes == {label.tobytes(), numpy.ascontiguousarray(label[:, ::-1]).tobytes()}
    crops = {RandomScaleCropFlip(10, flip=False)(image, label, numpy.random.default_rng(s))[1].tobytes()
             for s in range(20)}
    assert len(crops) > 10


def test_padding_is_255_and_the_fill_colour():
    image, label = BlockDataset()[1]                          # 20 x 28, scaled by 0.5 -> 10 x 14
    out_image, out_label = RandomScaleCropFlip((16, 20), scale_range=(0.5, 0.5), flip=False)(
        image, label, numpy.random.default_rng(0))
    assert (out_label[10:] == IGNORE).all() and (out_label[:, 14:] == IGNORE).all()
    assert (out_image[10:] == T.MEAN_COLOUR).all() and (out_image[:, 14:] == T.MEAN_COLOUR).all()
    numpy.testing.assert_array_equal(out_label[:10, :14], label[1::2, 1::2])
    normalised = T.normalize(numpy.array(T.MEAN_COLOUR, numpy.uint8))
    assert numpy.abs(normalised).max() < 0.01                # the padding normalises to about 0


def test_resize_pairs_bilinear_and_nearest():
    image, label = BlockDataset()[2]
    small_image, small_label = Resize((10, 14))(image, label)
    assert small_image.shape == (10, 14, 3) and small_image.dtype == numpy.uint8
    numpy.testing.assert_array_equal(small_label, label[1::2, 1::2])


def test_fused_normalisation_equals_normalize_then_chw():
    images = numpy.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)).astype(numpy.uint8)
    fused = T.normalize_chw(images, mean=(0.1, 0.2, 0.3), std=(0.3, 0.2, 0.1))
    composed = T.to_chw_float32(T.normalize(images, mean=(0.1, 0.2, 0.3), std=(0.3, 0.2, 0.1)))
    assert fused.shape == (2, 3, 5, 7) and fused.dtype == numpy.float32 and fused.flags.c_contiguous
    numpy.testing.assert_allclose(fused, composed, rtol=1e-6, atol=1e-6)


def test_ignore_index_is_255_everywhere_but_in_the_loss_default():
    """The data, the metrics and the training job use Cityscapes' 255; the loss keeps torch's default
    -100, so the job passes 255 (its tests train on targets with void pixels, which -100 would refuse)."""
    assert T.IGNORE_INDEX == IGNORE == ConfusionMatrix().ignore_index
    assert inspect.signature(F.cross_entropy).parameters["ignore_index"].default == -100
    assert RandomScaleCropFlip(8).ignore_index == IGNORE


# --------------------------------------------------------------------------------------------
# Prefetching, resuming, where batches land.
# --------------------------------------------------------------------------------------------
def augmented_loader(**kwargs):
    transform = RandomScaleCropFlip((16, 24), scale_range=(0.6, 1.4))
    return DataLoader(BlockDataset(n=11, vary=True), batch_size=3, shuffle=True, seed=7, transform=transform, **kwargs)


def test_batches_identical_with_the_background_thread_on_and_off():
    runs = []
    for options in ({"prefetch": False}, {"prefetch": True}, {"prefetch": True, "prefetch_batches": 1, "workers": 3}):
        loader = augmented_loader(**options)
        loader.set_epoch(2)
        runs.append(collect(loader))
    assert_same_batches(runs[0], runs[1])
    assert_same_batches(runs[0], runs[2])
    again = augmented_loader()
    again.set_epoch(3)
    assert not numpy.array_equal(collect(again)[0][0], runs[0][0][0])     # another epoch, other crops


@pytest.mark.parametrize("prefetch", [False, True])
def test_resume_mid_epoch(prefetch):
    loader = augmented_loader(prefetch=prefetch)
    loader.set_epoch(4)
    whole = collect(loader)
    loader = augmented_loader(prefetch=prefetch)            # a fresh process, resumed at batch 2
    loader.set_epoch(4, start_batch=2)
    assert_same_batches(collect(loader), whole[2:])
    assert_same_batches(collect(loader), whole)             # the resume point applies once
    with pytest.raises(ValueError, match="start_batch"):
        loader.set_epoch(4, start_batch=len(loader) + 1)


def test_batches_land_on_the_current_backend(backend):
    loader = DataLoader(BlockDataset(n=4), batch_size=2, transform=RandomScaleCropFlip(12))
    for images, labels in loader:
        assert images.backend == labels.backend == backend
        assert isinstance(images, mt.Tensor) and images.shape == (2, 3, 12, 12)
    with shim.use_backend("numpy"):
        images, labels = next(iter(DataLoader(BlockDataset(n=2), batch_size=2, backend="strict")))
    assert images.backend == labels.backend == "strict"
    # and a batch can go straight into the metrics on that backend
    cm = ConfusionMatrix(19)
    cm.update(labels, labels)
    assert cm.compute()["pixel_accuracy"] == 1.0


def loader_threads():
    return [t for t in threading.enumerate() if t.name == "minitorch_seg-DataLoader"]


def test_background_thread_stops_when_dropped_or_failing():
    before = len(loader_threads())
    dataset = BlockDataset(n=30)
    iterator = iter(DataLoader(dataset, batch_size=2, prefetch_batches=2))
    next(iterator)
    assert len(loader_threads()) == before + 1
    iterator.close()                                        # what dropping it (break, del) does
    assert len(loader_threads()) == before
    assert dataset.loads < 30                               # it stopped loading ahead

    failing = DataLoader(BlockDataset(n=8, fail_at=5), batch_size=2)
    seen = []
    with pytest.raises(RuntimeError, match="cannot read sample 5"):
        for images, _ in failing:
            seen.append(images)
    assert len(seen) == 2 and len(loader_threads()) == before


def test_wait_seconds_is_measured_per_epoch():
    loader = DataLoader(BlockDataset(n=4), batch_size=2, transform=RandomScaleCropFlip(12))
    collect(loader)
    assert loader.wait_seconds > 0
    iterator = iter(loader)
    assert loader.wait_seconds == 0.0
    iterator.close()


# --------------------------------------------------------------------------------------------
# Samples kept decoded (``InMemory``).
# --------------------------------------------------------------------------------------------
class Writing:
    """A transform that writes into the arrays it is given, then crops them (as a careless one might)."""

    def __call__(self, image, label, rng):
        image[...], label[...] = 0, IGNORE
        return image[:16, :24], label[:16, :24]


def test_kept_samples_give_the_same_batches_and_are_read_once():
    dataset = BlockDataset(n=11, vary=True)
    kept = InMemory(dataset, max_bytes=1 << 30)
    for epoch in (2, 3, 4):
        with_cache = augmented_loader()
        with_cache.dataset = kept
        with_cache.set_epoch(epoch)
        without = augmented_loader()
        without.set_epoch(epoch)
        assert_same_batches(collect(with_cache), collect(without))
    assert dataset.loads == 11                                        # each sample decoded once
    image, label = dataset[4]
    assert kept[4][1].dtype == numpy.int64 and kept._kept[4][1].dtype == numpy.uint8   # kept in a byte
    numpy.testing.assert_array_equal(kept[-7][0], image)                # -7 is 4: kept, not read again
    numpy.testing.assert_array_equal(kept[4][1], label)
    assert dataset.loads == 12


def test_kept_samples_survive_a_transform_that_writes_into_them():
    kept = InMemory(BlockDataset(n=4), max_bytes=1 << 30)
    first = collect(DataLoader(kept, batch_size=2, transform=Writing()))
    fresh = BlockDataset(n=4)
    for index in range(4):
        numpy.testing.assert_array_equal(kept[index][0], fresh[index][0])
        numpy.testing.assert_array_equal(kept[index][1], fresh[index][1])
    assert_same_batches(first, collect(DataLoader(kept, batch_size=2, transform=Writing())))


def test_only_what_fits_the_budget_is_kept_and_wide_labels_keep_their_values():
    dataset = BlockDataset(n=6)
    one = sum(array.nbytes for array in dataset[0][:1]) + 20 * 28      # an image and a byte label
    kept = InMemory(dataset, max_bytes=2 * one)
    for _ in range(3):
        for index in range(6):
            kept[index]
    assert sorted(kept._kept) == [0, 1] and dataset.loads == 1 + 2 + 4 * 3    # the rest read every time

    class Wide:
        def __len__(self): return 2
        def __getitem__(self, i): return numpy.zeros((2, 2, 3), numpy.uint8), numpy.array([[-1, 0], [300, 7]]) * (i + 1)
        def target(self, i): return self[i][1]
    wide = InMemory(Wide(), max_bytes=1 << 20)
    for index in (0, 1, 0, 1):
        numpy.testing.assert_array_equal(wide[index][1], Wide()[index][1])
    assert wide._kept[1][1].dtype == numpy.int64

    class Cropping:                    # dataset[i] crops; target(i) is the whole label, as Cityscapes' is
        def __len__(self): return 3
        def __getitem__(self, i): return numpy.zeros((2, 2, 3), numpy.uint8), self.target(i)[:2, :2]
        def target(self, i): return numpy.arange(16).reshape(4, 4) + i
    cropping, first = InMemory(Cropping(), max_bytes=1 << 20), FirstImages(Cropping(), 2)
    for index in (0, 1, 0):
        cropping[index]
        numpy.testing.assert_array_equal(cropping.target(index), Cropping().target(index))
    kept_first = InMemory(first, max_bytes=1 << 20)
    for index in (-1, 1, -2, 0):       # -1 is item 1 of the first two, not the dataset's last
        numpy.testing.assert_array_equal(kept_first[index][1], Cropping()[index % 2][1])

    class Reusing:                     # one buffer, overwritten by each read
        buffer = numpy.zeros((2, 2, 3), numpy.uint8)
        def __len__(self): return 2
        def __getitem__(self, i):
            Reusing.buffer[...] = i + 1
            return Reusing.buffer, numpy.zeros((2, 2), numpy.int64)
    reusing = InMemory(Reusing(), max_bytes=1 << 20)
    assert [int(reusing[index][0][0, 0, 0]) for index in (0, 1, 0)] == [1, 2, 1]
