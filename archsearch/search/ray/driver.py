"""Runs a study with Ray Tune: the same study file, space and run directory as the Optuna backend.

Optuna's sampler drives Ray Tune through its OptunaSearch (see ray_searcher), ASHA stops weak
trials (ray_scheduler) and each trial runs in a Ray worker with the resources the study names
(ray_trial). The trials live in the study's Optuna storage, so numbering, trials.csv, specs
and weights are those of the Optuna backend.

Resuming is re-running. Each ``archsearch run`` that starts trials makes one Ray Tune
experiment under ``RUN/ray`` (tune-001, tune-002, ...). When the last one was interrupted, it
is restored (``Tuner.restore``) and its unfinished trials run again under their numbers; a
trial it never saved is failed and its point queued again. Then, if fewer trials than
requested have finished, a new experiment runs the rest.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import optuna
import ray
from optuna.trial import FrozenTrial, TrialState
from ray import tune

from archsearch.errors import SpecError
from archsearch.study.config import StudyConfig
from archsearch.run import attributes
from archsearch.search.backends import (SearchBackend, finished, StudyOutcome, grid_race_over, register_backend,
                                       requested_trials, study_outcome)
from archsearch.search.optuna_driver import check_sampler, prepare_study
from archsearch.search.ray.placement import check_placement_offered, timing_worker
from archsearch.search.ray.scheduler import AshaSettings, asha_settings, make_scheduler
from archsearch.search.ray.searcher import StudySearcher, requeue
from archsearch.search.ray.supernet import retrain_top_on_ray, train_supernet_on_ray
from archsearch.search.ray.trial import OUTCOME, STEP, ending, run_trial
from archsearch.run.trials_table import write_trials_csv
from archsearch.run.directory import RunDirectory
from archsearch.runtime import worker_environment

RAY_FOLDER = "ray"
EXPERIMENT_PREFIX = "tune-"
MAX_WORKER_FAILURES = 1
CONNECT_SECONDS = 10
ADDRESS_HINT = "the address `ray start --head` printed (host:port, e.g. 10.0.0.1:6379), or auto"


def run_ray(config: StudyConfig, run_dir: RunDirectory, *, address: str | None = None) -> StudyOutcome:
    """Run (or resume) the study on Ray until ``config.trials`` trials have finished.

    ``address`` (else RAY_ADDRESS) attaches to a running cluster; with neither, a local Ray
    is started for this call. A Ray already initialised in this process is used as it is.
    """
    settings = asha_settings(config)
    study, grid_trials = prepare_study(config, run_dir)
    requested = requested_trials(config, grid_trials)
    write_trials_csv(study, run_dir)
    experiments = Experiments(run_dir.root.resolve() / RAY_FOLDER)
    ended_before = {trial.number for trial in study.get_trials(deepcopy=False) if trial.state.is_finished()}
    interrupted = prepare_resume(study, experiments)
    start_trials = interrupted is not None or (trials_to_start(study, requested) > 0
                                               and not grid_race_over(config, study))
    if start_trials or config.supernet is not None:
        with ray_session(address, config):
            check_placement_offered(config.placement, config.source)  # before any trial trains
            with timing_worker(config.placement):  # timings on the target's node, one at a time
                if config.supernet is not None:  # one task before the trials, which then evaluate its subnets
                    train_supernet_on_ray(config, run_dir, trial_resources(config))
                if interrupted is not None:
                    trainable = make_trainable(config, run_dir, settings, frozenset(ended_before))
                    tune.Tuner.restore(str(interrupted), trainable, resume_errored=True).fit()
                trials = trials_to_start(study, requested) if start_trials else 0
                if trials > 0 and not stopped_by_bad_input(study, ended_before):
                    make_tuner(config, run_dir, make_trainable(config, run_dir, settings), settings,
                               experiments.next(), trials).fit()
                if config.supernet is not None and config.supernet.retrain_top and not stopped_by_bad_input(
                        study, ended_before):  # the supernet's best, trained stand-alone
                    retrain_top_on_ray(config, run_dir, trial_resources(config),
                                       study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    write_trials_csv(study, run_dir)
    trial = stopped_by_bad_input(study, ended_before)
    if trial is not None:
        raise SpecError(f"trial {trial.number} stopped the study: {trial.user_attrs.get(attributes.FAIL_REASON)}",
                        source=config.source)
    return study_outcome(study, config, requested)


def stopped_by_bad_input(study: optuna.Study, ended_before: set[int]) -> FrozenTrial | None:
    """A trial of this run that failed on bad input (data, the space), as the Optuna backend stops on."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if trial.number not in ended_before and trial.user_attrs.get(attributes.BAD_INPUT):
            return trial
    return None


def trials_to_start(study: optuna.Study, requested: int) -> int:
    """Trials still to start: none while a Ray trial runs (an interrupted restore resumes next time);
    trials that other processes run on a shared storage count as started."""
    trials = study.get_trials(deepcopy=False)
    running = [trial for trial in trials if trial.state == TrialState.RUNNING]
    if any(attributes.RAY_EXPERIMENT in trial.user_attrs for trial in running):
        return 0
    return max(0, requested - sum(finished(trial) for trial in trials) - len(running))


@dataclass(frozen=True)
class Experiments:
    """``RUN/ray``: Ray Tune's experiment folders, one per run that started trials."""

    root: Path

    def latest(self) -> Path | None:
        folders = sorted(self.root.glob(f"{EXPERIMENT_PREFIX}*"))
        return folders[-1] if folders else None

    def next(self) -> Path:
        latest = self.latest()
        index = int(latest.name.removeprefix(EXPERIMENT_PREFIX)) + 1 if latest is not None else 1
        return self.root / f"{EXPERIMENT_PREFIX}{index:03d}"


def prepare_resume(study: optuna.Study, experiments: Experiments) -> Path | None:
    """The experiment to restore, if some of its trials were left running; lost Ray trials are queued again.

    A trial is lost when no restorable experiment knows it: it was started after the
    experiment's last snapshot, or in an older experiment, or the experiment folder is gone.
    """
    latest = experiments.latest()
    restorable = latest is not None and tune.Tuner.can_restore(latest)
    known = StudySearcher.saved_trials(latest) if restorable else set()
    resumed = False
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        experiment = trial.user_attrs.get(attributes.RAY_EXPERIMENT)
        if experiment is None:
            continue  # another process's Optuna trial, on a shared storage
        if restorable and experiment == latest.name and trial._trial_id in known:
            resumed = True
        else:
            requeue(study, trial)
    return latest if resumed else None


@contextmanager
def ray_session(address: str | None, config: StudyConfig) -> Iterator[None]:
    """Attach to ``address`` or RAY_ADDRESS, else start a local Ray (all this machine's CPUs) until the run ends."""
    if ray.is_initialized():
        yield
        return
    flag = "--ray-address" if address else "RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS")
    # Workers start with the study's OpenMP settings (archsearch.runtime), before they import torch.
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING,
                               "runtime_env": {"env_vars": worker_environment(config.runtime)}}
    if address:
        check_reachable(address, flag)
        try:
            ray.init(address=address, **options)
        except (ConnectionError, ValueError) as error:
            raise SpecError(f"cannot attach to the Ray cluster: {error}", path=flag, value=address,
                            allowed=ADDRESS_HINT) from None
    else:
        ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False, **options)
    try:
        if not address:
            check_resources_fit(config)
        yield
    finally:
        ray.shutdown()


def check_reachable(address: str, flag: str) -> None:
    """Ray retries an address that nothing answers at for minutes; a refused connection is a clear error now."""
    if address in ("auto", "local"):
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS):
            pass
    except ValueError:
        raise SpecError("expected host:port", path=flag, value=address, allowed=ADDRESS_HINT) from None
    except OSError as error:
        raise SpecError(f"nothing answers there ({error.strerror or error})", path=flag, value=address,
                        allowed=ADDRESS_HINT) from None


def trial_resources(config: StudyConfig) -> dict[str, float]:
    """What one trial asks Ray for: ``resources`` per process, times ``training.processes``."""
    processes = config.training.processes if config.training is not None else 1
    return {"cpu": config.resources.cpu * processes, "gpu": config.resources.gpu * processes}


def check_resources_fit(config: StudyConfig) -> None:
    """On a local Ray, a trial that asks for more than the machine has would wait forever; say so instead."""
    available = ray.cluster_resources()
    for key, amount in trial_resources(config).items():
        have = available.get(key.upper(), 0)
        if amount > have:
            raise SpecError(f"one trial asks for more {key.upper()}s than this machine has", path=f"resources.{key}",
                            value=amount, allowed=f"at most {have:g}, or attach to a larger cluster with --ray-address",
                            source=config.source)


def trial_slots(config: StudyConfig) -> int | None:
    """How many trials the cluster holds at once (None while it has room for none: an autoscaler adds nodes).

    Ray Tune starts that many trials' workers together, so every node starts one, instead of
    one at a time, when a busy node's idle worker would take the next trial.
    """
    available = ray.cluster_resources()
    slots = [int(available.get(key.upper(), 0) // amount) for key, amount in trial_resources(config).items() if amount]
    return min(slots) if slots and min(slots) >= 1 else None


def make_trainable(config: StudyConfig, run_dir: RunDirectory, settings: AshaSettings | None,
                   finished_numbers: frozenset[int] = frozenset()) -> Any:
    trainable = tune.with_parameters(run_trial, study=config, run_root=str(run_dir.root.resolve()),
                                     report_until=settings.max_t if settings is not None else None,
                                     finished_numbers=finished_numbers)
    return tune.with_resources(trainable, trial_resources(config))


def make_tuner(config: StudyConfig, run_dir: RunDirectory, trainable: Any, settings: AshaSettings | None,
               experiment: Path, trials: int) -> tune.Tuner:
    tune_config = tune.TuneConfig(search_alg=StudySearcher(config, run_dir, experiment.name),
                                  scheduler=make_scheduler(settings), num_samples=trials,
                                  max_concurrent_trials=trial_slots(config), reuse_actors=True,
                                  trial_name_creator=trial_name, trial_dirname_creator=trial_name)
    run_config = tune.RunConfig(name=experiment.name, storage_path=str(experiment.parent), verbose=0,
                                callbacks=[TrialLines()],
                                failure_config=tune.FailureConfig(max_failures=MAX_WORKER_FAILURES))
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def trial_name(trial: Any) -> str:
    return f"trial_{trial.config['number']}"


class TrialLines(tune.Callback):
    """One line on stderr per ended trial; Ray Tune's own progress table is off."""

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if OUTCOME not in trial.last_result and STEP not in trial.last_result:
            return  # it had ended before an interruption
        state = ending(trial.last_result)
        miou, supernet_miou = trial.last_result.get("miou"), trial.last_result.get("supernet_miou")
        score = f" mIoU {miou:.3f}" if state == "COMPLETE" and miou is not None else (
            f" supernet mIoU {supernet_miou:.3f}" if state == "COMPLETE" and supernet_miou is not None else "")
        print(f"trial {trial.config['number']}: {state.lower()}{score}", file=sys.stderr)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        print(f"trial {trial.config['number']}: its Ray worker failed", file=sys.stderr)


@register_backend("ray")
class RayBackend(SearchBackend):
    """Trials run in Ray Tune workers (a local Ray, or a cluster at ``address``), placed on their devices there;
    each ended trial is a line on stderr (``TrialLines``)."""

    reports_progress = False

    def check(self, config: StudyConfig) -> None:
        check_sampler(config)
        asha_settings(config)

    def run(self, config: StudyConfig, run_dir: RunDirectory, *, on_trial_end: Any = None,
            address: str | None = None) -> StudyOutcome:
        return run_ray(config, run_dir, address=address)
