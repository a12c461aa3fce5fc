"""How much slower the default study trains when other processes share the machine: quiet, 1 and 3 busy.

For each load (0, 1 and 3 ``python -c "while True: pass"`` processes, started here and always killed)
and each OpenMP setting it times, in fresh processes: a training step of the default study
(studies/rdrnet_width.yaml's largest point, its data, loader and recipe: ``train_seconds`` over the
steps of ``train_and_evaluate``) and one whole trial (``archsearch run ... --trials 1``; the
trial's wall time as Optuna recorded it). Settings: archsearch's defaults (``archsearch.runtime``'s
waiting, the study as shipped: one torch thread), 2 threads, 2 threads with ``training.adapt_threads``
(fewer when other processes hold CPUs) and, quiet only unless ``--openmp-under-load``, 2 threads
with OpenMP's own waiting (``runtime: {wait_policy: null, spin_count: null}``, how archsearch ran
before). Loads alternate within each round (order reversed every other
round), settings alternate within each load; ratios are to the same round's quiet figure, the
median over rounds. The one-minute load average is printed with every figure. The last line is
one JSON object with ``trial_slowdown_1_busy`` and ``trial_slowdown_3_busy`` (archsearch's
defaults; targets <= 2.0 and <= 3.3, a fair share of 2 cores costing 1.5 and 2.5), the same with
``two_threads_`` and ``adapt_threads_`` in front, and the quiet trial time against OpenMP's own waiting. Ctrl-C (or
SIGTERM) prints the table of the rounds measured so far.

    python benchmarks/shared_machine.py [--short] [--rounds 2] [--iterations 120]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from busy_core import busy_processes, die_with_parent, exit_on_terminate, load_average

REPOSITORY = Path(__file__).resolve().parents[1]
STUDY = REPOSITORY / "studies" / "rdrnet_width.yaml"
POINT = {"width": 24, "detail_depth": 3}
OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "ARCHSEARCH_RUNTIME")
DEFAULTS, TWO, ADAPTED, OPENMP = ("archsearch defaults", "2 threads", "2 threads, adapt_threads",
                                  "2 threads, OpenMP waits")
SETTINGS = {DEFAULTS: [], TWO: ["training.num_threads=2"],
            ADAPTED: ["training.num_threads=2", "training.adapt_threads=true"],
            OPENMP: ["training.num_threads=2", "runtime.wait_policy=null", "runtime.spin_count=null"]}
QUIET_ONLY = (OPENMP,)
"""Timed on the quiet machine only, unless --openmp-under-load: its collapse under load is in the README already,
and a run of it next to busy processes takes minutes a trial."""


def step_worker(overrides: list[str], steps: int) -> None:
    """In a fresh process: the default study's training step under ``overrides``; prints ms per step."""
    from archsearch.runtime import configure_process, study_runtime

    configure_process(study_runtime(STUDY, overrides))  # before torch loads, as the CLI does
    from dataclasses import replace

    from archsearch.arch.build import build
    from archsearch.search import load_study
    from archsearch.study.datasets import study_datasets
    from archsearch.space.sampling import FixedSuggester, sample
    from archsearch.train import loader_settings, make_loader, train_and_evaluate

    config = load_study(STUDY, overrides)
    training = replace(config.training, iterations=steps, warmup_iterations=min(config.training.warmup_iterations,
                                                                                 steps - 1))
    train_set, val_set = study_datasets(config)
    point = sample(config.space, FixedSuggester({**config.fix, **POINT}))
    model = build(point.spec, num_classes=train_set.num_classes)
    loading = loader_settings(training)
    train_loader = make_loader(train_set, training.batch_size, shuffle=True, seed=0, drop_last=True, **loading)
    val_loader = make_loader(val_set, training.batch_size, shuffle=False, seed=0, **loading)
    if training.adapt_threads:  # as a study's trial chooses its threads (archsearch.search.trial)
        from archsearch.resources import available_cpus, busy_cpus_elsewhere, threads_for_free_cpus

        wanted = training.num_threads or available_cpus()
        training = replace(training, num_threads=threads_for_free_cpus(wanted, busy_cpus_elsewhere()))
    result = train_and_evaluate(model, train_loader, val_loader, training)
    print(json.dumps({"step_ms": result.train_seconds / result.steps * 1e3}))


def child_environment(cache: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in OPENMP_VARIABLES}
    environment.update(XDG_CACHE_HOME=str(cache), PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])))
    return environment


def run_child(command: list[str], overrides: list[str], cache: Path, timeout: float,
              what: str) -> subprocess.CompletedProcess | None:
    """Run a timed child with the study overrides as ``--set``; None when it ran past ``timeout``."""
    command = [*command, *(item for override in overrides for item in ("--set", override))]
    try:
        finished = subprocess.run(command, env=child_environment(cache), capture_output=True, text=True,
                                  timeout=timeout, preexec_fn=die_with_parent, check=False)
    except subprocess.TimeoutExpired:
        return None
    if finished.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{finished.stderr[-2000:]}")
    return finished


def time_step(overrides: list[str], steps: int, cache: Path, timeout: float) -> float:
    command = [sys.executable, __file__, "--step-worker", "--iterations", str(steps)]
    finished = run_child(command, overrides, cache, timeout, "the step worker")
    return math.inf if finished is None else json.loads(finished.stdout.strip().splitlines()[-1])["step_ms"]


def time_trial(overrides: list[str], iterations: int, cache: Path, folder: Path, timeout: float) -> float:
    """One trial of the default study in a fresh ``archsearch run``; its wall time in seconds (Optuna's record)."""
    import optuna

    run_dir = Path(tempfile.mkdtemp(dir=folder))
    command = [sys.executable, "-m", "archsearch.cli.main", "run", str(STUDY), "--trials", "1", "--out",
               str(run_dir / "run"), "--set", f"training.iterations={iterations}"]
    if run_child(command, overrides, cache, timeout, "archsearch run") is None:
        return math.inf
    storage = f"sqlite:///{run_dir / 'run' / 'study.db'}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    trial = study.get_trials(deepcopy=False)[0]
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="one round, 30 training iterations per trial")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=None, help="training iterations of the trial")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps of the step measurement")
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 3])
    parser.add_argument("--only-defaults", action="store_true", help="time archsearch's defaults alone")
    parser.add_argument("--openmp-under-load", action="store_true",
                        help="time OpenMP's own waiting next to busy processes too (slow: it collapses there)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a run counts as too slow")
    parser.add_argument("--step-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.step_worker:
        step_worker(arguments.set, arguments.iterations)
        return
    exit_on_terminate()
    rounds = arguments.rounds or (1 if arguments.short else 2)
    iterations = arguments.iterations or (30 if arguments.short else 120)
    settings = {DEFAULTS: []} if arguments.only_defaults else SETTINGS
    figures: dict[tuple[str, str, int], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            cache = Path(folder) / "cache"
            print("warming the data cache (untimed)...", file=sys.stderr, flush=True)
            time_trial([], 11, cache, Path(folder), arguments.timeout)
            for round_index in range(rounds):
                loads = arguments.busy if round_index % 2 == 0 else arguments.busy[::-1]
                for busy in loads:
                    names = list(settings) if round_index % 2 == 0 else list(settings)[::-1]
                    with busy_processes(busy):
                        time.sleep(0.5)
                        for name in names:
                            if busy and name in QUIET_ONLY and not arguments.openmp_under_load:
                                continue
                            step_ms = time_step(settings[name], arguments.steps, cache, arguments.timeout)
                            trial_s = time_trial(settings[name], iterations, cache, Path(folder), arguments.timeout)
                            figures.setdefault((name, "step_ms", busy), []).append(step_ms)
                            figures.setdefault((name, "trial_s", busy), []).append(trial_s)
                            print(f"round {round_index + 1}, {busy} busy, load {load_average():.1f}: {name}: "
                                  f"step {step_ms:.0f} ms, trial {trial_s:.1f} s", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted: the table holds the rounds that were measured", file=sys.stderr)
    finally:
        print_summary(figures, settings, arguments.busy)


def print_summary(figures: dict[tuple[str, str, int], list[float]], settings: dict[str, list[str]],
                  loads: list[int]) -> None:
    """The table (figures per round), slowdowns to the same round's quiet figure, and the JSON line."""
    summary: dict[str, float] = {}
    print(f"\n{'setting':<27} {'what':<9}" + "".join(f"{f'{busy} busy':>20}" for busy in loads)
          + "".join(f"{f'slowdown {busy}':>13}" for busy in loads if busy))
    for name in settings:
        for what in ("step_ms", "trial_s"):
            row = f"{name:<27} {what:<9}"
            row += "".join(f"{' / '.join(f'{value:.1f}' for value in figures.get((name, what, busy), [])) or '-':>20}"
                           for busy in loads)
            for busy in loads:
                pairs = list(zip(figures.get((name, what, busy), []), figures.get((name, what, 0), [])))
                if busy == 0 or not pairs:
                    continue
                ratio = statistics.median(loaded / quiet for loaded, quiet in pairs)
                row += f"{ratio:13.2f}"
                if name in (DEFAULTS, TWO, ADAPTED):
                    prefix = {DEFAULTS: "", TWO: "two_threads_", ADAPTED: "adapt_threads_"}[name]
                    kind = "trial" if what == "trial_s" else "step"
                    summary[f"{prefix}{kind}_slowdown_{busy}_busy"] = round(ratio, 3)
            print(row)
    pairs = list(zip(figures.get((DEFAULTS, "trial_s", 0), []), figures.get((OPENMP, "trial_s", 0), [])))
    two = list(zip(figures.get((TWO, "trial_s", 0), []), figures.get((OPENMP, "trial_s", 0), [])))
    if two:
        summary["quiet_two_threads_ratio_to_openmp_default"] = round(statistics.median(a / b for a, b in two), 3)
    if pairs:
        quiet = statistics.median(new / old for new, old in pairs)
        summary["quiet_trial_ratio_to_openmp_default"] = round(quiet, 3)
        print(f"quiet trial time, archsearch defaults / OpenMP's own waiting: {quiet:.2f}")
    print(f"load average (1 min) at the end: {load_average():.1f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
