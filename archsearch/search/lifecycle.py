"""A trial's life, written once for both backends: start, live, finish.

``start_trial`` runs where the Optuna trial is (the Optuna process, or Ray's searcher): it
samples the point through the trial (so the sampler learns), gives the trial its seed, finds
a trained twin and, for a fresh point, queues its other seeds. ``live_trial`` runs where the
trial trains (the same process, or a Ray worker): check validity, save the spec, take the
twin's result or analyse, time, check constraints, score the zero-cost proxies and train
(unless the study trains nothing), recording as it goes; any error
becomes a FAIL outcome with its reason. ``finish_trial`` turns an outcome into the trial's
final attributes, constraints, state and objective values: the one place a trial ends, as
Optuna's ``_tell`` is for Optuna. ``queue_again`` is the one way a lost trial's point runs again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from archsearch.errors import OutputError, SpecError
from archsearch.run import attributes
from archsearch.runtime import current
from archsearch.study.identity import StudyIdentity
from archsearch.study.config import StudyConfig
from archsearch.study.metrics import TRAINED_METRICS
from archsearch.space.sampling import Primitive, SampledPoint, sample

if TYPE_CHECKING:
    from archsearch.search.trial import TrialMetrics, TrialRunner

INFEASIBLE_MIOU = 0.0
FAIL_REASON_LENGTH = 2000
COMPLETE, INFEASIBLE, PRUNED, FAIL = "COMPLETE", "INFEASIBLE", "PRUNED", "FAIL"


class InvalidPoint(Exception):
    """The sampled point is not a valid network; the reason names the key path."""


class Pruned(Exception):
    """Raised by an evaluation callback when the pruner stops the trial."""


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


@dataclass(frozen=True)
class Twin:
    """A trained trial of the same point and seed: its result and weights stand for a trial drawn again."""

    number: int
    attrs: Mapping[str, Any]


@dataclass(frozen=True)
class Start:
    """What ``start_trial`` drew: the trial's seed, its point (or the space's error) and a trained twin."""

    seed: int
    point: SampledPoint | None
    error: Exception | None = None
    twin: Twin | None = None

    def sampled(self) -> SampledPoint:
        if self.error is not None:
            raise self.error
        return self.point


@dataclass(frozen=True)
class Outcome:
    """How a trial's life ended (COMPLETE, INFEASIBLE, PRUNED or FAIL) and what it recorded on the way."""

    state: str
    attrs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    @property
    def bad_input(self) -> bool:
        return bool(self.attrs.get(attributes.BAD_INPUT))


def start_trial(trial: Trial, config: StudyConfig) -> Start:
    """Sample through ``trial``, give it its seed (a queued trial brings one) and find its trained twin.

    A fresh valid point without a twin queues its other seeds (a race's first ``min``; the race gives more). An error while sampling (a
    structural error of the space, a distribution the sampler cannot draw from) is kept, not
    raised: the trial's life meets it and records it as the fail reason.
    """
    try:
        point, error = sample(config.space, OptunaSuggester(trial, dict(config.fix))), None
    except Exception as caught:
        point, error = None, caught
    fresh = attributes.SEED not in trial.user_attrs
    seed = config.seeds[0] if fresh else trial.user_attrs[attributes.SEED]
    if fresh:
        trial.set_user_attr(attributes.SEED, seed)
    trial.set_user_attr(attributes.RECIPE, StudyIdentity.of(config).recipe)  # what it is trained with
    valid = point is not None and point.valid
    twin = trained_twin(trial, seed) if valid else None
    if fresh and valid and twin is None:
        for other_seed in config.initial_seeds[1:]:
            trial.study.enqueue_trial(trial.params, user_attrs={attributes.SEED: other_seed})
    return Start(seed=seed, point=point, error=error, twin=twin)


def trained_twin(trial: Trial, seed: int) -> Twin | None:
    """The earliest COMPLETE, trained trial of the study with ``trial``'s parameters, ``seed`` and recipe, if any
    (a point trained with other settings measured something else)."""
    recipe = trial.user_attrs.get(attributes.RECIPE)
    for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = other.user_attrs
        if other.params == trial.params and attrs.get(attributes.SEED) == seed \
                and not attrs.get(attributes.INFEASIBLE) and attrs.get(attributes.RECIPE) == recipe:
            return Twin(number=other.number, attrs=dict(attrs))
    return None


def live_trial(runner: TrialRunner, draw: Callable[[], SampledPoint], *, number: int, seed: int,
               twin: Twin | None, record: Callable[[Mapping[str, Any]], None],
               on_evaluation: Callable[[int, float], None] | None) -> Outcome:
    """Check, analyse, time and train one point; ``record`` receives each fact as soon as it is known.

    A KeyboardInterrupt passes through (the user stopped the run; the backend queues the point
    again), and so does an OutputError (the run's own files cannot be written, a full disk say: no
    other point would do better, and the point is not at fault); every other error is a FAIL
    outcome with its reason, and a SpecError (bad input: data, settings, the space itself) is
    marked so that it stops the study.
    """
    recorded: dict[str, Any] = {}

    def keep(facts: Mapping[str, Any]) -> None:
        recorded.update(facts)
        record(facts)

    try:
        threads = runner.training_threads()
        keep({attributes.RUNTIME: current().record(threads)})
        point = draw()
        if not point.valid:
            raise InvalidPoint(point.invalid_reason)
        spec = point.spec
        runner.run_dir.save_spec(spec)
        keep({attributes.ARCH_HASH: spec.arch_hash})
        if twin is not None:  # drawn again with a seed it was trained with: the twin's result and weights stand
            runner.run_dir.share_weights(twin.number, number)
            keep({**_metrics(twin.attrs).to_attrs(), attributes.DUPLICATE_OF: twin.number})
            return Outcome(COMPLETE, recorded)
        metrics = runner.measure(spec, runner.analyze_point(spec, seed))
        keep(metrics.to_attrs())
        if metrics.infeasible:
            return Outcome(INFEASIBLE, recorded)
        metrics = runner.score_proxies(spec, metrics)  # at initialization, before any training
        keep(metrics.to_attrs())
        if runner.study.supernet is not None:
            metrics = runner.evaluate_on_supernet(point.params, metrics, number)
            keep(metrics.to_attrs())
        elif runner.study.training is not None:
            metrics = runner.train(spec, metrics, number, on_evaluation, threads=threads)
            keep(metrics.to_attrs())
        return Outcome(COMPLETE, recorded)
    except Pruned as stop:
        return Outcome(PRUNED, recorded, stop)
    except OutputError:
        raise
    except Exception as error:
        keep(failure(error))
        return Outcome(FAIL, recorded, error)


def failure(error: BaseException) -> dict[str, Any]:
    """The attributes of a failed trial: its reason, and whether it was bad input (which stops the study)."""
    return {attributes.FAIL_REASON: f"{type(error).__name__}: {error}"[:FAIL_REASON_LENGTH],
            attributes.BAD_INPUT: isinstance(error, SpecError)}


@dataclass(frozen=True)
class Ending:
    """What the storage is told: the state and, for COMPLETE, one value per objective."""

    state: TrialState
    values: list[float] | None = None


def finish_trial(trial: Trial, config: StudyConfig, outcome: Outcome, *, record: bool) -> Ending:
    """End ``trial`` with ``outcome``: attributes (``record``: those not set as they came), constraints, values.

    A stopped trial's mIoU is intermediate, never its score. An infeasible point scores
    INFEASIBLE_MIOU on mIoU and its measured cost elsewhere; a non-finite objective value fails
    the trial with that reason (Optuna would fail it without one, and it would run again).
    """
    attrs = dict(outcome.attrs)
    if outcome.state != COMPLETE:
        for name in ("miou", "miou_best", "miou_best_step"):
            attrs.pop(name, None)
    state = outcome.state
    values = None
    if state in (COMPLETE, INFEASIBLE):
        try:
            values = objective_values(config, _metrics(attrs), infeasible=state == INFEASIBLE)
        except ValueError as error:
            state, values = FAIL, None
            attrs.update(failure(error))
            trial.set_user_attr(attributes.FAIL_REASON, attrs[attributes.FAIL_REASON])
    if record:
        for key, value in attrs.items():
            if value is not None:
                trial.set_user_attr(key, value)
    for constraint, violation in zip(config.constraints, attrs.get("constraint_violations") or ()):
        # Optuna's samplers (TPE, NSGA-II) read these (<= 0 feasible) to learn where the feasible region is.
        trial.set_constraint(constraint.metric, violation)
    return Ending(TrialState[state] if state != INFEASIBLE else TrialState.COMPLETE, values)


def objective_values(config: StudyConfig, metrics: TrialMetrics, *, infeasible: bool) -> list[float]:
    """The values the sampler is told, one per objective; an infeasible point scores INFEASIBLE_MIOU."""
    values = [INFEASIBLE_MIOU if objective.metric in TRAINED_METRICS and infeasible
              else float(metrics.value(objective.metric))
              for objective in config.objectives]
    for objective, value in zip(config.objectives, values):
        if not math.isfinite(value):
            raise ValueError(f"objective {objective.metric} is {value}")
    return values


def queue_again(study: optuna.Study, trial: FrozenTrial | Trial) -> None:
    """Queue a lost or interrupted trial's point again, with its seed, as a new trial."""
    study.enqueue_trial(trial.params, user_attrs={attributes.SEED: trial.user_attrs.get(attributes.SEED),
                                                  attributes.RETRY_OF: trial.number}, skip_if_exists=False)


def _metrics(attrs: Mapping[str, Any]) -> TrialMetrics:
    """A trial's metrics from its recorded attributes. The trial's machinery (and torch) is imported on first use,
    so that choosing a backend (which imports this module) loads no torch before a study is checked."""
    from archsearch.search.trial import TrialMetrics

    return TrialMetrics.from_attrs(attrs)
