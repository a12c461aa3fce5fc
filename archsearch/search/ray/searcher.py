"""Ray Tune's searcher for a study: Ray's OptunaSearch, over the study's own Optuna storage.

The Optuna study (``study.db`` in the run directory, or the study's ``storage:``) numbers the
trials 0..N-1 in creation order and keeps their parameters, seeds and results; trials.csv is
written from it by the Optuna backend's own writer. So a run directory does not depend on
the backend that filled it, and either backend can go on with it.
"""

from __future__ import annotations

import glob
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search.optuna import OptunaSearch

from archsearch.run import attributes
from archsearch.run.directory import RunDirectory
from archsearch.run.trials_table import write_trials_csv
from archsearch.study.config import StudyConfig
from archsearch.search.lifecycle import FAIL, Outcome, Start, finish_trial, queue_again, start_trial
from archsearch.search.optuna_driver import TrialSeededSampler, storage_url
from archsearch.search.racing import race_round
from archsearch.search.ray.trial import OUTCOME, STEP, TWIN, outcome_of


@dataclass(frozen=True)
class SpaceSampler:
    """The define-by-run function: starts the trial OptunaSearch hands it (see ``lifecycle.start_trial``)
    and keeps what it drew for the searcher's suggestion."""

    config: StudyConfig
    starts: dict[int, Start] = field(default_factory=dict)

    def __call__(self, trial: optuna.Trial) -> None:
        self.starts[trial.number] = start_trial(trial, self.config)


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Fail a trial whose run was lost (no fail reason, so it does not count) and queue its point again."""
    study.tell(trial.number, state=TrialState.FAIL)
    queue_again(study, trial)


class StudySearcher(OptunaSearch):
    """Suggests ``{number, seed, params}`` per Ray trial and records each ending in the Optuna study."""

    def __init__(self, config: StudyConfig, run_dir: RunDirectory, experiment: str) -> None:
        self.config = config
        self.run_dir = run_dir
        self.experiment = experiment
        self.storage_url = storage_url(config, run_dir)
        self.stopped = False  # by bad input: no more trials start, as in the Optuna backend
        self.space_sampler = SpaceSampler(config)
        metrics = [objective.metric for objective in config.objectives]
        modes = ["max" if objective.direction == "maximize" else "min" for objective in config.objectives]
        single = len(metrics) == 1
        super().__init__(self.space_sampler, metric=metrics[0] if single else metrics,
                         mode=modes[0] if single else modes, sampler=TrialSeededSampler(config),
                         study_name=config.name, storage=RDBStorage(self.storage_url))

    @property
    def study(self) -> optuna.Study:
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.stopped:
            return self.FINISHED
        if self.config.race is not None:
            with self.run_dir.lock("queue"):
                turn = race_round(self.study, self.config)
            # A grid has no new points to sample: its study ends with its race (other samplers sample anew).
            if self.config.sampler == "grid" and turn.queued == turn.waiting == 0:
                return None if turn.running else self.FINISHED  # None: ask again once a running trial ends
        if super().suggest(trial_id) is None:
            return None
        trial = self._ot_trials[trial_id]
        trial.set_user_attr(attributes.RAY_EXPERIMENT, self.experiment)
        trial.set_user_attr(attributes.RAY_TRIAL_ID, trial_id)
        start = self.space_sampler.starts.pop(trial.number)
        suggestion = {"number": trial.number, "seed": start.seed, "params": {**trial.params, **self.config.fix}}
        if start.twin is not None:  # drawn again with a seed it was trained with: the worker reports the twin's result
            suggestion[TWIN] = {"number": start.twin.number, "attrs": dict(start.twin.attrs)}
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Intermediate mIoUs become Optuna intermediate values (single objective only, as in Optuna)."""
        if STEP in result and OUTCOME not in result and len(self.config.objectives) == 1:
            self._ot_trials[trial_id].report(result["miou"], result[STEP])

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        trial = self._ot_trials.get(trial_id)
        if trial is None or trial_id in self._completed_trials:
            return
        self._completed_trials.add(trial_id)
        if self._storage.get_trial(trial._trial_id).state.is_finished():
            return  # told before an interruption; the restored run ran it again
        if result is None and not error:
            requeue(self.study, self._storage.get_trial(trial._trial_id))
        else:
            outcome = self._outcome(result, error)
            if outcome.state == "PRUNED" and STEP in result and len(self.config.objectives) == 1:
                trial.report(result["miou"], result[STEP])  # the result that made the scheduler stop it
            ending = finish_trial(trial, self.config, outcome, record=True)
            self.stopped = self.stopped or outcome.bad_input
            values = ending.values[0] if ending.values is not None and len(ending.values) == 1 else ending.values
            self.study.tell(trial, values, state=ending.state)
        write_trials_csv(self.study, self.run_dir)

    def _outcome(self, result: dict[str, Any] | None, error: bool) -> Outcome:
        outcome = outcome_of(result)
        if not error:
            return outcome
        reason = ("Ray Tune: the trial's worker failed; the Ray logs under "
                  f"{self.run_dir.root / 'ray' / self.experiment} say why")
        return Outcome(FAIL, {**outcome.attrs, attributes.FAIL_REASON: reason})

    def save(self, checkpoint_path: str) -> None:
        """Only what the storage lacks: which Ray trial is which Optuna trial, and which have ended."""
        state = {"trials": {trial_id: trial._trial_id for trial_id, trial in self._ot_trials.items()},
                 "completed": set(self._completed_trials)}
        with open(checkpoint_path, "wb") as file:
            pickle.dump(state, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            state = pickle.load(file)
        self._completed_trials = state["completed"]
        self._ot_trials = {trial_id: optuna.Trial(self.study, storage_id)
                           for trial_id, storage_id in state["trials"].items() if trial_id not in state["completed"]}

    @classmethod
    def saved_trials(cls, experiment_dir: Path) -> set[int]:
        """Storage ids of the Optuna trials in the experiment's last searcher snapshot (what a restore knows)."""
        paths = glob.glob(os.path.join(experiment_dir, cls.CKPT_FILE_TMPL.format("*")))
        if not paths:
            return set()
        with open(max(paths, key=os.path.getmtime), "rb") as file:
            return set(pickle.load(file)["trials"].values())

    def __getstate__(self) -> dict[str, Any]:
        """Ray pickles the searcher into the experiment (tuner.pkl); the study is reopened, not pickled."""
        state = self.__dict__.copy()
        for key in ("_ot_study", "_storage", "_ot_trials"):
            state.pop(key)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._storage = RDBStorage(self.storage_url)
        self._ot_trials = {}
        self._setup_study(self._mode)
