"""The statistics archsearch reports: how sure a seed-pooled mIoU is, and how far two rankings agree.

Seeds of one architecture are few (two or three), so an mIoU interval uses the Student-t
quantile with n - 1 degrees of freedom rather than a normal one; it is exact for normally
distributed seed-to-seed noise and makes no claim for a single seed. Two architectures with
different seed spreads are compared with Welch's unequal-variance t-test. Rankings are
compared with Kendall's tau-b, Spearman's rho and top-k overlap, with bootstrap intervals
that resample architectures (the unit a ranking is about). Only numpy and scipy: the
commands that use this module start without torch.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
TIE_LEVEL = 0.05  # a two-sided Welch p-value at or above this: the data cannot tell the two apart
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0
PAIR_BUDGET = 2 ** 21
"""Pairs compared at once by ``kendall_taus``: 16 MB a float64 array, whatever the number of architectures."""
FIRST_ITEMS_PER_BLOCK = 64
"""Items compared with every later one in one block: small, so the square block's unused half stays small."""


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


def top_k_overlap(estimate: np.ndarray, reference: np.ndarray, k: int) -> float:
    """The share of the reference's k best that are also among the estimate's k best.

    Equal values keep their given order (a stable sort), so ties do not make the answer random.
    """
    k = min(k, len(reference))
    best_estimated = set(np.argsort(-np.asarray(estimate, dtype="float64"), kind="stable")[:k])
    best_measured = set(np.argsort(-np.asarray(reference, dtype="float64"), kind="stable")[:k])
    return len(best_estimated & best_measured) / k


def kendall_tau(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Kendall's tau-b (ties counted as neither concordant nor discordant); NaN for a constant input."""
    return float(kendall_taus(np.atleast_2d(estimate), np.atleast_2d(reference))[0])


def spearman_rho(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Spearman's rho: Pearson's correlation of the ranks (mid-ranks for ties); NaN for a constant input."""
    return float(spearman_rhos(np.atleast_2d(estimate), np.atleast_2d(reference))[0])


def kendall_taus(estimates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """tau-b of each row pair at once: (concordant - discordant) / sqrt(pairs untied in x · pairs untied in y).

    The pairs are compared in blocks of at most PAIR_BUDGET values (some rows, some first items against every
    later one), so that 1000 bootstrap resamples of 1000 architectures hold megabytes, not the 4 GB an array
    all their pairs at once would take. Each block's sums are whole numbers, exact in float64 whatever the
    blocks, so the result is the same to the last bit.
    """
    rows, count = estimates.shape
    block = max(1, min(count, FIRST_ITEMS_PER_BLOCK))
    row_step = max(1, PAIR_BUDGET // (block * count))
    signed = np.zeros(rows)
    untied_x = np.zeros(rows, dtype=np.int64)
    untied_y = np.zeros(rows, dtype=np.int64)
    for start in range(0, rows, row_step):
        chosen = slice(start, start + row_step)
        for first in range(0, count - 1, block):
            firsts = np.arange(first, min(first + block, count - 1))
            later = np.arange(first + 1, count)
            is_pair = firsts[:, None] < later[None, :]
            x_order = np.sign(estimates[chosen, firsts, None] - estimates[chosen, None, later]) * is_pair
            y_order = np.sign(references[chosen, firsts, None] - references[chosen, None, later]) * is_pair
            signed[chosen] += (x_order * y_order).sum(axis=(1, 2))
            untied_x[chosen] += np.count_nonzero(x_order, axis=(1, 2))
            untied_y[chosen] += np.count_nonzero(y_order, axis=(1, 2))
    untied = untied_x * untied_y
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(untied > 0, signed / np.sqrt(untied), np.nan)


def spearman_rhos(estimates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair at once (scipy's mid-ranks, then Pearson's correlation)."""
    x_ranks = stats.rankdata(estimates, axis=1)
    y_ranks = stats.rankdata(references, axis=1)
    x_ranks -= x_ranks.mean(axis=1, keepdims=True)
    y_ranks -= y_ranks.mean(axis=1, keepdims=True)
    scale = np.sqrt((x_ranks**2).sum(axis=1) * (y_ranks**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, (x_ranks * y_ranks).sum(axis=1) / scale, np.nan)


def bootstrap_interval(statistic, estimate: np.ndarray, reference: np.ndarray, *,
                       samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile interval of ``statistic`` (a row-wise one: kendall_taus, spearman_rhos) over architectures
    drawn with replacement (seeded, so a report reads the same twice); draws where it is undefined (all
    one value) are left out."""
    generator = np.random.default_rng(seed)
    draws = generator.integers(0, len(reference), size=(samples, len(reference)))
    values = statistic(np.asarray(estimate, dtype="float64")[draws], np.asarray(reference, dtype="float64")[draws])
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
