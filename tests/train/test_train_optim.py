from __future__ import annotations

import pytest
import torch
from torch import nn

from archsearch.train import TrainConfig, build_optimizer, build_scheduler


def learning_rates(config: TrainConfig, total_steps: int) -> list[float]:
    optimizer = build_optimizer(nn.Linear(2, 2), config)
    scheduler = build_scheduler(optimizer, config, total_steps)
    rates = []
    for _ in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_poly_decay_over_the_budget() -> None:
    rates = learning_rates(TrainConfig(iterations=10, lr=0.1), 10)
    assert rates == pytest.approx([0.1 * (1 - step / 10) ** 0.9 for step in range(10)])


def test_linear_warmup_then_poly() -> None:
    rates = learning_rates(TrainConfig(iterations=10, lr=1.0, warmup_iterations=3), 10)
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[3:] == pytest.approx([(1 - step / 7) ** 0.9 for step in range(7)])


def test_cosine_decay() -> None:
    rates = learning_rates(TrainConfig(iterations=4, lr=1.0, schedule="cosine"), 4)
    assert rates == pytest.approx([1.0, 0.853553, 0.5, 0.146447], abs=1e-6)


def test_optimizer_follows_the_config() -> None:
    sgd = build_optimizer(nn.Linear(2, 2), TrainConfig(iterations=1, nesterov=True,
                                                       weight_decay=1e-4))
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9
    assert sgd.defaults["weight_decay"] == 1e-4
    adamw = build_optimizer(nn.Linear(2, 2), TrainConfig(iterations=1, optimizer="adamw", lr=3e-4))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["lr"] == 3e-4


def test_frozen_parameters_are_not_optimized() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].requires_grad_(False)
    optimizer = build_optimizer(model, TrainConfig(iterations=1))
    assert len(optimizer.param_groups[0]["params"]) == 2
