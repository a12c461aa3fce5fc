"""The timing protocol for latency ratios, in one place: rounds, estimator, noise band, re-timings.

Chosen by ``benchmarks/latency_protocol.py`` on the project's shared 2-core machine (load average
about 7 while it ran); the README's latency section gives the figures. In short: ratios of networks
timed separately spread by 35-41% between repetitions (whatever the estimator), those of
interleaved rounds by 5-6% with the median, and by 10-13% with a low quantile or the minimum;
pinning the process to one core or torch.utils.benchmark's blocked_autorange did no better. A
second copy of the reference, whose ratio is 1 in truth, came out within 4% of 1 (interleaved,
median) against 16% (separate).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ROUNDS = 6
"""Interleaved rounds per relative timing (candidate and reference, order reversed every round)."""

RETIMES = 2
"""At most this many re-timings of a point whose ratio is over the budget but within its noise band."""


def ratio_and_noise(round_ratios: Sequence[float]) -> tuple[float, float]:
    """The ratio (median of the per-round ratios) and its noise band (half their IQR, relative to the ratio).

    Each round times both networks back to back, so a round's ratio sees one state of the
    machine; the median over rounds ignores the rounds a burst of load hit one side of. Half
    the IQR of a handful of rounds is somewhat wider than the standard error of their median,
    so a budget inside the band is a decision the timing cannot make yet.
    """
    if len(round_ratios) == 0:
        raise ValueError("no rounds to estimate a ratio from")
    q1, median, q3 = np.percentile(np.asarray(round_ratios, dtype=np.float64), [25.0, 50.0, 75.0])
    return float(median), float((q3 - q1) / 2 / median)
