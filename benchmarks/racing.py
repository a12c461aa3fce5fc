"""Replay benchmark for racing seeds: search strategies replayed over a table of real results, in seconds.

``benchmarks/racing/table.csv`` holds every architecture of a shipped grid trained with 8 seeds
(``benchmarks/racing/table_study.yaml`` says how; the README says how long it took). A replay draws
the table's seeds in a random order without replacement (study seed i is table seed order[i] for
every architecture, so runs stay paired by seed), runs the project's own search loop
(``optuna_driver.search_loop``: the grid's queue, a new point's seeds, race rounds, Optuna's
samplers and pruners) on an in-memory Optuna storage, and answers each trial from the table
(``TableAnswer``) instead of training it. The true best is the best mean over all recorded seeds.

Printed per strategy: the share of replays that chose the true best (the leader of the report's
model, ``race.model``), the mean trainings spent (a pruned run counts the share of its schedule it
ran), how many ended with the leader's P(best) >= 0.9, and the decisions the report claimed: its
verdict (``report.best.weigh``, with the runs a pruner stopped) "decided" with P(best) >= 0.9, and
the share of those that were right about what the verdict claims, the best of the architectures
trained (``calibration_p90``), and about the best of the whole table, which a sampler that did not
train every architecture does not claim (``calibration_p90_space``). Samplers (random, TPE) also
print how many trainings they needed to find the true best (the first count from which their pick
stayed the true best to the end of the budget). Then the races and their baselines are replayed on
every grid with one parameter fixed (8 grids of 4 here; ``--no-sub-grids`` skips them), each judged
against its own true best, so that calibration also covers clearer and closer leaders than the whole
table's. The last line is one JSON object.

    python benchmarks/racing.py [--replays 100] [--no-sub-grids]
    python benchmarks/racing.py --make-table runs/racing_table   # write table.csv from the table study's run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archsearch.race.decision import RaceRules  # noqa: E402
from archsearch.report.best import Unfinished, weigh  # noqa: E402
from archsearch.race.model import fit  # noqa: E402
from archsearch.run import guard  # noqa: E402
from archsearch.search import lifecycle, optuna_driver  # noqa: E402
from archsearch.study.config import StudyConfig, load_study  # noqa: E402
from archsearch.search.lifecycle import start_trial  # noqa: E402
from archsearch.search.optuna_driver import TrialSeededSampler, enqueue_grid, make_pruner, search_loop  # noqa: E402
from archsearch.search.racing import point_key, race_state  # noqa: E402

TABLE = ROOT / "benchmarks" / "racing" / "table.csv"
TABLE_STUDY = ROOT / "benchmarks" / "racing" / "table_study.yaml"
DEFAULT_STUDY = ROOT / "studies" / "rdrnet_width.yaml"
INTERMEDIATE_PREFIX = "miou_at."
CONFIDENT = 0.9
RACE = "{race: {min: 2, max: %d, confidence: 0.95, test: %s, rule: %s}}"
STRATEGIES: dict[str, list[str]] = {
    **{f"fixed_{k}": [f"seeds={list(range(k))}"] for k in range(2, 7)},
    # The default study's race: at most 4 seeds an architecture, the ceiling fixed_4 gives every one of them.
    "racing": [f"seeds={RACE % (4, 'paired', 'posterior')}"],
    "racing_test": [f"seeds={RACE % (4, 'paired', 'test')}"],
    "racing_max8": [f"seeds={RACE % (8, 'paired', 'posterior')}"],
    "racing_max8_test": [f"seeds={RACE % (8, 'paired', 'test')}"],
    "racing_pooled": [f"seeds={RACE % (8, 'pooled', 'posterior')}"],
    "racing_welch": [f"seeds={RACE % (8, 'welch', 'posterior')}"],
    "fixed_4_median_pruner": ["seeds=[0, 1, 2, 3]", "pruner={name: median, n_startup_trials: 4}"],
    "fixed_4_successive_halving": ["seeds=[0, 1, 2, 3]", "pruner={name: successive_halving, min_resource: 40}"],
    "random_racing": [f"seeds={RACE % (8, 'paired', 'posterior')}", "sampler=random", "trials=24"],
    "tpe_racing": [f"seeds={RACE % (8, 'paired', 'posterior')}", "sampler={name: tpe, n_startup_trials: 4}",
                   "trials=24"],
    "tpe_fixed_2": ["seeds=[0, 1]", "sampler={name: tpe, n_startup_trials: 4}", "trials=24"],
}
# Replayed on every sub-grid with one parameter fixed (--sub-grids): races with both rules and their baselines.
SUB_GRID_STRATEGIES = ["fixed_2", "fixed_4", "racing", "racing_test", "racing_max8"]


def once_per_space(function):
    """``function(config)`` depends only on the study's space and recipe, which the replays of one strategy share
    (they differ in the sampler's seed): computed once per strategy instead of once per trial or replay. Speed
    only, the values are the same."""
    cache: dict[int, tuple] = {}

    def memoized(config: StudyConfig):
        if id(config.space) not in cache:
            cache[id(config.space)] = (config.space, function(config))  # the space kept alive: its id stays its own
        return cache[id(config.space)][1]
    return memoized


optuna_driver.enumerate_grid_with_fixed = once_per_space(optuna_driver.enumerate_grid_with_fixed)
lifecycle.StudyIdentity = type("StudyIdentity", (), {"of": staticmethod(once_per_space(guard.StudyIdentity.of))})


@dataclass(frozen=True)
class Table:
    """Every architecture's runs: key (its parameters) -> table seed -> (final mIoU, [(step, mIoU)] before it)."""

    runs: dict[tuple, dict[int, tuple[float, list[tuple[int, float]]]]]
    seeds: tuple[int, ...]
    iterations: int

    @classmethod
    def read(cls, path: Path, iterations: int) -> "Table":
        """The parameters are the columns before ``arch_hash``; ``miou_at.<step>`` the evaluations before the last."""
        frame = pd.read_csv(path)
        parameters = list(frame.columns[:frame.columns.get_loc("arch_hash")])
        steps = sorted(int(column.removeprefix(INTERMEDIATE_PREFIX)) for column in frame.columns
                       if column.startswith(INTERMEDIATE_PREFIX))
        runs: dict[tuple, dict] = {}
        for values in frame.to_dict("records"):
            key = tuple(sorted((name, _plain(values[name])) for name in parameters))
            history = [(step, float(values[f"{INTERMEDIATE_PREFIX}{step}"])) for step in steps]
            runs.setdefault(key, {})[int(values["seed"])] = (float(values["miou"]), history)
        seeds = tuple(sorted(set.intersection(*(set(by_seed) for by_seed in runs.values()))))
        return cls(runs, seeds, iterations)

    def true_best(self, among=None) -> tuple:
        """The best mean over all recorded seeds, of every architecture or of those ``among``."""
        return max(self.runs if among is None else among,
                   key=lambda key: np.mean([self.runs[key][seed][0] for seed in self.seeds]))


def _plain(value):
    return int(value) if isinstance(value, (float, np.floating)) and float(value).is_integer() else value


@dataclass
class TableAnswer:
    """The objective of a replay: starts the trial as a study does (``lifecycle.start_trial``: its point, its
    seed, a new point's other seeds), then answers it from the table, reporting the recorded evaluations to
    the pruner."""

    config: StudyConfig
    table: Table
    order: np.ndarray  # study seed -> table seed
    trainings: float = 0.0
    picks: list = field(default_factory=list)

    def __call__(self, trial: optuna.Trial) -> float:
        start = start_trial(trial, self.config)
        miou, history = self.table.runs[tuple(sorted(trial.params.items()))][int(self.order[start.seed])]
        if start.twin is not None:  # drawn again with a seed it was trained with: a study takes the twin's result
            trial.set_user_attr("miou", miou)
            return miou
        if self.config.pruner != "none":
            for step, value in history:
                trial.report(value, step)
                if trial.should_prune():
                    self.trainings += step / self.table.iterations
                    raise optuna.TrialPruned()
        self.trainings += 1
        trial.set_user_attr("miou", miou)
        return miou


def leader(study: optuna.Study, rules: RaceRules):
    """The architecture with the best estimated mean (``Standing.leaders[0]``, without the posterior's draws)."""
    observations = race_state(study.get_trials(deepcopy=False)).observations
    if not observations.arms:
        return None, observations
    return observations.arms[int(np.argmax(fit(observations, rules.test).means))], observations


@dataclass(frozen=True)
class Replay:
    correct: bool  # the pick is the true best of the table (the space)
    trainings: float
    p_best: float
    found_after: float  # trainings after which the pick stayed the true best (inf: it never did)
    claimed: bool  # the report's verdict is "decided" with P(best) >= CONFIDENT
    right_evaluated: bool  # the pick is the true best of the architectures the study trained (what it claims)


def replay(config: StudyConfig, table: Table, replay_seed: int, *, in_order: bool = False, space=None) -> Replay:
    """One replay; ``in_order``: the table's seeds in their own order (0, 1, ...), as a study gives them;
    ``space``: the architectures of the study's space when it is a part of the table's."""
    generator = np.random.default_rng(replay_seed)
    order = np.array(table.seeds) if in_order else generator.permutation(np.array(table.seeds))
    config = replace(config, sampler_seed=replay_seed)
    rules = config.race or RaceRules()
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), sampler=TrialSeededSampler(config),
                                pruner=make_pruner(config), direction="maximize")
    grid_trials = enqueue_grid(config, study)
    requested = config.trials if grid_trials is None else min(config.trials, grid_trials)
    answer = TableAnswer(config, table, order)
    best = table.true_best(among=space)

    def after_trial(study: optuna.Study, trial) -> None:
        answer.picks.append((answer.trainings, leader(study, rules)[0] == best))

    search_loop(study, config, answer, requested, after_trial=after_trial)
    chosen, observations = leader(study, rules)
    trials = study.get_trials(deepcopy=False)
    pruned = Counter(point_key(trial) for trial in trials if trial.state == optuna.trial.TrialState.PRUNED)
    unranked = len(set(pruned) - set(observations.arms))
    evidence = weigh(observations, rules, {key: str(dict(key)) for key in observations.arms},
                     Unfinished(pruned, unranked))
    p_best = float(evidence.probabilities.p_best[observations.arms.index(chosen)])
    if in_order:
        print(f"  {evidence.verdict}; {answer.trainings:g} trainings")
    found_after = math.inf
    for spent, right in reversed(answer.picks):
        if not right:
            break
        found_after = spent
    return Replay(chosen == best, answer.trainings, p_best, found_after,
                  claimed=evidence.decided and p_best >= CONFIDENT,
                  right_evaluated=chosen == table.true_best(among=observations.arms))


def make_table(run_dir: Path) -> None:
    trials = pd.read_csv(run_dir / "trials.csv")
    complete = trials[trials["state"] == "COMPLETE"].sort_values("number")
    parameters = [column for column in complete.columns if column.startswith("param.")]
    varying = [column for column in parameters if complete[column].nunique() > 1]
    steps = [column for column in complete.columns if column.startswith(INTERMEDIATE_PREFIX)]
    table = complete[[*varying, "arch_hash", "seed", "miou", *steps, "train_seconds"]]
    table = table.rename(columns={column: column.removeprefix("param.") for column in varying})
    table = table.sort_values([*(column.removeprefix("param.") for column in varying), "seed"])
    TABLE.write_text(table.to_csv(index=False, float_format="%.6f"))
    print(f"wrote {TABLE}: {len(table)} runs of {table['arch_hash'].nunique()} architectures, "
          f"{table['train_seconds'].sum() / 60:.1f} minutes of training")


@dataclass(frozen=True)
class Claims:
    """Replays whose report said "decided" with P(best) >= CONFIDENT, and how many of those were right about the
    architectures trained (what the verdict claims) and about the whole table (the space)."""

    made: int = 0
    right_evaluated: int = 0
    right_space: int = 0

    @classmethod
    def of(cls, replays: list[Replay]) -> "Claims":
        claimed = [run for run in replays if run.claimed]
        return cls(len(claimed), sum(run.right_evaluated for run in claimed), sum(run.correct for run in claimed))

    def __add__(self, other: "Claims") -> "Claims":
        return Claims(self.made + other.made, self.right_evaluated + other.right_evaluated,
                      self.right_space + other.right_space)

    def share(self, right: int) -> float | None:
        return round(right / self.made, 3) if self.made else None

    def summary(self) -> str:
        return (f"{self.made} decided with P(best) >= {CONFIDENT}, right {self.share(self.right_evaluated)} about the "
                f"architectures trained, {self.share(self.right_space)} about the table")


def replay_strategy(name: str, overrides: list[str], table: Table, replays: int, space=None) -> tuple[dict, Claims]:
    config = load_study(TABLE_STUDY, ["trials=1000", *overrides])
    runs = [replay(config, table, seed, space=space) for seed in range(replays)]
    claims = Claims.of(runs)
    result = {"correct": round(float(np.mean([run.correct for run in runs])), 3),
              "trainings": round(float(np.mean([run.trainings for run in runs])), 2),
              "confident": sum(run.p_best >= CONFIDENT for run in runs),
              "claims": claims.made, "claims_right": claims.share(claims.right_evaluated),
              "claims_right_space": claims.share(claims.right_space)}
    if config.sampler != "grid":
        found = [run.found_after for run in runs if math.isfinite(run.found_after)]
        result["found_share"] = round(len(found) / len(runs), 3)
        result["trainings_to_find"] = round(float(np.mean(found)), 2) if found else None
    return result, claims


def sub_grids(table: Table) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every grid with one of the table's parameters fixed to one of its values: name -> (overrides, space)."""
    grids = {}
    for name in dict(next(iter(table.runs))):
        for value in sorted({dict(key)[name] for key in table.runs}):
            space = [key for key in table.runs if dict(key)[name] == value]
            grids[f"{name}={value}"] = ([f"parameters.{name}={{choice: [{value}]}}"], space)
    return grids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replays", type=int, default=100)
    parser.add_argument("--sub-grids", action=argparse.BooleanOptionalAction, default=True,
                        help="also replay the races and their baselines on every sub-grid with one parameter fixed")
    parser.add_argument("--make-table", type=Path, metavar="RUN")
    parser.add_argument("--table", type=Path, default=TABLE, help="replay another table (same columns)")
    arguments = parser.parse_args()
    if arguments.make_table:
        make_table(arguments.make_table)
        return
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = Table.read(arguments.table, load_study(TABLE_STUDY).training.iterations)
    best = table.true_best()
    means = {key: np.mean([runs[seed][0] for seed in table.seeds]) for key, runs in table.runs.items()}
    print(f"table: {len(table.runs)} architectures x {len(table.seeds)} seeds; true best {dict(best)} "
          f"(mean {means[best]:.4f}); the others: " + ", ".join(
              f"{dict(key)} {mean:.4f}" for key, mean in sorted(means.items(), key=lambda item: -item[1])[1:]))
    results: dict[str, dict] = {}
    claims = Claims()
    started = time.perf_counter()
    for name, overrides in STRATEGIES.items():
        results[name], made = replay_strategy(name, overrides, table, arguments.replays)
        claims += made
        print(f"{name:28s} correct {results[name]['correct']:.3f}  trainings {results[name]['trainings']:6.2f}  "
              f"P(best)>={CONFIDENT}: {results[name]['confident']:3d}, decided: {made.summary()}"
              + (f"  found the true best in {results[name]['found_share']:.0%} of replays, after "
                 f"{results[name]['trainings_to_find']} trainings" if "found_share" in results[name] else ""))
    print(f"calibration, all strategies on the whole table: {claims.summary()}")
    sub_grid_claims = Claims()
    if arguments.sub_grids:
        results["sub_grids"] = {}
        for grid, (overrides, space) in sub_grids(table).items():
            for name in SUB_GRID_STRATEGIES:
                result, made = replay_strategy(name, [*STRATEGIES[name], *overrides], table, arguments.replays,
                                               space)
                results["sub_grids"][f"{grid} {name}"] = result
                sub_grid_claims += made
                print(f"{grid:16s} {name:18s} correct {result['correct']:.3f}  trainings {result['trainings']:6.2f}"
                      f"  decided: {made.summary()}")
        print(f"calibration, the grid strategies on the sub-grids: {sub_grid_claims.summary()}")
    pooled = claims + sub_grid_claims
    seconds = time.perf_counter() - started
    print(f"calibration, all: {pooled.summary()}; {arguments.replays} replays per strategy in {seconds:.0f} s")
    default = load_study(DEFAULT_STUDY, ["trials=1000"])  # its grid is part of the table's
    print(f"the default study ({default.raw['seeds']}), replayed with the table's seeds in order:")
    replay(default, table, 0, in_order=True)
    ratio = results["racing"]["trainings"] / results["fixed_4"]["trainings"]
    print(f"racing: {ratio:.0%} of fixed_4's trainings, correct {results['racing']['correct']} vs "
          f"{results['fixed_4']['correct']}")
    print(json.dumps({**results, "calibration_p90": pooled.share(pooled.right_evaluated),
                      "calibration_p90_space": pooled.share(pooled.right_space), "calibration_claims": pooled.made,
                      "replays": arguments.replays, "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
