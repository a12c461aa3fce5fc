"""Pascal VOC 2012 segmentation: ``VOCdevkit/VOC2012`` with the split lists in ``ImageSets/Segmentation``.

``SegmentationClass`` PNGs are palette images whose palette indices are the class
ids (0 background .. 20 tv/monitor); 255 marks object borders and is ignored.
"""

from __future__ import annotations

from pathlib import Path

from archsearch.data.base import PairTransform, Sample, SegmentationDataset, require_directory
from archsearch.data.classes import VOC_CLASS_NAMES
from archsearch.data.labels import identity_table
from archsearch.errors import SpecError

_TABLE = identity_table(len(VOC_CLASS_NAMES))


def _voc2012_directory(root: Path) -> Path:
    """Accept either the directory holding ``VOCdevkit`` or ``VOC2012`` itself."""
    if (root / "JPEGImages").is_dir():
        return root
    return require_directory(root / "VOCdevkit" / "VOC2012", f"VOCdevkit/VOC2012/JPEGImages under {root}")


class VOCSegmentationDataset(SegmentationDataset):
    """The images named in ``ImageSets/Segmentation/{split}.txt`` with their class-index labels."""

    def __init__(self, root: Path, split: str, transforms: PairTransform | None = None) -> None:
        voc = _voc2012_directory(Path(root))
        list_directory = require_directory(voc / "ImageSets" / "Segmentation", "{train,val,trainval}.txt")
        split_file = list_directory / f"{split}.txt"
        if not split_file.is_file():
            found = ", ".join(sorted(path.stem for path in list_directory.glob("*.txt"))) or "none"
            raise SpecError("split list does not exist", path=str(split_file), value=split,
                            allowed=f"a split listed in {list_directory} (found: {found})")
        names = split_file.read_text().split()
        if not names:
            raise SpecError("split list names no images", path=str(split_file),
                            allowed="one image name (without extension) per line")
        image_directory = require_directory(voc / "JPEGImages", "the VOC images (*.jpg)")
        label_directory = require_directory(voc / "SegmentationClass", "the VOC class labels (*.png)")
        samples = []
        for name in names:
            image, label = image_directory / f"{name}.jpg", label_directory / f"{name}.png"
            for path in (image, label):
                if not path.is_file():
                    raise SpecError(f"file named in {split_file.name} does not exist", path=str(path),
                                    allowed=f"every name in {split_file} has {image_directory.name}/{{name}}.jpg "
                                            f"and {label_directory.name}/{{name}}.png")
            samples.append(Sample(image, label, _TABLE))
        super().__init__(samples, VOC_CLASS_NAMES, transforms)
