"""Joint image/mask transforms built on torchvision.transforms.v2.

The image travels as ``tv_tensors.Image`` and the label as ``tv_tensors.Mask``, so
v2 applies the same geometry to both, resizes masks with nearest neighbour and pads
them with the ignore index instead of a real class.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional

from archsearch.data.augment import ClassUniformCrop, PhotometricDistortion, ReducedRandAugment
from archsearch.data.padding import IMAGENET_MEAN, IMAGENET_STD, PadTo, pad_fill
from archsearch.errors import SpecError


class RandomScale(v2.Transform):
    """Resize image and mask by one factor drawn uniformly from ``scale_range``.

    Without ``base`` the factor is relative to each sample's own size, so one setting works for
    128x256 synthetic scenes and 1024x2048 Cityscapes frames alike. With ``base`` (height, width)
    the target is absolute, as mmseg's ``RandomResize(scale=(width, height), ratio_range,
    keep_ratio=True)``: the scale ``(int(width * r), int(height * r))`` is fitted into, keeping the
    aspect ratio (mmcv's ``rescale_size``: the smaller of long/long and short/short, rounded).
    """

    def __init__(self, scale_range: tuple[float, float], base: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.scale_range = scale_range
        self.base = base

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        image = next(item for item in flat_inputs if isinstance(item, tv_tensors.Image))
        height, width = functional.get_size(image)
        low, high = self.scale_range
        scale = low + (high - low) * float(torch.rand(()))
        if self.base is None:
            return {"size": [max(1, round(height * scale)), max(1, round(width * scale))]}
        target = (int(self.base[1] * scale), int(self.base[0] * scale))
        factor = min(max(target) / max(height, width), min(target) / min(height, width))
        return {"size": [max(1, int(height * factor + 0.5)), max(1, int(width * factor + 0.5))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(functional.resize, inpt, size=params["size"], antialias=True)


def _to_normalized_float() -> list[v2.Transform]:
    """The steps both pipelines end with: float image in ImageNet statistics, int64 mask."""
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None}, scale=True),
        v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ]


def _crop_height_width(crop_size: int | tuple[int, int]) -> tuple[int, int]:
    sizes = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    if not (isinstance(sizes, (tuple, list)) and len(sizes) == 2
            and all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes)):
        raise SpecError("crop size must be positive integers", path="crop_size", value=crop_size,
                        allowed="an int or (height, width) of ints > 0")
    return sizes[0], sizes[1]


def _checked_scale_range(scale_range: tuple[float, float]) -> tuple[float, float]:
    if not (isinstance(scale_range, (tuple, list)) and len(scale_range) == 2
            and all(isinstance(value, (int, float)) and math.isfinite(value) for value in scale_range)
            and 0 < scale_range[0] <= scale_range[1]):
        raise SpecError("scale range must be two finite numbers with 0 < low <= high",
                        path="scale_range", value=scale_range, allowed="e.g. (0.5, 2.0)")
    return float(scale_range[0]), float(scale_range[1])


def train_transforms(crop_size: int | tuple[int, int], scale_range: tuple[float, float] = (0.5, 2.0), *,
                     short_side_range: tuple[int, int] | None = None, flip: bool = True,
                     photometric: bool = False, randaugment_ops: int = 0, randaugment_magnitude: float = 0.2,
                     class_uniform_pct: float = 0.0, cat_max_ratio: float = 1.0, pad_position: str = "random",
                     pad_value: str = "black",
                     pad_order: str = "at_crop", scale_base: tuple[int, int] | None = None) -> v2.Compose:
    """Random rescale, random crop, flip, colour, normalize; a crop smaller than ``crop_size`` is padded
    (mask with 255) at ``pad_order`` with ``pad_value`` at ``pad_position`` (archsearch.data.padding).

    The rescale is by a factor from ``scale_range`` (mmseg's ``ratio_range``), or, given
    ``short_side_range``, to a shorter side drawn from it in pixels (RegSeg's
    ``train_min_size``/``train_max_size``). ``class_uniform_pct`` centres that share of
    crops on a class; ``cat_max_ratio`` < 1 re-draws a random crop that one class dominates (mmseg's
    ``RandomCrop``); ``photometric`` adds mmseg's PhotoMetricDistortion;
    ``randaugment_ops`` > 0 adds RegSeg's reduced RandAugment at ``randaugment_magnitude``.
    """
    if short_side_range is not None:
        low, high = short_side_range
        rescale: v2.Transform = v2.RandomShortestSize(list(range(low, high + 1)), antialias=True)
    else:
        rescale = RandomScale(_checked_scale_range(scale_range), scale_base)
    size = _crop_height_width(crop_size)
    pad = {order: [PadTo(size, pad_fill(pad_value, order), pad_position)] if order == pad_order else []
           for order in ("at_crop", "after_colour", "after_normalisation")}
    steps = [rescale, ClassUniformCrop(size, class_uniform_pct, cat_max_ratio=cat_max_ratio), *pad["at_crop"]]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if photometric:
        steps.append(PhotometricDistortion())
    if randaugment_ops:
        steps.append(ReducedRandAugment(randaugment_ops, randaugment_magnitude))
    return v2.Compose([*steps, *pad["after_colour"], *_to_normalized_float(), *pad["after_normalisation"]])


class ResizeImage(v2.Resize):
    """Resize the image only; the mask keeps its size (mmseg's test pipeline resizes the image and loads
    the label afterwards, so predictions are resized back to the label's size)."""

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return super().transform(inpt, params) if isinstance(inpt, tv_tensors.Image) else inpt


def eval_transforms(size: tuple[int, int] | None = None, short_side: int | None = None) -> v2.Compose:
    """The image normalized, with its mask as int64; by default at the file's own size.

    ``size`` (height, width) resizes the image alone (RDRNet's CamVid: ``Resize(scale=(960, 720),
    keep_ratio=False)``); ``short_side`` resizes image and mask (nearest) to that shorter side
    (RegSeg's ``ValResize(val_input_size, val_label_size)``).
    """
    steps: list[v2.Transform] = []
    if size is not None:
        steps.append(ResizeImage(list(size), antialias=True))
    if short_side is not None:
        steps.append(v2.Resize(short_side, antialias=True))
    return v2.Compose([*steps, *_to_normalized_float()])
