"""Search backends: what runs a study's trials (Optuna in this process, or Ray Tune on a cluster), chosen by name here.

A backend is a ``SearchBackend`` with documented hooks, as Ray Tune's ``Searcher`` is a base with
hooks: ``check`` (before a run directory is made: options its classes refuse are bad input),
``check_devices`` (the devices a trial will use are on this machine) and ``run`` (run or resume the
study until its trials have finished, returning a ``StudyOutcome``). Both backends share the trial's
life (``search.lifecycle``), the storage (``optuna_driver.prepare_study``) and, from here, the trial count
they aim for and the outcome they report. Backends are registered by name and imported on first use,
so that choosing Optuna never imports Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from optuna.trial import FrozenTrial, TrialState

from archsearch.run import attributes
from archsearch.search.racing import race_over
from archsearch.study.config import BACKENDS, StudyConfig

if TYPE_CHECKING:
    import optuna

    from archsearch.run.directory import RunDirectory

# Where each backend's class lives: imported when the backend is chosen.
_MODULES = {"optuna": "archsearch.search.optuna_driver", "ray": "archsearch.search.ray.driver"}
_REGISTERED: dict[str, type["SearchBackend"]] = {}


@dataclass(frozen=True)
class StudyOutcome:
    """How many trials a run aimed for, how many have finished and how many completed within budget."""

    requested: int
    finished: int
    completed: int
    race_over: bool = False  # a grid's race gave its last seed before ``requested`` trials

    @property
    def done(self) -> bool:
        return (self.finished >= self.requested or self.race_over) and self.completed > 0


def finished(trial: FrozenTrial) -> bool:
    """Trials that count towards the budget: everything that ended, except a lost one (it is retried)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and attributes.FAIL_REASON in trial.user_attrs


def requested_trials(config: StudyConfig, grid_trials: int | None) -> int:
    """The trials a run aims for: the study's count, or the whole grid when it is smaller."""
    return config.trials if grid_trials is None else min(config.trials, grid_trials)


def grid_race_over(config: StudyConfig, study: "optuna.Study") -> bool:
    """A grid's race gave its last seed: the study is done with fewer trials than its grid could hold (other
    samplers sample new points instead)."""
    return config.race is not None and config.sampler == "grid" and race_over(study, config)


def study_outcome(study: "optuna.Study", config: StudyConfig, requested: int) -> StudyOutcome:
    """The outcome of a run from its storage: finished trials (lost ones are retried), feasible completes, and
    whether a grid's race is over."""
    trials = study.get_trials(deepcopy=False)
    return StudyOutcome(requested=requested, finished=sum(finished(trial) for trial in trials),
                        completed=sum(trial.state.name == "COMPLETE" and not trial.user_attrs.get(attributes.INFEASIBLE)
                                      for trial in trials), race_over=grid_race_over(config, study))


class SearchBackend:
    """Runs a study's trials; subclasses register under a name (``register_backend``) and fill the hooks."""

    name: ClassVar[str] = ""
    reports_progress: ClassVar[bool] = True  # calls ``on_trial_end`` (else it prints its own lines)

    def check(self, config: StudyConfig) -> None:
        """Raise SpecError for settings this backend refuses (sampler, pruner or scheduler options), before a run
        directory is made."""

    def check_devices(self, config: StudyConfig) -> None:
        """Raise SpecError when a device a trial will use is not on this machine (a backend that places trials on
        other machines checks nothing here)."""

    def run(self, config: StudyConfig, run_dir: "RunDirectory", *,
            on_trial_end: Callable[[Any, int, int], None] | None = None, address: str | None = None) -> StudyOutcome:
        """Run (or resume) the study in ``run_dir`` until ``requested_trials`` have finished. ``on_trial_end``
        (trial, finished, requested) follows progress where the backend can; ``address``: a cluster to attach to."""
        raise NotImplementedError


def register_backend(name: str) -> Callable[[type[SearchBackend]], type[SearchBackend]]:
    """Register a backend class under ``name`` (one of the study file's backends); a second registration is a bug."""
    def decorate(backend: type[SearchBackend]) -> type[SearchBackend]:
        if name in _REGISTERED:
            raise ValueError(f"backend {name!r} is registered twice")
        backend.name = name
        _REGISTERED[name] = backend
        return backend
    return decorate


def get_backend(name: str) -> SearchBackend:
    """The backend the study names (``backend:`` or ``--backend``), its module imported now."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    import_module(_MODULES[name])
    return _REGISTERED[name]()
