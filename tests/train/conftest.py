"""A tiny segmentation model with the trainer's interface and a task it can learn."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

NUM_CLASSES = 3


class TinySegmenter(nn.Module):
    """conv-BN-ReLU(-dropout) body, a 1x1 head and, optionally, a 1x1 auxiliary head."""

    def __init__(self, *, aux: bool = False, width: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width),
                                  nn.ReLU(), nn.Dropout2d(dropout))
        self.head = nn.Conv2d(width, NUM_CLASSES, 1)
        self.aux_head = nn.Conv2d(width, NUM_CLASSES, 1) if aux else None

    def forward(self, images: Tensor, return_aux: bool = False):
        features = self.body(images)
        logits = self.head(features)
        if not return_aux:
            return logits
        return logits, None if self.aux_head is None else self.aux_head(features)


def color_dataset(size: int, seed: int) -> TensorDataset:
    """Random 32x32 images whose label is the brightest channel; a border row is void."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(size, 3, 32, 32, generator=generator)
    labels = images.argmax(dim=1)
    labels[:, 0, :] = 255
    return TensorDataset(images, labels)


@pytest.fixture
def make_model() -> Callable[..., TinySegmenter]:
    return TinySegmenter


@pytest.fixture
def train_set() -> TensorDataset:
    return color_dataset(16, seed=1)


@pytest.fixture
def val_set() -> TensorDataset:
    return color_dataset(8, seed=2)
