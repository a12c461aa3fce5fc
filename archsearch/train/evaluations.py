"""When a run evaluates, and the best of its evaluations (the number RegSeg reports).

RegSeg (RolandGao/RegSeg ``train.py``, ``get_epochs_to_save``) evaluates after every
``save_every_k_epochs``-th epoch, after each of the last ``save_last_k_epochs`` epochs and after the
first and the last, and reports the best mIoU of those evaluations; mmseg's RDRNet configs
evaluate every ``val_interval`` iterations and the papers report the final one.
"""

from __future__ import annotations

from archsearch.errors import SpecError
from archsearch.train.config import TrainConfig


def evaluation_steps(config: TrainConfig, total_steps: int, batches_per_epoch: int | None) -> list[int]:
    """The steps after which the run evaluates, in order; the last step always.

    ``eval_every`` counts steps; ``eval_every_epochs`` (with the first epoch, as RegSeg) and
    ``eval_last_epochs`` count epochs (the step ending each such epoch) and need a loader with a length.
    """
    steps = {total_steps}
    if config.eval_every is not None:
        steps.update(range(config.eval_every, total_steps, config.eval_every))
    if config.eval_every_epochs is not None or config.eval_last_epochs:
        if batches_per_epoch is None:
            raise SpecError("the training loader has no length, so evaluations by epoch cannot be placed",
                            path="eval_every_epochs", value=config.eval_every_epochs,
                            allowed="eval_every (steps)")
        epochs = total_steps // batches_per_epoch
        every = config.eval_every_epochs
        ends = {1, *range(every, epochs + 1, every)} if every is not None else set()
        ends.update(range(max(epochs - config.eval_last_epochs + 1, 1), epochs + 1))
        steps.update(epoch * batches_per_epoch for epoch in ends if epoch >= 1)
    return sorted(steps)


def best_evaluation(history: tuple[tuple[int, float], ...]) -> tuple[int, float]:
    """The (step, mIoU) of the best evaluation; the earliest among equals. NaN scores never win."""
    scored = [(step, miou) for step, miou in history if miou == miou]
    if not scored:
        return history[-1]
    return max(scored, key=lambda item: (item[1], -item[0]))
