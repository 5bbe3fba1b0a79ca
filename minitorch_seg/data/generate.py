"""``make-data``: a synthetic street-scene dataset written in the Cityscapes layout, from a seed.

The layout is the real one, so the same reader (``Cityscapes``) and the official scripts work on it::

    {root}/leftImg8bit/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png
    {root}/gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_labelIds.png
                                                              _gtFine_color.png      (RGBA)
                                                              _gtFine_instanceIds.png (I;16: id*1000+k)
                                                              _gtFine_polygons.json

City names contain no "_" and the numbers have six digits, because the official tools split file
names on "_". Sample ``index`` of a split belongs to city ``index % n_cities`` and gets sequence
number ``index // n_cities`` (frame 19, as most Cityscapes frames); its pixels come from
``numpy.random.default_rng([seed, split_code, index])`` and its city's style from
``default_rng([seed, 100 + city_number])``, so any one image can be made again alone
(``generate_scene``).

``make_dataset`` caches the result under ``$XDG_CACHE_HOME/minitorch_seg`` (``~/.cache`` without
it), in a folder named by the generator version, the seed and the sizes. It builds in a temporary
folder beside the target and renames it when complete, so a folder with the final name is always
whole, and an interrupted run leaves only a ``.tmp-`` folder behind. A folder that cannot be
written, checked before any image is drawn, and a write that fails midway (a full disk) raise
``outputs.OutputError``, one sentence; the partial build is removed.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy
from PIL import Image

from ..outputs import OutputError, check_writable, reason
from .cityscapes import DatasetError
from .labels import CLASS_NAMES, label_ids_to_train_ids
from .synth import Scene, city_style, render_scene

__all__ = ["GENERATOR_VERSION", "TRAIN_CITIES", "VAL_CITIES", "make_dataset", "default_dataset_root",
           "generate_scene", "sample_name", "write_sample"]

GENERATOR_VERSION = 1   # bump whenever a seed would give different pixels
TRAIN_CITIES = ("arden", "bellmoor", "corwick", "dunholt")
VAL_CITIES = ("eastmere", "fenwick", "glenport")
CITIES = {"train": TRAIN_CITIES, "val": VAL_CITIES}
_SPLIT_CODE = {"train": 0, "val": 1}
FRAME = 19
DEFAULT_SIZE = (128, 256)
_PARAMS_FILE = "synthetic.json"


def _cache_home():
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def default_dataset_root(train=300, val=50, size=DEFAULT_SIZE, seed=0):
    """Where ``make_dataset`` keeps the dataset made with these settings (it may not exist yet)."""
    height, width = _check_size(size)
    name = f"cityscapes-synth-v{GENERATOR_VERSION}-seed{int(seed)}-{height}x{width}-{int(train)}-{int(val)}"
    return _cache_home() / "minitorch_seg" / name


def sample_name(split, index):
    """(city, sequence, frame, stem) of sample ``index`` of ``split``; stem is ``city_ssssss_ffffff``."""
    cities = CITIES[split]
    city, seq = cities[index % len(cities)], index // len(cities)
    return city, seq, FRAME, f"{city}_{seq:06d}_{FRAME:06d}"


def generate_scene(split, index, seed=0, size=DEFAULT_SIZE) -> Scene:
    """Sample ``index`` of ``split`` ("train" or "val") made with ``seed``: a ``Scene``, in memory."""
    if split not in CITIES:
        raise ValueError(f"make-data generates the splits {', '.join(CITIES)}, not {split!r}.")
    city = sample_name(split, index)[0]
    city_number = (TRAIN_CITIES + VAL_CITIES).index(city)
    style = city_style(numpy.random.default_rng([int(seed), 100 + city_number]))
    rng = numpy.random.default_rng([int(seed), _SPLIT_CODE[split], int(index)])
    return render_scene(rng, size=_check_size(size), style=style)


def write_sample(root, split, index, scene):
    """Write ``scene`` as sample ``index`` of ``split`` under ``root``, in the Cityscapes layout."""
    city, _, _, stem = sample_name(split, index)
    images = Path(root) / "leftImg8bit" / split / city
    labels = Path(root) / "gtFine" / split / city
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene.image).save(images / f"{stem}_leftImg8bit.png")
    Image.fromarray(scene.label_ids).save(labels / f"{stem}_gtFine_labelIds.png")
    Image.fromarray(scene.color, mode="RGBA").save(labels / f"{stem}_gtFine_color.png")
    Image.fromarray(scene.instance_ids).save(labels / f"{stem}_gtFine_instanceIds.png")  # uint16 -> "I;16"
    with open(labels / f"{stem}_gtFine_polygons.json", "w") as file:
        json.dump(scene.annotation, file)


def _check_size(size):
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"make-data: size must be (height, width), got {size!r}.") from None
    if height < 32 or width < 32:
        raise ValueError(f"make-data: images must be at least 32x32 pixels, got {height}x{width}.")
    return height, width


def _params(train, val, size, seed):
    return {"generator_version": GENERATOR_VERSION, "seed": int(seed), "size": list(_check_size(size)),
            "train": int(train), "val": int(val)}


def _read_params(root):
    try:
        with open(Path(root) / _PARAMS_FILE) as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def make_dataset(out=None, train=300, val=50, size=DEFAULT_SIZE, seed=0, log=None):
    """Generate (or find already generated) the synthetic Cityscapes-format dataset; return its root.

    ``out``: the folder to make (default: ``default_dataset_root(...)`` in the user's cache);
    ``train``, ``val``: how many images each split gets; ``size``: (height, width);
    ``seed``: everything random follows from it; ``log``: a callable given one line of progress
    now and then (``print``, say). A folder that already holds this very dataset is returned as it
    is; one that holds anything else raises DatasetError.
    """
    log = log or (lambda line: None)
    if int(train) < 0 or int(val) < 0 or int(train) + int(val) == 0:
        raise ValueError(f"make-data: expected some images, got train={train} and val={val}.")
    params = _params(train, val, size, seed)
    root = Path(out) if out is not None else default_dataset_root(train, val, size, seed)
    if root.exists():
        found = _read_params(root)
        if found == params:
            log(f"make-data: {root} is already made.")
            return root
        if found is not None:
            raise DatasetError(f"make-data: {root} holds a dataset made with other settings ({found}); "
                               "choose another folder.")
        if not root.is_dir() or any(root.iterdir()):
            raise DatasetError(f"make-data: {root} exists and is not a generated dataset; "
                               "choose a new or empty folder.")
    check_writable(root.parent, "make-data:")   # before any work; creates nothing
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    except OSError as error:
        raise OutputError(f"make-data: cannot make {root} ({reason(error)}); choose another folder.") from None
    try:
        jobs = [("train", i) for i in range(int(train))] + [("val", i) for i in range(int(val))]
        height, width = params["size"]
        log(f"make-data: drawing {train} train and {val} val images of {height}x{width} (seed {seed}) into {root}")
        start = time.perf_counter()
        shares = numpy.zeros(256, numpy.int64)
        for done, (split, index) in enumerate(jobs, 1):
            scene = generate_scene(split, index, seed, size)
            write_sample(temporary, split, index, scene)
            if split == "val":
                shares += numpy.bincount(scene.label_ids.ravel(), minlength=256)
            if done % 100 == 0 and done < len(jobs):
                log(f"make-data: {done}/{len(jobs)} images")
        (temporary / "DATASET.md").write_text(_readme(params, shares))
        (temporary / _PARAMS_FILE).write_text(json.dumps(params) + "\n")
        temporary.chmod(0o755)   # mkdtemp made it private
        try:
            os.replace(temporary, root)   # atomic; replaces an empty folder, fails on a full one
        except OSError:
            if _read_params(root) != params:   # not a twin build that finished first
                raise
            shutil.rmtree(temporary, ignore_errors=True)
    except OSError as error:   # a full disk, a file size limit: nothing is kept, as for any failure
        shutil.rmtree(temporary, ignore_errors=True)
        raise OutputError(f"make-data: cannot write {root} ({reason(error)}); nothing was kept, so make room "
                          "and run it again.") from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    log(f"make-data: {len(jobs)} images in {time.perf_counter() - start:.1f} s")
    return root


def _readme(params, val_counts):
    height, width = params["size"]
    lines = [
        "# A synthetic street-scene dataset in the Cityscapes layout",
        "",
        "Made by `minitorch_seg.data.make_dataset` (the `minitorch-seg make-data` command): "
        "**synthetic images, not Cityscapes**. Every street, car and person here was drawn by a program.",
        "",
        f"- generator version {params['generator_version']}, seed {params['seed']}, "
        f"{params['train']} train and {params['val']} val images of {height}x{width} pixels",
        f"- cities: train {', '.join(TRAIN_CITIES)}; val {', '.join(VAL_CITIES)}",
        "- files per image: `leftImg8bit` PNG, and in `gtFine` the `_labelIds.png`, `_color.png` (RGBA), "
        "`_instanceIds.png` (16-bit: id*1000+k for instance classes, the bare id otherwise) and "
        "`_polygons.json`, from which the official `json2labelImg` reproduces `_labelIds.png` exactly",
        "- no `_labelTrainIds.png`: the reader maps label ids to the 19 train ids (255 = ignore)",
        "",
        "Each scene is a camera on a straight street: sky, buildings with windows, road with lane markings, "
        "sidewalks, terrain, trees, poles, traffic signs and lights, walls and fences, parked and moving cars, "
        "trucks, buses, people, cyclists. Each object is a labelled polygon, drawn far to near; the picture is "
        "rendered from the same polygons with per-object colours that overlap between classes, textures, "
        "shadows, haze, exposure and noise.",
        "",
    ]
    if params["val"]:
        total = max(int(val_counts.sum()), 1)
        train_counts = numpy.bincount(label_ids_to_train_ids(numpy.arange(256)), weights=val_counts, minlength=256)
        shares = ", ".join(f"{name} {100 * train_counts[t] / total:.2f}%" for t, name in enumerate(CLASS_NAMES))
        ignored = 100 * train_counts[255] / total
        lines += [f"Pixel shares of the 19 classes on val: {shares}; ignored (void) {ignored:.2f}%.", ""]
    return "\n".join(lines)
