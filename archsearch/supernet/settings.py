"""A study's ``supernet:`` section: train one supernet, then rank the trials' points on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archsearch.errors import SpecError

SamplingRule = Literal["uniform", "sandwich"]


@dataclass(frozen=True)
class SupernetSettings:
    """``iterations`` steps of the study's recipe, each on the paths ``sampling`` draws (``uniform``: SPOS's one
    path; ``sandwich``: BigNAS's largest, smallest and one random); every trial then recalibrates its subnet's
    BatchNorm on ``calibration_batches`` training batches and records its mIoU as ``supernet_miou``. The shared
    tensors are sized on ``coverage`` sampled points (a point needing more grows them while training). At the end,
    the ``retrain_top`` best points by ``supernet_miou`` are trained stand-alone (``supernet/retrained.csv``).
    ``uniform`` is the default: in benchmarks/supernet_fidelity.py's full run it ranked the 16 architectures better
    than ``sandwich`` (Kendall tau 0.80 against 0.60 with stand-alone training) at half the cost (see the README)."""

    iterations: int
    sampling: SamplingRule = "uniform"
    calibration_batches: int = 4
    coverage: int = 64
    retrain_top: int = 0

    def validate(self) -> None:
        for name in ("iterations", "calibration_batches", "coverage"):
            if getattr(self, name) < 1:
                raise SpecError("expected a positive integer", path=name, value=getattr(self, name))
        if self.retrain_top < 0:
            raise SpecError("expected an integer >= 0", path="retrain_top", value=self.retrain_top)
