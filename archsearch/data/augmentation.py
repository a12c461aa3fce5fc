"""A study's ``augmentation:`` section, checked key by key, and the train pipeline it names."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, Literal

from archsearch.data.randaugment_ops import REDUCED_RANDAUGMENT_OPS
from archsearch.errors import SpecError
from archsearch.schema import Range, parse_dataclass, require

if TYPE_CHECKING:  # the section is read without torch; the pipeline is built with it
    from torchvision.transforms import v2

ClassUniformSampling = Literal["per_image", "per_epoch"]
PadPosition = Literal["random", "bottom_right"]  # how archsearch.data.padding places a crop's padding
PadValue = Literal["black", "mean"]
PadOrder = Literal["at_crop", "after_colour", "after_normalisation"]

@dataclass(frozen=True)
class AugmentationConfig:
    """How training crops are made; the defaults are DDRNet/RDRNet's geometry without colour.

    ``crop_size`` None crops to the study's input size. Rescaling is by a factor from
    ``scale_range`` (relative to each image, mmseg's ``ratio_range``) or, given
    ``short_side_range``, to a shorter side in pixels (RegSeg's 400-1600), not both.
    ``flip``: horizontal flips with probability 0.5. ``photometric``: mmseg's
    PhotoMetricDistortion. ``randaugment_ops`` > 0: RegSeg's reduced RandAugment with that
    many ops at ``randaugment_magnitude``. ``class_uniform_pct``: the share of crops
    centred on a pixel of a randomly chosen class present in the image (``class_uniform_sampling``
    ``per_image``), or, ``per_epoch``, RegSeg's sampling: that share of each epoch's crops drawn class
    first from a class-to-image index of ``class_uniform_tile`` tiles (archsearch.data.class_uniform). A crop larger than the
    rescaled image is padded (label 255) with ``pad_value`` (``black``; ``mean``: the ImageNet mean)
    at ``pad_position`` (``random``; ``bottom_right``) at step ``pad_order`` (``at_crop``,
    ``after_colour``: after flips, photometric and RandAugment; ``after_normalisation``): mmseg's is
    ``mean``/``bottom_right``/``after_normalisation``, RegSeg's ``mean``/``random``/``after_colour``.
    ``cat_max_ratio`` < 1: mmseg's ``RandomCrop(cat_max_ratio)``, a random crop in which one class fills that
    share or more of the labelled pixels (or that holds one class) is re-drawn, up to 10 times (1: off).
    ``scale_base`` [height, width] makes ``scale_range`` absolute (mmseg's ``RandomResize(scale=...)``).
    Evaluation: ``eval_size`` [height, width] resizes the image alone (mmseg), ``eval_short_side``
    image and label to that shorter side (RegSeg); predictions are compared at the label's size.
    """

    crop_size: tuple[int, int] | None = None
    scale_range: tuple[float, float] | None = None
    short_side_range: tuple[int, int] | None = None
    flip: bool = True
    photometric: bool = False
    randaugment_ops: int = 0
    randaugment_magnitude: float = 0.2
    class_uniform_pct: float = 0.0
    class_uniform_sampling: ClassUniformSampling = "per_image"
    class_uniform_tile: Annotated[int, Range(1)] = 1024
    cat_max_ratio: Annotated[float, Range(0.0, 1.0, exclusive_minimum=True)] = 1.0
    pad_position: PadPosition = "random"
    pad_value: PadValue = "black"
    pad_order: PadOrder = "at_crop"
    scale_base: tuple[int, int] | None = None
    eval_size: tuple[int, int] | None = None
    eval_short_side: Annotated[int | None, Range(1)] = None

    @classmethod
    def from_dict(cls, data: Any, source: str = "", *, path: str = "augmentation") -> AugmentationConfig:
        """Check plain data (a YAML mapping, or null for the defaults) found at ``path`` in ``source``."""
        try:
            return parse_dataclass(cls, data if data is not None else {}, path)
        except SpecError as error:
            raise error.with_source(source) from None

    def validate(self) -> None:
        """What the field types do not say (called by ``parse_dataclass``)."""
        if self.crop_size is not None:
            require(len(self.crop_size) == 2 and min(self.crop_size) > 0, "out of range", path="crop_size",
                    value=list(self.crop_size), allowed="[height, width] of integers > 0")
        for name in ("scale_base", "eval_size"):
            size = getattr(self, name)
            if size is not None:
                require(len(size) == 2 and min(size) > 0, "out of range", path=name, value=list(size),
                        allowed="[height, width] of integers > 0")
        if self.eval_size is not None and self.eval_short_side is not None:
            raise SpecError("give eval_size or eval_short_side, not both", path="eval_short_side",
                            value=self.eval_short_side, allowed="one way of resizing for evaluation")
        if self.scale_base is not None and self.short_side_range is not None:
            raise SpecError("scale_base goes with scale_range, not short_side_range", path="scale_base",
                            value=list(self.scale_base), allowed="null with short_side_range")
        for name in ("scale_range", "short_side_range"):
            pair = getattr(self, name)
            if pair is not None:
                require(len(pair) == 2 and 0 < pair[0] <= pair[1] and math.isfinite(pair[1]), "out of range", path=name,
                        value=list(pair), allowed="[low, high] with 0 < low <= high")
        if self.scale_range is not None and self.short_side_range is not None:
            raise SpecError("give scale_range or short_side_range, not both", path="short_side_range",
                            value=list(self.short_side_range), allowed="one way of rescaling")
        require(0 <= self.randaugment_ops <= len(REDUCED_RANDAUGMENT_OPS), "out of range", path="randaugment_ops",
                value=self.randaugment_ops,
                allowed=f"an integer from 0 (off) to {len(REDUCED_RANDAUGMENT_OPS)} (every op of the reduced list)")
        for name in ("randaugment_magnitude", "class_uniform_pct"):
            require(0.0 <= getattr(self, name) <= 1.0, "out of range", path=name, value=getattr(self, name),
                    allowed="a number from 0 to 1")

    def to_dict(self) -> dict[str, Any]:
        return {field.name: list(value) if isinstance(value := getattr(self, field.name), tuple) else value
                for field in fields(self)}

    def train_transforms(self, input_size: tuple[int, int]) -> v2.Compose:
        """The train pipeline, cropping to ``crop_size`` or else to ``input_size``."""
        from archsearch.data.transforms import train_transforms

        return train_transforms(self.crop_size or input_size, self.scale_range or (0.5, 2.0),
                                short_side_range=self.short_side_range, flip=self.flip,
                                photometric=self.photometric, randaugment_ops=self.randaugment_ops,
                                randaugment_magnitude=self.randaugment_magnitude,
                                class_uniform_pct=self.class_uniform_pct if self.class_uniform_sampling == "per_image"
                                else 0.0, cat_max_ratio=self.cat_max_ratio, pad_position=self.pad_position,
                                pad_value=self.pad_value, pad_order=self.pad_order, scale_base=self.scale_base)

    def eval_transforms(self) -> v2.Compose:
        """The evaluation pipeline: normalize, after ``eval_size`` or ``eval_short_side`` resizing if set."""
        from archsearch.data.transforms import eval_transforms

        return eval_transforms(self.eval_size, self.eval_short_side)

