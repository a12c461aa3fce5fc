"""A trial as two gloo processes on the CPU: DDP's gradients are the mean of each process's half-batch,
BatchNorm normalises each half alone (mmseg's 2xb6 without SyncBN), and a process that dies fails the trial."""

from __future__ import annotations

import copy
import os
import signal

import pytest
import torch
from torch.utils.data import DistributedSampler, TensorDataset

from archsearch.train import TrainConfig, build_loss
from archsearch.train.distributed import WorkerFailed, train_in_processes
from tests.train.conftest import TinySegmenter, color_dataset

ONE_STEP = {"iterations": 1, "batch_size": 4, "processes": 2, "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0,
            "aux_weight": 0.0, "loss": "ohem", "ohem_min_kept": 50, "ohem_threshold": 0.5, "seed": 7,
            "num_threads": 1}


def tiny_model() -> TinySegmenter:
    return TinySegmenter(width=4)


@pytest.mark.slow
def test_one_step_over_two_processes_is_the_mean_of_the_two_half_batches() -> None:
    config = TrainConfig.from_dict(ONE_STEP)
    train_set, val_set = color_dataset(4, seed=1), color_dataset(4, seed=2)
    torch.manual_seed(config.seed)
    start = tiny_model()
    result, weights = train_in_processes(tiny_model, train_set, val_set, config)
    # One process per half: the half each process drew, through BN in train mode, OHEM on its own pixels.
    criterion = build_loss(config)
    gradients = []
    for rank in range(2):
        indices = list(DistributedSampler(train_set, 2, rank, shuffle=True, seed=config.seed, drop_last=True))
        images, targets = (torch.stack([train_set[index][part] for index in indices]) for part in (0, 1))
        model = copy.deepcopy(start).train()
        criterion(model(images), None, targets).backward()
        gradients.append({name: parameter.grad for name, parameter in model.named_parameters()})
    for name, parameter in start.named_parameters():
        expected = parameter.detach() - config.lr * (gradients[0][name] + gradients[1][name]) / 2
        torch.testing.assert_close(weights[name], expected, rtol=1e-5, atol=1e-6)
    assert result.steps == 1 and 0.0 <= result.miou <= 1.0


def suicidal_model() -> TinySegmenter:
    """Process 1 dies (SIGKILL) while it builds its model."""
    if torch.distributed.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return tiny_model()


def failing_model() -> TinySegmenter:
    if torch.distributed.get_rank() == 1:
        raise ValueError("no weights for rank 1")
    return tiny_model()


@pytest.mark.slow
@pytest.mark.parametrize(("build", "reason"), [(suicidal_model, "process 1 of 2 died: killed by signal SIGKILL"),
                                                (failing_model, "process 1 of 2 failed: ValueError: no weights")])
def test_a_process_that_dies_or_raises_fails_the_trial_with_its_reason(build, reason) -> None:
    config = TrainConfig.from_dict({**ONE_STEP, "iterations": 3})
    with pytest.raises(WorkerFailed, match=reason):
        train_in_processes(build, color_dataset(4, seed=1), color_dataset(2, seed=2), config)


def test_the_batch_must_split_among_the_processes() -> None:
    from archsearch.errors import SpecError
    with pytest.raises(SpecError, match="split evenly"):
        TrainConfig(iterations=1, batch_size=5, processes=2)
