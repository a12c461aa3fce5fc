"""Robust summaries of per-iteration timings.

Latency distributions have a long right tail (interrupts, frequency changes, other
processes), so we report the median and interquartile range, never a mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimingSummary:
    """Median, quartiles and minimum of one set of timings, in milliseconds."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    iqr_ms: float
    min_ms: float
    repeats: int


def summarize_timings(samples_ms: Sequence[float]) -> TimingSummary:
    """Summarize timings (ms) by quartiles, with numpy's default linear interpolation."""
    if len(samples_ms) == 0:
        raise ValueError("cannot summarize an empty list of timings")
    values = np.asarray(samples_ms, dtype=np.float64)
    q1, median, q3 = np.percentile(values, [25.0, 50.0, 75.0])
    return TimingSummary(median_ms=float(median), q1_ms=float(q1), q3_ms=float(q3),
                         iqr_ms=float(q3 - q1), min_ms=float(values.min()), repeats=len(values))
