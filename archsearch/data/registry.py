"""Datasets by name, as a study file refers to them."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archsearch.data.base import PairTransform, SegmentationDataset
from archsearch.data.camvid import CamVidDataset
from archsearch.data.cityscapes import CityscapesDataset
from archsearch.data.synthetic import ensure_synthetic_cityscapes
from archsearch.data.voc import VOCSegmentationDataset
from archsearch.errors import SpecError


def default_synthetic_cache() -> Path:
    """Where synthetic scenes go when no root is given: ``$XDG_CACHE_HOME/archsearch/synthetic``."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "archsearch" / "synthetic"


def _synthetic(root: Path | None, split: str, transforms: PairTransform | None,
               **options: Any) -> SegmentationDataset:
    dataset_root = ensure_synthetic_cityscapes(root if root is not None else default_synthetic_cache(), **options)
    return CityscapesDataset(dataset_root, split, transforms)


_BUILDERS: dict[str, Callable[..., SegmentationDataset]] = {
    "synthetic": _synthetic,
    "cityscapes": CityscapesDataset,
    "camvid": CamVidDataset,
    "voc": VOCSegmentationDataset,
}
_OPTIONS: dict[str, tuple[str, ...]] = {
    "synthetic": tuple(name for name, parameter in inspect.signature(ensure_synthetic_cityscapes).parameters.items()
                       if parameter.kind is inspect.Parameter.KEYWORD_ONLY),
}
DATASET_NAMES = tuple(_BUILDERS)


def build_dataset(name: str, root: Path | None, split: str, transforms: PairTransform | None = None,
                  **options: Any) -> SegmentationDataset:
    """Build the named dataset's ``split``; ``root`` is the dataset directory (for ``synthetic``, the cache).

    ``options`` are the synthetic generator's parameters (seed, num_train, num_val,
    height, width); the real datasets take none.
    """
    if name not in _BUILDERS:
        raise SpecError("unknown dataset", path="dataset.name", value=name, allowed=", ".join(DATASET_NAMES))
    allowed_options = _OPTIONS.get(name, ())
    for option in options:
        if option not in allowed_options:
            raise SpecError(f"unknown option for dataset {name!r}", path=f"dataset.{option}", value=option,
                            allowed=", ".join(allowed_options) or "no options")
    if root is None and name != "synthetic":
        raise SpecError(f"dataset {name!r} needs a root directory", path="dataset.root", value=None,
                        allowed="the directory holding the dataset")
    return _BUILDERS[name](root if root is None else Path(root), split, transforms, **options)
