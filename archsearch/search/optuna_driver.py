"""Runs a study with Optuna: samplers, pruners and storage are Optuna's; this module only wires them.

Resuming is re-running: the study is loaded from its storage, finished trials stay as they
are, a trial left RUNNING by a dead process is failed and queued again (at once when the
process was on this machine, after the heartbeat's grace period otherwise), and the run
stops once the requested number of trials has finished.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, Trial, TrialState

from archsearch.errors import SpecError
from archsearch.search.config import StudyConfig
from archsearch.search.results import write_trials_csv
from archsearch.run.directory import RunDirectory
from archsearch.search.trial import TrialMetrics, TrialRunner
from archsearch.space.sampling import Primitive, SampledPoint, enumerate_grid, sample

HEARTBEAT_SECONDS = 10
WAIT_SECONDS = 1.0
SQLITE_TIMEOUT_SECONDS = 60
GRACE_SECONDS = 30
INFEASIBLE_MIOU = 0.0


class TrialFailed(Exception):
    """A trial that raised; its reason is in the trial's ``fail_reason`` attribute and the study goes on."""


@dataclass
class OptunaSuggester:
    """Samples through an Optuna trial, so the sampler learns; ``fixed`` values bypass it."""

    trial: Trial
    fixed: dict[str, Any]

    def categorical(self, name: str, options: Sequence[Primitive]) -> Primitive:
        if name in self.fixed:
            return self.fixed[name]
        return self.trial.suggest_categorical(name, list(options))

    def integer(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        if name in self.fixed:
            return self.fixed[name]
        return self.trial.suggest_int(name, low, high, step=step, log=log)

    def real(self, name: str, low: float, high: float, step: float | None, log: bool,
             grid: Sequence[float] | None) -> float:
        if name in self.fixed:
            return self.fixed[name]
        if grid:
            return float(self.trial.suggest_categorical(name, list(grid)))
        return self.trial.suggest_float(name, low, high, step=step, log=log)


def make_sampler(config: StudyConfig, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded with ``seed`` (default: the study's ``sampler.seed``)."""
    seed = config.sampler_seed if seed is None else seed
    options = dict(config.sampler_options)
    try:
        if config.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, **options)
        if config.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **options)
        return optuna.samplers.RandomSampler(seed=seed, **options)
    except (TypeError, ValueError) as error:
        raise SpecError(f"sampler rejects its options: {error}", path="sampler", value=options,
                        source=config.source) from None


def check_search(config: StudyConfig) -> None:
    """Build the study's sampler and its pruner (ASHA's settings on Ray) once: options their classes
    refuse are bad input, found before a run directory is made."""
    make_sampler(config)
    if config.backend == "ray":
        from archsearch.search.ray.scheduler import asha_settings
        asha_settings(config)
    else:
        make_pruner(config)


def trial_seed(sampler_seed: int, trial_number: int) -> int:
    """The seed of one trial's sampler: a function of the study's seed and the trial's number only."""
    return int(np.random.SeedSequence([sampler_seed % 2**63, trial_number]).generate_state(1)[0])


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """The study's sampler, made afresh for every trial with a seed from the trial's number.

    A sampler seeded once per process replays its random draws from the start whenever a
    study is resumed (and every process of a study draws the same ones), so resumed and
    parallel runs would train the points already trained again. Seeded per trial number,
    trial n draws the same values in a single run, a resumed run or any of several processes,
    and different trials draw differently. Optuna's samplers keep their history in the storage,
    so a fresh one per trial loses nothing.
    """

    def __init__(self, config: StudyConfig) -> None:
        self._config = config
        self._sampler = make_sampler(config)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler = make_sampler(self._config, trial_seed(self._config.sampler_seed, trial.number))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    pruners = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
               "percentile": optuna.pruners.PercentilePruner,
               "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
               "hyperband": optuna.pruners.HyperbandPruner}
    try:
        return pruners[config.pruner](**config.pruner_options)
    except (TypeError, ValueError) as error:
        raise SpecError(f"pruner rejects its options: {error}", path="pruner", value=dict(config.pruner_options),
                        source=config.source) from None


def storage_url(config: StudyConfig, run_dir: RunDirectory) -> str:
    return config.storage or run_dir.default_storage


def open_study(config: StudyConfig, run_dir: RunDirectory) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage_url(config, run_dir)
    # SQLite gives up on a lock after 5 s by default; processes sharing a study wait for each other instead.
    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}} if url.startswith("sqlite") else None
    try:
        storage = RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                             grace_period=GRACE_SECONDS,
                             heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3))
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, RuntimeError) as error:
        # A corrupt or foreign study.db, an unknown URL scheme, a missing database driver, an old schema.
        message = " ".join(str(getattr(error, "orig", None) or error).split())[:500]
        raise SpecError(f"cannot open the study's storage: {message}", path="storage", value=url,
                        source=config.source) from None
    directions = [objective.direction for objective in config.objectives]
    study = optuna.create_study(storage=storage, study_name=config.name, sampler=TrialSeededSampler(config),
                                pruner=make_pruner(config), load_if_exists=True, directions=directions)
    # Resuming with other objectives would mix values of different metrics, or (another count) fail every
    # trial without a reason, so that it runs again and again.
    objectives = [f"{objective.metric} ({objective.direction})" for objective in config.objectives]
    stored = study.user_attrs.get("objectives")
    if stored is None and [direction.name.lower() for direction in study.directions] == directions:
        study.set_user_attr("objectives", objectives)
    elif stored != objectives:
        started = ", ".join(stored) if stored else "directions " + ", ".join(d.name.lower() for d in study.directions)
        raise SpecError("the storage holds this study with other objectives", path="objectives", value=objectives,
                        allowed=f"the objectives it was started with ({started}), or another --out or study name",
                        source=config.source)
    return study


def finished(trial: FrozenTrial) -> bool:
    """Trials that count towards the budget: everything that ended, except a dead process's (it is retried)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def requeue_dead_trials(study: optuna.Study) -> list[int]:
    """Fail and queue again the RUNNING trials whose process on this machine is gone."""
    optuna.storages.fail_stale_trials(study)
    requeued = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") != socket.gethostname() or _process_alive(attrs.get("pid", -1)):
            continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        study.enqueue_trial(trial.params, user_attrs={"seed": attrs.get("seed"), "retry_of": trial.number},
                            skip_if_exists=False)
        requeued.append(trial.number)
    return requeued


def enqueue_grid(config: StudyConfig, study: optuna.Study) -> int | None:
    """For a grid study, queue every point with every seed, once per study; returns the grid's trial count."""
    if config.sampler != "grid":
        return None
    if "grid_trials" not in study.user_attrs:
        points = enumerate_grid_with_fixed(config)
        for params in points:
            for seed in config.seeds:
                study.enqueue_trial(params, user_attrs={"seed": seed})
        study.set_user_attr("grid_trials", len(points) * len(config.seeds))
    return study.user_attrs["grid_trials"]


def enumerate_grid_with_fixed(config: StudyConfig) -> list[dict[str, Primitive]]:
    """The grid over the study's free parameters (its ``fix`` values held)."""
    return [{name: value for name, value in params.items() if name not in config.fix}
            for params in enumerate_grid(config.space, config.fix)]


def record_constraints(trial: Trial, config: StudyConfig, violations: Sequence[float]) -> None:
    """Give Optuna the constraint values (<= 0 feasible) through ``Trial.set_constraint``, which its
    samplers (TPE, NSGA-II) read to learn where the feasible region is."""
    for constraint, violation in zip(config.constraints, violations):
        trial.set_constraint(constraint.metric, violation)


class Objective:
    """The function Optuna calls per trial: sample, analyze, time, check constraints, train."""

    def __init__(self, config: StudyConfig, run_dir: RunDirectory, runner: TrialRunner) -> None:
        self.config = config
        self.run_dir = run_dir
        self.runner = runner
        self.single_objective = len(config.objectives) == 1

    def __call__(self, trial: Trial) -> float | list[float]:
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        seed = trial.user_attrs.get("seed")
        fresh = seed is None
        seed = self.config.seeds[0] if fresh else seed
        trial.set_user_attr("seed", seed)
        try:
            point = sample(self.config.space, OptunaSuggester(trial, dict(self.config.fix)))
            return self._evaluate(trial, point, seed, fresh)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:  # stopped by the user, not failed: the next run retries this point
            trial.set_user_attr("interrupted", True)
            trial.study.enqueue_trial(trial.params, user_attrs={"seed": seed, "retry_of": trial.number},
                                      skip_if_exists=False)
            raise
        except SpecError as error:  # bad input (data, settings, the space itself), not this point: stop the study
            trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}"[:2000])
            raise
        except Exception as error:  # recorded with its reason; the study goes on
            trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}"[:2000])
            raise TrialFailed(str(error)) from error

    def _evaluate(self, trial: Trial, point: SampledPoint, seed: int, fresh: bool) -> float | list[float]:
        if not point.valid:
            raise InvalidPoint(point.invalid_reason)
        spec = point.spec
        self.run_dir.save_spec(spec)
        trial.set_user_attr("arch_hash", spec.arch_hash)
        twin = trained_twin(trial, seed)
        if twin is not None:  # the sampler drew a point already trained with this seed: its result stands
            return self._repeat(trial, twin)
        if fresh:
            for other_seed in self.config.seeds[1:]:
                trial.study.enqueue_trial(trial.params, user_attrs={"seed": other_seed})
        metrics = self.runner.measure(spec, self.runner.analyze_point(spec, seed))
        self._record(trial, metrics)
        record_constraints(trial, self.config, metrics.constraint_violations)
        if metrics.infeasible:
            trial.set_user_attr("infeasible", True)
            return self._values(metrics, infeasible=True)
        metrics = self.runner.score_proxies(spec, metrics)
        self._record(trial, metrics)
        if self.config.training is not None:
            metrics = self.runner.train(spec, metrics, trial.number, self._reporter(trial))
            self._record(trial, metrics)
        return self._values(metrics, infeasible=False)

    def _repeat(self, trial: Trial, twin: FrozenTrial) -> float | list[float]:
        """Record ``twin``'s result (and share its weights) instead of training the same run again."""
        metrics = TrialMetrics.from_attrs(twin.user_attrs)
        self._record(trial, metrics)
        record_constraints(trial, self.config, metrics.constraint_violations)
        trial.set_user_attr("duplicate_of", twin.number)
        self.run_dir.share_weights(twin.number, trial.number)
        return self._values(metrics, infeasible=False)

    def _record(self, trial: Trial, metrics: TrialMetrics) -> None:
        for key, value in metrics.to_attrs().items():
            trial.set_user_attr(key, value)

    def _reporter(self, trial: Trial) -> Callable[[int, float], None] | None:
        if not self.single_objective or self.config.pruner == "none":
            return None

        def report(step: int, miou: float) -> None:
            trial.report(miou, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} with mIoU {miou:.4f}")
        return report

    def _values(self, metrics: TrialMetrics, *, infeasible: bool) -> float | list[float]:
        values = objective_values(self.config, metrics, infeasible=infeasible)
        return values[0] if self.single_objective else values


def trained_twin(trial: Trial, seed: int) -> FrozenTrial | None:
    """The earliest COMPLETE, trained trial of the study with ``trial``'s parameters and ``seed``, if any."""
    for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = other.user_attrs
        if other.params == trial.params and attrs.get("seed") == seed and not attrs.get("infeasible"):
            return other
    return None


def objective_values(config: StudyConfig, metrics: TrialMetrics, *, infeasible: bool) -> list[float]:
    """The values Optuna is told, one per objective; an infeasible point scores INFEASIBLE_MIOU."""
    values = [INFEASIBLE_MIOU if objective.metric == "miou" and infeasible else float(metrics.value(objective.metric))
              for objective in config.objectives]
    for objective, value in zip(config.objectives, values):
        if not math.isfinite(value):  # Optuna would fail the trial without a reason, and it would run again
            raise ValueError(f"objective {objective.metric} is {value}")
    return values


class InvalidPoint(Exception):
    """The sampled point is not a valid network; the reason names the key path."""


@dataclass(frozen=True)
class StudyOutcome:
    requested: int
    finished: int
    completed: int

    @property
    def done(self) -> bool:
        return self.finished >= self.requested and self.completed > 0


def prepare_study(config: StudyConfig, run_dir: RunDirectory) -> tuple[optuna.Study, int | None]:
    """Open (or create) the study, queue again the trials of dead processes and, once, the grid.

    Under the run directory's lock: two processes starting together must not both create the
    storage, both retry one dead trial or both queue the grid. Returns the study and the grid's
    trial count (None unless the sampler is grid).
    """
    with run_dir.lock("queue"):
        study = open_study(config, run_dir)
        requeue_dead_trials(study)
        return study, enqueue_grid(config, study)


def run_optuna(config: StudyConfig, run_dir: RunDirectory,
               on_trial_end: Callable[[FrozenTrial, int, int], None] | None = None) -> StudyOutcome:
    """Run (or resume) the study until ``config.trials`` trials have finished."""
    study, grid_trials = prepare_study(config, run_dir)
    requested = config.trials if grid_trials is None else min(config.trials, grid_trials)
    runner = TrialRunner(config, run_dir)
    objective = Objective(config, run_dir, runner)

    def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        write_trials_csv(study, run_dir)
        if on_trial_end is not None:
            on_trial_end(trial, _count_finished(study), requested)

    write_trials_csv(study, run_dir)
    try:
        while True:
            trials = study.get_trials(deepcopy=False)
            done = sum(finished(trial) for trial in trials)
            running = sum(trial.state == TrialState.RUNNING for trial in trials)
            if done >= requested:
                break
            if done + running >= requested:
                # Other processes run the last trials: wait for them instead of calling the study unfinished.
                # One whose process dies is queued again (here at once, elsewhere after the heartbeat's grace).
                time.sleep(WAIT_SECONDS)
                with run_dir.lock("queue"):
                    requeue_dead_trials(study)
                continue
            study.optimize(objective, n_trials=1, catch=(TrialFailed,), callbacks=[after_trial])
    finally:  # also when stopped by bad input or Ctrl-C: the table shows the trial that stopped it
        write_trials_csv(study, run_dir)
    trials = study.get_trials(deepcopy=False)
    return StudyOutcome(requested=requested, finished=sum(finished(trial) for trial in trials),
                        completed=sum(trial.state == TrialState.COMPLETE and not trial.user_attrs.get("infeasible")
                                      for trial in trials))


def _count_finished(study: optuna.Study) -> int:
    return sum(finished(trial) for trial in study.get_trials(deepcopy=False))
