"""Statistics against values worked out by hand: t-intervals, Welch ties, Kendall, Spearman, top-k, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from archsearch.report.statistics import (bootstrap_interval, kendall_tau, kendall_taus, spearman_rho, t_interval,
                                   tied_with, top_k_overlap)

# Student-t 97.5% quantiles from a printed table: 1 and 2 degrees of freedom.
T_1_DF = 12.7062
T_2_DF = 4.3027


def test_t_interval_by_hand():
    # aaaa1111: mean 0.63, s = sqrt((0.03² + 0.01² + 0.02²) / 2) = sqrt(0.0007), n = 3.
    low, high = t_interval(np.array([0.63, 0.71, 0.55]), np.array([math.sqrt(0.0007), math.sqrt(0.0002), np.nan]),
                           np.array([3, 2, 1]))
    half_a = T_2_DF * math.sqrt(0.0007) / math.sqrt(3)  # 0.06573
    half_b = T_1_DF * math.sqrt(0.0002) / math.sqrt(2)  # 0.12706
    assert low[:2] == pytest.approx([0.63 - half_a, 0.71 - half_b], abs=1e-4)
    assert high[:2] == pytest.approx([0.63 + half_a, 0.71 + half_b], abs=1e-4)
    assert np.isnan(low[2]) and np.isnan(high[2])


def test_welch_ties_by_hand():
    """Best (0.71, s²=0.0002, n=2) against:
    0.63 (s²=0.0007, n=3): t = 0.08 / sqrt(0.0001 + 0.000233) = 4.38 on about 3 df, p ≈ 0.02 < 0.05: not tied;
    0.70 (s²=0.0008, n=2): t = 0.01 / sqrt(0.0001 + 0.0004) = 0.45, p ≈ 0.7: tied;
    a single seed: untested; zero spread on both sides: tied only if the means are equal."""
    tied = tied_with(0.71, math.sqrt(0.0002), 2, np.array([0.63, 0.70, 0.55]),
                     np.array([math.sqrt(0.0007), math.sqrt(0.0008), np.nan]), np.array([3, 2, 1]))
    assert tied[0] == 0.0 and tied[1] == 1.0 and np.isnan(tied[2])
    flat = tied_with(0.5, 0.0, 2, np.array([0.5, 0.4]), np.array([0.0, 0.0]), np.array([2, 2]))
    assert list(flat) == [1.0, 0.0]
    assert np.isnan(tied_with(0.5, np.nan, 1, np.array([0.4]), np.array([0.1]), np.array([2]))).all()


ESTIMATE = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
REFERENCE = np.array([1.0, 3.0, 2.0, 5.0, 4.0])


def test_kendall_tau_by_hand():
    # 10 pairs; (2nd, 3rd) and (4th, 5th) swap: 8 concordant, 2 discordant -> (8 - 2) / 10.
    assert kendall_tau(ESTIMATE, REFERENCE) == pytest.approx(0.6)
    assert kendall_tau(ESTIMATE, -REFERENCE) == pytest.approx(-0.6)
    # tau-b with a tie in the estimate: 5 concordant, 0 discordant, 6 pairs, 1 tied in x -> 5 / sqrt(5 * 6).
    assert kendall_tau(np.array([1.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(
        5 / math.sqrt(30))
    assert math.isnan(kendall_tau(np.ones(4), np.arange(4.0)))


def test_spearman_rho_by_hand():
    # rank differences 0, 1, 1, 1, 1: rho = 1 - 6 * 4 / (5 * (25 - 1)) = 0.8.
    assert spearman_rho(ESTIMATE, REFERENCE) == pytest.approx(0.8)


def test_top_k_overlap_by_hand():
    reversed_estimate = ESTIMATE[::-1]  # its best is the 1st item; the reference's best is the 4th
    assert top_k_overlap(reversed_estimate, REFERENCE, 1) == 0.0
    # estimate's top 3: items 1, 2, 3; reference's top 3: items 4, 5, 2 -> only item 2 in both.
    assert top_k_overlap(reversed_estimate, REFERENCE, 3) == pytest.approx(1 / 3)
    assert top_k_overlap(ESTIMATE, REFERENCE, 3) == pytest.approx(2 / 3)
    assert top_k_overlap(ESTIMATE, REFERENCE, 10) == 1.0  # k beyond the set: the whole set


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    assert bootstrap_interval(kendall_taus, ESTIMATE, ESTIMATE * 2) == pytest.approx((1.0, 1.0))
    generator = np.random.default_rng(3)
    estimate = np.arange(20.0)
    reference = estimate + generator.normal(0, 4, 20)
    first = bootstrap_interval(kendall_taus, estimate, reference)
    assert first == bootstrap_interval(kendall_taus, estimate, reference)
    assert first[0] < kendall_tau(estimate, reference) < first[1] and -1 <= first[0] and first[1] <= 1


def test_row_wise_statistics_match_scipy_on_random_rankings_with_ties():
    generator = np.random.default_rng(1)
    estimates = generator.integers(0, 6, size=(50, 9)).astype(float)
    references = generator.integers(0, 6, size=(50, 9)).astype(float)
    for x, y in zip(estimates, references):
        assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
        assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)


def all_pairs_kendall_taus(estimates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """The definition, every pair of every row held at once (what the bootstrap did before its memory was bounded)."""
    first, second = np.triu_indices(estimates.shape[1], k=1)
    x_order = np.sign(estimates[:, first] - estimates[:, second])
    y_order = np.sign(references[:, first] - references[:, second])
    untied = np.count_nonzero(x_order, axis=1) * np.count_nonzero(y_order, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(untied > 0, (x_order * y_order).sum(axis=1) / np.sqrt(untied), np.nan)


@pytest.mark.parametrize(("budget", "block"), [(1, 1), (7, 3), (64, 64), (10 ** 9, 5), (10 ** 9, 1000)])
def test_kendall_taus_in_bounded_blocks_equal_all_pairs_at_once_bit_for_bit(monkeypatch, budget, block):
    from archsearch.report import statistics

    monkeypatch.setattr(statistics, "PAIR_BUDGET", budget)
    monkeypatch.setattr(statistics, "FIRST_ITEMS_PER_BLOCK", block)
    generator = np.random.default_rng(2)
    estimates = generator.integers(0, 5, size=(40, 23)).astype(float)  # ties, and some constant rows
    references = generator.normal(size=(40, 23))
    estimates[3] = 1.0
    references[5] = 2.0
    estimates[7, 4] = np.nan
    expected = all_pairs_kendall_taus(estimates, references)
    np.testing.assert_array_equal(kendall_taus(estimates, references), expected)


def test_the_bootstrap_of_kendall_tau_holds_a_bounded_amount_of_memory():
    """At 200 architectures the pairs of 1000 resamples took 160 MB an array (1.5 GB at 300, past this machine
    near 1000); now the blocks hold PAIR_BUDGET values whatever the count."""
    import tracemalloc

    from archsearch.report.statistics import PAIR_BUDGET

    generator = np.random.default_rng(4)
    estimate = generator.normal(size=200)
    reference = estimate + generator.normal(size=200)
    tracemalloc.start()
    try:
        interval = bootstrap_interval(kendall_taus, estimate, reference)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * PAIR_BUDGET * 8 + 8 * 1000 * 200 * 4, peak  # a few blocks of float64, and the resampled inputs
    assert interval[0] < kendall_tau(estimate, reference) < interval[1]
