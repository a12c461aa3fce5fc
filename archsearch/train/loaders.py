"""Data loaders whose order depends only on a seed, and endless iteration over them."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator
from typing import Any

import numpy
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from archsearch.errors import SpecError
from archsearch.train.config import TrainConfig


def make_loader(dataset: Dataset[Any], batch_size: int, *, shuffle: bool, seed: int,
                num_workers: int = 0, drop_last: bool = False,
                pin_memory: bool = False, sampler: Sampler[Any] | None = None) -> DataLoader[Any]:
    """A loader whose shuffling and worker randomness come from ``seed`` alone.

    The loader's generator advances as it is iterated, so build one loader per training
    run: a reused loader gives the second run a different order. Workers persist from
    one pass to the next (no re-forking per epoch); ``pin_memory`` (for a CUDA trainer)
    lets host-to-device copies run asynchronously. A ``sampler`` (seeded by its maker) replaces
    shuffling.
    """
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=num_workers, drop_last=drop_last, generator=torch.Generator().manual_seed(seed),
                      worker_init_fn=_seed_worker if num_workers else None, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0)


def loader_settings(config: TrainConfig) -> dict[str, Any]:
    """``make_loader``'s worker and pinning arguments for a run of ``config``."""
    return {"num_workers": default_workers(config.num_workers, config.device, config.num_threads),
            "pin_memory": torch.device(config.device).type == "cuda"}


def default_workers(num_workers: int | None, device: str, num_threads: int | None) -> int:
    """Data-loading processes for one trial: ``num_workers`` if given, else what its CPUs allow.

    On a CUDA trainer the CPU only feeds the GPU, so every CPU thread of the trial but
    the main process's loads data. On a CPU trainer the same cores run the model; workers
    would take them from it (and cost a fork per loader), so loading stays in-process:
    measured on the default study, one worker made trials slower, not faster (README).
    """
    if num_workers is not None:
        return num_workers
    if torch.device(device).type != "cuda":
        return 0
    threads = num_threads if num_threads is not None else _available_cpus()
    return max(1, threads - 1)


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


def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a worker from the seed torch derived for it."""
    worker_seed = torch.initial_seed() % 2**32
    numpy.random.seed(worker_seed)
    random.seed(worker_seed)
