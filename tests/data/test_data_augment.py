"""The papers' augmentations: class-uniform crops, short-side rescaling, photometric distortion and
RegSeg's reduced RandAugment keep masks aligned with images and do what their recipes say."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from archsearch.data import AugmentationConfig, train_transforms
from archsearch.data.augment import (REDUCED_RANDAUGMENT_OPS, ClassUniformCrop, PhotometricDistortion,
                                     ReducedRandAugment)
from archsearch.errors import SpecError
from tests.helpers.scenes import block_scene, classes_from_image, interior


def lone_pixel(height: int, width: int, row: int, column: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """Every pixel void except one of class 3."""
    mask = torch.full((height, width), 255, dtype=torch.uint8)
    mask[row, column] = 3
    return tv_tensors.Image(torch.zeros(3, height, width, dtype=torch.uint8)), tv_tensors.Mask(mask)


def test_class_uniform_crop_is_centred_on_a_pixel_of_a_present_class() -> None:
    torch.manual_seed(0)
    image, mask = lone_pixel(200, 300, 90, 170)
    crop = ClassUniformCrop((40, 60), class_uniform_pct=1.0)
    for _ in range(20):
        _, out = crop(image, mask)
        assert out.shape == (40, 60) and out[20, 30] == 3


def test_class_uniform_crop_near_the_border_keeps_the_pixel_inside() -> None:
    torch.manual_seed(0)
    image, mask = lone_pixel(100, 100, 2, 97)
    _, out = ClassUniformCrop((32, 32), class_uniform_pct=1.0)(image, mask)
    assert out[2, 29] == 3


def test_class_uniform_share_is_respected() -> None:
    """Without class-uniform crops a lone pixel is rarely in a small crop; with 0.5, about half the time plus that."""
    torch.manual_seed(0)
    image, mask = lone_pixel(200, 200, 100, 100)
    def hits(share: float) -> int:
        crop = ClassUniformCrop((20, 20), class_uniform_pct=share)
        return sum(bool((crop(image, mask)[1] == 3).any()) for _ in range(400))
    assert hits(0.0) < 15
    assert 170 < hits(0.5) < 240


def test_class_uniform_crop_of_a_smaller_image_keeps_it_whole_for_padding_later() -> None:
    image, mask = lone_pixel(10, 16, 5, 5)
    out_image, out_mask = ClassUniformCrop((16, 12), class_uniform_pct=1.0)(image, mask)
    assert out_mask.shape == (10, 12) and (out_mask == 3).sum() == 1


def test_short_side_range_rescales_in_pixels() -> None:
    image, mask = block_scene(100, 200, 10, seed=0)
    out_image, out_mask = train_transforms((40, 80), short_side_range=(40, 40), flip=False)(image, mask)
    assert out_image.shape == (3, 40, 80) and not (out_mask == 255).any()  # 100x200 -> 40x80: nothing padded


@pytest.mark.parametrize("settings", [{"photometric": True}, {"randaugment_ops": 2, "randaugment_magnitude": 0.5},
                                      {"class_uniform_pct": 1.0}])
def test_full_pipelines_keep_image_and_mask_aligned(settings) -> None:
    torch.manual_seed(1)
    image, mask = block_scene(96, 128, 16, seed=2)
    transform = train_transforms((64, 64), scale_range=(1.0, 1.0), **settings)
    for _ in range(5):
        out_image, out_mask = transform(image, mask)
        assert out_image.dtype == torch.float32 and out_mask.dtype == torch.int64
        if "class_uniform_pct" in settings:  # colours unchanged: every pixel's class is readable
            inside = interior(out_mask)
            assert torch.equal(classes_from_image(out_image)[inside], out_mask[inside])


def test_photometric_distortion_changes_colours_only() -> None:
    image, mask = block_scene(32, 32, 8, seed=0)
    distortion = PhotometricDistortion()
    params = {"brightness": 20.0, "contrast_first": True, "contrast": 1.5, "saturation": None, "hue": None}
    out = distortion.transform(image, params)
    expected = ((image.float() + 20.0).clamp(0, 255).to(torch.uint8).float() * 1.5).clamp(0, 255).to(torch.uint8)
    assert isinstance(out, tv_tensors.Image) and torch.equal(out, expected)
    assert distortion.transform(mask, params) is mask


def test_photometric_distortion_draws_each_step_half_the_time() -> None:
    torch.manual_seed(0)
    distortion = PhotometricDistortion()
    drawn = [distortion.make_params([]) for _ in range(400)]
    for key in ("brightness", "contrast", "saturation", "hue"):
        share = sum(params[key] is not None for params in drawn) / 400
        assert 0.4 < share < 0.6, key
    hues = {params["hue"] for params in drawn if params["hue"] is not None}
    assert all(isinstance(hue, int) for hue in hues)
    assert hues == set(range(-18, 18))  # mmseg: numpy.random.randint(-18, 18), whole OpenCV hue units


def scripted(offsets: list[tuple[int, int]]):
    """A ``draw`` that returns ``offsets`` in turn and records how many it gave."""
    given = []
    def draw() -> tuple[int, int]:
        given.append(offsets[len(given)])
        return given[-1]
    return draw, given


def two_class_strip() -> torch.Tensor:
    """10 x 100 labels: class 0 in columns 0-69, class 1 in 70-89, void (255) in 90-99."""
    labels = torch.zeros(10, 100, dtype=torch.uint8)
    labels[:, 70:90] = 1
    labels[:, 90:] = 255
    return labels


def test_cat_max_ratio_keeps_the_first_crop_no_class_dominates() -> None:
    """mmseg RandomCrop.crop_bbox: a crop is kept when it holds more than one class and the largest has a
    share < cat_max_ratio of the labelled pixels; void does not count."""
    from archsearch.data.augment import crop_within_ratio

    labels = two_class_strip()
    draw, given = scripted([(0, 0)] * 3 + [(0, 55)] + [(0, 0)] * 20)
    # first (0, 0): 20 columns of class 0 only -> re-drawn; (0, 55) then 15 + 5 -> 0.75, not < 0.75 -> re-drawn
    assert crop_within_ratio(labels, (10, 20), (0, 0), draw, 0.75) == (0, 0) and len(given) == 10
    draw, given = scripted([(0, 0), (0, 61), (0, 0)])  # (0, 61): 9 of class 0, 11 of class 1 -> kept
    assert crop_within_ratio(labels, (10, 20), (0, 0), draw, 0.75) == (0, 61) and len(given) == 2
    draw, given = scripted([(0, 64)])  # (0, 75): 15 of class 1 and 5 void: one class only -> re-drawn
    assert crop_within_ratio(labels, (10, 20), (0, 75), draw, 0.75) == (0, 64) and len(given) == 1
    draw, given = scripted([(0, 64)])  # (0, 65): 5 of class 0, 15 of class 1: share 0.75 -> re-drawn ...
    assert crop_within_ratio(labels, (10, 20), (0, 65), draw, 0.75) == (0, 64)  # ... (0, 64): 14/20 = 0.7, kept
    assert crop_within_ratio(labels, (10, 20), (0, 65), scripted([])[0], 0.8) == (0, 65)  # 0.75 < 0.8: kept


def test_cat_max_ratio_draws_at_most_ten_more_crops_and_keeps_the_last() -> None:
    from archsearch.data.augment import crop_within_ratio

    labels = torch.zeros(10, 100, dtype=torch.uint8)  # one class everywhere: no crop passes
    offsets = [(0, column) for column in range(1, 30)]
    draw, given = scripted(offsets)
    assert crop_within_ratio(labels, (10, 20), (0, 0), draw, 0.75) == offsets[9] and len(given) == 10


def test_cat_max_ratio_makes_dominated_crops_rarer_in_the_pipeline() -> None:
    """On the strip, 9 of the 81 random 10x20 crops pass (left edge 56-64); with cat_max_ratio 0.75 a kept crop
    passes unless all 11 draws fail: 1 - (72/81) ** 11 = 0.73."""
    labels = two_class_strip()
    image = tv_tensors.Image(torch.zeros(3, 10, 100, dtype=torch.uint8))
    def passing_share(ratio: float) -> float:
        torch.manual_seed(0)
        crop = ClassUniformCrop((10, 20), cat_max_ratio=ratio)
        kept = [crop(image, tv_tensors.Mask(labels))[1] for _ in range(300)]
        def passes(window: torch.Tensor) -> bool:
            counts = torch.bincount(window[window != 255].long())
            counts = counts[counts > 0]
            return len(counts) > 1 and float(counts.max() / counts.sum()) < 0.75
        return sum(passes(window) for window in kept) / len(kept)
    assert passing_share(1.0) < 0.2
    assert 0.62 < passing_share(0.75) < 0.84


def test_cat_max_ratio_is_an_augmentation_option() -> None:
    config = AugmentationConfig.from_dict({"crop_size": [10, 20], "cat_max_ratio": 0.75}, "study.yaml")
    assert config.cat_max_ratio == 0.75 and AugmentationConfig().cat_max_ratio == 1.0
    crop = next(step for step in config.train_transforms((10, 20)).transforms if isinstance(step, ClassUniformCrop))
    assert crop.cat_max_ratio == 0.75


def test_reduced_randaugment_rotates_mask_with_image_and_fills_void() -> None:
    image = torch.zeros(3, 64, 64, dtype=torch.uint8)
    image[:, 16:48, 16:48] = 255
    mask = (image[0] > 0).to(torch.uint8)
    augment = ReducedRandAugment(num_ops=1, magnitude=1.0)
    out_image, out_mask = augment.transform(tv_tensors.Image(image), {"ops": [("rotate", 30.0)]}), \
        augment.transform(tv_tensors.Mask(mask), {"ops": [("rotate", 30.0)]})
    assert out_mask[0, 0] == 255 and out_image[:, 0, 0].tolist() == [123, 116, 103]
    square = out_image[0] > 127
    assert ((out_mask == 1) == square).float().mean() > 0.98
    assert set(out_mask.unique().tolist()) == {0, 1, 255}


def test_reduced_randaugment_draws_distinct_ops_from_regsegs_list() -> None:
    torch.manual_seed(0)
    augment = ReducedRandAugment(num_ops=2, magnitude=0.2)
    for _ in range(50):
        ops = augment.make_params([])["ops"]
        names = [name for name, _ in ops]
        assert len(set(names)) == 2 and set(names) <= set(REDUCED_RANDAUGMENT_OPS)
        for name, value in ops:
            assert abs(value) == pytest.approx({"rotate": 6.0, "auto_contrast": 0.0, "equalize": 0.0}.get(name, 0.18))


def test_photometric_ops_leave_the_mask_alone() -> None:
    image, mask = block_scene(32, 32, 8, seed=3)
    augment = ReducedRandAugment()
    for name in REDUCED_RANDAUGMENT_OPS:
        if name != "rotate":
            assert augment.transform(mask, {"ops": [(name, 0.18)]}) is mask


def test_augmentation_config_round_trips_and_builds() -> None:
    data = {"crop_size": [768, 768], "short_side_range": [400, 1600], "randaugment_ops": 2,
            "class_uniform_pct": 0.5, "photometric": False}
    config = AugmentationConfig.from_dict(data, "study.yaml")
    assert AugmentationConfig.from_dict(config.to_dict()) == config
    assert config.crop_size == (768, 768) and config.short_side_range == (400, 1600)
    assert AugmentationConfig.from_dict(None) == AugmentationConfig()


@pytest.mark.parametrize("data, path", [
    ({"crop": [1, 1]}, "augmentation.crop"),
    ({"crop_size": [0, 8]}, "augmentation.crop_size"),
    ({"scale_range": [2.0, 1.0]}, "augmentation.scale_range"),
    ({"scale_range": [0.5, 2.0], "short_side_range": [400, 1600]}, "augmentation.short_side_range"),
    ({"short_side_range": [400.5, 1600]}, "augmentation.short_side_range"),
    ({"class_uniform_pct": 1.5}, "augmentation.class_uniform_pct"),
    ({"randaugment_ops": 9}, "augmentation.randaugment_ops"),
    ({"photometric": "yes"}, "augmentation.photometric"),
    ({"cat_max_ratio": 0.0}, "augmentation.cat_max_ratio"),
    ({"cat_max_ratio": 1.5}, "augmentation.cat_max_ratio"),
])
def test_bad_augmentation_names_its_key(data, path) -> None:
    with pytest.raises(SpecError) as error:
        AugmentationConfig.from_dict(data, "study.yaml")
    assert error.value.path.startswith(path) and "study.yaml" in str(error.value)


# OpenCV 4.14.0's own answers (opencv-python-headless: cv2.cvtColor with COLOR_BGR2HSV / COLOR_HSV2BGR, as mmseg's
# PhotoMetricDistortion calls it through mmcv.bgr2hsv / hsv2bgr), written as RGB, for pixels in a row long enough for
# OpenCV's vectorised path (every pixel of an image but the last few, where its scalar tail rounds instead of
# truncating). Saturation: S = uint8(clip(S * alpha)); hue: H = (H + step) % 180.
OPENCV_COLOURS = [(200, 40, 40), (30, 160, 90), (128, 128, 128), (250, 250, 10), (12, 34, 200), (255, 0, 0),
                  (1, 0, 0), (0, 1, 2), (255, 205, 205), (17, 9, 16), (241, 160, 175),
                  (229, 148, 198), (213, 57, 14), (76, 72, 223), (233, 1, 127), (210, 33, 204)]
OPENCV_HSV = [(0, 204, 200), (74, 207, 160), (0, 0, 128), (30, 245, 250), (117, 240, 200), (0, 255, 255),
              (0, 255, 1), (105, 255, 2), (0, 50, 255), (154, 120, 17), (174, 86, 241),
              (161, 90, 229), (6, 238, 213), (121, 173, 223), (164, 254, 233), (151, 215, 210)]
OPENCV_SATURATION = {
    0.5: [(200, 120, 120), (95, 160, 125), (128, 128, 128), (250, 250, 130), (105, 115, 200), (255, 127, 127),
          (1, 0, 0), (1, 1, 2), (255, 230, 230), (17, 13, 16), (241, 200, 208), (229, 188, 214),
          (213, 133, 113), (150, 147, 223), (233, 116, 178), (210, 121, 207)],
    1.4: [(200, 0, 0), (0, 160, 74), (128, 128, 128), (250, 250, 0), (0, 19, 200), (255, 0, 0), (1, 0, 0),
          (0, 0, 2), (255, 185, 185), (17, 5, 15), (241, 127, 150), (229, 115, 187), (213, 42, 0),
          (18, 11, 223), (233, 0, 124), (210, 0, 202)]}
OPENCV_HUE = {
    -18: [(200, 39, 135), (47, 160, 30), (128, 128, 128), (250, 105, 9), (11, 143, 200), (255, 0, 152), (1, 0, 0),
          (0, 2, 1), (255, 205, 234), (13, 8, 17), (241, 159, 224), (210, 148, 229), (213, 14, 93),
          (71, 157, 223), (202, 0, 233), (109, 32, 210)],
    7: [(200, 77, 39), (30, 160, 121), (128, 128, 128), (193, 250, 9), (36, 11, 200), (255, 59, 0), (1, 0, 0),
        (0, 0, 2), (255, 216, 205), (17, 8, 14), (241, 162, 159), (229, 148, 180), (213, 100, 14),
        (112, 71, 223), (233, 0, 70), (210, 32, 162)]}


def as_image(colours: list[tuple[int, int, int]]) -> torch.Tensor:
    return torch.tensor(colours, dtype=torch.uint8).T.reshape(3, 1, len(colours))


def as_colours(image: torch.Tensor) -> list[tuple[int, ...]]:
    return [tuple(colour) for colour in image.reshape(3, -1).T.tolist()]


def test_8bit_hsv_is_opencvs() -> None:
    from archsearch.data.augment import _to_opencv_hsv

    hue, saturation, value = _to_opencv_hsv(as_image(OPENCV_COLOURS))
    assert as_colours(torch.stack((hue, saturation, value))) == OPENCV_HSV


@pytest.mark.parametrize("alpha", sorted(OPENCV_SATURATION))
def test_photometric_saturation_scales_the_hsv_channel_as_mmseg_does(alpha) -> None:
    """mmseg's PhotoMetricDistortion.saturation: bgr2hsv, S = clip(S * alpha) as uint8, hsv2bgr; greys stay grey."""
    from archsearch.data.augment import _scale_hsv_saturation

    assert as_colours(_scale_hsv_saturation(as_image(OPENCV_COLOURS), alpha)) == OPENCV_SATURATION[alpha]
    grey = torch.full((3, 2, 2), 77, dtype=torch.uint8)
    assert torch.equal(_scale_hsv_saturation(grey, 1.5), grey)


@pytest.mark.parametrize("step", sorted(OPENCV_HUE))
def test_photometric_hue_shifts_whole_opencv_hue_units_as_mmseg_does(step) -> None:
    """mmseg's PhotoMetricDistortion.hue: bgr2hsv, H = (H + step) % 180 (2 degrees a unit), hsv2bgr."""
    from archsearch.data.augment import _shift_hsv_hue

    assert as_colours(_shift_hsv_hue(as_image(OPENCV_COLOURS), step)) == OPENCV_HUE[step]
    red = torch.tensor([255, 0, 0], dtype=torch.uint8).reshape(3, 1, 1)
    assert _shift_hsv_hue(red, 90).flatten().tolist() == [0, 254, 255]  # cyan, with OpenCV's float32 truncation
    assert _shift_hsv_hue(red, 60).flatten().tolist() == [0, 255, 0]
