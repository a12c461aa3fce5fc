"""Reading a run directory: trials.csv typed and checked, and the objectives from study.yaml."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from archsearch.errors import SpecError
from archsearch.arch.spec import read_yaml

TRIAL_STATES = ("COMPLETE", "FAIL", "PRUNED", "RUNNING", "WAITING", "INFEASIBLE")
TEXT_COLUMNS = ("state", "arch_hash", "fail_reason")
INTEGER_COLUMNS = ("number", "seed", "params_train", "params_deploy", "macs", "receptive_field", "output_stride",
                   "num_classes", "duplicate_of", "latency_retimes")
FLOAT_COLUMNS = ("latency_ms", "miou", "train_seconds", "latency_predicted_ms", "latency_ratio",
                 "latency_predicted_ratio", "latency_reference_ms", "latency_margin")
REQUIRED_COLUMNS = ("number", "state", "arch_hash", "seed", "params_train", "params_deploy", "macs",
                    "receptive_field", "output_stride", "latency_ms", "miou", "train_seconds", "fail_reason")
CHOICE_PREFIX = "param."
OBJECTIVE_METRICS = ("miou", "latency_ms", "latency_ratio", "macs", "params_deploy")
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class StudyHeading:
    """The two things a report needs from study.yaml: its name and what it optimises."""

    name: str
    objectives: list[tuple[str, str]]


def load_trials(run_dir: Path) -> pd.DataFrame:
    """Read ``run_dir/trials.csv`` with typed columns; integer columns are nullable (``Int64``).

    ``param.*`` columns become integers, floats or strings, whichever all their values fit.
    A missing file, a missing column or a value of the wrong kind is a SpecError naming it.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SpecError("no such run directory", value=str(run_dir),
                        allowed="a directory written by a study, holding trials.csv")
    path = run_dir / "trials.csv"
    source = str(path)
    if not path.is_file():
        raise SpecError("no trials.csv in the run directory", source=source,
                        allowed="a run directory the study has started writing")
    try:
        with warnings.catch_warnings():
            # Without this, a first row longer than the header silently becomes the index.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, index_col=False)
    except pd.errors.EmptyDataError:
        raise SpecError("the file is empty", source=source,
                        allowed=f"a header with the columns {', '.join(REQUIRED_COLUMNS)}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.ParserWarning) as error:
        message = " ".join(str(error).split())
        raise SpecError(f"cannot read it as CSV: {message}", source=source) from None
    missing = [column for column in REQUIRED_COLUMNS if column not in raw.columns]
    if missing:
        raise SpecError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}", source=source,
                        allowed=f"required columns {', '.join(REQUIRED_COLUMNS)}, then param.<name> columns")
    trials = pd.DataFrame(index=raw.index)
    for column in raw.columns:
        if column in TEXT_COLUMNS:
            trials[column] = raw[column].str.strip()
        elif column in INTEGER_COLUMNS:
            trials[column] = _integers(raw[column], column, source)
        elif column in FLOAT_COLUMNS:
            trials[column] = _floats(raw[column], column, source)
        elif column.startswith(CHOICE_PREFIX):
            trials[column] = _choice_values(raw[column])
    _check_rows(trials, source)
    return trials


def _line(index: Any) -> int:
    """The file line of a data row: the header is line 1."""
    return int(index) + 2


def _floats(text: pd.Series, column: str, source: str) -> pd.Series:
    text = text.str.strip()
    present = text != ""
    values = pd.to_numeric(text.where(present), errors="coerce").astype("float64")
    bad = present & values.isna() & (text.str.lower() != "nan")
    if bad.any():
        index = bad.idxmax()
        raise SpecError("not a number", source=source, path=f"line {_line(index)}, column {column}",
                        value=text[index], allowed="a number, or empty")
    return values


def _integers(text: pd.Series, column: str, source: str) -> pd.Series:
    values = _floats(text, column, source)
    whole = np.isfinite(values) & (np.floor(values) == values) & (values.abs() < 2**63)
    fractional = values.notna() & ~whole  # 1.5, inf, 1e400, beyond int64
    if fractional.any():
        index = fractional.idxmax()
        raise SpecError("not a whole number", source=source, path=f"line {_line(index)}, column {column}",
                        value=text[index], allowed="an integer, or empty")
    return values.astype("Int64")


def _choice_values(text: pd.Series) -> pd.Series:
    """Integers if every value is one, else floats if every value is a number, else strings; empty is NA."""
    present = text != ""
    numbers = pd.to_numeric(text[present], errors="coerce")
    if numbers.isna().any():
        return text.where(present)
    if pd.api.types.is_integer_dtype(numbers.dtype):
        return pd.to_numeric(text.where(present)).astype("Int64")
    return pd.to_numeric(text.where(present)).astype("float64")


def _check_rows(trials: pd.DataFrame, source: str) -> None:
    """Catch rows a report would silently misread: unknown states, unnamed or unscored completes."""
    unknown = ~trials["state"].isin(TRIAL_STATES)
    if unknown.any():
        index = unknown.idxmax()
        raise SpecError("unknown trial state", source=source, path=f"line {_line(index)}, column state",
                        value=trials.at[index, "state"], allowed=", ".join(TRIAL_STATES))
    unnumbered = trials["number"].isna()
    if unnumbered.any():
        raise SpecError("a trial needs a number", source=source,
                        path=f"line {_line(unnumbered.idxmax())}, column number", allowed="an integer")
    repeated = trials["number"].duplicated()
    if repeated.any():
        index = repeated.idxmax()
        raise SpecError("trial number appears twice", source=source, path=f"line {_line(index)}, column number",
                        value=int(trials.at[index, "number"]), allowed="one row per trial")
    complete = trials["state"] == "COMPLETE"
    for column in ("arch_hash", "miou"):
        empty = complete & (trials[column].isna() | (trials[column].astype(str) == ""))
        if empty.any():
            raise SpecError("a COMPLETE trial needs a value here", source=source,
                            path=f"line {_line(empty.idxmax())}, column {column}")


def load_study_heading(run_dir: Path) -> StudyHeading:
    """Name and objectives from ``run_dir/study.yaml`` (the rest of the study file is not needed here)."""
    path = Path(run_dir) / "study.yaml"
    source = str(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError("a study must be a mapping", source=source, value=type(data).__name__,
                        allowed="a mapping with name and objectives")
    objectives = data.get("objectives")
    if not isinstance(objectives, list) or not 1 <= len(objectives) <= 2:
        raise SpecError("expected one or two objectives", source=source, path="objectives", value=objectives,
                        allowed="a list of {metric: ..., direction: ...}")
    pairs = []
    for position, objective in enumerate(objectives):
        path_here = f"objectives[{position}]"
        if not isinstance(objective, dict):
            raise SpecError("an objective must be a mapping", source=source, path=path_here, value=objective,
                            allowed="{metric: ..., direction: ...}")
        metric, direction = objective.get("metric"), objective.get("direction")
        if metric not in OBJECTIVE_METRICS:
            raise SpecError("unknown metric", source=source, path=f"{path_here}.metric", value=metric,
                            allowed=", ".join(OBJECTIVE_METRICS))
        if direction not in DIRECTIONS:
            raise SpecError("unknown direction", source=source, path=f"{path_here}.direction", value=direction,
                            allowed=", ".join(DIRECTIONS))
        pairs.append((metric, direction))
    return StudyHeading(name=str(data.get("name", Path(run_dir).name)), objectives=pairs)
