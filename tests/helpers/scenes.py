"""Block scenes for transform tests: class blocks painted in one palette colour per class, so a test
can read every pixel's class back from the image after a transform and compare it with the mask."""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors

from archsearch.data import IMAGENET_MEAN, IMAGENET_STD

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
