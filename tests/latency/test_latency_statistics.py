"""summarize_timings: median and quartiles of given samples, never a mean."""

from __future__ import annotations

import pytest

from archsearch.latency import summarize_timings


def test_quartiles_of_known_samples() -> None:
    summary = summarize_timings([4.0, 1.0, 3.0, 2.0, 8.0, 5.0, 7.0, 6.0])
    # numpy's linear interpolation over the sorted samples 1..8
    assert summary.median_ms == pytest.approx(4.5)
    assert summary.q1_ms == pytest.approx(2.75)
    assert summary.q3_ms == pytest.approx(6.25)
    assert summary.iqr_ms == pytest.approx(3.5)
    assert summary.min_ms == 1.0
    assert summary.repeats == 8


def test_an_outlier_moves_neither_median_nor_quartiles() -> None:
    calm = summarize_timings([10.0, 10.0, 11.0, 11.0, 12.0])
    spiky = summarize_timings([10.0, 10.0, 11.0, 11.0, 500.0])
    assert spiky.median_ms == calm.median_ms == 11.0
    assert spiky.iqr_ms == calm.iqr_ms == 1.0


def test_one_sample_has_zero_spread() -> None:
    summary = summarize_timings([3.5])
    assert (summary.median_ms, summary.iqr_ms, summary.min_ms) == (3.5, 0.0, 3.5)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        summarize_timings([])
