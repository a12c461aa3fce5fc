"""The one answer to "is this point within its budget?": constraints, the latency budget, screening and advice.

A study's ``constraints:`` become ``Constraint`` bounds, each judged by Optuna's convention
(``violation``: <= 0 feasible); ``LatencyBudget`` is built once from them (``LatencyBudget.of``)
and owns the rest: the tightest latency maxima, the margin a point lies inside them, screening
on a prediction, the re-timing decision near a relative budget, and what to tell a user whose run
found no point within it (``nothing_fits``).

A ratio over the budget by less than its own noise band says little: the next timing may fall
under it. Such a point is re-timed (with its reference, in fresh interleaved rounds) up to
``protocol.RETIMES`` times, the rounds pooled, and only then called infeasible. The decision
takes the timing as a function, so that tests drive it with made-up rounds instead of a clock.
Nothing here imports torch: a budget is built with the study file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archsearch.latency.protocol import RETIMES

if TYPE_CHECKING:
    from archsearch.latency.relative import RelativeLatency

PREDICTED = {"latency_ms": "latency_predicted_ms", "latency_ratio": "latency_predicted_ratio"}
"""Where a screened-out point's latency stands: it is never measured, so its prediction is what it is judged by."""


def judged_value(metric: str, value_of: Callable[[str], Any]) -> Any:
    """A point's ``metric`` as constraints and objectives judge it: measured, or predicted where screening left
    the point out before it was measured."""
    value = value_of(metric)
    if value is None and metric in PREDICTED:
        return value_of(PREDICTED[metric])
    return value


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric; a point outside it is infeasible and never trains.

    ``reference`` (latency_ratio only): the network the ratio is to, a preset name or the
    absolute path of a spec file.
    """

    metric: str
    maximum: float | None = None
    minimum: float | None = None
    reference: str | None = None

    def violation(self, value: float) -> float:
        """Optuna's convention: <= 0 is feasible, the size of a violation otherwise."""
        over = value - self.maximum if self.maximum is not None else float("-inf")
        under = self.minimum - value if self.minimum is not None else float("-inf")
        return max(over, under)


@dataclass(frozen=True)
class LatencyBudget:
    """A study's latency bounds: absolute (``maximum_ms``), relative to ``reference`` (``maximum_ratio``), or both.

    ``reference`` set means every point is timed against it (a ratio objective needs it even without
    a maximum). ``screening_margin``: predict first and leave out points predicted over a maximum by
    more than this fraction of it.
    """

    maximum_ms: float | None = None
    maximum_ratio: float | None = None
    reference: str | None = None
    screening_margin: float | None = None
    constraints: tuple[Constraint, ...] = ()  # every bound of the study, latency's and the others

    @classmethod
    def of(cls, constraints: tuple[Constraint, ...], screening_margin: float | None = None) -> "LatencyBudget":
        """The budget of a study's constraints: the tightest maximum of each latency kind, the ratio's reference."""
        def tightest(metric: str) -> float | None:
            maxima = [c.maximum for c in constraints if c.metric == metric and c.maximum is not None]
            return min(maxima) if maxima else None

        ratio = next((constraint for constraint in constraints if constraint.metric == "latency_ratio"), None)
        return cls(maximum_ms=tightest("latency_ms"), maximum_ratio=tightest("latency_ratio"),
                   reference=ratio.reference if ratio is not None else None, screening_margin=screening_margin,
                   constraints=tuple(constraints))

    def violations(self, value_of: Callable[[str], float]) -> tuple[float, ...]:
        """One violation per constraint (Optuna's convention), of the values ``value_of(metric)`` gives."""
        return tuple(constraint.violation(value_of(constraint.metric)) for constraint in self.constraints)

    def screened_out(self, predicted_ms: float | None, predicted_ratio: float | None) -> bool:
        """Predicted over a latency maximum by more than the screening margin (a fraction of it): left out."""
        if self.screening_margin is None:
            return False
        margin = 1 + self.screening_margin
        return any(value is not None and maximum is not None and value > maximum * margin
                   for value, maximum in ((predicted_ms, self.maximum_ms), (predicted_ratio, self.maximum_ratio)))

    def margin(self, latency_ms: float | None, latency_ratio: float | None) -> float | None:
        """The smallest (maximum - value) / maximum over the latency budgets: the one that decided."""
        margins = [(maximum - value) / maximum
                   for value, maximum in ((latency_ms, self.maximum_ms), (latency_ratio, self.maximum_ratio))
                   if value is not None and maximum is not None]
        return min(margins) if margins else None

    def nothing_fits(self, trials: Iterable[Mapping[str, Any]]) -> str | None:
        """A message naming the budget, the fastest point measured and what to change; None if no budget was broken.

        ``trials`` are trials.csv rows; only measured points count (a screened-out point's figure is a
        prediction). None as well when a measured point was feasible, or the fastest one is within the
        latency budget (another constraint left it out).
        """
        measured = [row for row in trials if _number(row.get("latency_ms")) is not None]
        if not measured or (self.maximum_ms is None and self.maximum_ratio is None) \
                or any(row.get("state") != "INFEASIBLE" for row in measured):
            return None
        by_ratio = self.maximum_ratio is not None and all(_number(row.get("latency_ratio")) is not None
                                                          for row in measured)
        fastest = min(measured, key=lambda row: row["latency_ratio"] if by_ratio else row["latency_ms"])
        figures = f"{fastest['latency_ms']:.2f} ms"
        ratio = _number(fastest.get("latency_ratio"))
        if ratio is not None:
            figures += f", {ratio:.3f}x {self.reference}"
        bounds = []
        if self.maximum_ratio is not None:
            bounds.append(f"latency_ratio <= {self.maximum_ratio:g} (to {self.reference})")
        if self.maximum_ms is not None:
            bounds.append(f"latency_ms <= {self.maximum_ms:g}")
        changes = []
        if self.maximum_ratio is not None and ratio is not None and ratio > self.maximum_ratio:
            changes.append(f"raise constraints.latency_ratio.max to at least {_round_up(ratio * 1.1)}")
        if self.maximum_ms is not None and fastest["latency_ms"] > self.maximum_ms:
            changes.append(f"raise constraints.latency_ms.max to at least {_round_up(fastest['latency_ms'] * 1.1)}")
            if self.maximum_ratio is None:
                changes.append("or give the budget relative to a reference network "
                               "(constraints: {latency_ratio: {max: R, reference: NAME}}), which a busier or "
                               "another machine does not move")
        if not changes:
            return None
        changes.append("or narrow the space to smaller networks (parameters: / fix:)")
        return (f"no point met the latency budget ({' and '.join(bounds)}): {len(measured)} measured, the fastest "
                f"trial #{fastest['number']} at {figures}. To find feasible points, {', '.join(changes)}.")


@dataclass(frozen=True)
class RatioDecision:
    """The timing a relative budget was decided on, the budget, and how many re-timings it took.

    ``noise`` is the ratio's noise band at the decision (how far inside the budget it lies is
    ``LatencyBudget.margin``, over every latency bound).
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


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _round_up(value: float) -> str:
    """Two significant digits, rounded up: a budget to write into a study file."""
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return f"{math.ceil(value / scale) * scale:.{max(0, -int(math.log10(scale)))}f}"
