"""The timing loop: warm up, then time single iterations until the budget is spent.

The loop takes the clock and the per-iteration timer as arguments so that tests can
drive it with a fake clock instead of thresholds on real time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch

from archsearch.latency.settings import LatencySettings

IterationTimer = Callable[[], float]
"""Runs one inference and returns how long it took, in milliseconds."""


def collect_samples(run_once: IterationTimer, settings: LatencySettings, *,
                    clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Warm up, then return per-iteration times (ms) within the repeat bounds and budget.

    Warm-up lasts until both ``min_warmup_iterations`` calls and ``warmup_seconds``
    have passed. Timing stops at ``max_repeats``, or once ``min_repeats`` are taken
    and ``time_budget_seconds`` of wall clock (by ``clock``, in seconds) are spent.
    """
    warm_up(run_once, settings, clock=clock)
    samples: list[float] = []
    timing_start = clock()
    while len(samples) < settings.max_repeats and (
            len(samples) < settings.min_repeats or clock() - timing_start < settings.time_budget_seconds):
        samples.append(run_once())
    return samples


def warm_up(run_once: IterationTimer, settings: LatencySettings, *,
            clock: Callable[[], float] = time.perf_counter) -> None:
    """Run until both ``min_warmup_iterations`` calls and ``warmup_seconds`` have passed."""
    warmup_start = clock()
    warmup_iterations = 0
    while (warmup_iterations < settings.min_warmup_iterations
           or clock() - warmup_start < settings.warmup_seconds):
        run_once()
        warmup_iterations += 1


def collect_rounds(timers: Sequence[IterationTimer], settings: LatencySettings, rounds: int, *,
                   clock: Callable[[], float] = time.perf_counter) -> list[list[list[float]]]:
    """Time several models in interleaved rounds; returns ``samples[model][round]`` (ms).

    Each model is warmed up as in ``collect_samples``. Then, in every round, each model in
    turn takes ``time_budget_seconds / rounds`` of the clock, and at least
    ``ceil(min_repeats / rounds)`` and at most ``ceil(max_repeats / rounds)`` iterations. The
    order reverses every round (A B, B A, A B, ...), so a machine that slows down or speeds up
    during a measurement slows every model alike: a ratio taken from one set of rounds
    cancels the drift that separate measurements would each carry.
    """
    for run_once in timers:
        warm_up(run_once, settings, clock=clock)
    per_round_budget = settings.time_budget_seconds / rounds
    minimum = math.ceil(settings.min_repeats / rounds)
    maximum = max(minimum, math.ceil(settings.max_repeats / rounds))
    samples: list[list[list[float]]] = [[] for _ in timers]
    for round_index in range(rounds):
        order = range(len(timers)) if round_index % 2 == 0 else reversed(range(len(timers)))
        for model_index in order:
            run_once = timers[model_index]
            taken: list[float] = []
            started = clock()
            while len(taken) < maximum and (len(taken) < minimum or clock() - started < per_round_budget):
                taken.append(run_once())
            samples[model_index].append(taken)
    return samples


def wall_clock_timer(step: Callable[[], object],
                     synchronize: Callable[[], None] | None = None) -> IterationTimer:
    """Time ``step`` with ``perf_counter_ns``; ``synchronize`` waits for queued device work."""

    def run_once() -> float:
        start = time.perf_counter_ns()
        step()
        if synchronize is not None:
            synchronize()
        return (time.perf_counter_ns() - start) / 1e6

    return run_once


def cuda_event_timer(step: Callable[[], object], device: torch.device) -> IterationTimer:
    """Time ``step`` on the GPU with a pair of CUDA events on the current stream.

    The events span the stream from before the first kernel to after the last one, so
    gaps where the GPU waits on Python's launches count, as they do in deployment. The
    synchronize after each iteration keeps the stream empty at every start, so a
    sample is one batch's latency rather than the throughput of a queue of launches.
    """

    def run_once() -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end)

    return run_once
