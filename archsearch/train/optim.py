"""The optimizer and learning-rate schedule a :class:`TrainConfig` names, from torch."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import (CosineAnnealingLR, LinearLR, LRScheduler, PolynomialLR,
                                      SequentialLR)

from archsearch.train.config import TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig) -> Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over the trainable parameters.

    Weight decay applies to every parameter, as in the DDRNet/RDRNet recipes.
    """
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov, weight_decay=config.weight_decay)


def build_scheduler(optimizer: Optimizer, config: TrainConfig, total_steps: int) -> LRScheduler:
    """Linear warmup, then poly (or cosine) decay to 0 at ``total_steps``; step it per step.

    Step ``i`` (from 0) of a warmup of ``W`` steps uses ``(i + 1) / (W + 1)`` of the
    learning rate, so no step has a learning rate of 0; poly decay then uses
    ``(1 - j / D) ** power`` at decay step ``j`` of ``D = total_steps - W``.
    """
    warmup_steps = config.warmup_iterations
    decay_steps = total_steps - warmup_steps
    if config.schedule == "cosine":
        decay: LRScheduler = CosineAnnealingLR(optimizer, T_max=decay_steps)
    else:
        decay = PolynomialLR(optimizer, total_iters=decay_steps, power=config.poly_power)
    if warmup_steps == 0:
        return decay
    warmup = LinearLR(optimizer, start_factor=1 / (warmup_steps + 1), total_iters=warmup_steps)
    return SequentialLR(optimizer, [warmup, decay], milestones=[warmup_steps])
