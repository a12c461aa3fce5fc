"""Evaluation schedules by epoch and the best of a run's evaluations, against RegSeg's train.py."""

from __future__ import annotations

import math

from archsearch.train import TrainConfig
from archsearch.train.evaluations import best_evaluation, evaluation_steps
from tests.train.test_trainer import run


def regseg_epochs_to_save(epochs: int, every: int, last: int) -> list[int]:
    """RegSeg's get_epochs_to_save (0-based epochs after which it evaluates), written out."""
    chosen = [index * every - 1 for index in range(1, epochs // every + 1)]
    chosen += [epochs - 1, 0] + list(range(max(epochs - last, 0), epochs))
    return sorted(set(chosen))


def test_epoch_schedule_is_regsegs_camvid_and_cityscapes_schedule() -> None:
    for epochs, every, last, batches in ((200, 20, 10, 58), (1000, 25, 30, 371)):
        config = TrainConfig(epochs=epochs, eval_every_epochs=every, eval_last_epochs=last)
        expected = [(epoch + 1) * batches for epoch in regseg_epochs_to_save(epochs, every, last)]
        assert evaluation_steps(config, epochs * batches, batches) == expected


def test_step_schedule_keeps_its_meaning() -> None:
    assert evaluation_steps(TrainConfig(iterations=10, eval_every=4), 10, None) == [4, 8, 10]
    assert evaluation_steps(TrainConfig(iterations=10), 10, None) == [10]


def test_best_evaluation_is_the_earliest_highest_and_skips_nan() -> None:
    assert best_evaluation(((5, 0.3), (10, 0.5), (15, 0.5), (20, 0.4))) == (10, 0.5)
    assert best_evaluation(((5, math.nan), (10, 0.2))) == (10, 0.2)


def test_a_run_records_its_best_evaluation(make_model, train_set, val_set) -> None:
    result = run(make_model(), train_set, val_set, iterations=8, eval_every=2)
    step, miou = max(result.history, key=lambda item: (item[1], -item[0]))
    assert (result.miou_best_step, result.miou_best) == (step, miou)
    assert result.miou_best >= result.miou
