"""RegSeg's class-uniform sampling: each epoch, a share of the crops is drawn class first.

RolandGao/RegSeg ``datasets/class_uniform_sampling.py`` (from NVIDIA's semantic-segmentation):
once per dataset, every label is cut into ``tile_size`` tiles and, for each class in a tile, the
tile's centre of mass of that class is recorded (a class-to-image index, cached in a file). Each
epoch (``build_epoch``) then holds ``n - C * k`` images drawn at random without replacement and,
for each class with entries, ``k = int(n * pct / C)`` entries drawn from that class's list
(a random permutation, wrapped round when the list is shorter). A crop of an entry contains its
centroid (``get_centroid_crop_params``: the left edge drawn from ``cx - width .. cx``, kept inside).

Here the epoch is a :class:`~torch.utils.data.Sampler` (drawn in the loader's process every
epoch, seeded) whose keys carry the centroid to the dataset, which hands it to the crop as a
``tv_tensors.KeyPoints`` so that the rescale before the crop moves it as it moves the pixels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Sampler

from archsearch.data.base import SegmentationDataset
from archsearch.data.labels import decode_label
from archsearch.io import write_text_atomic

Centroid = tuple[int, int, int]
"""(sample index, x, y): one entry of a class's list."""


def image_centroids(train_ids: np.ndarray, num_classes: int, tile_size: int) -> dict[int, list[tuple[int, int]]]:
    """Each class's (x, y) centres of mass, one per ``tile_size`` tile holding it (RegSeg's
    ``class_centroids_image``: whole tiles only, coordinates truncated to integers)."""
    centroids: dict[int, list[tuple[int, int]]] = {}
    height, width = train_ids.shape
    for top in range(0, height // tile_size * tile_size, tile_size):
        for left in range(0, width // tile_size * tile_size, tile_size):
            patch = train_ids[top:top + tile_size, left:left + tile_size]
            for class_id in range(num_classes):
                if (patch == class_id).any():
                    row, column = ndimage.center_of_mass((patch == class_id).astype(int))
                    centroids.setdefault(class_id, []).append((int(column) + left, int(row) + top))
    return centroids


def class_index(dataset: SegmentationDataset, tile_size: int, cache_directory: Path) -> dict[int, list[Centroid]]:
    """The dataset's class-to-centroid index, read from ``cache_directory`` when a file for the same
    label files (paths, sizes, times), classes and tile size is there; built and written otherwise."""
    stamp = hashlib.sha256(json.dumps([tile_size, dataset.num_classes, [
        (str(sample.label), sample.label.stat().st_size, sample.label.stat().st_mtime_ns)
        for sample in dataset.samples]]).encode()).hexdigest()[:24]
    cache = Path(cache_directory) / f"class_index_{stamp}.json"
    if cache.is_file():
        stored = json.loads(cache.read_text())
        return {int(class_id): [tuple(entry) for entry in entries] for class_id, entries in stored.items()}
    index: dict[int, list[Centroid]] = {class_id: [] for class_id in range(dataset.num_classes)}
    for number, sample in enumerate(dataset.samples):
        for class_id, points in image_centroids(decode_label(sample.label, sample.lookup), dataset.num_classes,
                                                tile_size).items():
            index[class_id].extend((number, x, y) for x, y in points)
    write_text_atomic(cache, json.dumps(index))
    return index


def _wrapped_draw(count: int, wanted: int, generator: torch.Generator) -> list[int]:
    """RegSeg's ``random_sampling``: positions of a random permutation, wrapped round to give ``wanted``."""
    order = torch.randperm(count, generator=generator).tolist()
    return [order[position % count] for position in range(wanted)]


def epoch_keys(num_images: int, index: dict[int, list[Centroid]], share: float,
               generator: torch.Generator) -> list[int | Centroid]:
    """One epoch's sample keys, RegSeg's ``build_epoch``: random images, then each class's entries."""
    per_class = int(num_images * share / len(index))
    keys: list[int | Centroid] = _wrapped_draw(num_images, num_images - per_class * len(index), generator)
    for class_id in sorted(index):
        entries = index[class_id]
        if entries:
            keys.extend(entries[position] for position in _wrapped_draw(len(entries), per_class, generator))
    return keys


class ClassUniformSampler(Sampler):
    """A new class-uniform epoch at every pass, shuffled; its keys are indices or (index, x, y) centroids."""

    def __init__(self, num_images: int, index: dict[int, list[Centroid]], share: float, seed: int) -> None:
        self.num_images = num_images
        self.index = index
        self.share = share
        self.generator = torch.Generator().manual_seed(seed)
        self.length = len(epoch_keys(num_images, index, share, torch.Generator().manual_seed(seed)))

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int | Centroid]:
        keys = epoch_keys(self.num_images, self.index, self.share, self.generator)
        for position in torch.randperm(len(keys), generator=self.generator).tolist():
            yield keys[position]
