"""The timing protocol for latency ratios, in one place: rounds, estimator, noise band, re-timings.

Chosen by ``benchmarks/latency_protocol.py`` on the project's shared 2-core machine while it was
heavily loaded (load average 7-13); the README's latency section has the table. Ratios of the
same pair, repeated: timed separately, they spread by 8-35% between repetitions; interleaved in
20 rounds with the median of per-round ratios, by 2.6%, with a reference copy (ratio 1 in truth)
within 2.4% of 1. Minimum and 10th percentile did worse than the median in every protocol;
pinning to one core and torch.utils.benchmark's blocked_autorange did not beat interleaving.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ROUNDS = 20
"""Interleaved rounds per relative timing (candidate and reference, order reversed every round).

Finer is better while a round still holds an iteration of each network: 20 rounds kept ratios
within 2.6% between repetitions where 6 rounds spread by 9% (same time budget)."""

RETIMES = 2
"""At most this many re-timings of a point whose ratio is over the budget but within its noise band."""


NOISE_STANDARD_ERRORS = 2.0
"""The noise band's half-width, in standard errors of the median ratio."""

_SIGMA_PER_IQR = 1 / 1.349
"""A normal distribution's standard deviation per interquartile range."""
_MEDIAN_STANDARD_ERROR = 1.2533
"""The median's standard error in sigma / sqrt(n), for a normal distribution (sqrt(pi / 2))."""


def ratio_and_noise(round_ratios: Sequence[float]) -> tuple[float, float]:
    """The ratio (median of the per-round ratios) and its noise band (relative half-width).

    Each round times both networks back to back, so a round's ratio sees one state of the
    machine; the median over rounds ignores the rounds a burst of load hit one side of. The band
    is NOISE_STANDARD_ERRORS standard errors of that median, from the rounds' IQR (robust to the
    same bursts), so it narrows as re-timings add rounds: a budget inside it is a decision the
    timing cannot make yet.
    """
    if len(round_ratios) == 0:
        raise ValueError("no rounds to estimate a ratio from")
    q1, median, q3 = np.percentile(np.asarray(round_ratios, dtype=np.float64), [25.0, 50.0, 75.0])
    standard_error = _MEDIAN_STANDARD_ERROR * (q3 - q1) * _SIGMA_PER_IQR / np.sqrt(len(round_ratios))
    return float(median), float(NOISE_STANDARD_ERRORS * standard_error / median)
