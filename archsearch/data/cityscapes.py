"""Cityscapes layout: ``leftImg8bit/{split}/{city}/*`` images, ``gtFine/{split}/{city}/*`` labels.

Labels are read from ``*_gtFine_labelTrainIds.png`` when one exists (already train
ids) and otherwise from ``*_gtFine_labelIds.png`` (the 34 label ids, mapped to the 19
train ids; every other id becomes the ignore index).
"""

from __future__ import annotations

from pathlib import Path

from archsearch.data.base import PairTransform, Sample, SegmentationDataset, require_directory
from archsearch.data.classes import CITYSCAPES_CLASS_NAMES, CITYSCAPES_LABEL_IDS
from archsearch.data.labels import identity_table, lookup_table
from archsearch.errors import SpecError

LABEL_ID_TO_TRAIN_ID = lookup_table({label_id: train_id
                                     for train_id, label_id in enumerate(CITYSCAPES_LABEL_IDS.values())})
_TRAIN_ID_TABLE = identity_table(len(CITYSCAPES_CLASS_NAMES))

_IMAGE_SUFFIX = "_leftImg8bit.png"


def _available_splits(directory: Path) -> str:
    names = sorted(child.name for child in directory.iterdir() if child.is_dir()) if directory.is_dir() else []
    return ", ".join(names) if names else "none"


def _label_sample(image: Path, label_directory: Path) -> Sample:
    stem = image.name.removesuffix(_IMAGE_SUFFIX)
    train_ids = label_directory / f"{stem}_gtFine_labelTrainIds.png"
    if train_ids.is_file():
        return Sample(image, train_ids, _TRAIN_ID_TABLE)
    label_ids = label_directory / f"{stem}_gtFine_labelIds.png"
    if label_ids.is_file():
        return Sample(image, label_ids, LABEL_ID_TO_TRAIN_ID)
    raise SpecError("image has no label file", path=str(image),
                    allowed=f"{label_ids.name} or {train_ids.name} in {label_directory}")


class CityscapesDataset(SegmentationDataset):
    """Every ``*_leftImg8bit.png`` of one split, with its fine label, as 19-class train ids."""

    def __init__(self, root: Path, split: str, transforms: PairTransform | None = None) -> None:
        root = Path(root)
        image_root = root / "leftImg8bit"
        image_directory = require_directory(
            image_root / split, f"a split directory of {image_root} (found: {_available_splits(image_root)})")
        label_directory = require_directory(
            root / "gtFine" / split, f"the labels of {image_directory}: {{city}}/*_gtFine_labelIds.png")
        images = sorted(image_directory.glob(f"*/*{_IMAGE_SUFFIX}"))
        if not images:
            raise SpecError("split has no images", path=str(image_directory),
                            allowed=f"{{city}}/*{_IMAGE_SUFFIX} files")
        samples = [_label_sample(image, label_directory / image.parent.name) for image in images]
        super().__init__(samples, CITYSCAPES_CLASS_NAMES, transforms)
