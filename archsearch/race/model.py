"""What the seeds so far say about each architecture's mean mIoU: estimates, tests, intervals, posterior draws.

Three models of seed-to-seed noise, one per ``test`` a race may name:

- ``paired``: y = mean(architecture) + effect(seed) + noise, one noise level for all. The same seed
  gives every architecture the same data order and crops, so its effect cancels in a difference,
  and every architecture's runs count towards the noise estimate (n - architectures - seeds + 1
  degrees of freedom instead of n - 1 per architecture).
- ``pooled``: the same without seed effects (a one-way analysis of variance).
- ``welch``: every architecture its own mean and spread (Welch's unequal-variance t-test); an
  architecture with a single seed has no spread and is never tested.

All give, per pair, the one-sided p-value that one architecture is not better than another, a
Student-t interval per architecture, draws from the posterior of the means under a flat prior
(multivariate Student-t), and how many seeds each would separate two at the observed spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Iterable, Literal, Protocol

import numpy as np
from scipy import stats

Test = Literal["paired", "pooled", "welch"]
TESTS: tuple[str, ...] = ("paired", "pooled", "welch")


@dataclass(frozen=True)
class Observations:
    """One mIoU per (architecture, seed) run; ``arms`` are the architectures' keys in the order first seen."""

    arms: tuple[Hashable, ...]
    arm: np.ndarray    # index into ``arms``, per run
    seed: np.ndarray   # the run's seed
    value: np.ndarray  # its mIoU

    @classmethod
    def from_records(cls, records: Iterable[tuple[Hashable, int, float]]) -> "Observations":
        """(architecture key, seed, value) in the order they came in; a repeated (key, seed) counts once."""
        arms: dict[Hashable, int] = {}
        seen: set[tuple[Hashable, int]] = set()
        rows = []
        for key, seed, value in records:
            if (key, seed) in seen:
                continue
            seen.add((key, seed))
            rows.append((arms.setdefault(key, len(arms)), int(seed), float(value)))
        arm, seed, value = (np.array(column) for column in zip(*rows)) if rows else (np.zeros(0),) * 3
        return cls(tuple(arms), arm.astype(int), seed.astype(int), value.astype(float))

    @property
    def runs(self) -> np.ndarray:
        return np.bincount(self.arm, minlength=len(self.arms))

    def first(self, count: int) -> "Observations":
        """The first ``count`` runs: what the race knew then (the architectures seen by then only)."""
        records = zip((self.arms[index] for index in self.arm[:count]), self.seed[:count], self.value[:count])
        return Observations.from_records(records)


class MeanModel(Protocol):
    means: np.ndarray
    runs: np.ndarray

    def p_not_better(self) -> np.ndarray:
        """[a, b]: one-sided p-value of "a is not better than b" (small: a is shown better); NaN where untestable."""

    def interval(self, confidence: float) -> tuple[np.ndarray, np.ndarray]:
        """Two-sided Student-t interval of each mean; NaN where there is no spread."""

    def draws(self, samples: int, generator: np.random.Generator) -> np.ndarray:
        """(samples, architectures) draws of the means from their posterior; NaN columns where undefined."""

    def seeds_to_separate(self, a: int, b: int, confidence: float) -> float:
        """Seeds per architecture at which the observed gap between a and b would be significant (inf: no gap)."""


def fit(observations: Observations, test: str) -> MeanModel:
    if test == "welch":
        return WelchModel(observations)
    return LinearModel(observations, by_seed=test == "paired")


def _one_sided_p(gap: np.ndarray, error: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """P(T > gap / error) for a Student-t T; a zero error (no noise at all) gives 0 for a positive gap, else 1."""
    gap, error = np.asarray(gap, dtype=float), np.asarray(error, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = stats.t.sf(gap / error, df)
    return np.where(error == 0, np.where(gap > 0, 0.0, 1.0), p)


class LinearModel:
    """Least squares on architecture (and, ``by_seed``, seed) effects with one noise level (see the module)."""

    def __init__(self, observations: Observations, *, by_seed: bool) -> None:
        arms = len(observations.arms)
        seeds = np.unique(observations.seed)
        columns = [np.eye(arms)[observations.arm]] if len(observations.value) else [np.zeros((0, arms))]
        if by_seed and len(seeds) > 1:  # sum-to-zero seed effects: a mean is over the seeds, not one seed's
            index = np.searchsorted(seeds, observations.seed)
            coding = np.vstack([np.eye(len(seeds) - 1), -np.ones(len(seeds) - 1)])
            columns.append(coding[index])
        design = np.hstack(columns)
        coefficients, _, rank, _ = np.linalg.lstsq(design, observations.value, rcond=None)
        residuals = observations.value - design @ coefficients
        self.df = float(len(observations.value) - rank)
        self.sigma = math.sqrt(float(residuals @ residuals) / self.df) if self.df >= 1 else math.nan
        self.means = coefficients[:arms]
        self.runs = observations.runs
        self.covariance = self.sigma**2 * np.linalg.pinv(design.T @ design)[:arms, :arms]

    def _difference_errors(self) -> np.ndarray:
        variance = np.diag(self.covariance)
        return np.sqrt(np.maximum(variance[:, None] + variance[None, :] - 2 * self.covariance, 0.0))

    def p_not_better(self) -> np.ndarray:
        if not self.df >= 1:
            return np.full((len(self.means),) * 2, np.nan)
        return _one_sided_p(self.means[:, None] - self.means[None, :], self._difference_errors(), self.df)

    def interval(self, confidence: float) -> tuple[np.ndarray, np.ndarray]:
        quantile = stats.t.ppf(0.5 + confidence / 2, self.df) if self.df >= 1 else math.nan
        half = quantile * np.sqrt(np.diag(self.covariance))
        return self.means - half, self.means + half

    def draws(self, samples: int, generator: np.random.Generator) -> np.ndarray:
        if not self.df >= 1:
            return np.full((samples, len(self.means)), np.nan)
        values, vectors = np.linalg.eigh(self.covariance)
        factor = vectors * np.sqrt(np.maximum(values, 0.0))
        normal = generator.standard_normal((samples, len(self.means))) @ factor.T
        scale = np.sqrt(self.df / generator.chisquare(self.df, size=(samples, 1)))
        return self.means + normal * scale

    def seeds_to_separate(self, a: int, b: int, confidence: float) -> float:
        gap = abs(self.means[a] - self.means[b])
        if not self.df >= 1:
            return math.nan
        if gap == 0:
            return math.inf
        return 2 * (stats.t.ppf(confidence, self.df) * self.sigma / gap) ** 2


class WelchModel:
    """Each architecture on its own runs: mean, spread (ddof 1) and n - 1 degrees of freedom."""

    def __init__(self, observations: Observations) -> None:
        self.runs = observations.runs
        arms = len(observations.arms)
        self.means = np.bincount(observations.arm, observations.value, minlength=arms) / np.maximum(self.runs, 1)
        squares = np.bincount(observations.arm, (observations.value - self.means[observations.arm]) ** 2,
                              minlength=arms)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.variance = np.where(self.runs >= 2, squares / (self.runs - 1), np.nan)
        self.error2 = self.variance / np.maximum(self.runs, 1)  # squared standard error of each mean

    def p_not_better(self) -> np.ndarray:
        first, second = self.error2[:, None], self.error2[None, :]
        total = first + second
        with np.errstate(divide="ignore", invalid="ignore"):
            df = total**2 / (first**2 / (self.runs[:, None] - 1) + second**2 / (self.runs[None, :] - 1))
        df = np.where(total == 0, 1.0, df)
        p = _one_sided_p(self.means[:, None] - self.means[None, :], np.sqrt(total), df)
        return np.where(np.isnan(total), np.nan, p)

    def interval(self, confidence: float) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore"):
            quantile = stats.t.ppf(0.5 + confidence / 2, self.runs - 1)
        half = np.where(self.runs >= 2, quantile, np.nan) * np.sqrt(self.error2)
        return self.means - half, self.means + half

    def draws(self, samples: int, generator: np.random.Generator) -> np.ndarray:
        df = np.maximum(self.runs - 1, 1)
        return self.means + np.sqrt(self.error2) * generator.standard_t(df, size=(samples, len(self.means)))

    def seeds_to_separate(self, a: int, b: int, confidence: float) -> float:
        gap = abs(self.means[a] - self.means[b])
        spread = self.variance[a] + self.variance[b]
        if np.isnan(spread):
            return math.nan
        if gap == 0:
            return math.inf
        df = max(min(self.runs[a], self.runs[b]) - 1, 1)
        return (stats.t.ppf(confidence, df) / gap) ** 2 * spread
