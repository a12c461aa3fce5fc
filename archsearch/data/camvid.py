"""CamVid in the 11-class SegNet layout: ``{split}/`` images beside ``{split}annot/`` labels.

Labels are class-index PNGs with the same file stem as their image; index 11
(void) and anything above it become the ignore index. ``{split}_labels/`` is
accepted as the label directory name too.
"""

from __future__ import annotations

from pathlib import Path

from archsearch.data.base import PairTransform, Sample, SegmentationDataset, require_directory
from archsearch.data.labels import identity_table
from archsearch.errors import SpecError

CAMVID_CLASS_NAMES = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign symbol",
                      "fence", "car", "pedestrian", "bicyclist")
_TABLE = identity_table(len(CAMVID_CLASS_NAMES))
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _label_directory(root: Path, split: str) -> Path:
    for name in (f"{split}annot", f"{split}_labels"):
        if (root / name).is_dir():
            return root / name
    raise SpecError("split has no label directory", path=str(root / f"{split}annot"),
                    allowed=f"{split}annot/ or {split}_labels/ beside {split}/")


class CamVidDataset(SegmentationDataset):
    """Every image of ``root/{split}`` with the same-named index PNG from its label directory."""

    def __init__(self, root: Path, split: str, transforms: PairTransform | None = None) -> None:
        root = Path(root)
        image_directory = require_directory(root / split, f"{split}/ images and {split}annot/ labels under {root}")
        label_directory = _label_directory(root, split)
        images = sorted(path for path in image_directory.iterdir() if path.suffix.lower() in _IMAGE_SUFFIXES)
        if not images:
            raise SpecError("split has no images", path=str(image_directory),
                            allowed=f"files ending in {', '.join(_IMAGE_SUFFIXES)}")
        samples = []
        for image in images:
            label = label_directory / f"{image.stem}.png"
            if not label.is_file():
                raise SpecError("image has no label file", path=str(image), allowed=str(label))
            samples.append(Sample(image, label, _TABLE))
        super().__init__(samples, CAMVID_CLASS_NAMES, transforms)
