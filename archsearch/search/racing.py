"""Racing seeds in a study's Optuna storage: the race's state read from the trials, its next round queued.

The race keeps nothing of its own. Its state is the trials: each one's point (its parameters),
seed, state and mIoU. So a study killed at any moment and run again, another process on the same
storage, Ray's searcher and the report all see the same race. A round is queued only when the
queue is empty: each architecture that ``race.decision`` picks gets its next seed as a queued
trial, which either backend then trains like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.race.decision import next_seeds
from archsearch.race.model import Observations
from archsearch.run import attributes
from archsearch.study.config import StudyConfig

PENDING = (TrialState.WAITING, TrialState.RUNNING)


def point_key(trial: FrozenTrial) -> tuple:
    """An architecture's key in the race: its parameters (as a twin is found); a queued trial has them as
    Optuna's fixed parameters until it runs."""
    return tuple(sorted({**trial.system_attrs.get("fixed_params", {}), **trial.params}.items()))


@dataclass(frozen=True)
class RaceState:
    """What the trials say: finished runs in trial order, each point's seeds tried, the points with a run pending."""

    observations: Observations
    tried: dict[Hashable, set[int]]
    busy: set[Hashable]


def race_state(trials: Iterable[FrozenTrial]) -> RaceState:
    """A lost trial (FAIL without a reason; it runs again as another trial) and infeasible points (never
    trained) are left out; a pruned or failed run spends its seed."""
    records, tried, busy, infeasible = [], {}, set(), set()
    for trial in sorted(trials, key=lambda item: item.number):
        attrs = trial.user_attrs
        if attributes.SEED not in attrs or (trial.state == TrialState.FAIL and attributes.FAIL_REASON not in attrs):
            continue
        key = point_key(trial)
        if attrs.get(attributes.INFEASIBLE):
            infeasible.add(key)
            continue
        tried.setdefault(key, set()).add(attrs[attributes.SEED])
        if trial.state in PENDING:
            busy.add(key)
        elif trial.state == TrialState.COMPLETE and attrs.get("miou") is not None:
            records.append((key, attrs[attributes.SEED], attrs["miou"]))
    observations = Observations.from_records(record for record in records if record[0] not in infeasible)
    return RaceState(observations, {key: seeds for key, seeds in tried.items() if key not in infeasible}, busy)


@dataclass(frozen=True)
class RaceTurn:
    """What a call to ``race_round`` found and did."""

    queued: int
    waiting: int
    running: int

    @property
    def idle(self) -> bool:
        """Nothing queued or running, and the race gives no more seeds: a finite grid is done."""
        return self.queued == self.waiting == self.running == 0


def race_round(study: optuna.Study, config: StudyConfig) -> RaceTurn:
    """Queue the race's next round when the queue is empty (call under the run directory's queue lock;
    ``config.race`` is set)."""
    trials = study.get_trials(deepcopy=False)
    waiting = sum(trial.state == TrialState.WAITING for trial in trials)
    running = sum(trial.state == TrialState.RUNNING for trial in trials)
    if waiting:
        return RaceTurn(0, waiting, running)
    state = race_state(trials)
    chosen = next_seeds(state.observations, state.tried, state.busy, config.seeds, config.race)
    for key, seed in chosen.items():
        study.enqueue_trial(dict(key), user_attrs={attributes.SEED: seed}, skip_if_exists=False)
    return RaceTurn(len(chosen), 0, running)



def race_over(study: optuna.Study, config: StudyConfig) -> bool:
    """Nothing queued or running and the race would give no more seeds (it queues nothing)."""
    trials = study.get_trials(deepcopy=False)
    if any(trial.state in PENDING for trial in trials):
        return False
    state = race_state(trials)
    return not next_seeds(state.observations, state.tried, state.busy, config.seeds, config.race)
