"""Which timing protocol gives latency ratios that hold? Compare protocols and estimators in one run.

Two networks of the latency_constrained study's space (its smallest and largest point) and a
second copy of the reference are timed against the reference (rdrnet-s-simple) in ``--repeats``
repetitions of each protocol, first on the machine as it is ("quiet") and then with a busy
process spinning on the last core ("busy"). The protocols alternate within every repetition, so
a neighbour's load falls on all of them alike:

- separate: each network timed whole, one after the other (what ``measure_latency`` does);
- interleaved: ``measure_in_rounds`` over candidate and reference (order reversed every round),
  with ``protocol.ROUNDS`` rounds (a few iterations each) and with COARSE_ROUNDS rounds;
- interleaved+pinned: the same with this process pinned to the first core;
- torch.utils.benchmark: ``Timer.blocked_autorange`` per network, one after the other
  (its figure is the median of blocks, so only its own estimator applies).

Estimators over the same samples: median, 25th and 10th percentile, minimum, and (rounds only)
the median of per-round median ratios. Columns, per protocol and estimator: how far a ratio (and
the candidate's ms) spread between repetitions (median |log(x / median x)|), how far the busy
phase moved it (|log(busy / quiet)| of the phase medians), and the noise floor: how far the
reference copy's ratio, which is 1 in truth, strays from 1. Smaller is better throughout.

    python benchmarks/latency_protocol.py --repeats 6 --budget 1.0
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.utils.benchmark

from busy_core import busy_core

from archsearch import build, deploy
from archsearch.arch.build import resolve_spec
from archsearch.cli.arguments import parse_size
from archsearch.latency import LatencySettings, device_name
from archsearch.latency.measure import measure_in_rounds
from archsearch.latency.protocol import ROUNDS
from archsearch.study.config import load_study
from archsearch.space.sampling import FixedSuggester, sample

STUDY = Path(__file__).parent.parent / "studies" / "latency_constrained.yaml"
REFERENCE = "rdrnet-s-simple"
COARSE_ROUNDS = 6
CANDIDATES = {"small": {"width": 8, "branches": 1, "detail_depth": 1, "semantic_depth": 1},
              "large": {"width": 32, "branches": 2, "detail_depth": 2, "semantic_depth": 2}}
ESTIMATORS: dict[str, Callable[[Sequence[float]], float]] = {
    "median": lambda values: float(np.median(values)),
    "q25": lambda values: float(np.quantile(values, 0.25)),
    "q10": lambda values: float(np.quantile(values, 0.10)),
    "min": lambda values: float(np.min(values)),
}


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6, help="repetitions of every protocol per phase (default 6)")
    parser.add_argument("--budget", type=float, default=1.0, help="timing seconds per network (default 1)")
    parser.add_argument("--warmup", type=float, default=0.3, help="warm-up seconds per network (default 0.3)")
    parser.add_argument("--input", type=parse_size, default=None, metavar="HxW",
                        help="input size (default: the study's)")
    return parser.parse_args(argv)


def study_networks(input_size: tuple[int, int] | None) -> tuple[dict[str, torch.nn.Module], LatencySettings]:
    study = load_study(STUDY)
    networks = {}
    for label, params in CANDIDATES.items():
        point = sample(study.space, FixedSuggester({**study.fix, **params}))
        networks[label] = deploy(build(point.spec, num_classes=19))
    reference = deploy(build(resolve_spec(REFERENCE), num_classes=19))
    networks["reference copy"] = deploy(build(resolve_spec(REFERENCE), num_classes=19))
    networks["reference"] = reference
    settings = study.latency
    if input_size is not None:
        settings = dataclasses.replace(settings, input_size=input_size)
    return networks, settings


def separate(networks: Sequence[torch.nn.Module], settings: LatencySettings) -> list[list[list[float]]]:
    """Each network timed whole, one after the other: one 'round' per network."""
    return [measure_in_rounds([network], settings, rounds=1).samples[0] for network in networks]


def interleaved(networks: Sequence[torch.nn.Module], settings: LatencySettings,
                rounds: int = ROUNDS) -> list[list[list[float]]]:
    return measure_in_rounds(networks, settings, rounds).samples


def coarsely_interleaved(networks: Sequence[torch.nn.Module], settings: LatencySettings) -> list[list[list[float]]]:
    return interleaved(networks, settings, COARSE_ROUNDS)


def pinned(networks: Sequence[torch.nn.Module], settings: LatencySettings) -> list[list[list[float]]]:
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        return interleaved(networks, settings)
    finally:
        os.sched_setaffinity(0, allowed)


def torch_benchmark(networks: Sequence[torch.nn.Module], settings: LatencySettings) -> list[list[list[float]]]:
    """torch.utils.benchmark's blocked_autorange per network; each block's mean counts as one sample."""
    height, width = settings.input_size
    images = torch.randn(1, 3, height, width)
    results = []
    for network in networks:
        network.eval()
        with torch.inference_mode():
            timer = torch.utils.benchmark.Timer("network(images)", globals={"network": network, "images": images},
                                                num_threads=settings.num_threads)
            timer.timeit(1)
            measurement = timer.blocked_autorange(min_run_time=settings.time_budget_seconds)
        results.append([[time_s * 1e3 for time_s in measurement.times]])
    return results


PROTOCOLS = {"separate": separate, "interleaved": interleaved, f"interleaved x{COARSE_ROUNDS}": coarsely_interleaved,
             "interleaved+pinned": pinned,
             "torch.utils.benchmark": torch_benchmark}


def estimates(samples: list[list[list[float]]], reference_index: int) -> dict[str, list[tuple[float, float]]]:
    """Per estimator: (ratio to the reference, ms) of every network."""
    found: dict[str, list[tuple[float, float]]] = {}
    pooled = [[value for round_ in network for value in round_] for network in samples]
    for name, estimator in ESTIMATORS.items():
        values = [estimator(network) for network in pooled]
        found[name] = [(value / values[reference_index], value) for value in values]
    if len(samples[reference_index]) > 1:
        reference_rounds = [np.median(round_) for round_ in samples[reference_index]]
        found["median of round ratios"] = [
            (float(np.median([np.median(mine) / theirs for mine, theirs in zip(network, reference_rounds)])),
             float(np.median(pooled[index]))) for index, network in enumerate(samples)]
    return found


def spread(values: Sequence[float]) -> float:
    """Median |log(x / median x)|: a typical relative deviation from the middle, robust to one wild value."""
    middle = statistics.median(values)
    return statistics.median(abs(math.log(value / middle)) for value in values)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    networks, settings = study_networks(arguments.input)
    settings = dataclasses.replace(settings, warmup_seconds=arguments.warmup, time_budget_seconds=arguments.budget,
                                   min_repeats=10)
    labels = list(networks)
    reference_index = labels.index("reference")
    height, width = settings.input_size
    print(f"{device_name(settings)}, {settings.num_threads} thread(s), input 1x3x{height}x{width}, "
          f"{arguments.budget:g} s per network, {ROUNDS} rounds (interleaved), {arguments.repeats} repetitions "
          f"per phase; load average {os.getloadavg()[0]:.2f}")
    # figures[phase][protocol][estimator][network] -> list of (ratio, ms)
    figures: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    started = time.perf_counter()
    for phase in ("quiet", "busy"):
        with busy_core() if phase == "busy" else contextlib.nullcontext():
            for repeat in range(arguments.repeats):
                order = list(PROTOCOLS) if repeat % 2 == 0 else list(reversed(PROTOCOLS))
                for protocol in order:
                    samples = PROTOCOLS[protocol]([networks[label] for label in labels], settings)
                    found = estimates(samples, reference_index)
                    if protocol == "torch.utils.benchmark":
                        found = {"median": found["median"]}
                    for estimator, values in found.items():
                        for label, value in zip(labels, values):
                            figures[phase][protocol][estimator][label].append(value)
    print(f"({time.perf_counter() - started:.0f} s)")
    print(f"{'protocol':22s} {'estimator':23s} {'ratio spread':>12s} {'ms spread':>10s} {'busy moved ratio':>16s} "
          f"{'busy moved ms':>13s} {'floor |log r|':>13s}")
    summary = {}
    for protocol in PROTOCOLS:
        for estimator in figures["quiet"][protocol]:
            ratio_spreads, ms_spreads, ratio_moves, ms_moves = [], [], [], []
            for label in CANDIDATES:
                phases = {phase: figures[phase][protocol][estimator][label] for phase in ("quiet", "busy")}
                for values in phases.values():
                    ratio_spreads.append(spread([ratio for ratio, _ in values]))
                    ms_spreads.append(spread([ms for _, ms in values]))
                ratio_moves.append(abs(math.log(statistics.median(r for r, _ in phases["busy"])
                                                / statistics.median(r for r, _ in phases["quiet"]))))
                ms_moves.append(abs(math.log(statistics.median(m for _, m in phases["busy"])
                                             / statistics.median(m for _, m in phases["quiet"]))))
            floor = statistics.median(abs(math.log(ratio)) for phase in ("quiet", "busy")
                                      for ratio, _ in figures[phase][protocol][estimator]["reference copy"])
            row = {"ratio_spread": statistics.median(ratio_spreads), "ms_spread": statistics.median(ms_spreads),
                   "busy_moved_ratio": statistics.median(ratio_moves), "busy_moved_ms": statistics.median(ms_moves),
                   "noise_floor": floor}
            summary[f"{protocol} / {estimator}"] = row
            print(f"{protocol:22s} {estimator:23s} {row['ratio_spread']:12.1%} {row['ms_spread']:10.1%} "
                  f"{row['busy_moved_ratio']:16.1%} {row['busy_moved_ms']:13.1%} {row['noise_floor']:13.1%}")
    for phase in ("quiet", "busy"):
        middle = {label: statistics.median(ms for _, ms in figures[phase]["interleaved"]["median"][label])
                  for label in labels}
        print(f"{phase}: median ms " + ", ".join(f"{label} {value:.2f}" for label, value in middle.items()))

    print(json.dumps({key: {name: round(value, 4) for name, value in row.items()} for key, row in summary.items()}))


if __name__ == "__main__":
    main()
