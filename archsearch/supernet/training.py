"""Training a supernet on a study's data and recipe, resumable from its checkpoint; evaluating its subnets.

Each step trains the paths the sampling rule draws for it (one for ``uniform``, three for
``sandwich``), their gradients summed before one optimizer step, with the recipe's optimizer,
schedule and loss over ``iterations`` steps. The checkpoint (written atomically every
``checkpoint_every`` steps and at the end) holds the shared tensors' shapes and values, the
optimizer and schedule, the step, and torch's random state; a run started again with the same
arguments continues from it and ends where an uninterrupted run would (the data order is
replayed up to the saved step).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import Tensor

from archsearch.arch.network import SegmentationNetwork
from archsearch.io import write_atomic
from archsearch.space.sampling import Space
from archsearch.supernet.layout import Params
from archsearch.supernet.network import Supernet, extract
from archsearch.supernet.paths import compile_supernet, training_paths
from archsearch.supernet.recalibrate import recalibrate_batchnorm
from archsearch.train.config import TrainConfig
from archsearch.train.evaluation import evaluate
from archsearch.train.loaders import cycle_batches
from archsearch.train.losses import build_loss
from archsearch.train.optim import build_optimizer, build_scheduler
from archsearch.train.trainer import present_device

CHECKPOINT_EVERY = 50


def train_supernet(space: Space, data: Iterable[tuple[Tensor, Tensor]], recipe: TrainConfig, *, iterations: int,
                   sampling: str, num_classes: int, checkpoint: Path | None = None, coverage: int = 64,
                   checkpoint_every: int = CHECKPOINT_EVERY, stop_after: int | None = None) -> Supernet:
    """Train a supernet over ``space`` for ``iterations`` steps of ``data`` batches (resumed from ``checkpoint``).

    ``stop_after`` ends the call after that many steps of this call (the checkpoint then says
    where to go on); the run is complete when the checkpoint's step is ``iterations``. Uses the recipe's
    ``num_threads`` (restoring the caller's afterwards), as a stand-alone training does.
    """
    previous_threads = torch.get_num_threads()
    if recipe.num_threads is not None:
        torch.set_num_threads(recipe.num_threads)
    try:
        return _train(space, data, recipe, iterations=iterations, sampling=sampling, num_classes=num_classes,
                      checkpoint=checkpoint, coverage=coverage, checkpoint_every=checkpoint_every,
                      stop_after=stop_after)
    finally:
        torch.set_num_threads(previous_threads)


def _train(space: Space, data: Iterable[tuple[Tensor, Tensor]], recipe: TrainConfig, *, iterations: int,
           sampling: str, num_classes: int, checkpoint: Path | None, coverage: int, checkpoint_every: int,
           stop_after: int | None) -> Supernet:
    device = present_device(recipe.device)
    torch.manual_seed(recipe.seed)
    saved = torch.load(checkpoint, weights_only=False) if checkpoint is not None and checkpoint.exists() else None
    if saved is None:
        supernet = compile_supernet(space, num_classes=num_classes, coverage=coverage, seed=recipe.seed)
    else:
        supernet = _restored(saved, space, num_classes)
    supernet.to(device).train()
    run = _Run(supernet, recipe, iterations, device)
    start = 0
    if saved is not None:
        run.optimizer.load_state_dict(saved["optimizer"])
        run.scheduler.load_state_dict(saved["scheduler"])
        start = saved["step"]
    batches = cycle_batches(data)
    for _ in range(start):  # replay the data order (and the augmentation's draws) up to the saved step
        next(batches)
    if saved is not None:
        torch.set_rng_state(saved["rng"])
    last = iterations if stop_after is None else min(iterations, start + stop_after)
    for step in range(start + 1, last + 1):
        images, targets = next(batches)
        run.step(training_paths(supernet, sampling, recipe.seed, step), images.to(device), targets.to(device))
        if checkpoint is not None and (step % checkpoint_every == 0 or step == last):
            save_checkpoint(checkpoint, run, step)
    return supernet


class _Run:
    """The optimizer, schedule and loss of one training call."""

    def __init__(self, supernet: Supernet, recipe: TrainConfig, iterations: int, device: torch.device) -> None:
        self.supernet = supernet
        self.recipe = recipe
        self.iterations = iterations
        self.criterion = build_loss(recipe).to(device)
        self.optimizer = build_optimizer(supernet, recipe, undecayed=supernet.undecayed(recipe.weight_decay_exempt))
        self.scheduler = build_scheduler(self.optimizer, recipe, iterations)

    def step(self, paths: list[Params], images: Tensor, targets: Tensor) -> None:
        grown = [self.supernet.register(params) for params in paths]
        if any(grown):
            self._regrow()
        self.optimizer.zero_grad(set_to_none=True)
        for params in paths:  # gradients of every path summed, as BigNAS's sandwich rule does
            if self.recipe.aux_weight > 0.0:
                logits, aux_logits = self.supernet(images, params, return_aux=True)
            else:
                logits, aux_logits = self.supernet(images, params), None
            self.criterion(logits, aux_logits, targets.long()).backward()
        self.optimizer.step()
        self.scheduler.step()

    def _regrow(self) -> None:
        """A point needed larger tensors: a new optimizer over them, keeping the state of those unchanged."""
        old, schedule = self.optimizer, self.scheduler.state_dict()
        self.optimizer = build_optimizer(self.supernet, self.recipe,
                                         undecayed=self.supernet.undecayed(self.recipe.weight_decay_exempt))
        for parameter in self.supernet.parameters():
            if parameter in old.state:
                self.optimizer.state[parameter] = old.state[parameter]
        self.scheduler = build_scheduler(self.optimizer, self.recipe, self.iterations)
        self.scheduler.load_state_dict(schedule)


def save_checkpoint(path: Path, run: _Run, step: int) -> None:
    supernet = run.supernet
    state: dict[str, Any] = {"step": step, "shapes": supernet.weights.shapes(), "state": supernet.state_dict(),
                             "largest": supernet.largest, "smallest": supernet.smallest,
                             "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                             "rng": torch.get_rng_state()}
    write_atomic(path, lambda temporary: torch.save(state, temporary))


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint was saved at (0 when there is none)."""
    return torch.load(path, weights_only=False)["step"] if path.exists() else 0


def load_supernet(path: Path, space: Space, *, num_classes: int) -> Supernet:
    """The supernet a checkpoint holds, in eval mode."""
    return _restored(torch.load(path, weights_only=False), space, num_classes).eval()


def _restored(saved: dict[str, Any], space: Space, num_classes: int) -> Supernet:
    supernet = Supernet(space, num_classes=num_classes)
    supernet.weights.rebuild(saved["shapes"])
    supernet.load_state_dict(saved["state"])
    supernet.largest, supernet.smallest = saved["largest"], saved["smallest"]
    return supernet


def subnet(supernet: Supernet, params: Params, calibration: Iterable[Any]) -> SegmentationNetwork:
    """The point's network with inherited weights and its own BatchNorm statistics (from ``calibration``)."""
    network = extract(supernet, params)
    recalibrate_batchnorm(network, calibration)
    return network.eval()


def evaluate_subnet(supernet: Supernet, params: Params, calibration: Iterable[Any], val_loader: Iterable[Any], *,
                    num_classes: int, ignore_index: int = 255) -> tuple[float, SegmentationNetwork]:
    """mIoU of the point's subnet with inherited weights, after BatchNorm recalibration on ``calibration``,
    and that subnet (to save, deploy or export)."""
    network = subnet(supernet, params, calibration)
    device = next(network.parameters()).device
    matrix = evaluate(network, val_loader, num_classes=num_classes, ignore_index=ignore_index, device=device)
    return matrix.miou(), network


def calibration_batches(loader: Iterable[Any], count: int) -> list[Any]:
    """The first ``count`` batches of a (seeded) training loader: every subnet recalibrates on the same ones."""
    return list(itertools.islice(loader, count))

