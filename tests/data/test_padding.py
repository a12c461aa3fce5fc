"""Padded crops hold each author's values, where and when each author pads.

Expected values from the authors' code: mmsegmentation's ``SegDataPreProcessor`` normalises, then
``stack_batch`` pads bottom/right with ``pad_val=0`` and ``seg_pad_val=255`` (RDRNet's configs set
both); RegSeg's ``data.py`` fills with ``tuple(int(v * 255) for v in mean)`` and its ``RandomPad``
draws the top and left padding with ``random.randint(0, pad)``, after RandAugment.
"""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from archsearch.data import AugmentationConfig
from archsearch.errors import SpecError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def small_sample() -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """A 6x8 image of one colour (200, 10, 60) labelled class 1 everywhere: every crop of 10x12 pads."""
    image = torch.tensor([200, 10, 60], dtype=torch.uint8).view(3, 1, 1).expand(3, 6, 8).clone()
    return tv_tensors.Image(image), tv_tensors.Mask(torch.ones(6, 8, dtype=torch.int64))


def crop(settings: dict, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    config = AugmentationConfig.from_dict({"crop_size": [10, 12], "scale_range": [1.0, 1.0], "flip": False,
                                           **settings})
    torch.manual_seed(seed)
    image, mask = config.train_transforms((10, 12))(*small_sample())
    return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)


def test_mmseg_pads_bottom_right_with_zero_after_normalisation() -> None:
    image, mask = crop({"pad_value": "mean", "pad_position": "bottom_right", "pad_order": "after_normalisation",
                        "photometric": True})
    assert image.shape == (3, 10, 12) and mask.shape == (10, 12)
    assert torch.all(image[:, 6:, :] == 0) and torch.all(image[:, :, 8:] == 0)
    assert torch.all(mask[6:, :] == 255) and torch.all(mask[:, 8:] == 255)
    assert torch.all(mask[:6, :8] == 1)


def test_regseg_pads_with_its_8_bit_mean_at_a_random_place_after_randaugment() -> None:
    fill = [int(value * 255) for value in IMAGENET_MEAN]  # RegSeg: (123, 116, 103)
    normalised = torch.tensor([(value / 255 - mean) / std for value, mean, std in zip(fill, IMAGENET_MEAN, IMAGENET_STD)])
    places = set()
    for seed in range(12):
        image, mask = crop({"pad_value": "mean", "pad_position": "random", "pad_order": "after_colour",
                            "randaugment_ops": 2, "randaugment_magnitude": 0.2}, seed)
        rows, columns = torch.nonzero(mask != 255, as_tuple=True)
        top, left = int(rows.min()), int(columns.min())
        places.add((top, left))
        assert (int(rows.max()) - top, int(columns.max()) - left) == (5, 7)  # the whole 6x8 image, moved
        padded = mask == 255
        assert torch.allclose(image[:, padded], normalised.view(3, 1).expand(3, int(padded.sum())), atol=1e-6)
    assert len(places) > 3  # the offset is drawn, not fixed


def test_padding_at_the_crop_goes_through_the_colour_steps_and_after_colour_does_not() -> None:
    changed_at_crop = changed_after = 0
    for seed in range(8):
        for order in ("at_crop", "after_colour"):
            image, mask = crop({"pad_value": "black", "pad_order": order, "photometric": True}, seed)
            black = torch.tensor([-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD)]).view(3, 1)
            padded = image[:, mask == 255]
            same = torch.allclose(padded, black.expand_as(padded), atol=1e-6)
            if order == "at_crop":
                changed_at_crop += not same
            else:
                changed_after += not same
    assert changed_after == 0 and changed_at_crop > 0  # brightness moves the black border when it is there


def test_unknown_padding_choices_are_refused() -> None:
    with pytest.raises(SpecError, match="pad_order"):
        AugmentationConfig.from_dict({"pad_order": "later"})
