"""Runs a study with Optuna: samplers, pruners and storage are Optuna's; this module only wires them.

Resuming is re-running: the study is loaded from its storage, finished trials stay as they
are, a trial left RUNNING by a dead process is failed and queued again (at once when the
process was on this machine, after the heartbeat's grace period otherwise), and the run
stops once the requested number of trials has finished.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Container, Mapping, Sequence

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._cached_storage import _CachedStorage
from optuna.trial import FrozenTrial, Trial, TrialState

from archsearch.errors import OutputError, SpecError
from archsearch.io import create_shareable_file
from archsearch.resources import process_alive
from archsearch.run import attributes
from archsearch.run.directory import RunDirectory
from archsearch.run.guard import foreign_study, run_directory_owner
from archsearch.run.trials_table import write_trials_csv
from archsearch.study.config import StudyConfig
from archsearch.search.backends import (SearchBackend, finished, StudyOutcome, register_backend, requested_trials,
                                       study_outcome)
from archsearch.search.lifecycle import Pruned, finish_trial, live_trial, queue_again, start_trial
from archsearch.search.racing import race_round
from archsearch.space.sampling import MAX_GRID_POINTS, Primitive, enumerate_grid, grid_size
from archsearch.storage_url import hide_secret, masked

if TYPE_CHECKING:
    from archsearch.search.trial import TrialRunner

HEARTBEAT_SECONDS = 10
WAIT_SECONDS = 1.0
SQLITE_TIMEOUT_SECONDS = 60
GRACE_SECONDS = 30


class TrialFailed(Exception):
    """A trial that raised; its reason is in the trial's ``fail_reason`` attribute and the study goes on."""


def make_sampler(config: StudyConfig, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded with ``seed`` (default: the study's ``sampler.seed``)."""
    seed = config.sampler_seed if seed is None else seed
    options = dict(config.sampler_options)
    sampler_class = {"tpe": optuna.samplers.TPESampler,
                     "nsga2": optuna.samplers.NSGAIISampler}.get(config.sampler, optuna.samplers.RandomSampler)
    try:
        return sampler_class(seed=seed, **options)
    except (TypeError, ValueError) as error:
        raise SpecError(f"sampler rejects its options: {error}", path="sampler", value=options,
                        allowed=option_names(sampler_class, config.sampler), source=config.source) from None


def option_names(option_class: type, name: str) -> str:
    """The keyword options an Optuna sampler or pruner class takes (``seed`` is the study's own)."""
    import inspect

    names = [parameter for parameter in inspect.signature(option_class).parameters if parameter != "seed"]
    return f"{name}'s options: {', '.join(names)}" if names else f"no options for {name}"


def check_sampler(config: StudyConfig) -> None:
    """Build the study's sampler once: options its class refuses are bad input, found before a run directory is
    made; so is a grid past MAX_GRID_POINTS. (Each backend checks its own pruner or scheduler beside it.)"""
    make_sampler(config)
    if config.sampler == "grid":
        counted = grid_size(config.space, config.fix)
        if counted is None or counted[0] > MAX_GRID_POINTS:
            enumerate_grid(config.space, config.fix)  # refuses it: by its count, or by walking where conditions are


def check_no_placement(config: StudyConfig) -> None:
    """``latency.placement`` sends timings to a Ray node; this backend runs every trial and timing in its own
    process, and timing here instead would record another device's latencies as the target's."""
    if config.placement is not None:
        raise SpecError("timing placement sends each timing to the Ray node that holds the target, and the Optuna "
                        "backend runs trials and timings in this process", path="latency.placement",
                        value={"resources": config.placement.resources},
                        allowed="backend: ray (or --backend ray), or no placement (timed where the trial runs)",
                        source=config.source)


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
                        allowed=option_names(pruners[config.pruner], config.pruner), source=config.source) from None


def storage_url(config: StudyConfig, run_dir: RunDirectory) -> str:
    return config.storage or run_dir.default_storage


class RetriesFirstStorage(_CachedStorage):
    """Optuna's storage, except that a queued retry (an interrupted or dead process's trial) is popped before
    queued new points: Optuna pops WAITING trials in number order, which would put the retry behind every point
    queued before it (a grid, other seeds), so that ``--trials 1`` trained the next point instead."""

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        trials = super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
        if states is not None and list(states) == [TrialState.WAITING]:  # the queue, as Optuna pops it
            trials.sort(key=lambda trial: attributes.RETRY_OF not in trial.user_attrs)  # stable within each
        return trials


def create_sqlite_file(url: str) -> None:
    """The SQLite file of ``url``, made before SQLAlchemy makes it so that it follows the umask."""
    from sqlalchemy.engine import make_url

    try:
        database = make_url(url).database
    except sqlalchemy.exc.ArgumentError:
        return  # a malformed URL: RDBStorage says so
    if database and database != ":memory:" and not database.startswith("file:") and Path(database).parent.is_dir():
        create_shareable_file(database)


def open_study(config: StudyConfig, run_dir: RunDirectory) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage_url(config, run_dir)
    # SQLite gives up on a lock after 5 s by default; processes sharing a study wait for each other instead.
    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}} if url.startswith("sqlite") else None
    if url.startswith("sqlite"):
        create_sqlite_file(url)
    try:
        storage = RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                             grace_period=GRACE_SECONDS,
                             heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3))
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, RuntimeError) as error:
        # A corrupt or foreign study.db, an unknown URL scheme, a missing database driver, an old schema.
        message = hide_secret(" ".join(str(getattr(error, "orig", None) or error).split()), url)[:500]
        raise SpecError(f"cannot open the study's storage: {message}", path="storage", value=masked(url),
                        source=config.source) from None
    directions = [objective.direction for objective in config.objectives]
    study = optuna.create_study(storage=RetriesFirstStorage(storage), study_name=config.name, sampler=TrialSeededSampler(config),
                                pruner=make_pruner(config), load_if_exists=True, directions=directions)
    # Resuming with other objectives would mix values of different metrics, or (another count) fail every
    # trial without a reason, so that it runs again and again.
    objectives = [f"{objective.metric} ({objective.direction})" for objective in config.objectives]
    stored = study.user_attrs.get(attributes.STUDY_OBJECTIVES)
    if stored is None and [direction.name.lower() for direction in study.directions] == directions:
        study.set_user_attr(attributes.STUDY_OBJECTIVES, objectives)
    elif stored != objectives:
        started = ", ".join(stored) if stored else "directions " + ", ".join(d.name.lower() for d in study.directions)
        raise SpecError("the storage holds this study with other objectives", path="objectives", value=objectives,
                        allowed=f"the objectives it was started with ({started}), or another --out or study name",
                        source=config.source)
    claim_study(study, run_dir, url)
    return study


def claim_study(study: optuna.Study, run_dir: RunDirectory, url: str) -> None:
    """Record in the study which run directory it belongs to, or refuse a study that belongs to another one
    (``run.guard`` checks the same before a run starts; this holds for processes that raced past it)."""
    owner = run_directory_owner(run_dir.root)
    if owner is None:  # a run directory without a fingerprint: nothing to record it by
        return
    stored = study.user_attrs.get(attributes.STUDY_RUN_DIRECTORY)
    if isinstance(stored, dict) and stored.get("id") != owner["id"]:
        raise foreign_study(stored, f"run directory {run_dir.root}", url)
    if stored != owner:  # not recorded yet, or the run directory was moved
        study.set_user_attr(attributes.STUDY_RUN_DIRECTORY, owner)


def requeue_dead_trials(study: optuna.Study) -> list[int]:
    """Fail and queue again the RUNNING trials whose process on this machine is gone."""
    optuna.storages.fail_stale_trials(study)
    requeued = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get(attributes.HOST) != socket.gethostname() or process_alive(attrs.get(attributes.PID, -1)):
            continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        queue_again(study, trial)
        requeued.append(trial.number)
    return requeued


def enqueue_grid(config: StudyConfig, study: optuna.Study) -> int | None:
    """For a grid study, queue the grid's points (each with every seed in order, or a race's first ``min``) up to
    the study's trial count, each once per study; returns the grid's trial count (at most, for a race).

    Only the trials this run will train are queued, so a run of fewer trials than the grid has leaves no
    WAITING rows behind when it finishes; a later run with more trials queues the next points. A race queues
    its further seeds round by round.
    """
    if config.sampler != "grid":
        return None
    attrs = study.user_attrs
    total = attrs.get(attributes.STUDY_GRID_TRIALS)
    queued = attrs.get(attributes.STUDY_GRID_QUEUED, total or 0)  # studies queued before this: the whole grid
    if total is None or queued < min(config.trials, total):
        points = enumerate_grid_with_fixed(config)
        trials = [(params, seed) for params in points for seed in config.initial_seeds]
        total = len(points) * len(config.seeds)
        wanted = min(config.trials, len(trials))
        for params, seed in trials[queued:wanted]:
            study.enqueue_trial(params, user_attrs={attributes.SEED: seed})
        study.set_user_attr(attributes.STUDY_GRID_QUEUED, max(queued, wanted))
        study.set_user_attr(attributes.STUDY_GRID_TRIALS, total)
    return total


def enumerate_grid_with_fixed(config: StudyConfig) -> list[dict[str, Primitive]]:
    """The grid over the study's free parameters (its ``fix`` values held)."""
    return [{name: value for name, value in params.items() if name not in config.fix}
            for params in enumerate_grid(config.space, config.fix)]


class Objective:
    """The function Optuna calls per trial: start, live and finish it (see search.lifecycle)."""

    def __init__(self, config: StudyConfig, runner: TrialRunner) -> None:
        self.config = config
        self.runner = runner
        self.single_objective = len(config.objectives) == 1

    def __call__(self, trial: Trial) -> float | list[float]:
        trial.set_user_attr(attributes.HOST, socket.gethostname())
        trial.set_user_attr(attributes.PID, os.getpid())

        def record(facts: Mapping[str, Any]) -> None:
            for key, value in facts.items():
                trial.set_user_attr(key, value)
        try:
            write_trials_csv(trial.study, self.runner.run_dir)  # a live run's table shows this trial RUNNING
            start = start_trial(trial, self.config)
            outcome = live_trial(self.runner, start.sampled, number=trial.number, seed=start.seed, twin=start.twin,
                                 record=record, on_evaluation=self._reporter(trial))
        except (KeyboardInterrupt, OutputError) as stop:
            # Stopped by the user (Ctrl-C, SIGTERM) or by the run's own files (a full disk), not failed: the run
            # stops, and the next start retries this point (a trial stopped before it drew one has none to retry).
            trial.set_user_attr(*((attributes.STOPPED_BY, str(stop)) if isinstance(stop, OutputError)
                                  else (attributes.INTERRUPTED, True)))
            if attributes.SEED in trial.user_attrs:
                queue_again(trial.study, trial)
            raise
        ending = finish_trial(trial, self.config, outcome, record=False)
        if ending.state == TrialState.PRUNED:
            raise optuna.TrialPruned(str(outcome.error))
        if ending.state == TrialState.FAIL:
            if outcome.bad_input:  # bad input (data, settings, the space itself), not this point: stop the study
                raise outcome.error
            raise TrialFailed(trial.user_attrs.get(attributes.FAIL_REASON))
        return ending.values[0] if self.single_objective else ending.values

    def _reporter(self, trial: Trial) -> Callable[[int, float], None] | None:
        if not self.single_objective or self.config.pruner == "none":
            return None

        def report(step: int, miou: float) -> None:
            trial.report(miou, step)
            if trial.should_prune():
                raise Pruned(f"pruned at step {step} with mIoU {miou:.4f}")
        return report


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
    from archsearch.search.trial import TrialRunner  # torch: loaded when trials run, not when a study is checked

    check_no_placement(config)
    study, grid_trials = prepare_study(config, run_dir)
    requested = requested_trials(config, grid_trials)
    objective = Objective(config, TrialRunner(config, run_dir))
    if config.supernet is not None:  # one job before the trials, which then evaluate its subnets
        objective.runner.prepare_supernet()

    def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        write_trials_csv(study, run_dir)
        if on_trial_end is not None:
            on_trial_end(trial, _count_finished(study), requested)

    def wait_for_others() -> None:
        # Other processes run the last trials: wait for them instead of calling the study unfinished.
        # One whose process dies is queued again (here at once, elsewhere after the heartbeat's grace).
        time.sleep(WAIT_SECONDS)
        with run_dir.lock("queue"):
            requeue_dead_trials(study)

    write_trials_csv(study, run_dir)
    try:
        search_loop(study, config, objective, requested, after_trial=after_trial, wait_for_others=wait_for_others,
                    queue_lock=lambda: run_dir.lock("queue"))
    finally:  # also when stopped by bad input or Ctrl-C: the table shows the trial that stopped it
        write_trials_csv(study, run_dir)
    if config.supernet is not None and config.supernet.retrain_top:  # the supernet's best, trained stand-alone
        objective.runner.retrain_top(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return study_outcome(study, config, requested)


def search_loop(study: optuna.Study, config: StudyConfig, objective: Callable[[Trial], Any], requested: int, *,
                after_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
                wait_for_others: Callable[[], None] = lambda: time.sleep(WAIT_SECONDS),
                queue_lock: Callable[[], AbstractContextManager] = nullcontext) -> bool:
    """Run trials one at a time until ``requested`` have finished or a grid's race is over (returns whether it
    was): the queue first (a grid, other seeds, retries, a race's round), else the sampler's next point.

    The objective answers each trial: training (``Objective``), or a table of earlier results (the racing
    replay benchmark runs this same loop over an in-memory storage).
    """
    callbacks = [after_trial] if after_trial is not None else []
    while True:
        trials = study.get_trials(deepcopy=False)
        done = sum(finished(trial) for trial in trials)
        running = sum(trial.state == TrialState.RUNNING for trial in trials)
        if done >= requested:
            return False
        if done + running >= requested:
            wait_for_others()
            continue
        if config.race is not None:
            with queue_lock():
                turn = race_round(study, config)
            # A grid has no new points to sample: its study ends with its race (other samplers sample anew).
            if config.sampler == "grid" and turn.queued == turn.waiting == 0:
                if not turn.running:
                    return True
                wait_for_others()
                continue
        study.optimize(objective, n_trials=1, catch=(TrialFailed,), callbacks=callbacks)


def _count_finished(study: optuna.Study) -> int:
    return sum(finished(trial) for trial in study.get_trials(deepcopy=False))


@register_backend("optuna")
class OptunaBackend(SearchBackend):
    """Trials run one after another in this process (several processes may share the storage)."""

    def check(self, config: StudyConfig) -> None:
        check_no_placement(config)
        check_sampler(config)
        make_pruner(config)

    def check_devices(self, config: StudyConfig) -> None:
        if config.training is not None:  # `training: none` trains nothing, on no device
            from archsearch.devices import present_device
            present_device(config.training.device)

    def run(self, config: StudyConfig, run_dir: RunDirectory, *,
            on_trial_end: Callable[[FrozenTrial, int, int], None] | None = None,
            address: str | None = None) -> StudyOutcome:
        return run_optuna(config, run_dir, on_trial_end)
