"""A study's ``supernet:`` section: train one supernet, then rank the trials' points on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archsearch.arch.blocks.registry import require

SamplingRule = Literal["uniform", "sandwich"]


@dataclass(frozen=True)
class SupernetSettings:
    """``iterations`` steps of the study's recipe, each on the paths ``sampling`` draws (``uniform``: SPOS's one
    path; ``sandwich``: BigNAS's largest, smallest and one random); every trial then recalibrates its subnet's
    BatchNorm on ``calibration_batches`` training batches and records its mIoU as ``supernet_miou``. The shared
    tensors are sized on ``coverage`` sampled points (a point needing more grows them while training)."""

    iterations: int
    sampling: SamplingRule = "sandwich"
    calibration_batches: int = 4
    coverage: int = 64

    def validate(self) -> None:
        for name in ("iterations", "calibration_batches", "coverage"):
            require(getattr(self, name) >= 1, "expected a positive integer", path=name, value=getattr(self, name))
