"""RegSeg's class-uniform sampling, against RolandGao/RegSeg datasets/class_uniform_sampling.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import center_of_mass

from archsearch.data import AugmentationConfig, Sample, SegmentationDataset
from archsearch.data import class_uniform
from archsearch.data.class_uniform import ClassUniformSampler, class_index, epoch_keys, image_centroids
from archsearch.data.labels import identity_table


def regseg_centroids(mask: np.ndarray, tile_size: int, num_classes: int) -> dict[int, list[tuple[int, int]]]:
    """RegSeg's class_centroids_image, written out: whole tiles, the centre of mass of each class in each."""
    found: dict[int, list[tuple[int, int]]] = {}
    for y in range(mask.shape[0] // tile_size):
        for x in range(mask.shape[1] // tile_size):
            patch = mask[y * tile_size:(y + 1) * tile_size, x * tile_size:(x + 1) * tile_size]
            for class_id in range(num_classes):
                if class_id in patch:
                    row, column = center_of_mass((patch == class_id).astype(int))
                    found.setdefault(class_id, []).append((int(column) + x * tile_size, int(row) + y * tile_size))
    return found


def test_centroids_per_tile_are_regsegs() -> None:
    mask = np.random.default_rng(0).integers(0, 4, (9, 13)).astype(np.uint8)
    mask[mask == 3] = 255
    assert image_centroids(mask, 4, 4) == regseg_centroids(mask, 4, 4)
    assert image_centroids(mask, 4, 16) == {}  # an image smaller than a tile has no whole tile


def test_an_epoch_is_random_images_then_equal_shares_per_class() -> None:
    index = {0: [(0, 1, 1), (1, 2, 2)], 1: [(2, 3, 3)], 2: []}
    keys = epoch_keys(20, index, 0.5, torch.Generator().manual_seed(0))
    per_class = int(20 * 0.5 / 3)  # RegSeg: int(num_epoch * class_uniform_pct / num_classes) = 3
    images = [key for key in keys if isinstance(key, int)]
    assert len(images) == 20 - 3 * per_class and len(set(images)) == len(images)  # without replacement
    entries = Counter(key for key in keys if isinstance(key, tuple))
    assert entries[(2, 3, 3)] == per_class  # one entry, wrapped round
    assert entries[(0, 1, 1)] + entries[(1, 2, 2)] == per_class and len(keys) == 20 - 3 * per_class + 2 * per_class


def rare_class_dataset(root: Path, transforms) -> SegmentationDataset:
    """Six 32x48 images of class 0; image 0 has a 2x2 block of class 1 in one corner."""
    samples = []
    for number in range(6):
        image, label = root / f"{number}.png", root / f"{number}_label.png"
        Image.fromarray(np.full((32, 48, 3), 90, dtype=np.uint8)).save(image)
        mask = np.zeros((32, 48), dtype=np.uint8)
        if number == 0:
            mask[28:30, 44:46] = 1
        Image.fromarray(mask).save(label)
        samples.append(Sample(image, label, identity_table(2)))
    return SegmentationDataset(samples, ("common", "rare"), transforms)


def test_the_index_is_built_once_and_read_from_its_cache(tmp_path: Path, monkeypatch) -> None:
    dataset = rare_class_dataset(tmp_path, None)
    first = class_index(dataset, 16, tmp_path / "cache")
    assert first[1] == [(0, 44, 28)] and len(first[0]) == 6 * 6
    monkeypatch.setattr(class_uniform, "decode_label", lambda *_: (_ for _ in ()).throw(AssertionError("rebuilt")))
    assert class_index(dataset, 16, tmp_path / "cache") == first


def test_class_first_epochs_put_the_rare_class_in_its_share_of_crops(tmp_path: Path) -> None:
    augmentation = AugmentationConfig(crop_size=(8, 8), scale_range=(1.0, 1.0), flip=False, class_uniform_pct=0.5,
                                      class_uniform_sampling="per_epoch", class_uniform_tile=16)
    dataset = rare_class_dataset(tmp_path, augmentation.train_transforms((8, 8)))
    sampler = ClassUniformSampler(len(dataset), class_index(dataset, 16, tmp_path / "cache"), 0.5, seed=3)
    torch.manual_seed(0)
    keys = list(sampler)
    assert len(keys) == len(sampler) == 6
    with_rare = sum(bool((dataset[key][1] == 1).any()) for key in keys)
    assert with_rare >= int(6 * 0.5 / 2)  # every entry of the rare class gives a crop holding its centroid
    assert keys != list(sampler)  # a new epoch each pass


def test_a_loader_draws_its_batches_from_the_sampler(tmp_path: Path) -> None:
    from archsearch.train import make_loader

    augmentation = AugmentationConfig(crop_size=(8, 8), scale_range=(1.0, 1.0), flip=False, class_uniform_pct=0.5,
                                      class_uniform_sampling="per_epoch", class_uniform_tile=16)
    dataset = rare_class_dataset(tmp_path, augmentation.train_transforms((8, 8)))
    sampler = ClassUniformSampler(len(dataset), class_index(dataset, 16, tmp_path / "cache"), 0.5, seed=3)
    batches = list(make_loader(dataset, 3, shuffle=True, seed=0, sampler=sampler))
    assert [tuple(batch[1].shape) for batch in batches] == [(3, 8, 8), (3, 8, 8)]
