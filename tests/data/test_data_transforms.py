"""Joint transforms keep image and mask aligned and pad masks with the ignore index."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from archsearch.data import IMAGENET_MEAN, IMAGENET_STD, eval_transforms, train_transforms
from archsearch.errors import SpecError

# One distinct colour per class, so the class of an image pixel can be read back from its colour.
PALETTE = np.array([[(37 * c) % 256, (91 * c + 40) % 256, (173 * c + 90) % 256] for c in range(19)], dtype=np.uint8)


def block_scene(height: int, width: int, block: int, seed: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """A mask of random class blocks and the image that paints each class in its palette colour."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 19, (height // block, width // block))
    mask = np.kron(coarse, np.ones((block, block), dtype=np.int64)).astype(np.uint8)
    image = PALETTE[mask]
    return tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)), tv_tensors.Mask(torch.from_numpy(mask))


def classes_from_image(image: torch.Tensor) -> torch.Tensor:
    """Undo normalization and give every pixel the class of the nearest palette colour."""
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    rgb = ((image * std + mean) * 255).permute(1, 2, 0)
    distances = (rgb[:, :, None, :] - torch.from_numpy(PALETTE).float()).pow(2).sum(-1)
    return distances.argmin(-1)


def interior(mask: torch.Tensor) -> torch.Tensor:
    """Pixels whose 3x3 neighbourhood has one label, away from blends at block borders."""
    padded = torch.nn.functional.pad(mask[None, None].float(), (1, 1, 1, 1), mode="replicate")[0, 0]
    same = torch.ones_like(mask, dtype=torch.bool)
    for row in range(3):
        for column in range(3):
            same &= padded[row:row + mask.shape[0], column:column + mask.shape[1]] == mask
    return same & (mask != 255)


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
