"""The Cityscapes label table, the synthetic Cityscapes-format generator and the dataset reader."""
import json
import os
import shutil
from pathlib import Path

import numpy
import pytest
from PIL import Image

from minitorch_seg import backend as shim
from minitorch_seg.data import (CLASS_NAMES, Cityscapes, DatasetError, default_dataset_root, generate_scene, labels,
                                make_dataset)
from minitorch_seg.data.generate import GENERATOR_VERSION, TRAIN_CITIES, VAL_CITIES, sample_name
from minitorch_seg.data.render import rasterize

pytestmark = pytest.mark.data

SMALL = dict(train=3, val=4, size=(64, 128))


# ---- helpers ---------------------------------------------------------------------------------------
def miou(target, prediction, n=19):
    """mIoU from a confusion matrix (numpy bincount); classes absent from both are left out."""
    keep = target != 255
    matrix = numpy.bincount(target[keep] * n + prediction[keep], minlength=n * n).reshape(n, n)
    inter = numpy.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - inter
    return float((inter[union > 0] / union[union > 0]).mean())


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory):
    """A private cache folder: the tests never touch the user's real ~/.cache."""
    home = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def small(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("small") / "synth", seed=3, **SMALL)


@pytest.fixture(scope="session")
def default_val(cache_home):
    """The default dataset's val split (50 images at 128x256, seed 0), as stacked arrays."""
    root = make_dataset(train=0, val=50)
    dataset = Cityscapes(root, "val")
    images, targets = zip(*(dataset[i] for i in range(len(dataset))))
    return numpy.stack(images), numpy.stack(targets)


@pytest.fixture
def copy_of(small, tmp_path):
    """A private copy of the small dataset, to break."""
    root = tmp_path / "copy"
    shutil.copytree(small, root)
    return root


# ---- the label table -------------------------------------------------------------------------------
def test_table_has_the_34_labels_and_license_plate():
    assert len(labels.LABELS) == 35
    assert [label.id for label in labels.LABELS[:34]] == list(range(34))
    plate = labels.NAME_TO_LABEL["license plate"]
    assert (plate.id, plate.train_id, plate.category, plate.color) == (-1, -1, "vehicle", (0, 0, 142))
    assert labels.Label._fields == ("name", "id", "train_id", "category", "category_id", "has_instances",
                                    "ignore_in_eval", "color")


def test_the_19_training_classes_in_order():
    assert CLASS_NAMES == ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                           "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                           "motorcycle", "bicycle")
    assert labels.TRAIN_ID_PALETTE.shape == (19, 3) and labels.TRAIN_ID_PALETTE.dtype == numpy.uint8


@pytest.mark.parametrize("name, id, train_id, category, color", [
    ("unlabeled", 0, 255, "void", (0, 0, 0)),
    ("road", 7, 0, "flat", (128, 64, 128)),
    ("sidewalk", 8, 1, "flat", (244, 35, 232)),
    ("parking", 9, 255, "flat", (250, 170, 160)),
    ("building", 11, 2, "construction", (70, 70, 70)),
    ("traffic sign", 20, 7, "object", (220, 220, 0)),
    ("sky", 23, 10, "sky", (70, 130, 180)),
    ("person", 24, 11, "human", (220, 20, 60)),
    ("car", 26, 13, "vehicle", (0, 0, 142)),
    ("caravan", 29, 255, "vehicle", (0, 0, 90)),
    ("bicycle", 33, 18, "vehicle", (119, 11, 32)),
])
def test_official_values(name, id, train_id, category, color):
    label = labels.NAME_TO_LABEL[name]
    assert (label.id, label.train_id, label.category, label.color) == (id, train_id, category, color)


def test_table_equals_cityscapesscripts():
    official = pytest.importorskip("cityscapesscripts.helpers.labels")
    assert [tuple(label) for label in official.labels] == [tuple(label) for label in labels.LABELS]


def test_lookup_maps_void_and_unknown_ids_to_255(backend):
    ids = numpy.array([0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, -1, 34, 200, 255, 7, 26, 33])
    expected = [255] * 19 + [0, 13, 18]
    out = labels.label_ids_to_train_ids(shim.to_backend(ids))
    assert shim.backend_name(out) == backend
    assert shim.to_numpy(out).tolist() == expected
    as_uint8 = labels.label_ids_to_train_ids(numpy.arange(256, dtype=numpy.uint8))
    assert as_uint8.dtype == numpy.uint8 and as_uint8[7] == 0 and as_uint8[255] == 255


def test_train_ids_round_trip_and_colours(backend):
    train_ids = numpy.arange(19)
    ids = labels.train_ids_to_label_ids(shim.to_backend(train_ids))
    assert shim.to_numpy(ids).tolist() == [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    assert shim.to_numpy(labels.label_ids_to_train_ids(ids)).tolist() == train_ids.tolist()
    colors = shim.to_numpy(labels.train_ids_to_colors(shim.to_backend(numpy.array([0, 18, 255]))))
    assert colors.tolist() == [[128, 64, 128], [119, 11, 32], list(labels.IGNORE_COLOR)]
    assert labels.train_ids_to_label_ids(numpy.array([255])).tolist() == [0]


# ---- the generator ---------------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes(small, tmp_path):
    again = make_dataset(tmp_path / "again", seed=3, **SMALL)
    names = files_under(small)
    assert names == files_under(again)
    for name in names:
        assert (small / name).read_bytes() == (again / name).read_bytes(), name


def test_another_seed_gives_other_images(small, tmp_path):
    other = make_dataset(tmp_path / "other", seed=4, **SMALL)
    name = next(n for n in files_under(small) if n.endswith("_leftImg8bit.png"))
    assert (small / name).read_bytes() != (other / name).read_bytes()


def test_one_image_can_be_made_again_alone(small):
    scene = generate_scene("val", 2, seed=3, size=SMALL["size"])
    city, _, _, stem = sample_name("val", 2)
    on_disk = numpy.asarray(Image.open(small / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png"))
    assert numpy.array_equal(scene.image, on_disk)


def test_layout_and_names_split_on_underscores(small):
    for split, count, cities in (("train", 3, TRAIN_CITIES), ("val", 4, VAL_CITIES)):
        images = sorted((small / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
        assert len(images) == count
        for image in images:
            city, seq, frame, kind = image.name[:-len(".png")].split("_")
            assert city in cities and city == image.parent.name
            assert len(seq) == 6 and seq.isdigit() and len(frame) == 6 and frame.isdigit() and kind == "leftImg8bit"
            gt = small / "gtFine" / split / city
            for suffix in ("labelIds.png", "color.png", "instanceIds.png", "polygons.json"):
                assert (gt / f"{city}_{seq}_{frame}_gtFine_{suffix}").is_file()
    assert (small / "DATASET.md").read_text().count("not Cityscapes") == 1


def test_official_file_name_parser(small):
    helpers = pytest.importorskip("cityscapesscripts.helpers.csHelpers")
    for path in (small / "gtFine").rglob("*_gtFine_instanceIds.png"):
        info = helpers.getCsFileInfo(str(path))
        assert (info.type, info.type2, info.ext) == ("gtFine", "instanceIds", "png")
        assert path.name.startswith(f"{info.city}_{info.sequenceNb}_{info.frameNb}_")


def test_instance_ids_are_16_bit_id_times_1000_plus_k(small):
    seen_instances = 0
    for path in (small / "gtFine").rglob("*_gtFine_instanceIds.png"):
        image = Image.open(path)
        assert image.mode == "I;16"
        instances = numpy.asarray(image).astype(numpy.int64)
        label_ids = numpy.asarray(Image.open(str(path).replace("instanceIds", "labelIds"))).astype(numpy.int64)
        single = instances >= 1000
        assert numpy.array_equal(instances[~single], label_ids[~single])
        assert numpy.array_equal(instances[single] // 1000, label_ids[single])
        has_instances = numpy.array([labels.ID_TO_LABEL[i].has_instances for i in range(34)])
        assert has_instances[label_ids[single]].all()
        seen_instances += len(numpy.unique(instances[single]))
    assert seen_instances > 5


def test_polygons_reproduce_the_label_images(small):
    for path in (small / "gtFine").rglob("*_gtFine_polygons.json"):
        annotation = json.loads(path.read_text())
        assert set(annotation) == {"imgHeight", "imgWidth", "objects"}
        assert (annotation["imgHeight"], annotation["imgWidth"]) == SMALL["size"]
        for obj in annotation["objects"]:
            assert all(isinstance(c, int) for point in obj["polygon"] for c in point)
        label_ids, instance_ids, _ = rasterize(annotation)
        stem = str(path)[:-len("polygons.json")]
        assert numpy.array_equal(label_ids, numpy.asarray(Image.open(stem + "labelIds.png")))
        assert numpy.array_equal(instance_ids, numpy.asarray(Image.open(stem + "instanceIds.png")))


HANDMADE = {"imgHeight": 6, "imgWidth": 8, "objects": [
    {"label": "road", "polygon": [[0, 3], [7, 3], [7, 5], [0, 5]]},
    {"label": "car", "polygon": [[1, 1], [3, 1], [3, 4], [1, 4]]},
    {"label": "license plate", "polygon": [[2, 3], [3, 3], [3, 4], [2, 4]]},
    {"label": "cargroup", "polygon": [[5, 0], [7, 0], [7, 2], [5, 2]]},
    {"label": "car", "polygon": [[4, 2], [6, 2], [5, 5]]},
    {"label": "person", "polygon": [[0, 0], [1, 0], [1, 1]], "deleted": 1},
]}


def test_rasterize_groups_plates_and_deleted_objects():
    label_ids, instance_ids, _ = rasterize(HANDMADE)
    assert label_ids[3, 2] == 26 and instance_ids[3, 2] == 26000      # the plate is never drawn
    assert label_ids[0, 6] == 26 and instance_ids[0, 6] == 26          # a group has the bare class id
    assert instance_ids[3, 5] == 26001                                  # the second car
    assert label_ids[0, 0] == 0 and instance_ids[4, 0] == 7            # deleted person; road


def test_rasterize_agrees_with_the_official_scripts(tmp_path):
    pytest.importorskip("cityscapesscripts")
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    from cityscapesscripts.preparation.json2labelImg import createLabelImage
    (tmp_path / "a.json").write_text(json.dumps(HANDMADE))
    annotation = Annotation()
    annotation.fromJsonFile(str(tmp_path / "a.json"))
    label_ids, instance_ids, _ = rasterize(HANDMADE)
    assert numpy.array_equal(numpy.asarray(createLabelImage(annotation, "ids")), label_ids)
    assert numpy.array_equal(numpy.asarray(createInstanceImage(annotation, "ids")), instance_ids)


def test_official_json2labelImg_reproduces_the_label_images(small, tmp_path):
    pytest.importorskip("cityscapesscripts")
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    from cityscapesscripts.preparation.json2labelImg import json2labelImg
    for path in (small / "gtFine").rglob("*_gtFine_polygons.json"):
        stem = str(path)[:-len("polygons.json")]
        json2labelImg(str(path), str(tmp_path / "ids.png"), "ids")
        json2labelImg(str(path), str(tmp_path / "color.png"), "color")
        assert numpy.array_equal(numpy.asarray(Image.open(tmp_path / "ids.png")),
                                 numpy.asarray(Image.open(stem + "labelIds.png")))
        assert numpy.array_equal(numpy.asarray(Image.open(tmp_path / "color.png")),
                                 numpy.asarray(Image.open(stem + "color.png")))
        # json2instanceImg itself cannot save: Pillow 13 no longer writes mode "I" PNGs
        annotation = Annotation()
        annotation.fromJsonFile(str(path))
        official = numpy.asarray(createInstanceImage(annotation, "ids")).astype(numpy.int64)
        assert numpy.array_equal(official, numpy.asarray(Image.open(stem + "instanceIds.png")).astype(numpy.int64))


def test_make_dataset_caches_in_the_cache_folder(cache_home):
    root = make_dataset(train=1, val=1, size=(32, 64), seed=9)
    assert root == default_dataset_root(train=1, val=1, size=(32, 64), seed=9)
    assert root.parent == cache_home / "minitorch_seg"
    assert root.name == f"cityscapes-synth-v{GENERATOR_VERSION}-seed9-32x64-1-1"
    stamp = (root / "DATASET.md").stat().st_mtime_ns
    lines = []
    assert make_dataset(train=1, val=1, size=(32, 64), seed=9, log=lines.append) == root
    assert (root / "DATASET.md").stat().st_mtime_ns == stamp and "already made" in lines[0]
    assert not [p for p in root.parent.iterdir() if ".tmp-" in p.name]


def test_make_dataset_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("not a dataset")
    with pytest.raises(DatasetError, match="not a generated dataset"):
        make_dataset(tmp_path, **SMALL)
    with pytest.raises(ValueError, match="at least 32x32"):
        make_dataset(tmp_path / "tiny", size=(8, 8))


# ---- the reader ------------------------------------------------------------------------------------
def test_reader_pairs_images_and_labels_by_stem(small):
    dataset = Cityscapes(small, "val")
    assert len(dataset) == 4
    for image, target in zip(dataset.images, dataset.targets):
        assert Path(image).name.replace("_leftImg8bit.png", "") == Path(target).name.replace("_gtFine_labelIds.png", "")
    image, target = dataset[0]
    assert image.shape == SMALL["size"] + (3,) and image.dtype == numpy.uint8
    assert target.shape == SMALL["size"] and target.dtype == numpy.int64
    assert set(numpy.unique(target).tolist()) <= set(range(19)) | {255}


def test_label_formats_and_train_id_files(copy_of):
    ids = Cityscapes(copy_of, "val", label_format="labelIds")[1][1]
    train = Cityscapes(copy_of, "val")[1][1]
    assert ids.max() <= 33 and numpy.array_equal(train, labels.label_ids_to_train_ids(ids))
    target = Path(Cityscapes(copy_of, "val").targets[1])
    Image.fromarray(numpy.full(SMALL["size"], 5, numpy.uint8)).save(
        str(target).replace("_labelIds.png", "_labelTrainIds.png"))
    assert (Cityscapes(copy_of, "val")[1][1] == 5).all()
    assert numpy.array_equal(Cityscapes(copy_of, "val", label_format="labelIds")[1][1], ids)


def test_transforms_get_the_pair(small):
    dataset = Cityscapes(small, "train", transforms=lambda image, target: (image.shape, target.max()))
    shape, top = dataset[0]
    assert shape == SMALL["size"] + (3,) and top <= 255


def test_missing_folders_name_the_folder(copy_of):
    with pytest.raises(DatasetError, match=r"leftImg8bit/test does not exist.*make-data"):
        Cityscapes(copy_of, "test")
    shutil.rmtree(copy_of / "gtFine" / "val")
    with pytest.raises(DatasetError, match=r"gtFine/val does not exist"):
        Cityscapes(copy_of, "val")
    with pytest.raises(DatasetError, match="split must be one of"):
        Cityscapes(copy_of, "training")


def test_image_without_label(copy_of):
    dataset = Cityscapes(copy_of, "val")
    Path(dataset.targets[2]).unlink()
    with pytest.raises(DatasetError, match="no label for image") as error:
        Cityscapes(copy_of, "val")
    assert dataset.images[2] in str(error.value) and dataset.targets[2] in str(error.value)


def test_unreadable_png_names_the_file(copy_of):
    dataset = Cityscapes(copy_of, "val")
    Path(dataset.images[0]).write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    with pytest.raises(DatasetError, match="cannot read image") as error:
        dataset[0]
    assert dataset.images[0] in str(error.value)
    Path(dataset.targets[1]).write_bytes(b"")
    with pytest.raises(DatasetError, match="cannot read label"):
        dataset[1]


def test_label_value_outside_the_table(copy_of):
    dataset = Cityscapes(copy_of, "val")
    bad = numpy.zeros(SMALL["size"], numpy.uint8)
    bad[3, 4] = 57
    Image.fromarray(bad).save(dataset.targets[3])
    with pytest.raises(DatasetError, match="holds the value 57, which is not a Cityscapes label id") as error:
        dataset[3]
    assert dataset.targets[3] in str(error.value)
    assert isinstance(error.value, ValueError)


# ---- guards on the default val split ---------------------------------------------------------------
def test_at_least_12_classes_cover_a_thousandth_of_the_pixels(default_val):
    _, targets = default_val
    shares = numpy.bincount(targets[targets != 255], minlength=19) / targets.size
    assert (shares >= 0.001).sum() >= 12, dict(zip(CLASS_NAMES, shares.round(4)))


def test_a_position_prior_scores_at_most_035(default_val):
    _, targets = default_val
    counts = numpy.stack([(targets == c).sum(0) for c in range(19)])   # (19, H, W)
    prior = counts.argmax(0)
    score = miou(targets, numpy.broadcast_to(prior, targets.shape))
    assert score <= 0.35, score


def test_a_colour_classifier_is_far_from_solving_it(default_val):
    images, targets = default_val
    keep = targets != 255
    pixels, classes = images[keep].astype(numpy.float64), targets[keep]
    counts = numpy.bincount(classes, minlength=19)
    sums = numpy.stack([numpy.bincount(classes, weights=pixels[:, k], minlength=19) for k in range(3)], axis=1)
    means = numpy.where(counts[:, None] > 0, sums / numpy.maximum(counts, 1)[:, None], 1e4).astype(numpy.float32)
    flat = images.reshape(-1, 3).astype(numpy.float32)
    distances = (means ** 2).sum(1) - 2 * flat @ means.T   # (N, 19): |x - m|^2 less |x|^2, the same for all m
    nearest = distances.argmin(1).reshape(targets.shape)
    score = miou(targets, nearest)
    assert score <= 0.5, score   # measured: see DATASET.md; the benchmark compares it with the U-Net
