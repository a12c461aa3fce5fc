"""The optimizer and learning-rate schedule a :class:`TrainConfig` names, from torch."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import (CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler, PolynomialLR,
                                      SequentialLR)

from archsearch.train.config import TrainConfig
from archsearch.train.schedules import MultipliedWarmup


def build_optimizer(model: nn.Module, config: TrainConfig) -> Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over the trainable parameters.

    Weight decay applies to every parameter, as in the DDRNet/RDRNet recipes, unless
    ``weight_decay_exempt`` names a second group without decay: ``batchnorm``, the parameters
    of BatchNorm layers only (RegSeg's ``bn_weight_decay: False``, which exempts the parameters
    whose name holds "bn": in RegSeg's model exactly its BatchNorms; SE and classifier biases
    keep their decay), or ``norms_and_biases``, every normalization weight and every bias.
    """
    parameters: list[nn.Parameter] | list[dict] = [
        parameter for parameter in model.parameters() if parameter.requires_grad]
    if config.weight_decay_exempt != "none":
        parameters = _decay_groups(model, config.weight_decay_exempt)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov, weight_decay=config.weight_decay)


def _decay_groups(model: nn.Module, exempt: str) -> list[dict]:
    """Two parameter groups: decayed weights, and the ``exempt`` rule's parameters at decay 0."""
    undecayed: set[int] = set()
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if exempt == "batchnorm":
                exempted = isinstance(module, nn.modules.batchnorm._BatchNorm)
            else:
                exempted = name == "bias" or isinstance(module, _NORMALIZATION)
            if exempted:
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
    ``(1 - j / D) ** power`` at decay step ``j`` of ``D = total_steps - W``. With
    ``warmup_style: multiplied`` the ramp multiplies a decay over all ``total_steps`` instead
    (RegSeg's LambdaLR, :class:`MultipliedWarmup`).
    """
    warmup_steps = config.warmup_iterations
    if config.warmup_style == "multiplied":
        start = config.warmup_factor if config.warmup_factor is not None else 1 / (warmup_steps + 1)
        return LambdaLR(optimizer, MultipliedWarmup(total_steps, warmup_steps, start, config.schedule,
                                                    config.poly_power))
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
