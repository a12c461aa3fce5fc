"""The papers' training augmentations as torchvision.transforms.v2 transforms.

Each transform takes the ``tv_tensors.Image`` (uint8) and ``tv_tensors.Mask`` of one
sample. Geometry moves both (masks with nearest neighbour, filled with the ignore
index); colour changes touch the image only.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional
from torchvision.transforms.v2.functional._color import _hsv_to_rgb, _rgb_to_hsv

from archsearch.data.randaugment_ops import REDUCED_RANDAUGMENT_OPS
from archsearch.data.labels import IGNORE_INDEX


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def _chance(probability: float) -> bool:
    return probability > 0 and float(torch.rand(())) < probability


class ClassUniformCrop(v2.RandomCrop):
    """A random crop of at most ``size`` inside the image (a smaller image gives a smaller crop, which
    :class:`~archsearch.data.padding.PadTo` pads later) that, with probability ``class_uniform_pct``,
    is centred on a random pixel of a class drawn uniformly from the classes present in the mask.

    Rare classes (trains, buses, riders) then appear in crops as often as common ones
    per image that has them, instead of in proportion to their area. Near the border
    the crop is shifted to stay inside the image, so the pixel stays in it.
    """

    def __init__(self, size: tuple[int, int], class_uniform_pct: float = 0.0,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(size)
        self.class_uniform_pct = class_uniform_pct
        self.ignore_index = ignore_index

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        image = next(item for item in flat_inputs if isinstance(item, tv_tensors.Image))
        height, width = functional.get_size(image)
        crop_height, crop_width = min(self.size[0], height), min(self.size[1], width)
        top = int(torch.randint(0, height - crop_height + 1, ()))
        left = int(torch.randint(0, width - crop_width + 1, ()))
        params = {"needs_crop": True, "top": top, "left": left, "height": crop_height, "width": crop_width,
                  "needs_pad": False, "padding": [0, 0, 0, 0]}
        point = next((item for item in flat_inputs if isinstance(item, tv_tensors.KeyPoints)), None)
        if point is not None:  # RegSeg's get_centroid_crop_params: the crop holds the class centroid
            x, y = (int(value) for value in point.as_subclass(torch.Tensor).reshape(-1, 2)[0])
            left = int(torch.randint(x - crop_width, x + 1, ()))
            top = int(torch.randint(y - crop_height, y + 1, ()))
            return {**params, "top": min(max(top, 0), height - crop_height),
                    "left": min(max(left, 0), width - crop_width)}
        if not _chance(self.class_uniform_pct):
            return params
        mask = next((item for item in flat_inputs if isinstance(item, tv_tensors.Mask)), None)
        if mask is None:
            return params
        labels = mask.as_subclass(torch.Tensor).reshape(mask.shape[-2:])
        classes = labels.unique()
        classes = classes[classes != self.ignore_index]
        if classes.numel() == 0:
            return params
        chosen = classes[torch.randint(len(classes), ())]
        rows, columns = torch.nonzero(labels == chosen, as_tuple=True)
        pick = torch.randint(len(rows), ())
        return {**params, "top": _centred(int(rows[pick]), crop_height, height),
                "left": _centred(int(columns[pick]), crop_width, width)}


def _centred(centre: int, size: int, extent: int) -> int:
    """The start of a window of ``size`` centred on ``centre``, kept inside ``[0, extent)``."""
    return min(max(centre - size // 2, 0), extent - size)


class PhotometricDistortion(v2.Transform):
    """mmsegmentation's PhotoMetricDistortion, on the image only.

    Brightness (add a delta up to +-32), contrast (scale by 0.5-1.5), saturation (0.5-1.5)
    and hue (shift up to 18/180 of the circle), each with probability 0.5; contrast
    comes before or after the colour steps with equal chance. Saturation scales the HSV
    saturation channel as mmseg does (OpenCV's 8-bit HSV, emulated: pixels may differ from
    OpenCV's by its rounding); hue shifts by a real number of degrees where mmseg shifts
    by whole steps of 2 degrees.
    """

    def __init__(self, brightness_delta: float = 32.0, contrast_range: tuple[float, float] = (0.5, 1.5),
                 saturation_range: tuple[float, float] = (0.5, 1.5), hue_delta: float = 18.0) -> None:
        super().__init__()
        self.brightness_delta = brightness_delta
        self.contrast_range = contrast_range
        self.saturation_range = saturation_range
        self.hue_delta = hue_delta

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {
            "brightness": _uniform(-self.brightness_delta, self.brightness_delta) if _chance(0.5) else None,
            "contrast_first": _chance(0.5),
            "contrast": _uniform(*self.contrast_range) if _chance(0.5) else None,
            "saturation": _uniform(*self.saturation_range) if _chance(0.5) else None,
            "hue": _uniform(-self.hue_delta, self.hue_delta) / 180.0 if _chance(0.5) else None,
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Image):
            return inpt
        image = inpt.as_subclass(torch.Tensor)
        if params["brightness"] is not None:
            image = _affine_pixels(image, 1.0, params["brightness"])
        if params["contrast_first"] and params["contrast"] is not None:
            image = _affine_pixels(image, params["contrast"], 0.0)
        if params["saturation"] is not None:
            image = _scale_hsv_saturation(image, params["saturation"])
        if params["hue"] is not None:
            image = functional.adjust_hue(image, params["hue"])
        if not params["contrast_first"] and params["contrast"] is not None:
            image = _affine_pixels(image, params["contrast"], 0.0)
        return tv_tensors.wrap(image, like=inpt)


def _scale_hsv_saturation(image: torch.Tensor, factor: float) -> torch.Tensor:
    """mmseg's saturation step on a uint8 RGB image: to 8-bit HSV (H in 0..179, S and V in 0..255),
    S times ``factor`` clipped to 0..255 and truncated (mmseg's ``convert``), back to RGB."""
    hue, saturation, value = _rgb_to_hsv(image.to(torch.float32) / 255.0).unbind(-3)
    hue = torch.round(hue * 180.0).remainder(180.0) / 180.0
    value = torch.round(value * 255.0) / 255.0
    saturation = torch.floor((torch.round(saturation * 255.0) * factor).clamp(0.0, 255.0)) / 255.0
    rgb = _hsv_to_rgb(torch.stack((hue, saturation, value), dim=-3))
    return torch.round(rgb * 255.0).clamp_(0, 255).to(image.dtype)


def _affine_pixels(image: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    """``image * scale + shift`` clipped to the uint8 range, as mmseg's brightness and contrast do."""
    return (image.to(torch.float32) * scale + shift).clamp_(0, 255).to(image.dtype)


_MAXIMUM = {"rotate": 30.0, "color": 0.9, "contrast": 0.9, "brightness": 0.9, "sharpness": 0.9}
"""Each op's strength at magnitude 1 (degrees, or the enhancement factor's distance from 1), as RegSeg sets them."""
_ENHANCE = {"color": functional.adjust_saturation, "contrast": functional.adjust_contrast,
            "brightness": functional.adjust_brightness, "sharpness": functional.adjust_sharpness}


class ReducedRandAugment(v2.Transform):
    """RandAugment over RegSeg's reduced op list: ``num_ops`` distinct ops, each at
    ``magnitude`` (0-1 of its range) with a random sign.

    torchvision's RandAugment refuses masks; here the rotation turns the mask too
    (nearest neighbour, filled with the ignore index) and the image is filled with the
    ImageNet mean, so labels stay aligned with pixels.
    """

    def __init__(self, num_ops: int = 2, magnitude: float = 0.2, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.num_ops = num_ops
        self.magnitude = magnitude
        self.fill = {tv_tensors.Image: [123, 116, 103], tv_tensors.Mask: ignore_index}

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        chosen = torch.randperm(len(REDUCED_RANDAUGMENT_OPS))[:self.num_ops].tolist()
        ops = []
        for index in chosen:
            name = REDUCED_RANDAUGMENT_OPS[index]
            value = self.magnitude * _MAXIMUM.get(name, 0.0)
            ops.append((name, -value if _chance(0.5) else value))
        return {"ops": ops}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        for name, value in params["ops"]:
            if name == "rotate":
                fill = self.fill[tv_tensors.Mask if isinstance(inpt, tv_tensors.Mask) else tv_tensors.Image]
                inpt = functional.rotate(inpt, value, interpolation=v2.InterpolationMode.BILINEAR, fill=fill)
            elif not isinstance(inpt, tv_tensors.Image):
                continue
            elif name == "auto_contrast":
                inpt = functional.autocontrast(inpt)
            elif name == "equalize":
                inpt = functional.equalize(inpt)
            else:
                inpt = _ENHANCE[name](inpt, 1.0 + value)
        return inpt
