"""How much faster is the deploy form? Time RDRNet-S and RegSeg on the CPU in both forms.

The train form runs in eval mode (BatchNorm on running statistics, no auxiliary head), so the
two forms compute the same function; the deploy form has every reparameterizable block folded
into one conv and every foldable BatchNorm folded into its conv. Targets: RDRNet-S's deploy
form at least 1.3x faster (its blocks have three branches each); RegSeg's faster (BatchNorm
folding only).

The two forms are timed in alternating rounds and each form's figure is the median of its round
medians, so a machine that slows down or speeds up part-way (a neighbour's load, frequency
scaling) weighs on both forms alike instead of on whichever ran second.

    python benchmarks/deploy_speedup.py --input 512x1024 --threads 2 --budget 3
"""

from __future__ import annotations

import argparse

from archsearch import build, deploy
from archsearch.cli.arguments import parse_size
from archsearch.latency import LatencySettings, measure_latency, summarize_timings

# (preset, how its speedup compares with the target, the target)
TARGETS = (("rdrnet-s", ">=", 1.3), ("regseg", ">", 1.0))


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=parse_size, default=(512, 1024), metavar="HxW",
                        help="input size (default 512x1024)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--budget", type=float, default=3.0, help="timing seconds per form and round (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per network (default 5)")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per form (default 0.5)")
    parser.add_argument("--repeats", type=int, default=5, help="at least this many timed runs (default 5)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    settings = LatencySettings(input_size=arguments.input, num_threads=arguments.threads,
                               warmup_seconds=arguments.warmup, min_warmup_iterations=1,
                               time_budget_seconds=arguments.budget, min_repeats=arguments.repeats)
    height, width = settings.input_size
    print(f"CPU, {settings.num_threads} thread(s), input 1x3x{height}x{width}, fp32, eager; "
          f"{arguments.rounds} alternating rounds of at least {settings.min_repeats} runs; medians of round medians")
    print(f"{'network':10s} {'train form ms':>14s} {'IQR':>8s} {'deploy form ms':>15s} {'IQR':>8s} "
          f"{'speedup':>8s}  target")
    for name, comparison, target in TARGETS:
        train_form = build(name).eval()
        forms = (train_form, deploy(train_form))
        rounds = [[measure_latency(form, settings) for form in forms] for _ in range(arguments.rounds)]
        train, deployed = (summarize_timings([results[index].median_ms for results in rounds]) for index in range(2))
        speedup = train.median_ms / deployed.median_ms
        met = speedup >= target if comparison == ">=" else speedup > target
        verdict = "met" if met else "NOT met"
        print(f"{name:10s} {train.median_ms:14.1f} {train.iqr_ms:8.1f} {deployed.median_ms:15.1f} "
              f"{deployed.iqr_ms:8.1f} {speedup:7.2f}x  {comparison} {target:g}x: {verdict}")
    print(f"device: {rounds[0][0].device_name}; IQR: of the round medians")


if __name__ == "__main__":
    main()
