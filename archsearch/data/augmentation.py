"""A study's ``augmentation:`` section, checked key by key, and the train pipeline it names."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from archsearch.data.randaugment_ops import REDUCED_RANDAUGMENT_OPS
from archsearch.errors import SpecError
from archsearch.schema import parse_dataclass, require

if TYPE_CHECKING:  # the section is read without torch; the pipeline is built with it
    from torchvision.transforms import v2


@dataclass(frozen=True)
class AugmentationConfig:
    """How training crops are made; the defaults are DDRNet/RDRNet's geometry without colour.

    ``crop_size`` None crops to the study's input size. Rescaling is by a factor from
    ``scale_range`` (relative to each image, mmseg's ``ratio_range``) or, given
    ``short_side_range``, to a shorter side in pixels (RegSeg's 400-1600), not both.
    ``flip``: horizontal flips with probability 0.5. ``photometric``: mmseg's
    PhotoMetricDistortion. ``randaugment_ops`` > 0: RegSeg's reduced RandAugment with that
    many ops at ``randaugment_magnitude``. ``class_uniform_pct``: the share of crops
    centred on a pixel of a randomly chosen class present in the image.
    """

    crop_size: tuple[int, int] | None = None
    scale_range: tuple[float, float] | None = None
    short_side_range: tuple[int, int] | None = None
    flip: bool = True
    photometric: bool = False
    randaugment_ops: int = 0
    randaugment_magnitude: float = 0.2
    class_uniform_pct: float = 0.0

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
                                class_uniform_pct=self.class_uniform_pct)

