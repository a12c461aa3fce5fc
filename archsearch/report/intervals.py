"""How sure a seed-pooled mIoU is: Student-t intervals and a Welch test against the best architecture.

Seeds of one architecture are few (two or three), so the interval uses the Student-t
quantile with n - 1 degrees of freedom rather than a normal one; it is exact for normally
distributed seed-to-seed noise and makes no claim for a single seed. Two architectures with
different seed spreads are compared with Welch's unequal-variance t-test.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
TIE_LEVEL = 0.05  # a two-sided Welch p-value at or above this: the data cannot tell the two apart


def t_interval(mean: np.ndarray, std: np.ndarray, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mean ± t(0.975, n - 1) · std / √n`` per row; NaN where ``runs`` < 2 (one seed has no spread)."""
    mean, std, runs = (np.asarray(values, dtype="float64") for values in (mean, std, runs))
    several = runs >= 2
    quantile = np.full(mean.shape, np.nan)
    quantile[several] = stats.t.ppf(0.5 + CONFIDENCE / 2, runs[several] - 1)
    half_width = quantile * std / np.sqrt(np.where(several, runs, np.nan))
    return mean - half_width, mean + half_width


def tied_with(best_mean: float, best_std: float, best_runs: int,
              mean: np.ndarray, std: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """True/False per row: is the row statistically tied with the best (Welch, two-sided, TIE_LEVEL)?

    NaN (untested) where either side has a single run. Two rows without any spread are tied
    only when their means are equal, since the test is undefined there.
    """
    mean, std, runs = (np.asarray(values, dtype="float64") for values in (mean, std, runs))
    tied = np.full(mean.shape, np.nan)
    if best_runs < 2:
        return tied
    testable = runs >= 2
    _, p_values = stats.ttest_ind_from_stats(best_mean, best_std, best_runs, mean[testable], std[testable],
                                             runs[testable], equal_var=False)
    p_values = np.atleast_1d(np.asarray(p_values, dtype="float64"))
    undefined = np.isnan(p_values)
    p_values[undefined] = np.where(mean[testable][undefined] == best_mean, 1.0, 0.0)
    tied[testable] = p_values >= TIE_LEVEL
    return tied
