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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search.optuna import OptunaSearch

from archsearch.errors import SpecError
from archsearch.search.config import StudyConfig
from archsearch.search.optuna_driver import (OptunaSuggester, TrialSeededSampler, objective_values,
                                             record_constraints, storage_url, trained_twin)
from archsearch.search.ray.trial import BAD_INPUT, FAIL_REASON, OUTCOME, RECORDED_KEYS, STEP, TWIN, ending
from archsearch.search.results import write_trials_csv
from archsearch.run.directory import RunDirectory
from archsearch.run.guard import RECIPE_ATTR, StudyIdentity
from archsearch.search.trial import TrialMetrics
from archsearch.space.sampling import sample

EXPERIMENT_ATTR = "ray_experiment"
RAY_TRIAL_ATTR = "ray_trial_id"


@dataclass(frozen=True)
class SpaceSampler:
    """The define-by-run function: samples the space through the Optuna trial OptunaSearch hands it.

    A fresh valid point queues its other seeds, as in the Optuna backend. A structural error
    in the space is left to the worker, which replays the same values, meets the same error
    and records it as the trial's fail reason.
    """

    config: StudyConfig

    def __call__(self, trial: optuna.Trial) -> None:
        try:
            point = sample(self.config.space, OptunaSuggester(trial, dict(self.config.fix)))
        except SpecError:
            point = None
        if "seed" in trial.user_attrs:
            return
        trial.set_user_attr("seed", self.config.seeds[0])
        if point is not None and point.valid:
            for seed in self.config.seeds[1:]:
                trial.study.enqueue_trial(trial.params, user_attrs={"seed": seed})


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Fail a trial whose run was lost (no fail reason, so it does not count) and queue its point again."""
    study.tell(trial.number, state=TrialState.FAIL)
    study.enqueue_trial(trial.params, user_attrs={"seed": trial.user_attrs.get("seed"), "retry_of": trial.number},
                        skip_if_exists=False)


class StudySearcher(OptunaSearch):
    """Suggests ``{number, seed, params}`` per Ray trial and records each ending in the Optuna study."""

    def __init__(self, config: StudyConfig, run_dir: RunDirectory, experiment: str) -> None:
        self.config = config
        self.run_dir = run_dir
        self.experiment = experiment
        self.storage_url = storage_url(config, run_dir)
        self.stopped = False  # by bad input: no more trials start, as in the Optuna backend
        self.recipe = StudyIdentity.of(config).recipe
        metrics = [objective.metric for objective in config.objectives]
        modes = ["max" if objective.direction == "maximize" else "min" for objective in config.objectives]
        single = len(metrics) == 1
        super().__init__(SpaceSampler(config), metric=metrics[0] if single else metrics,
                         mode=modes[0] if single else modes, sampler=TrialSeededSampler(config),
                         study_name=config.name, storage=RDBStorage(self.storage_url))

    @property
    def study(self) -> optuna.Study:
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.stopped:
            return self.FINISHED
        if super().suggest(trial_id) is None:
            return None
        trial = self._ot_trials[trial_id]
        trial.set_user_attr(EXPERIMENT_ATTR, self.experiment)
        trial.set_user_attr(RAY_TRIAL_ATTR, trial_id)
        trial.set_user_attr(RECIPE_ATTR, self.recipe)
        suggestion = {"number": trial.number, "seed": trial.user_attrs["seed"],
                      "params": {**trial.params, **self.config.fix}}
        twin = trained_twin(trial, trial.user_attrs["seed"])
        if twin is not None:  # drawn again with a seed it was trained with: the worker reports the twin's result
            suggestion[TWIN] = {"number": twin.number, "attrs": dict(twin.user_attrs)}
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
            self._tell(trial, result or {}, "FAIL" if error else ending(result))
        write_trials_csv(self.study, self.run_dir)

    def _tell(self, trial: optuna.Trial, result: dict[str, Any], state: str) -> None:
        for key in RECORDED_KEYS:
            if result.get(key) is not None and (key != "miou" or state == "COMPLETE"):
                trial.set_user_attr(key, result[key])  # a stopped trial's mIoU is intermediate, not its score
        if result.get("constraint_violations"):
            record_constraints(trial, self.config, result["constraint_violations"])
        if state == "FAIL":
            self.stopped = self.stopped or bool(result.get(BAD_INPUT))
            if not result.get(FAIL_REASON):
                trial.set_user_attr(FAIL_REASON, "Ray Tune: the trial's worker failed; the Ray logs under "
                                                 f"{self.run_dir.root / 'ray' / self.experiment} say why")
            self.study.tell(trial, state=TrialState.FAIL)
        elif state == "PRUNED":
            if STEP in result and len(self.config.objectives) == 1:
                trial.report(result["miou"], result[STEP])  # the result that made the scheduler stop it
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            values = objective_values(self.config, TrialMetrics.from_attrs(result), infeasible=state == "INFEASIBLE")
            self.study.tell(trial, values[0] if len(values) == 1 else values)

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
