"""Joint transforms keep image and mask aligned and pad masks with the ignore index."""

from __future__ import annotations

import math

import pytest
import torch

from archsearch.data import IMAGENET_MEAN, IMAGENET_STD, eval_transforms, train_transforms
from archsearch.errors import SpecError
from tests.helpers.scenes import block_scene, classes_from_image, interior


def test_train_transforms_keep_image_and_mask_aligned() -> None:
    transform = train_transforms((48, 64), scale_range=(0.75, 1.5))
    for seed in range(8):
        torch.manual_seed(seed)
        image, mask = transform(*block_scene(64, 96, block=8, seed=seed))
        assert image.dtype == torch.float32 and image.shape == (3, 48, 64)
        assert mask.dtype == torch.int64 and mask.shape == (48, 64)
        checked = interior(mask)
        assert checked.sum() > 500
        agreement = (classes_from_image(image)[checked] == mask[checked]).float().mean()
        assert agreement > 0.97, f"seed {seed}: only {agreement:.1%} of pixels agree"


def test_flip_moves_image_and_mask_together() -> None:
    image, mask = block_scene(16, 24, block=4, seed=0)
    transform = train_transforms((16, 24), scale_range=(1.0, 1.0))
    flipped_seen = unflipped_seen = False
    for seed in range(12):
        torch.manual_seed(seed)
        out_image, out_mask = transform(image, mask)
        assert torch.equal(classes_from_image(out_image), out_mask)
        flipped_seen |= torch.equal(out_mask, mask.flip(-1).long())
        unflipped_seen |= torch.equal(out_mask, mask.long())
    assert flipped_seen and unflipped_seen


def test_crop_larger_than_image_pads_mask_with_ignore_and_image_with_black() -> None:
    image, mask = block_scene(20, 30, block=5, seed=1)
    torch.manual_seed(0)
    out_image, out_mask = train_transforms((40, 50), scale_range=(1.0, 1.0))(image, mask)
    assert out_mask.shape == (40, 50)
    padded = out_mask == 255
    assert int(padded.sum()) == 40 * 50 - 20 * 30
    black = torch.tensor([-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD)])
    assert torch.allclose(out_image[:, padded], black[:, None].expand(3, int(padded.sum())), atol=1e-5)
    assert torch.equal(classes_from_image(out_image)[~padded], out_mask[~padded])


def test_rescale_changes_size_within_range() -> None:
    image, mask = block_scene(40, 40, block=4, seed=2)
    transform = train_transforms(200, scale_range=(0.5, 2.0))
    labelled = set()
    for seed in range(6):
        torch.manual_seed(seed)
        _, out_mask = transform(image, mask)
        labelled.add(int((out_mask != 255).sum()))
    assert len(labelled) > 1 and all(20 * 20 <= area <= 80 * 80 for area in labelled)


def test_eval_transforms_only_normalize() -> None:
    image, mask = block_scene(12, 16, block=4, seed=3)
    out_image, out_mask = eval_transforms()(image, mask)
    assert out_image.shape == (3, 12, 16) and out_mask.dtype == torch.int64
    assert torch.equal(out_mask, mask.long())
    assert torch.equal(classes_from_image(out_image), out_mask)


@pytest.mark.parametrize("crop_size", [0, (-1, 8), (8, 2.5), (8, 8, 8), True])
def test_bad_crop_size_is_refused(crop_size) -> None:
    with pytest.raises(SpecError, match="crop_size"):
        train_transforms(crop_size)


@pytest.mark.parametrize("scale_range", [(0.0, 1.0), (2.0, 1.0), (0.5, math.inf), (0.5,), ("0.5", 2.0)])
def test_bad_scale_range_is_refused(scale_range) -> None:
    with pytest.raises(SpecError, match="scale_range"):
        train_transforms(32, scale_range=scale_range)
