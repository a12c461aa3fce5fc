"""Train one model for a step budget and measure its mIoU: the inner loop of every trial.

The model's ``forward(images, return_aux=False)`` returns logits ``[N, C, H, W]`` at the
input resolution; ``forward(images, return_aux=True)`` returns ``(logits, aux_logits)``,
with ``aux_logits`` None for a model without an auxiliary head. Loaders yield
``(images [N, 3, H, W] float, targets [N, H, W] int)`` batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
import torch
from torch import Tensor, nn

from archsearch.devices import present_device
from archsearch.errors import SpecError
from archsearch.train.config import TrainConfig
from archsearch.train.divergence import DivergenceWatch
from archsearch.train.evaluation import evaluate
from archsearch.train.evaluations import best_evaluation, evaluation_steps
from archsearch.train.loaders import cycle_batches
from archsearch.train.losses import SegmentationLoss, build_loss
from archsearch.train.metrics import ConfusionMatrix
from archsearch.train.optim import build_optimizer, build_scheduler
from archsearch.train.precision import Precision, compiled

DIVERGENCE_CHECK_EVERY = 10
"""Steps between reads of the NaN flag; a diverged run wastes at most this many steps."""


@dataclass(frozen=True)
class TrainResult:
    """What one training run measured.

    ``miou``, ``per_class_iou`` (NaN for classes absent from targets and predictions)
    and ``pixel_accuracy`` are from the final evaluation; ``history`` holds
    ``(step, miou)`` of every evaluation, the final one last. ``train_seconds`` is the
    time in training steps (data loading included), ``eval_seconds`` the time in
    evaluations; neither counts ``on_evaluation``. ``miou_best`` is the best evaluation's mIoU
    and ``miou_best_step`` its step (RegSeg's reported number). ``final_loss`` is the loss of the
    last optimizer step. ``data_wait_fraction`` is the share of ``train_seconds`` spent
    waiting for the next batch: near 0 when loading keeps up, high when the loader is
    the bottleneck (more workers, or cheaper augmentation, would speed training up).
    """

    miou: float
    per_class_iou: tuple[float, ...]
    pixel_accuracy: float
    steps: int
    train_seconds: float
    eval_seconds: float
    final_loss: float
    history: tuple[tuple[int, float], ...]
    data_wait_fraction: float = 0.0
    miou_best: float = float("nan")
    miou_best_step: int = 0


def train_and_evaluate(model: nn.Module, train_loader: Iterable[tuple[Tensor, Tensor]],
                       val_loader: Iterable[tuple[Tensor, Tensor]], config: TrainConfig, *,
                       on_evaluation: Callable[[int, float], None] | None = None,
                       gather: Callable[[ConfusionMatrix], None] | None = None) -> TrainResult:
    """Train ``model`` (in place, moved to ``config.device``) and evaluate it.

    Evaluates every ``config.eval_every`` steps and after the last step, calling
    ``on_evaluation(step, miou)`` each time; whatever it raises (a pruning signal)
    propagates and ends training. Raises :class:`TrainingDiverged` when the loss stops
    being finite. Seeds torch with ``config.seed``; with loaders from
    :func:`make_loader` and a model built after seeding, two CPU runs give identical
    results. The caller's torch thread count is restored afterwards. ``gather`` completes each
    evaluation's counts in place (a process of a multi-process trial sums every process's shard).
    """
    device = present_device(config.device)
    previous_threads = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        torch.manual_seed(config.seed)
        return _TrainingRun(model, train_loader, val_loader, config, device, gather).run(on_evaluation)
    finally:
        torch.set_num_threads(previous_threads)


class _TrainingRun:
    """The state of one call of :func:`train_and_evaluate`."""

    def __init__(self, model: nn.Module, train_loader: Iterable[tuple[Tensor, Tensor]],
                 val_loader: Iterable[tuple[Tensor, Tensor]], config: TrainConfig,
                 device: torch.device, gather: Callable[[ConfusionMatrix], None] | None = None) -> None:
        self.gather = gather
        self.precision = Precision(config, device)
        self.model = self.precision.prepare(model, device)
        self.forward = compiled(self.model, config)
        self.val_loader = val_loader
        self.config = config
        self.device = device
        batches_per_epoch = len(train_loader) if isinstance(train_loader, Sized) else None
        self.total_steps = config.total_steps(batches_per_epoch)
        self.evaluation_steps = set(evaluation_steps(config, self.total_steps, batches_per_epoch))
        self.batches: Iterator[tuple[Tensor, Tensor]] = cycle_batches(train_loader)
        self.criterion: SegmentationLoss = build_loss(config).to(device)
        self.optimizer = build_optimizer(model, config)
        self.scheduler = build_scheduler(self.optimizer, config, self.total_steps)
        self.watch = DivergenceWatch(device)
        self.num_classes = 0
        self.history: list[tuple[int, float]] = []
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self.data_wait_seconds = 0.0
        self.training_since = 0.0

    def run(self, on_evaluation: Callable[[int, float], None] | None) -> TrainResult:
        intermediate = self.evaluation_steps - {self.total_steps}
        self.model.train()
        self.training_since = time.perf_counter()
        for step in range(1, self.total_steps + 1):
            loss = self._step(step)
            if step % DIVERGENCE_CHECK_EVERY == 0:
                self.watch.check()
            if step in intermediate:
                self._evaluate(step, on_evaluation)
        matrix = self._evaluate(self.total_steps, on_evaluation)
        best_step, best_miou = best_evaluation(tuple(self.history))
        return TrainResult(miou=matrix.miou(), per_class_iou=matrix.per_class_iou(),
                           pixel_accuracy=matrix.pixel_accuracy(), steps=self.total_steps,
                           train_seconds=self.train_seconds, eval_seconds=self.eval_seconds,
                           final_loss=float(loss), history=tuple(self.history),
                           data_wait_fraction=self.data_wait_seconds / self.train_seconds
                           if self.train_seconds > 0 else 0.0, miou_best=best_miou, miou_best_step=best_step)

    def _step(self, step: int) -> Tensor:
        waiting_since = time.perf_counter()
        images, targets = next(self.batches)
        self.data_wait_seconds += time.perf_counter() - waiting_since
        images = self.precision.images(images.to(self.device, non_blocking=True))
        targets = targets.to(self.device, torch.int64, non_blocking=True)
        with self.precision.autocast():
            if self.config.aux_weight > 0.0:
                logits, aux_logits = self.forward(images, return_aux=True)
            else:
                logits, aux_logits = self.forward(images), None
            if step == 1:
                self._learn_class_count(logits)
            loss = self.criterion(logits, aux_logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.step(loss, self.optimizer)
        self.scheduler.step()
        self.watch.record(step, loss)
        return loss.detach()

    def _learn_class_count(self, logits: Tensor) -> None:
        self.num_classes = logits.shape[1]
        weights = self.config.class_weights
        if weights is not None and len(weights) != self.num_classes:
            raise SpecError("needs one weight per class of the model", path="class_weights",
                            value=list(weights),
                            allowed=f"{self.num_classes} weights (the model has "
                                    f"{self.num_classes} classes)")

    def _evaluate(self, step: int,
                  on_evaluation: Callable[[int, float], None] | None) -> ConfusionMatrix:
        """Evaluate after ``step``, report the mIoU; training time pauses meanwhile."""
        self.watch.check()
        self._synchronize()
        started = time.perf_counter()
        self.train_seconds += started - self.training_since
        with self.precision.autocast():
            matrix = evaluate(self.model, self.val_loader, num_classes=self.num_classes,
                              ignore_index=self.config.ignore_index, device=self.device,
                              memory_format=self.precision.memory_format)
        if self.gather is not None:
            self.gather(matrix)
        self._synchronize()
        self.eval_seconds += time.perf_counter() - started
        self.history.append((step, matrix.miou()))
        if on_evaluation is not None:
            on_evaluation(step, self.history[-1][1])
        self.training_since = time.perf_counter()
        return matrix

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
