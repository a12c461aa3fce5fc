"""Decisions near a relative budget, driven by made-up timings (no clock): re-time inside the noise band only."""

from __future__ import annotations

import pytest

from archsearch.latency import LatencySettings
from archsearch.latency.budget import LatencyBudget, decide_ratio, within_noise_over
from archsearch.latency.protocol import RETIMES
from archsearch.latency.relative import RelativeLatency


def timing(*round_ratios: float) -> RelativeLatency:
    """A timing whose per-round ratios are ``round_ratios`` (reference 10 ms every round)."""
    return RelativeLatency(candidate_rounds=tuple((10.0 * ratio,) for ratio in round_ratios),
                           reference_rounds=tuple((10.0,) for _ in round_ratios), device_name="test CPU",
                           settings=LatencySettings(), backend="eager", reference_name="ref")


class FakeTimer:
    """Hands out prepared timings in order and counts the calls."""

    def __init__(self, *timings: RelativeLatency) -> None:
        self.timings = list(timings)
        self.calls = 0

    def __call__(self) -> RelativeLatency:
        self.calls += 1
        return self.timings.pop(0)


def test_a_ratio_far_over_the_budget_is_refused_at_once() -> None:
    timer = FakeTimer(timing(0.9, 0.91, 0.92, 0.9))
    decision = decide_ratio(timer, 0.6)
    assert timer.calls == 1 and decision.retimes == 0
    assert not decision.feasible
    assert LatencyBudget(maximum_ratio=0.6).margin(None, decision.ratio) == pytest.approx((0.6 - 0.905) / 0.6)


def test_a_ratio_within_the_budget_is_accepted_without_a_retiming() -> None:
    timer = FakeTimer(timing(0.5, 0.55, 0.65, 0.7))  # wide noise, but under the budget
    decision = decide_ratio(timer, 0.61)
    assert timer.calls == 1 and decision.feasible and LatencyBudget(maximum_ratio=0.61).margin(None, decision.ratio) > 0


def test_a_ratio_over_the_budget_within_its_noise_is_retimed_and_can_pass() -> None:
    first = timing(0.56, 0.6, 0.64, 0.66)  # ratio 0.62, noise band about +-8%: 0.6 lies inside it
    assert within_noise_over(first, 0.6)
    timer = FakeTimer(first, timing(0.55, 0.56, 0.57, 0.58))
    decision = decide_ratio(timer, 0.6)
    assert timer.calls == 2 and decision.retimes == 1
    assert decision.feasible and decision.measurement.round_ratios == first.round_ratios + (0.55, 0.56, 0.57, 0.58)


def test_retimings_stop_at_their_limit_and_the_pooled_ratio_decides() -> None:
    near = timing(0.56, 0.6, 0.64, 0.66)
    timer = FakeTimer(*[near] * (RETIMES + 1))
    decision = decide_ratio(timer, 0.6)
    assert timer.calls == RETIMES + 1 and decision.retimes == RETIMES
    assert not decision.feasible and len(decision.measurement.round_ratios) == 4 * (RETIMES + 1)


def test_a_cached_timing_is_decided_on_and_retimed_only_near_the_budget() -> None:
    timer = FakeTimer(timing(0.5, 0.5))
    assert decide_ratio(timer, 0.6, first=timing(0.9, 0.9)).ratio == 0.9
    assert timer.calls == 0
    assert decide_ratio(timer, 0.6, first=timing(0.56, 0.6, 0.64, 0.66)).retimes == 1
    assert timer.calls == 1


def test_without_a_maximum_nothing_is_retimed() -> None:
    timer = FakeTimer(timing(5.0, 6.0))
    decision = decide_ratio(timer, float("inf"))
    assert decision.feasible and timer.calls == 1 and decision.retimes == 0


def test_one_budget_answers_within_budget_from_the_study_constraints():
    from archsearch.latency.budget import Constraint, LatencyBudget

    budget = LatencyBudget.of((Constraint("latency_ms", maximum=20.0), Constraint("latency_ms", maximum=10.0),
                               Constraint("latency_ratio", maximum=0.5, reference="rdrnet-s"),
                               Constraint("receptive_field", minimum=100.0)), screening_margin=0.1)
    assert (budget.maximum_ms, budget.maximum_ratio, budget.reference) == (10.0, 0.5, "rdrnet-s")
    values = {"latency_ms": 12.0, "latency_ratio": 0.4, "receptive_field": 80.0}
    assert budget.violations(values.get) == pytest.approx((-8.0, 2.0, -0.1, 20.0))
    assert budget.margin(12.0, 0.4) == pytest.approx(-0.2)  # the tighter of the two decides
    assert budget.screened_out(11.5, None) is True and budget.screened_out(10.5, 0.54) is False
    assert LatencyBudget.of(budget.constraints).screened_out(100.0, None) is False  # no screening: never


def test_a_screened_out_point_is_judged_by_its_prediction():
    from archsearch.latency.budget import judged_value

    values = {"latency_ms": None, "latency_predicted_ms": 7.0, "macs": None}
    assert judged_value("latency_ms", values.get) == 7.0
    assert judged_value("macs", values.get) is None
