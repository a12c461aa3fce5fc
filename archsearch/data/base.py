"""What every segmentation dataset shares: finding directories, reading a pair, transforming.

A dataset is a list of (image, label, lookup table) samples; subclasses only know
where their files live and what their classes are called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from archsearch.data.labels import IGNORE_INDEX, IMAGE_ERRORS, ColourTable, decode_label, open_image, unreadable
from archsearch.data.transforms import eval_transforms
from archsearch.errors import SpecError

PairTransform = Callable[[tv_tensors.Image, tv_tensors.Mask], tuple[torch.Tensor, torch.Tensor]]
"""A joint transform: gets the uint8 image and train-id mask, returns the float image and mask."""


class Sample(NamedTuple):
    """One image, its label file, and the table that turns that file's values (or colours) into train ids."""

    image: Path
    label: Path
    lookup: np.ndarray | ColourTable


def require_directory(directory: Path, expected: str) -> Path:
    """Return ``directory`` or raise an error that names it and says what should be there."""
    if not directory.is_dir():
        raise SpecError("dataset directory does not exist", path=str(directory), allowed=expected)
    return directory


def read_image(path: Path) -> tv_tensors.Image:
    """Read any PIL-readable image as a uint8 RGB tensor [3, H, W]; an unreadable file is a SpecError naming it."""
    with open_image(path) as image:
        try:
            array = np.array(image.convert("RGB"))
        except IMAGE_ERRORS as error:
            raise unreadable(path, error) from None
    return tv_tensors.Image(torch.from_numpy(array).permute(2, 0, 1))


class SegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A list of samples whose items are (float image [3,H,W], int64 train-id mask [H,W]).

    ``transforms`` gets the uint8 ``tv_tensors.Image`` and the train-id ``tv_tensors.Mask``
    and must return a float image; None means :func:`eval_transforms` (normalize only).
    """

    ignore_index = IGNORE_INDEX

    def __init__(self, samples: Sequence[Sample], class_names: Sequence[str],
                 transforms: PairTransform | None = None) -> None:
        self.samples = list(samples)
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.transforms = transforms if transforms is not None else eval_transforms()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``key``; a key ``(index, x, y)`` (class-uniform sampling) hands the point (x, y) to the
        transforms as ``tv_tensors.KeyPoints``, for the crop to contain it."""
        index, point = (key[0], key[1:]) if isinstance(key, tuple) else (key, None)
        sample = self.samples[index]
        image = read_image(sample.image)
        train_ids = decode_label(sample.label, sample.lookup)
        if train_ids.shape != tuple(image.shape[1:]):
            raise SpecError("label size differs from image size", path=str(sample.label),
                            value=train_ids.shape,
                            allowed=f"the size of {sample.image}: {tuple(image.shape[1:])}")
        mask = tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(train_ids)))
        if point is None:
            image, mask = self.transforms(image, mask)
        else:
            points = tv_tensors.KeyPoints([list(point)], canvas_size=tuple(mask.shape), dtype=torch.float32)
            image, mask, _ = self.transforms(image, mask, points)
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()
