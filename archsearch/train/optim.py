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

    Weight decay applies to every parameter, as in the DDRNet/RDRNet recipes, unless
    ``decay_norm_and_bias`` is false: then normalization weights and all biases form a
    second group without decay (RegSeg's recipe), since decaying them only shrinks
    scales that the next layer undoes.
    """
    parameters: list[nn.Parameter] | list[dict] = [
        parameter for parameter in model.parameters() if parameter.requires_grad]
    if not config.decay_norm_and_bias:
        parameters = _decay_groups(model)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov, weight_decay=config.weight_decay)


def _decay_groups(model: nn.Module) -> list[dict]:
    """Two parameter groups: decayed weights, and normalization weights plus biases at decay 0."""
    undecayed: set[int] = set()
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if name == "bias" or isinstance(module, _NORMALIZATION):
                undecayed.add(id(parameter))
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    return [{"params": [parameter for parameter in trainable if id(parameter) not in undecayed]},
            {"params": [parameter for parameter in trainable if id(parameter) in undecayed],
             "weight_decay": 0.0}]


_NORMALIZATION = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def build_scheduler(optimizer: Optimizer, config: TrainConfig, total_steps: int) -> LRScheduler:
    """Linear warmup, then poly (or cosine) decay to 0 at ``total_steps``; step it per step.

    Step ``i`` (from 0) of a warmup of ``W`` steps from factor ``f`` uses
    ``f + (1 - f) * i / W`` of the learning rate; ``warmup_factor`` None means
    ``f = 1 / (W + 1)``, i.e. ``(i + 1) / (W + 1)``, so no step has a learning rate of 0.
    Poly decay then uses
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
    start = config.warmup_factor if config.warmup_factor is not None else 1 / (warmup_steps + 1)
    warmup = LinearLR(optimizer, start_factor=start, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warmup, decay], milestones=[warmup_steps])
