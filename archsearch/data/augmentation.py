"""A study's ``augmentation:`` section, checked key by key, and the train pipeline it names."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from torchvision.transforms import v2

from archsearch.data.transforms import train_transforms
from archsearch.errors import SpecError


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
            return _parse(data if data is not None else {}, path)
        except SpecError as error:
            raise error.with_source(source) from None

    def to_dict(self) -> dict[str, Any]:
        return {field.name: list(value) if isinstance(value := getattr(self, field.name), tuple) else value
                for field in fields(self)}

    def train_transforms(self, input_size: tuple[int, int]) -> v2.Compose:
        """The train pipeline, cropping to ``crop_size`` or else to ``input_size``."""
        return train_transforms(self.crop_size or input_size, self.scale_range or (0.5, 2.0),
                                short_side_range=self.short_side_range, flip=self.flip,
                                photometric=self.photometric, randaugment_ops=self.randaugment_ops,
                                randaugment_magnitude=self.randaugment_magnitude,
                                class_uniform_pct=self.class_uniform_pct)


_KEYS = tuple(field.name for field in fields(AugmentationConfig))


def _parse(data: Any, path: str) -> AugmentationConfig:
    if not isinstance(data, Mapping):
        raise SpecError("expected a mapping", path=path, value=data, allowed=", ".join(_KEYS))
    for key in data:
        if key not in _KEYS:
            raise SpecError("unknown key", path=f"{path}.{key}", value=key, allowed=", ".join(_KEYS))
    values: dict[str, Any] = {}
    if data.get("crop_size") is not None:
        values["crop_size"] = _pair(data["crop_size"], f"{path}.crop_size", int, "[height, width] of integers > 0",
                                    ordered=False)
    if data.get("scale_range") is not None:
        values["scale_range"] = _pair(data["scale_range"], f"{path}.scale_range", float,
                                      "[low, high] with 0 < low <= high")
    if data.get("short_side_range") is not None:
        values["short_side_range"] = _pair(data["short_side_range"], f"{path}.short_side_range", int,
                                           "[low, high] in pixels with 0 < low <= high")
        if "scale_range" in values:
            raise SpecError("give scale_range or short_side_range, not both", path=f"{path}.short_side_range",
                            value=data["short_side_range"], allowed="one way of rescaling")
    for key in ("flip", "photometric"):
        if key in data:
            if not isinstance(data[key], bool):
                raise SpecError("must be true or false", path=f"{path}.{key}", value=data[key], allowed="true, false")
            values[key] = data[key]
    if "randaugment_ops" in data:
        ops = data["randaugment_ops"]
        if isinstance(ops, bool) or not isinstance(ops, int) or not 0 <= ops <= 7:
            raise SpecError("out of range", path=f"{path}.randaugment_ops", value=ops,
                            allowed="an integer from 0 (off) to 7 (every op of the reduced list)")
        values["randaugment_ops"] = ops
    for key in ("randaugment_magnitude", "class_uniform_pct"):
        if key in data:
            values[key] = _fraction(data[key], f"{path}.{key}")
    return AugmentationConfig(**values)


def _pair(value: Any, path: str, kind: type, allowed: str, *, ordered: bool = True) -> tuple[Any, Any]:
    """Two positive finite numbers (ints for ``kind`` int), ``low <= high`` when ``ordered``."""
    numbers = (int,) if kind is int else (int, float)
    valid = (isinstance(value, (list, tuple)) and len(value) == 2
             and all(isinstance(item, numbers) and not isinstance(item, bool) and math.isfinite(item) and item > 0
                     for item in value))
    if not valid or (ordered and value[0] > value[1]):
        raise SpecError("bad range or size", path=path, value=value, allowed=allowed)
    return kind(value[0]), kind(value[1])


def _fraction(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise SpecError("must be a number from 0 to 1", path=path, value=value, allowed="0 <= value <= 1")
    return float(value)
