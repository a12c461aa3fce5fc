"""collect_samples under a fake clock: warm-up, repeat bounds and the time budget."""

from __future__ import annotations

import dataclasses

from archsearch.latency import LatencySettings
from archsearch.latency.timing import collect_rounds, collect_samples

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


def test_rounds_alternate_the_order_and_split_the_budget() -> None:
    """A B, B A, A B: a machine slowing down part-way slows both; each round has budget / rounds per model."""
    clock = FakeClock()
    log: list[str] = []

    def timer(label: str):
        step = clock.iteration()

        def run_once() -> float:
            log.append(label)
            return step()
        return run_once

    settings = dataclasses.replace(QUICK, time_budget_seconds=1.5, min_repeats=1, min_warmup_iterations=1)
    samples = collect_rounds([timer("a"), timer("b")], settings, rounds=3, clock=clock)
    timed = log[2:]  # one warm-up call each first
    assert log[:2] == ["a", "b"]
    assert timed == ["a"] * 4 + ["b"] * 4 + ["b"] * 4 + ["a"] * 4 + ["a"] * 4 + ["b"] * 4  # 0.5 s = 4 x 0.125 s
    assert [len(round_) for round_ in samples[0]] == [4, 4, 4]
    assert [len(round_) for round_ in samples[1]] == [4, 4, 4]


def test_rounds_share_the_repeat_bounds() -> None:
    clock = FakeClock()
    settings = dataclasses.replace(QUICK, time_budget_seconds=0.0, min_repeats=7, max_repeats=9)
    samples = collect_rounds([clock.iteration()], settings, rounds=3, clock=clock)
    assert [len(round_) for round_ in samples[0]] == [3, 3, 3]  # ceil(7 / 3) each
    settings = dataclasses.replace(QUICK, time_budget_seconds=100.0, min_repeats=1, max_repeats=6)
    samples = collect_rounds([clock.iteration()], settings, rounds=3, clock=clock)
    assert [len(round_) for round_ in samples[0]] == [2, 2, 2]  # ceil(6 / 3) each, budget or not
