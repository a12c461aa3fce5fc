"""Padding a crop up to its size, as each author does it: where, with what, and at which step.

A crop larger than the rescaled image is padded: the label always with the ignore index, the
image with ``pad_value`` at ``pad_position``, at step ``pad_order`` of the pipeline:

- mmsegmentation (RDRNet, DDRNet, PIDNet, BiSeNet): ``SegDataPreProcessor`` pads the batch after
  normalisation with 0 (the mean colour), on the bottom and right (``stack_batch``):
  ``after_normalisation``, ``mean``, ``bottom_right``.
- RegSeg (``transforms.py`` ``RandomPad``/``RandomCrop``): the ImageNet mean as 8-bit values
  ``int(mean * 255)`` = (123, 116, 103), at a random offset (``randint(0, pad)`` above and left, the
  rest below and right), after RandAugment on Cityscapes (``build_train_transform2``) and at the crop
  on CamVid (``build_train_transform``): ``after_colour`` or ``at_crop``, ``mean``, ``random``.
- archsearch before these options: black, at a random offset, at the crop (before colour changes).
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional

from archsearch.data.labels import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MEAN_8BIT = tuple(int(channel * 255) for channel in IMAGENET_MEAN)
"""RegSeg's fill, ``tuple(int(v * 255) for v in mean)``: (123, 116, 103)."""


def pad_fill(value: str, order: str) -> list[float]:
    """The image's fill per channel: 8-bit before normalisation, normalised units after it."""
    if order != "after_normalisation":
        return [0.0] * 3 if value == "black" else [float(channel) for channel in MEAN_8BIT]
    if value == "mean":
        return [0.0] * 3
    return [-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD)]


class PadTo(v2.Transform):
    """Pad image and mask up to ``size`` (height, width): the image with ``fill``, the mask with the
    ignore index; ``position`` ``random`` draws the offset above and left uniformly from 0 to the
    padding (RegSeg's ``random.randint(0, pad)``), ``bottom_right`` pads only below and right (mmseg)."""

    def __init__(self, size: tuple[int, int], fill: list[float], position: str = "random",
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.size = size
        self.position = position
        self.fills = {tv_tensors.Image: fill, tv_tensors.Mask: ignore_index}

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        image = next(item for item in flat_inputs if isinstance(item, tv_tensors.Image))
        height, width = functional.get_size(image)
        pad_height, pad_width = max(self.size[0] - height, 0), max(self.size[1] - width, 0)
        if self.position == "random":
            top = int(torch.randint(0, pad_height + 1, ())) if pad_height else 0
            left = int(torch.randint(0, pad_width + 1, ())) if pad_width else 0
        else:
            top = left = 0
        return {"padding": [left, top, pad_width - left, pad_height - top]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not any(params["padding"]) or type(inpt) not in self.fills:
            return inpt
        return functional.pad(inpt, params["padding"], fill=self.fills[type(inpt)])
