"""Does a latency budget survive a busier machine? Time the same architectures twice, the second time with a neighbour.

Ten architectures of the latency_constrained study's space (drawn at random, seeded) are timed
against the study's reference with its settings (the relative protocol: interleaved rounds,
median of per-round ratios), once on the machine as it is and once while a process spins on
the last core. Per architecture it prints both rounds' milliseconds and ratios; the last line is

    {"median_abs_log_change_ms": x, "median_abs_log_change_ratio": y}

the median over architectures of |log(second / first)|: x is what an absolute budget in ms
suffers, y what a relative one does. Target: y <= 0.05.

    python benchmarks/latency_drift.py --architectures 10
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import statistics
import time
from pathlib import Path

from busy_core import busy_core

from archsearch import build, deploy
from archsearch.arch.build import resolve_spec
from archsearch.latency import device_name
from archsearch.latency.relative import measure_relative
from archsearch.study.config import load_study
from archsearch.space.sampling import RandomSuggester, sample

STUDY = Path(__file__).parent.parent / "studies" / "latency_constrained.yaml"
TARGET = 0.05
MAX_DRAWS_PER_ARCHITECTURE = 20


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", type=int, default=10, help="architectures (default 10)")
    parser.add_argument("--budget", type=float, default=None,
                        help="timing seconds per network (default: the study's time_budget_seconds)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    study = load_study(STUDY)
    settings = study.latency
    if arguments.budget is not None:
        settings = dataclasses.replace(settings, time_budget_seconds=arguments.budget)
    reference_name = study.budget.reference
    reference = deploy(build(resolve_spec(reference_name), num_classes=19))
    suggester = RandomSuggester(random.Random(arguments.seed))
    specs = {}
    for _ in range(arguments.architectures * MAX_DRAWS_PER_ARCHITECTURE):
        point = sample(study.space, suggester)
        if point.valid:
            specs.setdefault(point.spec.arch_hash, point.spec)
        if len(specs) == arguments.architectures:
            break
    models = {arch_hash: deploy(build(spec, num_classes=19)) for arch_hash, spec in specs.items()}
    height, width = settings.input_size
    print(f"{device_name(settings)}, {settings.num_threads} thread(s), input 1x3x{height}x{width}, "
          f"{settings.time_budget_seconds:g} s per network; reference {reference_name}; "
          f"load average {os.getloadavg()[0]:.2f}")
    rounds: list[dict[str, tuple[float, float]]] = []
    started = time.perf_counter()
    for busy in (False, True):
        with busy_core() if busy else contextlib.nullcontext():
            figures = {}
            for arch_hash, model in models.items():
                measured = measure_relative(model, reference, settings, reference_name=reference_name)
                figures[arch_hash] = (measured.candidate.median_ms, measured.ratio)
            rounds.append(figures)
    print(f"({time.perf_counter() - started:.0f} s)")
    print(f"{'architecture':40s} {'ms quiet':>9s} {'ms busy':>9s} {'ratio quiet':>11s} {'ratio busy':>10s}")
    ms_changes, ratio_changes = [], []
    for arch_hash, spec in specs.items():
        (ms_quiet, ratio_quiet), (ms_busy, ratio_busy) = rounds[0][arch_hash], rounds[1][arch_hash]
        ms_changes.append(abs(math.log(ms_busy / ms_quiet)))
        ratio_changes.append(abs(math.log(ratio_busy / ratio_quiet)))
        print(f"{spec.name + ' ' + arch_hash:40s} {ms_quiet:9.2f} {ms_busy:9.2f} {ratio_quiet:11.3f} "
              f"{ratio_busy:10.3f}")
    result = {"median_abs_log_change_ms": round(statistics.median(ms_changes), 4),
              "median_abs_log_change_ratio": round(statistics.median(ratio_changes), 4)}
    verdict = "met" if result["median_abs_log_change_ratio"] <= TARGET else "NOT met"
    print(f"target: median |log change| of the ratio <= {TARGET}: {verdict}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
