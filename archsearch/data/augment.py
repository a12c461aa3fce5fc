"""The papers' training augmentations as torchvision.transforms.v2 transforms.

Each transform takes the ``tv_tensors.Image`` (uint8) and ``tv_tensors.Mask`` of one
sample. Geometry moves both (masks with nearest neighbour, filled with the ignore
index); colour changes touch the image only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional

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

    ``cat_max_ratio`` < 1 re-draws a random (not class-centred) crop as mmseg's ``RandomCrop`` does:
    see :func:`crop_within_ratio`.
    """

    def __init__(self, size: tuple[int, int], class_uniform_pct: float = 0.0,
                 ignore_index: int = IGNORE_INDEX, cat_max_ratio: float = 1.0) -> None:
        super().__init__(size)
        self.class_uniform_pct = class_uniform_pct
        self.ignore_index = ignore_index
        self.cat_max_ratio = cat_max_ratio

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        image = next(item for item in flat_inputs if isinstance(item, tv_tensors.Image))
        height, width = functional.get_size(image)
        crop_height, crop_width = min(self.size[0], height), min(self.size[1], width)

        def draw() -> tuple[int, int]:
            return (int(torch.randint(0, height - crop_height + 1, ())),
                    int(torch.randint(0, width - crop_width + 1, ())))

        top, left = draw()
        params = {"needs_crop": True, "top": top, "left": left, "height": crop_height, "width": crop_width,
                  "needs_pad": False, "padding": [0, 0, 0, 0]}
        point = next((item for item in flat_inputs if isinstance(item, tv_tensors.KeyPoints)), None)
        if point is not None:  # RegSeg's get_centroid_crop_params: the crop holds the class centroid
            x, y = (int(value) for value in point.as_subclass(torch.Tensor).reshape(-1, 2)[0])
            left = int(torch.randint(x - crop_width, x + 1, ()))
            top = int(torch.randint(y - crop_height, y + 1, ()))
            return {**params, "top": min(max(top, 0), height - crop_height),
                    "left": min(max(left, 0), width - crop_width)}
        mask = next((item for item in flat_inputs if isinstance(item, tv_tensors.Mask)), None)
        if not _chance(self.class_uniform_pct):
            if mask is None or self.cat_max_ratio >= 1.0:
                return params
            labels = mask.as_subclass(torch.Tensor).reshape(mask.shape[-2:])
            top, left = crop_within_ratio(labels, (crop_height, crop_width), (top, left), draw,
                                          self.cat_max_ratio, self.ignore_index)
            return {**params, "top": top, "left": left}
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


CAT_MAX_RATIO_REDRAWS = 10
"""mmseg's ``RandomCrop.crop_bbox``: ``for _ in range(10)``, so at most 11 crops are drawn."""


def crop_within_ratio(labels: torch.Tensor, size: tuple[int, int], first: tuple[int, int],
                      draw: Callable[[], tuple[int, int]], cat_max_ratio: float,
                      ignore_index: int = IGNORE_INDEX) -> tuple[int, int]:
    """The (top, left) of a crop of ``size`` in which no class fills ``cat_max_ratio`` or more of the labelled
    pixels, as mmseg's ``RandomCrop(cat_max_ratio)`` picks it.

    Starting from ``first``, a crop that holds fewer than two classes (ignored pixels not counted) or whose
    largest class has a share of ``cat_max_ratio`` or more is replaced by ``draw()``, up to
    ``CAT_MAX_RATIO_REDRAWS`` times; the last draw is kept unchecked. Crops dominated by road or sky then
    become rarer, so a batch holds more of the small classes.
    """
    height, width = size
    top, left = first
    for _ in range(CAT_MAX_RATIO_REDRAWS):
        window = labels[top:top + height, left:left + width]
        counts = torch.bincount(window[window != ignore_index].reshape(-1).long())
        counts = counts[counts > 0]
        if len(counts) > 1 and float(counts.max()) / float(counts.sum()) < cat_max_ratio:
            break
        top, left = draw()
    return top, left


def _centred(centre: int, size: int, extent: int) -> int:
    """The start of a window of ``size`` centred on ``centre``, kept inside ``[0, extent)``."""
    return min(max(centre - size // 2, 0), extent - size)


class PhotometricDistortion(v2.Transform):
    """mmsegmentation's PhotoMetricDistortion, on the image only.

    Brightness (add a delta up to +-32), contrast (scale by 0.5-1.5), saturation (0.5-1.5)
    and hue, each with probability 0.5; contrast comes before or after the colour steps with
    equal chance. Saturation and hue work in OpenCV's 8-bit HSV as mmseg's do, each step its own
    round trip through ``_to_opencv_hsv`` and ``_from_opencv_hsv`` (OpenCV 4.14's pixels, every
    8-bit colour checked, benchmarks/recipe_differences.py): saturation scales the S channel, hue
    adds a whole number of OpenCV's hue units (2 degrees) drawn from
    ``numpy.random.randint(-hue_delta, hue_delta)``, so from -18 to 17 (-36 to +34 degrees).
    """

    def __init__(self, brightness_delta: float = 32.0, contrast_range: tuple[float, float] = (0.5, 1.5),
                 saturation_range: tuple[float, float] = (0.5, 1.5), hue_delta: int = 18) -> None:
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
            "hue": int(torch.randint(-self.hue_delta, self.hue_delta, ())) if _chance(0.5) else None,
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
            image = _shift_hsv_hue(image, params["hue"])
        if not params["contrast_first"] and params["contrast"] is not None:
            image = _affine_pixels(image, params["contrast"], 0.0)
        return tv_tensors.wrap(image, like=inpt)


_HSV_SHIFT = 12


def _reciprocal_table(numerator: float) -> torch.Tensor:
    """``round(numerator * 2^12 / i)`` for ``i`` in 0..255 (0 for 0), int64: OpenCV's 8-bit RGB->HSV divides by a
    lookup in 12-bit fixed point (S = diff * round(255 * 2^12 / V), H = num * round(30 * 2^12 / diff)), whose
    rounding decides a unit of H or S for about 2% of colours."""
    divisors = torch.arange(256, dtype=torch.float64)
    reciprocal = torch.round(numerator * 2 ** _HSV_SHIFT / divisors.clamp(min=1))
    return torch.where(divisors > 0, reciprocal, torch.zeros(())).to(torch.int64)


_SATURATION_TABLE = _reciprocal_table(255.0)
_HUE_TABLE = _reciprocal_table(180.0 / 6.0)


def _to_opencv_hsv(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A uint8 RGB image in OpenCV's 8-bit HSV (``cvtColor(..., COLOR_BGR2HSV)``: H in 0..179 in units of
    2 degrees, S and V in 0..255) as int64 planes.

    OpenCV's documented formula (V = max, S = (V - min) / V, H = 60 (G - B) / (V - min) ... halved) evaluated
    in its fixed point, which its rounding needs: the same H and S as OpenCV for every 8-bit colour.
    """
    red, green, blue = image.to(torch.int64).unbind(-3)
    value = torch.maximum(torch.maximum(red, green), blue)
    diff = value - torch.minimum(torch.minimum(red, green), blue)
    half = 1 << (_HSV_SHIFT - 1)
    saturation = (diff * _SATURATION_TABLE[value] + half) >> _HSV_SHIFT
    numerator = torch.where(value == red, green - blue,
                            torch.where(value == green, blue - red + 2 * diff, red - green + 4 * diff))
    hue = (numerator * _HUE_TABLE[diff] + half) >> _HSV_SHIFT
    return torch.where(hue < 0, hue + 180, hue), saturation, value


def _from_opencv_hsv(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor,
                     dtype: torch.dtype) -> torch.Tensor:
    """Back from 8-bit HSV to RGB of ``dtype`` as OpenCV's vectorised ``HSV2RGB_b`` does it (each row but its
    last width mod 32 or 64 pixels, by CPU, which it rounds): the sector formula in float32 (H * 6/180, S and
    V / 255; ``1 - S * f`` with one rounding, as its fused multiply-add gives), times 255, truncated."""
    hue = hue.to(torch.float32) * torch.tensor(6.0 / 180.0, dtype=torch.float32)
    saturation = saturation.to(torch.float32) * torch.tensor(1.0 / 255.0, dtype=torch.float32)
    value = value.to(torch.float32) * torch.tensor(1.0 / 255.0, dtype=torch.float32)
    sector = torch.trunc(hue)
    fraction = hue - sector

    def one_minus_saturation_times(factor: torch.Tensor) -> torch.Tensor:
        return (1.0 - saturation.to(torch.float64) * factor.to(torch.float64)).to(torch.float32)

    table = torch.stack((value, value * (1.0 - saturation), value * one_minus_saturation_times(fraction),
                         value * one_minus_saturation_times(1.0 - fraction)))
    order = torch.tensor([[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]])  # (R, G, B) per sector
    sector = sector.to(torch.int64).remainder(6)
    rgb = torch.stack([table.gather(0, order[sector, channel].unsqueeze(0)).squeeze(0) for channel in range(3)],
                      dim=-3)
    return torch.trunc(rgb * 255.0).clamp_(0, 255).to(dtype)


def _scale_hsv_saturation(image: torch.Tensor, factor: float) -> torch.Tensor:
    """mmseg's saturation step on a uint8 RGB image: to 8-bit HSV, S times ``factor`` clipped to 0..255 and
    truncated (mmseg's ``convert``), back to RGB."""
    hue, saturation, value = _to_opencv_hsv(image)
    scaled = torch.floor((saturation.to(torch.float32) * factor).clamp(0.0, 255.0))
    return _from_opencv_hsv(hue, scaled, value, image.dtype)


def _shift_hsv_hue(image: torch.Tensor, step: int) -> torch.Tensor:
    """mmseg's hue step on a uint8 RGB image: to 8-bit HSV, ``(H + step) % 180``, back to RGB."""
    hue, saturation, value = _to_opencv_hsv(image)
    return _from_opencv_hsv((hue + step).remainder(180), saturation, value, image.dtype)


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
