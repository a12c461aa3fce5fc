"""One trial as several processes: torch.distributed and DistributedDataParallel, as mmseg trains on N GPUs.

RDRNet-S's Cityscapes recipe is ``2xb6``: two GPUs with 6 images each, plain BatchNorm (each GPU
normalises its own 6), OHEM keeping ``min_kept`` pixels of each GPU's batch, gradients averaged by
DDP, and mmengine's DDP wrapper with ``broadcast_buffers=False`` (each process keeps its own running
statistics; the checkpoint is rank 0's). :func:`train_in_processes` starts ``config.processes``
processes (spawned; gloo on the CPU, NCCL on CUDA, ``cuda:<rank>`` each), runs the ordinary trainer
in each on its share of every batch (``DistributedSampler``) and, at each evaluation, on its share of
the validation images with the confusion counts summed over the processes: one evaluation of the
whole set. Rank 0 reports evaluations (for pruning) and the result; a process that raises or dies
ends the trial with its reason, and the others are stopped.
"""

from __future__ import annotations

import io
import os
import queue
import signal
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as multiprocessing
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from archsearch.errors import ArchsearchError, SpecError
from archsearch.train.config import TrainConfig
from archsearch.train.loaders import loader_settings, make_loader
from archsearch.train.metrics import ConfusionMatrix
from archsearch.train.trainer import TrainResult, train_and_evaluate

POLL_SECONDS = 0.5


class WorkerFailed(ArchsearchError):
    """A process of a multi-process trial raised or died; the message says which and why."""


class _EpochLoader:
    """A loader over a DistributedSampler that moves the sampler to the next epoch at every pass, so each
    pass is shuffled anew (the sampler's order depends on seed and epoch only, the same in every process)."""

    def __init__(self, loader: DataLoader, sampler: DistributedSampler) -> None:
        self.loader = loader
        self.sampler = sampler
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.loader)


def process_device(config: TrainConfig, rank: int) -> str:
    """The device of process ``rank``: ``cuda:<rank>`` on CUDA (one GPU each), the CPU otherwise."""
    return f"cuda:{rank}" if torch.device(config.device).type == "cuda" else config.device


def _worker(rank: int, world_size: int, rendezvous: str, build_model: Callable[[], nn.Module], train_set: Dataset,
            val_set: Dataset, config: TrainConfig, messages: Any) -> None:
    """One process: join the group, train its share with the ordinary trainer, report (rank 0)."""
    try:
        device = process_device(config, rank)
        backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend, init_method=rendezvous, rank=rank, world_size=world_size)
        share = replace(config, batch_size=config.batch_size // world_size, device=device, processes=1)
        torch.manual_seed(config.seed)
        model = build_model()
        if config.sync_batchnorm:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(device)
        parallel = DistributedDataParallel(model, device_ids=[rank] if backend == "nccl" else None,
                                           broadcast_buffers=False)
        loading = loader_settings(share)
        sampler = DistributedSampler(train_set, world_size, rank, shuffle=True, seed=config.seed, drop_last=True)
        train_loader = _EpochLoader(make_loader(train_set, share.batch_size, shuffle=False, seed=config.seed,
                                                drop_last=True, sampler=sampler, **loading), sampler)
        val_loader = make_loader(Subset(val_set, range(rank, len(val_set), world_size)), share.batch_size,
                                 shuffle=False, seed=config.seed, **loading)

        def report(step: int, miou: float) -> None:
            if rank == 0:
                messages.put(("evaluation", step, miou))

        result = train_and_evaluate(parallel, train_loader, val_loader, share, on_evaluation=report,
                                    gather=_sum_counts)
        if rank == 0:
            weights = io.BytesIO()  # bytes, not shared tensors: the sender may be gone when they are read
            torch.save({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}, weights)
            messages.put(("result", result, weights.getvalue()))
        dist.barrier()
        dist.destroy_process_group()
    except BaseException as error:  # every failure reaches the parent with its reason
        reason = f"{type(error).__name__}: {error}"
        messages.put(("error", rank, reason, traceback.format_exc(limit=-3)))
        raise SystemExit(1) from None


def _sum_counts(matrix: ConfusionMatrix) -> None:
    dist.all_reduce(matrix.counts)


def train_in_processes(build_model: Callable[[], nn.Module], train_set: Dataset, val_set: Dataset,
                       config: TrainConfig, *, on_evaluation: Callable[[int, float], None] | None = None
                       ) -> tuple[TrainResult, dict[str, torch.Tensor]]:
    """Train as ``config.processes`` processes; return rank 0's result and weights.

    ``build_model`` (picklable: a module-level function or a ``functools.partial``) builds the
    network in each process after seeding it with ``config.seed``, so all start alike.
    ``on_evaluation`` runs here, in the calling process; whatever it raises (a pruning signal) stops
    every process and propagates. Raises :class:`WorkerFailed` when a process raises or dies.
    """
    if torch.device(config.device).type == "cuda" and torch.cuda.device_count() < config.processes:
        raise SpecError("a process of the trial needs a GPU of its own", path="processes", value=config.processes,
                        allowed=f"at most the {torch.cuda.device_count()} CUDA device(s) of this machine")
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    with tempfile.TemporaryDirectory(prefix="archsearch-group-") as directory:
        rendezvous = Path(directory, "rendezvous").as_uri()
        workers = [context.Process(target=_worker, daemon=True,
                                   args=(rank, config.processes, rendezvous, build_model, train_set, val_set,
                                         config, messages))
                   for rank in range(config.processes)]
        for worker in workers:
            worker.start()
        try:
            return _follow(workers, messages, on_evaluation)
        finally:
            _stop(workers)


def _follow(workers: list[Any], messages: Any,
            on_evaluation: Callable[[int, float], None] | None) -> tuple[TrainResult, dict[str, torch.Tensor]]:
    """Relay rank 0's evaluations until its result comes, watching every process for failure."""
    outcome = None
    while True:
        try:
            message = messages.get(timeout=POLL_SECONDS)
        except queue.Empty:
            message = None
        if message is not None:
            kind = message[0]
            if kind == "evaluation" and on_evaluation is not None:
                on_evaluation(message[1], message[2])
            elif kind == "result":
                outcome = (message[1], torch.load(io.BytesIO(message[2]), weights_only=True))
            elif kind == "error":
                raise WorkerFailed(f"process {message[1]} of {len(workers)} failed: {message[2]}")
            continue
        for rank, worker in enumerate(workers):
            if worker.exitcode not in (None, 0):
                raise WorkerFailed(f"process {rank} of {len(workers)} died: {_exit_reason(worker.exitcode)}")
        if all(worker.exitcode == 0 for worker in workers):  # all ended well, and every message is read
            if outcome is None:
                raise WorkerFailed("every process ended without a result")
            return outcome


def _exit_reason(exitcode: int) -> str:
    if exitcode < 0:
        return f"killed by signal {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def _stop(workers: list[Any]) -> None:
    """End every process still running (a failed or pruned trial) and reap them all."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout=10)
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGKILL)
            worker.join()
