"""Ray backend trial throughput: two concurrent one-thread trials against one two-thread trial.

Runs the same small study (tests/fixtures/tiny_study.yaml, every point valid, more training
steps) twice on one local Ray with 2 CPUs: once with ``resources: {cpu: 1}`` (two trials at a
time, one torch thread each) and once with ``resources: {cpu: 2}`` (one trial at a time, two
threads). The random sampler's seed is the same, so both runs train the same architectures.
Prints trials per minute for each (wall clock of the whole run, worker start-up included) and
their ratio; small networks use two threads poorly, so the concurrent trials should win.

    python benchmarks/ray_throughput.py [--trials 8] [--iterations 40]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import ray

from archsearch.search import RunDirectory, load_study
from archsearch.search.ray.driver import run_ray

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SETUPS = (("2 concurrent 1-thread trials", 1), ("1 two-thread trial", 2))


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per setup (default 8)")
    parser.add_argument("--iterations", type=int, default=40, help="training steps per trial (default 40)")
    return parser.parse_args(argv)


def run_setup(folder: Path, cpus_per_trial: int, arguments: argparse.Namespace) -> tuple[float, float, float]:
    """Trials per minute over the whole run, its minutes, and the mean training seconds of a trial."""
    config = load_study(folder / "tiny_study.yaml", [
        f"trials={arguments.trials}", f"training.iterations={arguments.iterations}", "fix={group_width: 8}",
        f"resources={{cpu: {cpus_per_trial}}}"])
    run_dir = RunDirectory(folder / f"run_cpu{cpus_per_trial}").create()
    started = time.perf_counter()
    outcome = run_ray(config, run_dir)
    minutes = (time.perf_counter() - started) / 60
    if not outcome.done:
        raise SystemExit(f"the run with {cpus_per_trial} CPUs per trial did not finish: {outcome}")
    train_seconds = pd.read_csv(run_dir.trials_csv)["train_seconds"].mean()
    return outcome.finished / minutes, minutes, float(train_seconds)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    folder = Path(tempfile.mkdtemp(prefix="ray_throughput_"))
    for name in ("tiny_study.yaml", "tiny_space.yaml"):
        shutil.copy(FIXTURES / name, folder / name)
    os.environ.setdefault("XDG_CACHE_HOME", str(folder / "cache"))  # the synthetic data set, made once
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        rates = {}
        for name, cpus in SETUPS:
            rate, minutes, train_seconds = run_setup(folder, cpus, arguments)
            rates[name] = rate
            print(f"{name:30s} {rate:6.1f} trials/minute   ({arguments.trials} trials in {minutes:.1f} min; "
                  f"training {train_seconds:.2f} s per trial)")
        concurrent, threaded = (rates[name] for name, _ in SETUPS)
        print(f"ratio (concurrent / two-thread): {concurrent / threaded:.2f}")
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
