"""collect_samples under a fake clock: warm-up, repeat bounds and the time budget."""

from __future__ import annotations

import dataclasses

from archsearch.latency import LatencySettings
from archsearch.latency.timing import collect_samples

QUICK = LatencySettings(warmup_seconds=0.0, min_warmup_iterations=0, time_budget_seconds=0.0,
                        min_repeats=1, max_repeats=1000)


class FakeClock:
    """A clock that moves only when a fake iteration runs; 0.125 s steps are exact in binary."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def iteration(self, seconds: float = 0.125):
        def run_once() -> float:
            self.calls += 1
            self.now += seconds
            return float(self.calls)  # identifies which call produced a sample
        return run_once


def run(**changes) -> tuple[list[float], FakeClock]:
    clock = FakeClock()
    samples = collect_samples(clock.iteration(), dataclasses.replace(QUICK, **changes), clock=clock)
    return samples, clock


def test_time_budget_stops_the_timing() -> None:
    samples, _ = run(time_budget_seconds=1.0)
    assert len(samples) == 8  # 8 iterations of 0.125 s fill 1 s


def test_min_repeats_outlast_the_budget() -> None:
    samples, _ = run(time_budget_seconds=0.0, min_repeats=5)
    assert len(samples) == 5


def test_max_repeats_cut_the_budget_short() -> None:
    samples, _ = run(time_budget_seconds=1000.0, max_repeats=7)
    assert len(samples) == 7


def test_warmup_runs_its_minimum_iterations_and_is_not_sampled() -> None:
    samples, clock = run(min_warmup_iterations=3, min_repeats=2)
    assert clock.calls == 5
    assert samples == [4.0, 5.0]


def test_warmup_lasts_its_seconds() -> None:
    samples, clock = run(warmup_seconds=1.0, min_warmup_iterations=2, min_repeats=1)
    assert clock.calls - len(samples) == 8
