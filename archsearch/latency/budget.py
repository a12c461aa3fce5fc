"""Deciding a relative latency budget: a ratio near the budget is timed again before a point is refused.

A ratio over the budget by less than its own noise band says little: the next timing may fall
under it. Such a point is re-timed (with its reference, in fresh interleaved rounds) up to
``protocol.RETIMES`` times, the rounds pooled, and only then called infeasible. The decision
takes the timing as a function, so that tests drive it with made-up rounds instead of a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archsearch.latency.protocol import RETIMES
from archsearch.latency.relative import RelativeLatency


@dataclass(frozen=True)
class RatioDecision:
    """The timing a relative budget was decided on, the budget, and how many re-timings it took.

    ``margin`` is how far inside the budget the ratio lies, as a fraction of the budget
    (negative: over it); ``noise`` the ratio's noise band at the decision.
    """

    measurement: RelativeLatency
    maximum: float
    retimes: int

    @property
    def ratio(self) -> float:
        return self.measurement.ratio

    @property
    def noise(self) -> float:
        return self.measurement.noise

    @property
    def margin(self) -> float:
        return (self.maximum - self.ratio) / self.maximum

    @property
    def feasible(self) -> bool:
        return self.ratio <= self.maximum


def within_noise_over(measurement: RelativeLatency, maximum: float) -> bool:
    """Over the budget, but by no more than the ratio's noise band: a decision worth another timing."""
    ratio = measurement.ratio
    return maximum < ratio <= maximum + measurement.noise * ratio


def decide_ratio(time_pair: Callable[[], RelativeLatency], maximum: float, *,
                 first: RelativeLatency | None = None, retimes: int = RETIMES) -> RatioDecision:
    """Decide ``ratio <= maximum`` on ``first`` (a cached timing) or a fresh ``time_pair()``; re-time near the budget."""
    measurement = first if first is not None else time_pair()
    taken = 0
    while taken < retimes and within_noise_over(measurement, maximum):
        measurement = measurement.pooled(time_pair())
        taken += 1
    return RatioDecision(measurement=measurement, maximum=maximum, retimes=taken)
