"""predict: padding to a multiple of 32, models trained at a fraction of the resolution, and output
names that never overwrite each other."""
import numpy
import pytest

import minitorch_seg as mt
from minitorch_seg import backend as shim, nn
from minitorch_seg.predict import ImageError, full_resolution_logits, output_names, segment


def pixelwise_model(seed=0):
    """A 1x1 conv: its prediction at a pixel depends on that pixel's colour alone."""
    mt.manual_seed(seed)
    return nn.Conv2d(3, 19, 1).eval()


def blocky_images(blocks_hw, block=4, seed=0):
    """(2, 3, H, W) images constant on block x block squares."""
    coarse = numpy.random.default_rng(seed).standard_normal((2, 3) + blocks_hw).astype(numpy.float32)
    return coarse.repeat(block, axis=2).repeat(block, axis=3)


def test_at_scale_one_an_odd_sized_batch_is_padded_and_cropped_back(backend):
    model = pixelwise_model()
    images = numpy.random.default_rng(1).standard_normal((2, 3, 37, 50)).astype(numpy.float32)
    got = segment(model, mt.tensor(images))
    assert got.shape == (2, 37, 50)
    numpy.testing.assert_array_equal(shim.to_numpy(got.data), model(mt.tensor(images)).argmax(dim=1).numpy())


def test_at_half_scale_the_prediction_is_full_size_and_exact_inside_each_block(backend):
    """On images made of 4x4 squares, halving is exact (2x2 squares) and the bilinear upsampling of
    the logits gives back each square's own logits on its inner 2x2 pixels, so there a pixelwise
    model at half scale predicts what it predicts at full scale."""
    model = pixelwise_model()
    images = mt.tensor(blocky_images((10, 13)))                     # 40 x 52: no multiple of 32
    half, full = segment(model, images, input_scale=0.5), segment(model, images)
    assert half.shape == full.shape == (2, 40, 52)
    inner = numpy.zeros((40, 52), bool)
    inner[1::4] = inner[2::4] = True
    inner &= numpy.isin(numpy.arange(52) % 4, (1, 2))[None, :]
    half, full = shim.to_numpy(half.data), shim.to_numpy(full.data)
    numpy.testing.assert_array_equal(half[:, inner], full[:, inner])
    assert (half != full).any()                                       # the borders do blend: the scale is used


def test_segment_is_the_argmax_of_the_full_resolution_logits(backend):
    model = pixelwise_model()
    images = mt.tensor(blocky_images((10, 13)))
    logits = full_resolution_logits(model, images, input_scale=0.5)
    assert logits.shape == (2, 19, 40, 52)
    numpy.testing.assert_array_equal(shim.to_numpy(segment(model, images, 0.5).data),
                                     shim.to_numpy(logits.argmax(dim=1).data))


def test_output_names_keep_file_names_and_refuse_two_inputs_for_one_name(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "street.png").write_bytes(b"")
    (tmp_path / "a" / "park.jpg").write_bytes(b"")
    a, b, park = (str(tmp_path / p) for p in ("a/street.png", "b/street.png", "a/park.jpg"))
    assert output_names([a, park, a]) == {a: "street.png", park: "park.png"}   # the same file twice: once
    with pytest.raises(ImageError, match=r"a/street\.png and .*b/street\.png would both be written as street\.png"):
        output_names([a, b])
    (tmp_path / "a" / "park.png").write_bytes(b"")
    with pytest.raises(ImageError, match="would both be written as park.png"):
        output_names([park, str(tmp_path / "a" / "park.png")])
