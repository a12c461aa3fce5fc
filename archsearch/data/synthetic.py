"""Built-in synthetic street scenes, generated once into a cache in the Cityscapes layout.

The dataset is a pure function of its parameters: image ``i`` of a split is drawn
from ``numpy.random.default_rng([seed, split_index, i])``, and the cache directory's
name carries a hash of the parameters and the generator version, so changing either
lands in a new directory instead of silently reusing stale files.

Writing is atomic: everything goes into a hidden staging directory beside the
target, the marker file is written last, and one ``os.rename`` publishes it. A
crashed or concurrent writer never leaves a half-written dataset under the final
name. A killed one leaves a ``.synthetic-cityscapes-*.<host>-<pid>.*.partial`` directory, which is
never read; the next generation on that host deletes it once its writer is gone.

Generation is bounded: at most MAX_IMAGES scenes of at most MAX_SIDE pixels a side and
MAX_PIXELS pixels in all, refused before anything is written, as is a dataset larger than the
free disk; its cost (disk and time, from ``generation_cost``) is printed when it starts, if it
will take NOTICE_SECONDS or more.

Labels are real Cityscapes label ids, so :class:`CityscapesDataset` maps them to the
19 train ids; only :data:`SYNTHETIC_TRAIN_IDS` ever occur, so compute mIoU over the
classes present.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from archsearch.data.classes import CITYSCAPES_CLASS_NAMES
from archsearch.data.scenes import SCENE_CLASS_NAMES, render_scene
from archsearch.errors import SpecError
from archsearch.resources import format_bytes, process_alive

GENERATOR_VERSION = 1
"""Bump whenever scenes.py draws different pictures for the same parameters."""

MARKER_NAME = "archsearch-synthetic.json"
SYNTHETIC_TRAIN_IDS = tuple(sorted(CITYSCAPES_CLASS_NAMES.index(name) for name in SCENE_CLASS_NAMES))
"""The 19-class train ids that synthetic labels can contain."""

_CITY = "synth"
_SPLITS = ("train", "val")

MAX_IMAGES = 10_000
MAX_SIDE = 2048
MAX_PIXELS = 2 ** 30
"""A synthetic set is a test bench: 10,000 scenes, 2048 pixels a side and 2**30 pixels in all (about 2.5 GB
and 20 minutes) are far past any use of it, and a typo past them would fill a disk for hours."""
DISK_BYTES_PER_PIXEL = 4
"""An image's RGB and its label, uncompressed: an upper bound (the PNGs take about 2.3 bytes a pixel)."""
SECONDS_PER_PIXEL = 1.5e-6
"""Rendering and saving, measured on one CPU core (0.04 s a 128x256 scene, 0.4 s a 512x1024 one), with room."""
NOTICE_SECONDS = 10.0
"""A generation estimated to take this long is announced with its cost; a shorter one passes unremarked."""


@dataclass(frozen=True)
class GenerationCost:
    """What generating a synthetic set takes, estimated from its sizes before it starts."""

    images: int
    pixels: int
    disk_bytes: int
    seconds: float

    def describe(self) -> str:
        duration = f"{self.seconds:.0f} s" if self.seconds < 120 else f"{self.seconds / 60:.0f} min"
        return f"{self.images:,} scenes, {self.pixels:,} pixels: about {format_bytes(self.disk_bytes)} and {duration}"


def generation_cost(*, num_train: int, num_val: int, height: int, width: int) -> GenerationCost:
    images = num_train + num_val
    pixels = images * height * width
    return GenerationCost(images=images, pixels=pixels, disk_bytes=pixels * DISK_BYTES_PER_PIXEL,
                          seconds=pixels * SECONDS_PER_PIXEL)


def _checked_int(name: str, value: object, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise SpecError("synthetic dataset parameter is out of range", path=name, value=value,
                        allowed=f"an integer >= {minimum} and at most {maximum:,}")
    return value


def synthetic_parameters(*, seed: int = 0, num_train: int = 200, num_val: int = 50, height: int = 128,
                         width: int = 256) -> dict[str, int]:
    """The generator's parameters checked against their caps, without generating anything (a dry run's check)."""
    parameters = {
        "generator_version": GENERATOR_VERSION,
        "seed": _checked_int("seed", seed, 0, 2 ** 32 - 1),
        "num_train": _checked_int("num_train", num_train, 1, MAX_IMAGES),
        "num_val": _checked_int("num_val", num_val, 1, MAX_IMAGES),
        "height": _checked_int("height", height, 32, MAX_SIDE),
        "width": _checked_int("width", width, 32, MAX_SIDE),
    }
    cost = generation_cost(num_train=num_train, num_val=num_val, height=height, width=width)
    if cost.images > MAX_IMAGES or cost.pixels > MAX_PIXELS:
        raise SpecError(f"a synthetic set this large is past the generator's caps ({cost.describe()})",
                        path="num_train", value=num_train,
                        allowed=f"at most {MAX_IMAGES:,} scenes and {MAX_PIXELS:,} pixels in all (num_train + num_val "
                                "scenes of height x width)")
    return parameters


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
    parameters = synthetic_parameters(seed=seed, num_train=num_train, num_val=num_val, height=height, width=width)
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:12]
    cache_root = Path(cache_root)
    target = cache_root / f"synthetic-cityscapes-{digest}"
    if _is_complete(target, parameters):
        return target
    if target.exists():
        raise SpecError("cache directory exists but is not a complete synthetic dataset", path=str(target),
                        allowed=f"a directory with a matching {MARKER_NAME}; delete it to regenerate")
    cost = generation_cost(num_train=num_train, num_val=num_val, height=height, width=width)
    _check_free_disk(cache_root, cost)
    cache_root.mkdir(parents=True, exist_ok=True)
    _remove_dead_writers_staging(cache_root)
    if cost.seconds >= NOTICE_SECONDS:
        print(f"archsearch: generating synthetic data once into {target} ({cost.describe()})", file=sys.stderr)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_writer()}.", suffix=".partial", dir=cache_root))
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


def _check_free_disk(cache_root: Path, cost: GenerationCost) -> None:
    existing = cache_root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # nothing to measure: writing will say what is wrong
    if cost.disk_bytes > free:
        raise SpecError(f"generating it would take {cost.describe()}, more than the "
                        f"{format_bytes(free)} free on the disk of {cache_root}",
                        allowed="fewer or smaller scenes, or a dataset.root on a disk with room")


def _writer() -> str:
    """This process as a staging directory names it: host and pid (a cache may be shared by several machines)."""
    return f"{socket.gethostname().replace('.', '_')}-{os.getpid()}"


def _remove_dead_writers_staging(cache_root: Path) -> None:
    """Delete staging directories (``.NAME.HOST-PID.XXXX.partial``) of this host whose writer has gone (killed)."""
    host = _writer().rsplit("-", 1)[0]
    for staging in cache_root.glob(".synthetic-cityscapes-*.partial"):
        parts = staging.name.split(".")
        writer_host, _, pid = parts[2].rpartition("-") if len(parts) == 5 else ("", "", "")
        if writer_host != host or not pid.isdigit() or process_alive(int(pid)):
            continue  # another machine's, another naming, or its writer is still at work
        shutil.rmtree(staging, ignore_errors=True)


