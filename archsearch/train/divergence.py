"""Noticing a NaN or infinite training loss without a host sync at every step."""

from __future__ import annotations

import torch
from torch import Tensor

from archsearch.errors import ArchsearchError


class TrainingDiverged(ArchsearchError):
    """The training loss stopped being finite: this architecture or recipe is unstable.

    A search records the trial as failed (``step`` says how far it got) and moves on.
    """

    def __init__(self, step: int, loss: float) -> None:
        self.step = step
        self.loss = loss
        super().__init__(f"training diverged: the loss is {loss} at step {step}")


class DivergenceWatch:
    """Remembers the first step whose loss was not finite; :meth:`check` raises for it.

    :meth:`record` is a few tensor operations on the loss's own device, so on a GPU the
    host waits only when :meth:`check` reads the result back, once per several steps.
    """

    def __init__(self, device: torch.device | str) -> None:
        self._first_bad_step = torch.zeros((), dtype=torch.int64, device=device)
        self._first_bad_loss = torch.zeros((), dtype=torch.float32, device=device)

    def record(self, step: int, loss: Tensor) -> None:
        """Note ``loss`` (of optimizer step ``step``, counted from 1) if it is the first bad one."""
        loss = loss.detach().to(torch.float32)
        first = ~torch.isfinite(loss) & (self._first_bad_step == 0)
        self._first_bad_step = torch.where(first, step, self._first_bad_step)
        self._first_bad_loss = torch.where(first, loss, self._first_bad_loss)

    def check(self) -> None:
        """Raise :class:`TrainingDiverged` if any recorded loss was not finite."""
        step = int(self._first_bad_step)
        if step:
            raise TrainingDiverged(step, float(self._first_bad_loss))
