"""Framework overhead of a study: everything in a trial except training steps, evaluation and latency timing.

Runs a study (by default a short version of studies/rdrnet_width.yaml) in a fresh run directory and
prints, per trial, the wall time Optuna recorded, the time spent training, evaluating and timing
latency, and the rest: sampling, analysis (params, MACs, receptive field), building, saving specs
and weights, and storage writes. The target is under 5% of trial time. The first trial also pays
for generating the synthetic data set once (it is cached afterwards), so it is shown apart.

    python benchmarks/framework_overhead.py [--study studies/rdrnet_width.yaml] [--trials 4]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from archsearch.search import RunDirectory, load_study, run_optuna
from archsearch.search.optuna_driver import open_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=Path(__file__).parents[1] / "studies" / "rdrnet_width.yaml")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    arguments = parser.parse_args()

    config = load_study(arguments.study, arguments.set).with_overrides(trials=arguments.trials)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = RunDirectory(Path(folder) / "run").create()
        run_optuna(config, run_dir)
        trials = [trial for trial in open_study(config, run_dir).get_trials() if trial.state.name == "COMPLETE"]

    print(f"{'trial':>5} {'wall s':>8} {'train s':>8} {'eval s':>7} {'latency s':>9} {'overhead s':>10} {'overhead':>8}")
    totals = [0.0, 0.0]
    for index, trial in enumerate(trials):
        wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
        attrs = trial.user_attrs
        train, evaluation = attrs.get("train_seconds") or 0.0, attrs.get("eval_seconds") or 0.0
        latency = attrs.get("latency_seconds") or 0.0
        overhead = wall - train - evaluation - latency
        print(f"{trial.number:>5} {wall:8.2f} {train:8.2f} {evaluation:7.2f} {latency:9.2f} {overhead:10.2f} "
              f"{overhead / wall:8.1%}" + ("  (includes generating the data set)" if index == 0 else ""))
        if index > 0:
            totals[0] += wall
            totals[1] += overhead
    if totals[0] > 0:
        print(f"framework overhead after the first trial: {totals[1]:.2f} s of {totals[0]:.2f} s "
              f"= {totals[1] / totals[0]:.1%} (target < 5%)")


if __name__ == "__main__":
    main()
