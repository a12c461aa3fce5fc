"""Data-loading throughput of full-size Cityscapes frames with 0, 1 and 2 loader workers.

Writes a Cityscapes-layout folder (leftImg8bit/ and gtFine/, 1024x2048 PNGs) of a few dozen
street-like frames into a temporary directory, then reads it through the training pipeline of
a recipe (RDRNet's by default: rescale 0.5-2.0, 1024x1024 crop, flip, photometric distortion)
and prints images per second for each worker count. Target: 2 workers >= 1.8x the single-worker
rate. The single-worker rate is measured twice; the difference is the noise floor of this
(shared) machine, printed beside the ratio so a miss within the noise is read as such.

    python benchmarks/data_throughput.py [--images 24] [--passes 1] [--recipe rdrnet|regseg]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from archsearch.data import AugmentationConfig, CityscapesDataset
from archsearch.train import make_loader

SIZE = (1024, 2048)
RECIPES = {
    "rdrnet": AugmentationConfig(crop_size=(1024, 1024), scale_range=(0.5, 2.0), photometric=True),
    "regseg": AugmentationConfig(crop_size=(768, 768), short_side_range=(400, 1600), randaugment_ops=2,
                                 class_uniform_pct=0.5),
}


def write_frames(root: Path, count: int) -> None:
    """Smooth colour fields with texture and label blocks: PNGs that cost about what real frames cost to decode."""
    images = root / "leftImg8bit" / "train" / "bench"
    labels = root / "gtFine" / "train" / "bench"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    height, width = SIZE
    for index in range(count):
        rng = np.random.default_rng(index)
        coarse = rng.integers(0, 256, (height // 64, width // 64, 3)).astype(np.float32)
        colour = np.kron(coarse, np.ones((64, 64, 1), dtype=np.float32))
        colour += rng.normal(0, 12, colour.shape).astype(np.float32)
        label_ids = np.kron(rng.choice([7, 8, 11, 17, 21, 23, 24, 26], (height // 128, width // 128)),
                            np.ones((128, 128), dtype=np.int64)).astype(np.uint8)
        stem = f"bench_{index:06d}_000019"
        Image.fromarray(np.clip(colour, 0, 255).astype(np.uint8)).save(images / f"{stem}_leftImg8bit.png")
        Image.fromarray(label_ids).save(labels / f"{stem}_gtFine_labelIds.png")


def images_per_second(dataset: CityscapesDataset, workers: int, passes: int) -> float:
    """Images per second over ``passes`` passes, after the first batch (worker start-up is not counted)."""
    loader = make_loader(dataset, 2, shuffle=True, seed=0, num_workers=workers, drop_last=True)
    batches = iter(loader)
    next(batches)
    started, count = time.perf_counter(), 0
    for images, _ in batches:
        count += len(images)
    for _ in range(passes - 1):
        for images, _ in loader:
            count += len(images)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="frames to write (default 24)")
    parser.add_argument("--passes", type=int, default=1, help="passes over them per measurement (default 1)")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="rdrnet")
    arguments = parser.parse_args()
    torch.set_num_threads(1)  # each loading process decodes and augments on one core, as in a trial

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        write_frames(root, arguments.images)
        print(f"wrote {arguments.images} frames of {SIZE[0]}x{SIZE[1]} in {time.perf_counter() - started:.1f} s "
              f"({len(os.sched_getaffinity(0))} CPUs here)")
        dataset = CityscapesDataset(root, "train", RECIPES[arguments.recipe].train_transforms(SIZE))
        rates = {}
        for workers in (0, 1, 2):
            rates[workers] = images_per_second(dataset, workers, arguments.passes)
            print(f"{workers} workers: {rates[workers]:6.2f} images/s")
        again = images_per_second(dataset, 1, arguments.passes)
        noise = abs(again - rates[1]) / rates[1]
        print(f"1 worker again: {again:6.2f} images/s (noise floor {noise:.0%})")
        print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x (target >= 1.8x; noise floor {noise:.0%})")


if __name__ == "__main__":
    main()
