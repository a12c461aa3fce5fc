"""trials.csv: one row per trial, written from the study's storage and read back with the same typed schema.

``COLUMNS`` is the one declaration of the table: a column's name (the trial attribute it
comes from) and its kind; a metric's kind is the metric registry's (``study.metrics``), and every
metric of the registry has a column. Integer columns are written and read as integers (nullable), so a
trial without a value leaves its cell empty instead of turning the column into floats. Adding
a column is one line here. Float columns named by a prefix follow, one per name a trial
recorded: ``proxy.<name>`` (a zero-cost proxy at initialization) and ``miou_at.<step>`` (an
evaluation before the last); then ``param.<name>`` columns, one per sampled choice.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from archsearch.errors import SpecError
from archsearch.io import write_atomic
from archsearch.run import attributes
from archsearch.study.metrics import METRIC_INFO, REGISTRY

if TYPE_CHECKING:  # reading the table (report, fidelity) needs neither the study file nor torch
    from archsearch.run.directory import RunDirectory

Kind = Literal["integer", "float", "text"]
DTYPES: dict[str, str] = {"integer": "Int64", "float": "float64", "text": "object"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = False  # older tables lack the others; they read back empty


def metric_column(name: str, *, required: bool = False) -> Column:
    """A metric's column, of the kind the metric registry gives it."""
    return Column(name, METRIC_INFO[name].kind, required)


_LISTED: tuple[Column, ...] = (
    Column("number", "integer", required=True),
    Column("state", "text", required=True),
    Column("arch_hash", "text", required=True),
    Column("seed", "integer", required=True),
    metric_column("params_train", required=True),
    metric_column("params_deploy", required=True),
    metric_column("macs", required=True),
    metric_column("receptive_field", required=True),
    metric_column("output_stride", required=True),
    metric_column("latency_ms", required=True),
    metric_column("miou", required=True),
    Column("train_seconds", "float", required=True),
    Column("fail_reason", "text", required=True),
    Column("num_classes", "integer"),
    Column("latency_predicted_ms", "float"),
    Column("duplicate_of", "integer"),
    Column("data_wait_fraction", "float"),    # share of training time spent waiting for the next batch
    Column("latency_iqr_ms", "float"),        # the trial's own latency record: spread, repeats, where and how
    Column("latency_repeats", "integer"),
    Column("latency_device", "text"),
    Column("latency_node_id", "text"),       # the Ray node that timed it (latency.placement), and its host
    Column("latency_host", "text"),
    Column("latency_backend", "text"),
    Column("latency_settings", "text"),       # LatencySettings as canonical JSON
    metric_column("latency_ratio"),         # with a relative budget: latency / the reference's, same rounds
    Column("latency_predicted_ratio", "float"),
    Column("latency_reference", "text"),      # the reference network: a preset name or a spec file
    Column("latency_reference_ms", "float"),
    Column("latency_margin", "float"),        # (budget - value) / budget of the tightest latency budget
    Column("latency_retimes", "integer"),     # re-timings of a ratio over the budget within its noise band
    Column("recipe", "text"),                 # the settings' fingerprint it was trained with (run.guard)
    metric_column("supernet_miou"),         # its subnet of the study's supernet, recalibrated (supernet:)
    Column("runtime", "text"),                # OpenMP's waiting and torch threads, as JSON (archsearch.runtime)
    metric_column("miou_best"),             # the best of the trial's evaluations (what RegSeg reports)
    Column("miou_best_step", "integer"),      # the step of that evaluation
    Column(attributes.NODE_ID, "text"),       # the Ray node the trial ran (trained) on
)
COLUMNS: tuple[Column, ...] = _LISTED + tuple(metric_column(metric.name) for metric in REGISTRY
                                              if metric.name not in {column.name for column in _LISTED})
"""Every column in order: those listed, then every other metric of the registry (a new metric's column)."""
COLUMN_NAMES = tuple(column.name for column in COLUMNS)
REQUIRED_COLUMNS = tuple(column.name for column in COLUMNS if column.required)
CHOICE_PREFIX = "param."
FLOAT_PREFIXES = (attributes.PROXY_PREFIX, attributes.INTERMEDIATE_PREFIX)
TRIAL_STATES = ("COMPLETE", "FAIL", "PRUNED", "RUNNING", "WAITING", "INFEASIBLE")


# ----- writing, from the study's storage -----------------------------------------------------------------

def trial_state(trial: Any) -> str:
    """Optuna's state name, except that a COMPLETE trial over a constraint is INFEASIBLE."""
    if trial.state.name == "COMPLETE" and trial.user_attrs.get(attributes.INFEASIBLE):
        return "INFEASIBLE"
    return trial.state.name


def trial_row(trial: Any) -> dict[str, Any]:
    """One Optuna FrozenTrial as a row: its attributes, its state and a reason for every non-success."""
    attrs = trial.user_attrs
    row = {name: attrs.get(name) for name in COLUMN_NAMES}
    row["number"] = trial.number
    row["state"] = trial_state(trial)
    if trial.state.name == "FAIL" and not attrs.get(attributes.FAIL_REASON):
        if attrs.get(attributes.STOPPED_BY):
            row[attributes.FAIL_REASON] = f"stopped: {attrs[attributes.STOPPED_BY]}" + (
                "; queued again" if trial.params else "")
        else:
            row[attributes.FAIL_REASON] = ("interrupted; queued again" if attrs.get(attributes.INTERRUPTED)
                                           else "the process running it died; queued again")
    if trial.state.name == "PRUNED" and not attrs.get(attributes.FAIL_REASON):
        intermediate = trial.intermediate_values
        if intermediate:
            step = max(intermediate)
            row[attributes.FAIL_REASON] = f"pruned at step {step} (mIoU {intermediate[step]:.4f})"
    row.update({name: value for name, value in attrs.items() if name.startswith(FLOAT_PREFIXES)})
    for name, value in trial.params.items():
        row[f"{CHOICE_PREFIX}{name}"] = value
    return row


def trials_frame(trials: list[Any]) -> pd.DataFrame:
    """The table of ``trials`` (Optuna FrozenTrials), typed by ``COLUMNS``."""
    rows = [trial_row(trial) for trial in trials]
    measured = sorted({name for row in rows for name in row if name.startswith(FLOAT_PREFIXES)})
    choices = sorted({name for row in rows for name in row if name.startswith(CHOICE_PREFIX)})
    frame = pd.DataFrame(rows, columns=[*COLUMN_NAMES, *measured, *choices])
    # A choice of integers stays integers where some trials have no value (one that failed before sampling).
    whole = [name for name in choices
             if all(isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                    for value in (row.get(name) for row in rows) if value is not None)]
    return frame.astype({**{column.name: DTYPES[column.kind] for column in COLUMNS},
                         **{name: DTYPES["float"] for name in measured}, **{name: DTYPES["integer"] for name in whole}})


def write_trials_csv(study: Any, run_dir: RunDirectory) -> None:
    """Read the storage (an Optuna study) and replace the table under one lock, so that of two processes of
    a study the later writer always read the later storage (unlocked, an older table could replace a newer one)."""
    with run_dir.lock("trials"):
        frame = trials_frame(study.get_trials(deepcopy=False))
        write_atomic(run_dir.trials_csv, lambda temporary: frame.to_csv(temporary, index=False))


# ----- reading ---------------------------------------------------------------------------------------------

def load_trials(run_dir: Path) -> pd.DataFrame:
    """Read ``run_dir/trials.csv`` typed by ``COLUMNS``; a column the file lacks (an older table) reads as empty.

    ``param.*`` columns become integers, floats or strings, whichever all their values fit; ``proxy.*``
    and ``miou_at.*`` columns are floats.
    A missing file, a missing required column or a value of the wrong kind is a SpecError naming it.
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
    if not path.read_bytes().endswith(b"\n"):  # archsearch ends every line; a file cut short does not
        raise SpecError("the file ends in the middle of a line (cut short?)", source=source,
                        allowed="a trials.csv whose every line is whole, as `archsearch run` writes it")
    missing = [column for column in REQUIRED_COLUMNS if column not in raw.columns]
    if missing:
        raise SpecError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}", source=source,
                        allowed=f"required columns {', '.join(REQUIRED_COLUMNS)}, then param.<name> columns")
    trials = pd.DataFrame(index=raw.index)
    for column in COLUMNS:
        text = raw[column.name] if column.name in raw.columns else pd.Series("", index=raw.index)
        trials[column.name] = _READERS[column.kind](text, column.name, source)
    for name in raw.columns:
        if name.startswith(FLOAT_PREFIXES):
            trials[name] = _floats(raw[name], name, source)
        elif name.startswith(CHOICE_PREFIX):
            trials[name] = _choice_values(raw[name])
    _check_rows(trials, source)
    return trials


def _line(index: Any) -> int:
    """The file line of a data row: the header is line 1."""
    return int(index) + 2


def _texts(text: pd.Series, column: str, source: str) -> pd.Series:
    return text.str.strip()  # empty is "", as written


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
    """Whole numbers, also as older tables wrote them (``672131.0``)."""
    values = _floats(text, column, source)
    whole = np.isfinite(values) & (np.floor(values) == values) & (values.abs() < 2**63)
    fractional = values.notna() & ~whole  # 1.5, inf, 1e400, beyond int64
    if fractional.any():
        index = fractional.idxmax()
        raise SpecError("not a whole number", source=source, path=f"line {_line(index)}, column {column}",
                        value=text[index], allowed="an integer, or empty")
    return values.astype("Int64")


_READERS = {"integer": _integers, "float": _floats, "text": _texts}


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
    # A study that trains nothing (``training: none``, ranked by a proxy) has no mIoU at all.
    trained = trials.loc[complete, "miou"].notna().any()
    for column in ("arch_hash", "miou") if trained else ("arch_hash",):
        empty = complete & (trials[column].isna() | (trials[column].astype(str) == ""))
        if empty.any():
            raise SpecError("a COMPLETE trial needs a value here", source=source,
                            path=f"line {_line(empty.idxmax())}, column {column}")
