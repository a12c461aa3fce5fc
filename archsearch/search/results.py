"""trials.csv: one row per trial, derived from the study's storage alone and replaced atomically."""

from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from archsearch.io import write_atomic
from archsearch.report.run_files import FLOAT_PREFIXES
from archsearch.run.directory import TRIAL_COLUMNS, RunDirectory


def trial_state(trial: FrozenTrial) -> str:
    """Optuna's state name, except that a COMPLETE trial over a constraint is INFEASIBLE."""
    if trial.state == TrialState.COMPLETE and trial.user_attrs.get("infeasible"):
        return "INFEASIBLE"
    return trial.state.name


def trial_row(trial: FrozenTrial) -> dict:
    attrs = trial.user_attrs
    row = {column: attrs.get(column) for column in TRIAL_COLUMNS}
    row["number"] = trial.number
    row["state"] = trial_state(trial)
    if trial.state == TrialState.FAIL and not attrs.get("fail_reason"):
        row["fail_reason"] = ("interrupted; queued again" if attrs.get("interrupted")
                              else "the process running it died; queued again")
    if trial.state == TrialState.PRUNED and not attrs.get("fail_reason"):
        intermediate = trial.intermediate_values
        if intermediate:
            step = max(intermediate)
            row["fail_reason"] = f"pruned at step {step} (mIoU {intermediate[step]:.4f})"
    for name, value in trial.params.items():
        row[f"param.{name}"] = value
    row.update({key: value for key, value in attrs.items() if key.startswith(FLOAT_PREFIXES)})
    return row


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    rows = [trial_row(trial) for trial in study.get_trials(deepcopy=False)]
    frame = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))
    if rows:
        frame = pd.DataFrame(rows)
        ordered = list(TRIAL_COLUMNS) + sorted(column for column in frame.columns if column not in TRIAL_COLUMNS)
        frame = frame.reindex(columns=ordered)
    return frame


def write_trials_csv(study: optuna.Study, run_dir: RunDirectory) -> None:
    """Read the storage and replace the table under one lock, so that of two processes of a study the
    later writer always read the later storage (unlocked, an older table could replace a newer one)."""
    with run_dir.lock("trials"):
        frame = trials_frame(study)
        write_atomic(run_dir.trials_csv, lambda temporary: frame.to_csv(temporary, index=False))
