"""Data loaders whose order depends only on a seed, and endless iteration over them."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

import numpy
import torch
from torch.utils.data import DataLoader, Dataset

from archsearch.errors import SpecError


def make_loader(dataset: Dataset[Any], batch_size: int, *, shuffle: bool, seed: int,
                num_workers: int = 0, drop_last: bool = False) -> DataLoader[Any]:
    """A loader whose shuffling and worker randomness come from ``seed`` alone.

    The loader's generator advances as it is iterated, so build one loader per training
    run: a reused loader gives the second run a different order.
    """
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      drop_last=drop_last, generator=torch.Generator().manual_seed(seed),
                      worker_init_fn=_seed_worker if num_workers else None)


def cycle_batches(loader: Iterable[Any]) -> Iterator[Any]:
    """Yield the loader's batches pass after pass, forever (each pass reshuffles)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise SpecError("a pass over the training loader yielded no batches",
                            allowed="a re-iterable loader with at least one full batch")


def _seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a worker from the seed torch derived for it."""
    worker_seed = torch.initial_seed() % 2**32
    numpy.random.seed(worker_seed)
    random.seed(worker_seed)
