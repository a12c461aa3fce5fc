"""The optimizer and learning-rate schedule a :class:`TrainConfig` names, from torch."""

from __future__ import annotations

from typing import Collection

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import (CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler, PolynomialLR,
                                      SequentialLR)

from archsearch.train.config import TrainConfig
from archsearch.train.schedules import MultipliedWarmup


def build_optimizer(model: nn.Module, config: TrainConfig, *,
                    undecayed: Collection[nn.Parameter] | None = None) -> Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over the trainable parameters.

    Weight decay applies to every parameter, as in the DDRNet/RDRNet recipes, unless
    ``weight_decay_exempt`` names a second group without decay: ``batchnorm``, the parameters
    of BatchNorm layers only (RegSeg's ``bn_weight_decay: False``, which exempts the parameters
    whose name holds "bn": in RegSeg's model exactly its BatchNorms; SE and classifier biases
    keep their decay), or ``norms_and_biases``, every normalization weight and every bias.
    ``undecayed`` gives that group when the model's modules do not say it (a supernet holds its
    shared tensors in no conv or norm: it knows which ones the rule exempts by their names).
    """
    parameters: list[nn.Parameter] | list[dict] = [
        parameter for parameter in model.parameters() if parameter.requires_grad]
    if config.weight_decay_exempt != "none":
        exempted = {id(parameter) for parameter in undecayed} if undecayed is not None \
            else _exempted(model, config.weight_decay_exempt)
        parameters = [{"params": [parameter for parameter in parameters if id(parameter) not in exempted]},
                      {"params": [parameter for parameter in parameters if id(parameter) in exempted],
                       "weight_decay": 0.0}]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov, weight_decay=config.weight_decay)


def decay_exempt(module: nn.Module, name: str, exempt: str) -> bool:
    """Whether the rule ``exempt`` keeps ``module``'s own parameter ``name`` out of weight decay."""
    if exempt == "batchnorm":
        return isinstance(module, nn.modules.batchnorm._BatchNorm)
    if exempt == "norms_and_biases":
        return name == "bias" or isinstance(module, _NORMALIZATION)
    return False


def _exempted(model: nn.Module, exempt: str) -> set[int]:
    """The ids of the parameters the ``exempt`` rule keeps at decay 0."""
    return {id(parameter) for module in model.modules() for name, parameter in module.named_parameters(recurse=False)
            if decay_exempt(module, name, exempt)}


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
