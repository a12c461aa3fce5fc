"""Built-in synthetic street scenes, generated once into a cache in the Cityscapes layout.

The dataset is a pure function of its parameters: image ``i`` of a split is drawn
from ``numpy.random.default_rng([seed, split_index, i])``, and the cache directory's
name carries a hash of the parameters and the generator version, so changing either
lands in a new directory instead of silently reusing stale files.

Writing is atomic: everything goes into a hidden staging directory beside the
target, the marker file is written last, and one ``os.rename`` publishes it. A
crashed or concurrent writer never leaves a half-written dataset under the final
name (a killed one may leave a ``.synthetic-cityscapes-*.partial`` directory, which
is never read and may be deleted).

Labels are real Cityscapes label ids, so :class:`CityscapesDataset` maps them to the
19 train ids; only :data:`SYNTHETIC_TRAIN_IDS` ever occur, so compute mIoU over the
classes present.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from archsearch.data.cityscapes import CITYSCAPES_CLASS_NAMES
from archsearch.data.scenes import SCENE_CLASS_NAMES, render_scene
from archsearch.errors import SpecError

GENERATOR_VERSION = 1
"""Bump whenever scenes.py draws different pictures for the same parameters."""

MARKER_NAME = "archsearch-synthetic.json"
SYNTHETIC_TRAIN_IDS = tuple(sorted(CITYSCAPES_CLASS_NAMES.index(name) for name in SCENE_CLASS_NAMES))
"""The 19-class train ids that synthetic labels can contain."""

_CITY = "synth"
_SPLITS = ("train", "val")


def _checked_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError("synthetic dataset parameter is out of range", path=name, value=value,
                        allowed=f"an integer >= {minimum}")
    return value


def _is_complete(directory: Path, parameters: dict[str, int]) -> bool:
    try:
        return json.loads((directory / MARKER_NAME).read_text()) == parameters
    except (OSError, ValueError):
        return False


def _write_split(directory: Path, split: str, split_index: int, parameters: dict[str, int]) -> None:
    image_directory = directory / "leftImg8bit" / split / _CITY
    label_directory = directory / "gtFine" / split / _CITY
    image_directory.mkdir(parents=True)
    label_directory.mkdir(parents=True)
    for index in range(parameters[f"num_{split}"]):
        scene = render_scene(np.random.default_rng([parameters["seed"], split_index, index]),
                             parameters["height"], parameters["width"])
        stem = f"{_CITY}_{index:06d}_000019"
        Image.fromarray(scene.image).save(image_directory / f"{stem}_leftImg8bit.png")
        Image.fromarray(scene.label_ids).save(label_directory / f"{stem}_gtFine_labelIds.png")


def _write_dataset(directory: Path, parameters: dict[str, int]) -> None:
    """Render every split into ``directory`` and write the marker last (not atomic by itself)."""
    for split_index, split in enumerate(_SPLITS):
        _write_split(directory, split, split_index, parameters)
    (directory / MARKER_NAME).write_text(json.dumps(parameters, sort_keys=True, indent=2) + "\n")


def ensure_synthetic_cityscapes(cache_root: Path, *, seed: int = 0, num_train: int = 200, num_val: int = 50,
                                height: int = 128, width: int = 256) -> Path:
    """Return the root of the synthetic dataset for these parameters, generating it on first use."""
    parameters = {
        "generator_version": GENERATOR_VERSION,
        "seed": _checked_int("seed", seed, 0),
        "num_train": _checked_int("num_train", num_train, 1),
        "num_val": _checked_int("num_val", num_val, 1),
        "height": _checked_int("height", height, 32),
        "width": _checked_int("width", width, 32),
    }
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:12]
    cache_root = Path(cache_root)
    target = cache_root / f"synthetic-cityscapes-{digest}"
    if _is_complete(target, parameters):
        return target
    if target.exists():
        raise SpecError("cache directory exists but is not a complete synthetic dataset", path=str(target),
                        allowed=f"a directory with a matching {MARKER_NAME}; delete it to regenerate")
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=cache_root))
    staging.chmod(0o755)  # mkdtemp makes it private; the published dataset should not be
    try:
        _write_dataset(staging, parameters)
        try:
            os.rename(staging, target)
        except OSError:
            if not _is_complete(target, parameters):  # not simply another writer finishing first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
