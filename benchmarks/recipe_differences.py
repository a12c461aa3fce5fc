"""The size of each difference left between studies/paper/*.yaml and the authors' code, as their descriptions state it.

1. cat_max_ratio (built: ``augmentation.cat_max_ratio``, mmseg's RandomCrop): how many crops the rule re-draws,
   on the built-in synthetic street scenes (synthetic: real Cityscapes/CamVid frames are not on this machine).
2. 8-bit HSV (built: saturation and hue through OpenCV's 8-bit HSV, hue in whole 2-degree units): our round trips
   against OpenCV's documented RGB<->HSV formula, implemented here from its documentation (imgproc "Color
   conversions": V = max, S = (V - min) / V, H = 60 (G - B) / (V - min) | 120 + ... | 240 + ..., H += 360 if < 0;
   8-bit: V * 255, S * 255, H / 2), its inverse the standard sector form, both rounded to nearest; and, where
   ``cv2`` can be imported (not a dependency), against OpenCV itself. Also what whole hue steps changed: the
   same colours shifted by a real number of degrees (the former behaviour) against the nearest whole step.
3. Order and seeding (DistributedSampler vs mmengine's InfiniteSampler; RegSeg's reseeding every epoch): these
   change which random stream a run draws, not its distribution, so their size is the seed-to-seed spread of
   the reported mIoU: measured from benchmarks/racing/table.csv (16 small RDRNets x 8 seeds on synthetic data,
   120 iterations) and, cited, RegSeg's own three runs of one config with one seed (its training_log/
   reproducibility: best mIoU 73.91, 75.39, 75.03).
4. Class order (RegSeg's CamVid list vs mmseg's): a permutation of the classes; the mIoU of a random confusion
   matrix and of its permutation, to float rounding.
5. Evaluation size (RDRNet Cityscapes: 1024x2048 exactly vs mmseg's keep-ratio resize to (2048, 1024)): the
   pixels by which the two sizes differ for a Cityscapes frame.

Training from scratch instead of fine-tuning from the authors' Cityscapes checkpoint (both CamVid recipes) is
not measured here: it needs CamVid and the checkpoints, which are not on this machine.

    python benchmarks/recipe_differences.py [--colours 1048576 | --colours 0 (all)] [--scenes 200]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.transforms.v2 import functional

from archsearch.data.augment import (CAT_MAX_RATIO_REDRAWS, _scale_hsv_saturation, _shift_hsv_hue,
                                     crop_within_ratio)
from archsearch.data.cityscapes import LABEL_ID_TO_TRAIN_ID
from archsearch.data.labels import IGNORE_INDEX
from archsearch.data.scenes import render_scene

RACING_TABLE = Path(__file__).parent / "racing" / "table.csv"
REGSEG_REPRODUCIBILITY = (73.91400086252312, 75.39482558401008, 75.03385644210012)
"""Best mIoU of RolandGao/RegSeg training_log/reproducibility/cityscapes_exp49_decoder14_500_epochs_256_1792_resize_
768_768_crop_fair_log.txt and its _run3 and _run4 (one config, RNG_seed 0 in each, half-resolution Cityscapes)."""


# ---- 1. cat_max_ratio ------------------------------------------------------------------------------------------

def dominated(window: np.ndarray, ratio: float) -> bool:
    """mmseg's test, written from its RandomCrop: fewer than two classes, or one with a share >= ratio."""
    labels, counts = np.unique(window, return_counts=True)
    counts = counts[labels != IGNORE_INDEX]
    return not (len(counts) > 1 and counts.max() / counts.sum() < ratio)


def cat_max_ratio_sizes(scenes: int, crops_per_scene: int = 5, ratio: float = 0.75) -> dict[str, float]:
    """RDRNet's Cityscapes geometry at a quarter of the size: scenes of 256x512 rescaled by 0.5-2.0 of (256, 512)
    (mmseg's absolute RandomResize), 256x256 crops: the share of first crops the rule re-draws, the crops drawn
    per kept crop, and the share of kept crops still dominated after the 10 re-draws."""
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    first_dominated = kept_dominated = draws = 0
    for _ in range(scenes):
        labels = torch.from_numpy(LABEL_ID_TO_TRAIN_ID[render_scene(rng, 256, 512).label_ids].astype(np.int64))
        for _ in range(crops_per_scene):
            factor = 0.5 + 1.5 * float(torch.rand((), generator=generator))
            height, width = _absolute_size(tuple(labels.shape), factor, (256, 512))
            resized = functional.resize(labels[None], [height, width],
                                        interpolation=functional.InterpolationMode.NEAREST)[0]
            crop = (min(256, height), min(256, width))
            drawn: list[tuple[int, int]] = []

            def draw() -> tuple[int, int]:
                drawn.append((int(torch.randint(0, height - crop[0] + 1, (), generator=generator)),
                              int(torch.randint(0, width - crop[1] + 1, (), generator=generator))))
                return drawn[-1]

            top, left = first = draw()
            first_dominated += dominated(resized[top:top + crop[0], left:left + crop[1]].numpy(), ratio)
            top, left = crop_within_ratio(resized, crop, first, draw, ratio)
            kept_dominated += dominated(resized[top:top + crop[0], left:left + crop[1]].numpy(), ratio)
            draws += len(drawn)
    total = scenes * crops_per_scene
    return {"scenes": scenes, "crops": total, "share_redrawn": first_dominated / total, "draws_per_crop": draws / total,
            "share_dominated_after": kept_dominated / total, "max_draws": CAT_MAX_RATIO_REDRAWS + 1}


def _absolute_size(shape: tuple[int, int], factor: float, base: tuple[int, int]) -> tuple[int, int]:
    """mmcv's keep-ratio rescale of ``shape`` into ``base`` x ``factor`` (archsearch.data.transforms.RandomScale's
    rule with ``base``)."""
    height, width = shape
    target = (int(base[1] * factor), int(base[0] * factor))
    scale = min(max(target) / max(height, width), min(target) / min(height, width))
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


# ---- 2. 8-bit HSV ----------------------------------------------------------------------------------------------

def documented_rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's documented RGB->HSV for 8-bit images, rounded to nearest: [N, 3] uint8 -> [N, 3] (H 0..179)."""
    red, green, blue = (rgb[:, channel].astype(np.float64) / 255.0 for channel in range(3))
    value = np.maximum(np.maximum(red, green), blue)
    spread = value - np.minimum(np.minimum(red, green), blue)
    saturation = np.where(value > 0, spread / np.where(value > 0, value, 1.0), 0.0)
    safe = np.where(spread > 0, spread, 1.0)
    hue = np.where(value == red, 60.0 * (green - blue) / safe,
                   np.where(value == green, 120.0 + 60.0 * (blue - red) / safe, 240.0 + 60.0 * (red - green) / safe))
    hue = np.where(spread > 0, hue, 0.0)
    hue = np.where(hue < 0, hue + 360.0, hue)
    return np.stack((np.rint(hue / 2.0) % 180, np.rint(saturation * 255.0), np.rint(value * 255.0)), 1)


def documented_hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """The inverse of that formula (the standard sector form), 8-bit HSV in, RGB rounded to nearest out."""
    hue = hsv[:, 0].astype(np.float64) * 2.0 / 60.0
    saturation, value = hsv[:, 1] / 255.0, hsv[:, 2] / 255.0
    sector = np.floor(hue).astype(np.int64) % 6
    fraction = hue - np.floor(hue)
    low, falling, rising = value * (1 - saturation), value * (1 - saturation * fraction), \
        value * (1 - saturation * (1 - fraction))
    red = np.choose(sector, [value, falling, low, low, rising, value])
    green = np.choose(sector, [rising, value, value, falling, low, low])
    blue = np.choose(sector, [low, low, rising, value, value, falling])
    return np.clip(np.rint(np.stack((red, green, blue), 1) * 255.0), 0, 255).astype(np.int64)


def mmseg_step(rgb: np.ndarray, to_hsv, to_rgb, *, saturation: float | None = None,
               hue: int | None = None) -> np.ndarray:
    """mmseg's saturation or hue step, written from its PhotoMetricDistortion, with the given conversions."""
    hsv = to_hsv(rgb).astype(np.int64)
    if saturation is not None:
        hsv[:, 1] = np.clip(hsv[:, 1].astype(np.float32) * np.float32(saturation), 0, 255).astype(np.uint8)
    if hue is not None:
        hsv[:, 0] = (hsv[:, 0] + hue) % 180
    return to_rgb(hsv)


def ours(rgb: np.ndarray, *, saturation: float | None = None, hue: int | None = None) -> np.ndarray:
    image = torch.from_numpy(np.ascontiguousarray(rgb.T)).reshape(3, 1, -1)
    out = _scale_hsv_saturation(image, saturation) if saturation is not None else _shift_hsv_hue(image, hue)
    return out.reshape(3, -1).T.numpy().astype(np.int64)


def pixel_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    difference = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return {"share_pixels": float((difference.max(1) > 0).mean()), "mean_level": float(difference.mean()),
            "max_level": int(difference.max())}


def opencv_conversions():
    """cv2's own conversions on RGB rows, or None where OpenCV is not installed."""
    try:
        import cv2
    except ImportError:
        return None

    def to_hsv(rgb: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(np.ascontiguousarray(rgb[:, ::-1]).reshape(1, -1, 3), cv2.COLOR_BGR2HSV).reshape(-1, 3)

    def to_rgb(hsv: np.ndarray) -> np.ndarray:
        bgr = cv2.cvtColor(hsv.astype(np.uint8).reshape(1, -1, 3), cv2.COLOR_HSV2BGR).reshape(-1, 3)
        return bgr[:, ::-1].astype(np.int64)

    return cv2.__version__, to_hsv, to_rgb


def row_tail_difference(width: int, to_hsv, to_rgb) -> dict[str, float]:
    """Ours against OpenCV on 64 rows of ``width`` random colours, saturation x0.7: OpenCV's vectorised path
    truncates, its scalar path for the last (width mod 4 x SIMD lanes) pixels of each row rounds."""
    rgb = np.random.default_rng(4).integers(0, 256, size=(64, width, 3), dtype=np.uint8)
    import cv2

    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2HSV)
    hsv[..., 1] = np.clip(hsv[..., 1].astype(np.float32) * np.float32(0.7), 0, 255).astype(np.uint8)
    reference = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[..., ::-1].reshape(-1, 3)
    image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    got = _scale_hsv_saturation(image, 0.7).permute(1, 2, 0).reshape(-1, 3).numpy()
    return pixel_difference(got, reference)


STEPS = {"saturation x0.5": {"saturation": 0.5}, "saturation x1.5": {"saturation": 1.5},
         "hue -18 units": {"hue": -18}, "hue +17 units": {"hue": 17}}


def hsv_sizes(colours: int) -> dict[str, object]:
    """``colours`` random 8-bit colours, or with 0 every one of the 2^24."""
    if colours:
        rgb = np.random.default_rng(0).integers(0, 256, size=(colours, 3), dtype=np.uint8)
    else:
        every = np.arange(1 << 24, dtype=np.int64)
        rgb = np.stack(((every >> 16) & 255, (every >> 8) & 255, every & 255), 1).astype(np.uint8)
        colours = len(rgb)
    result: dict[str, object] = {"colours": colours, "against_documented_formula": {}}
    for name, step in STEPS.items():
        reference = mmseg_step(rgb, documented_rgb_to_hsv, documented_hsv_to_rgb, **step)
        result["against_documented_formula"][name] = pixel_difference(ours(rgb, **step), reference)
    opencv = opencv_conversions()
    if opencv is not None:
        version, to_hsv, to_rgb = opencv
        result["opencv"] = version
        result["against_opencv"] = {name: pixel_difference(ours(rgb, **step), mmseg_step(rgb, to_hsv, to_rgb, **step))
                                    for name, step in STEPS.items()}
        result["opencv_rows"] = {str(width): row_tail_difference(width, to_hsv, to_rgb) for width in (1024, 720)}
        result["documented_formula_against_opencv"] = {
            name: pixel_difference(mmseg_step(rgb, documented_rgb_to_hsv, documented_hsv_to_rgb, **step),
                                   mmseg_step(rgb, to_hsv, to_rgb, **step)) for name, step in STEPS.items()}
    return result


def continuous_hue_sizes(colours: int) -> dict[str, float]:
    """The former behaviour (torchvision's adjust_hue by a real number of degrees) against the nearest whole
    OpenCV unit, on the same colours and draws; and the draws' mean (mmseg: randint(-18, 18) -> -0.5 units)."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(colours, 3), dtype=np.uint8)
    image = torch.from_numpy(np.ascontiguousarray(rgb.T)).reshape(3, 1, -1)
    shifts = rng.uniform(-18.0, 18.0, size=16)
    differences = [pixel_difference(functional.adjust_hue(image, shift / 180.0).reshape(3, -1).T.numpy(),
                                    _shift_hsv_hue(image, int(round(shift))).reshape(3, -1).T.numpy())
                   for shift in shifts]
    return {"share_pixels": float(np.mean([item["share_pixels"] for item in differences])),
            "mean_level": float(np.mean([item["mean_level"] for item in differences])),
            "max_level": int(max(item["max_level"] for item in differences)),
            "mean_shift_units_mmseg": float(np.mean(np.arange(-18, 18))), "mean_shift_units_continuous": 0.0}


# ---- 3. order and seeding --------------------------------------------------------------------------------------

def seed_spread(table: Path) -> dict[str, float]:
    frame = pd.read_csv(table)
    per_architecture = frame.groupby("arch_hash")["miou"]
    spread = per_architecture.std(ddof=1)
    ranges = per_architecture.max() - per_architecture.min()
    regseg = np.array(REGSEG_REPRODUCIBILITY)
    return {"architectures": int(per_architecture.ngroups), "seeds": int(per_architecture.size().min()),
            "mean_miou": float(frame["miou"].mean()), "std_median": float(spread.median()),
            "std_min": float(spread.min()), "std_max": float(spread.max()),
            "range_median": float(ranges.median()),
            "relative_std_median": float((spread / per_architecture.mean()).median()),
            "regseg_runs": REGSEG_REPRODUCIBILITY, "regseg_std": float(regseg.std(ddof=1)),
            "regseg_range": float(regseg.max() - regseg.min())}


# ---- 4. class order and 5. evaluation size ---------------------------------------------------------------------

def miou(confusion: np.ndarray) -> float:
    intersection = np.diag(confusion)
    return float(np.mean(intersection / (confusion.sum(0) + confusion.sum(1) - intersection)))


def class_order_size() -> float:
    confusion = np.random.default_rng(2).integers(0, 10_000, size=(11, 11)).astype(np.float64)
    order = np.random.default_rng(3).permutation(11)
    return abs(miou(confusion) - miou(confusion[np.ix_(order, order)]))


def evaluation_size_difference() -> int:
    """Pixels by which 1024x2048 exactly and mmseg's Resize(scale=(2048, 1024), keep_ratio=True) differ on a
    1024x2048 Cityscapes frame (mmcv's rescale_size, as RandomScale implements it)."""
    height, width = _absolute_size((1024, 2048), 1.0, (1024, 2048))
    return abs(height * width - 1024 * 2048) + abs(height - 1024) + abs(width - 2048)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--colours", type=int, default=1 << 20,
                        help="random 8-bit colours for the HSV figures (0: all 2^24)")
    parser.add_argument("--scenes", type=int, default=200, help="synthetic scenes for the cat_max_ratio figures")
    arguments = parser.parse_args()
    torch.manual_seed(0)
    figures: dict[str, object] = {}

    crops = figures["cat_max_ratio"] = cat_max_ratio_sizes(arguments.scenes)
    print(f"cat_max_ratio 0.75 (built), {crops['crops']} crops of {crops['scenes']} synthetic scenes (RDRNet's "
          f"geometry at 1/4 size): "
          f"{crops['share_redrawn']:.0%} of first crops re-drawn, {crops['draws_per_crop']:.2f} crops drawn per kept "
          f"crop, {crops['share_dominated_after']:.0%} still dominated after {CAT_MAX_RATIO_REDRAWS} re-draws")

    hsv = figures["hsv"] = hsv_sizes(arguments.colours)
    print(f"8-bit HSV round trips on {hsv['colours']:,} colours")
    for name in STEPS:
        documented = hsv["against_documented_formula"][name]
        line = (f"  {name:16s} vs OpenCV's documented formula: {documented['share_pixels']:.1%} of pixels differ, "
                f"mean {documented['mean_level']:.3f} levels, max {documented['max_level']}")
        if "against_opencv" in hsv:
            exact = hsv["against_opencv"][name]
            formula = hsv["documented_formula_against_opencv"][name]
            line += (f"; vs OpenCV {hsv['opencv']}: {exact['share_pixels']:.4%} differ (max {exact['max_level']}); "
                     f"formula vs OpenCV: {formula['share_pixels']:.1%} (max {formula['max_level']})")
        print(line)
    if "opencv_rows" in hsv:
        print("  whole rows vs OpenCV (its scalar tail rounds): " + ", ".join(
            f"{width} px wide: {size['share_pixels']:.2%} differ (max {size['max_level']})"
            for width, size in hsv["opencv_rows"].items()))
    if "against_opencv" not in hsv:
        print("  (cv2 not importable: the comparison with OpenCV itself was skipped)")
    hue = figures["continuous_hue"] = continuous_hue_sizes(1 << 16)
    print(f"hue by real degrees (before) vs whole units (now): {hue['share_pixels']:.0%} of pixels differ, mean "
          f"{hue['mean_level']:.2f} levels, max {hue['max_level']}; mean shift {hue['mean_shift_units_mmseg']} "
          f"units (mmseg) vs {hue['mean_shift_units_continuous']}")

    seeds = figures["seed_spread"] = seed_spread(RACING_TABLE)
    print(f"seed-to-seed spread (order and seeding change the stream, not the distribution): racing table, "
          f"{seeds['architectures']} architectures x {seeds['seeds']} seeds, mean mIoU {seeds['mean_miou']:.3f}: "
          f"std median {seeds['std_median']:.4f} (range {seeds['std_min']:.4f}-{seeds['std_max']:.4f}), "
          f"{seeds['relative_std_median']:.1%} of the mIoU, max-min median {seeds['range_median']:.4f}; "
          f"RegSeg's own 3 runs of one config and seed: std {seeds['regseg_std']:.2f} points, "
          f"range {seeds['regseg_range']:.2f}")

    figures["class_order_miou_difference"] = class_order_size()
    figures["evaluation_size_pixels"] = evaluation_size_difference()
    print(f"class order permuted: mIoU differs by {figures['class_order_miou_difference']:.1e}; "
          f"evaluation 1024x2048 vs keep-ratio resize of a Cityscapes frame: {figures['evaluation_size_pixels']} px")
    print(json.dumps(figures, default=lambda value: value if not isinstance(value, float) or math.isfinite(value)
                     else None))


if __name__ == "__main__":
    main()
