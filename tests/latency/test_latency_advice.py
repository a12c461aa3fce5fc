"""The message of a run in which nothing met the latency budget."""

from __future__ import annotations

from archsearch.latency.budget import LatencyBudget

RELATIVE = LatencyBudget(maximum_ratio=0.4, reference="rdrnet-s-simple")


def row(number: int, ms: float | None, ratio: float | None, state: str = "INFEASIBLE") -> dict:
    return {"number": number, "state": state, "latency_ms": ms, "latency_ratio": ratio}


def test_names_the_budget_the_fastest_point_and_a_budget_it_would_meet() -> None:
    message = RELATIVE.nothing_fits([row(0, 30.0, 0.61), row(1, 20.0, 0.45), row(2, None, None)])
    assert message.startswith("no point met the latency budget (latency_ratio <= 0.4 (to rdrnet-s-simple)): "
                              "2 measured, the fastest trial #1 at 20.00 ms, 0.450x rdrnet-s-simple.")
    assert "raise constraints.latency_ratio.max to at least 0.5" in message  # 0.45 x 1.1, rounded up
    assert "narrow the space" in message


def test_an_absolute_budget_is_advised_to_become_relative() -> None:
    message = LatencyBudget(maximum_ms=15.0).nothing_fits([row(0, 22.0, None), row(1, 28.8, None)])
    assert "(latency_ms <= 15)" in message and "trial #0 at 22.00 ms." in message
    assert "raise constraints.latency_ms.max to at least 25" in message
    assert "relative to a reference network" in message


def test_no_message_when_a_point_fitted_or_another_constraint_left_them_out() -> None:
    assert RELATIVE.nothing_fits([row(0, 10.0, 0.3, "COMPLETE"), row(1, 30.0, 0.61)]) is None
    assert RELATIVE.nothing_fits([row(0, 10.0, 0.3)]) is None  # infeasible, but not for latency
    assert LatencyBudget().nothing_fits([row(0, 10.0, None)]) is None
    assert RELATIVE.nothing_fits([row(0, None, None)]) is None  # nothing measured
