"""Which trial an export packages: a named COMPLETE trial, or the best one, optionally under a latency budget."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from archsearch.errors import SpecError
from archsearch.run.study_file import load_study_heading
from archsearch.run.trials_table import load_trials


@dataclass(frozen=True)
class TrialChoice:
    """One COMPLETE trial of a run, with what its export needs from ``trials.csv`` and ``study.yaml``."""

    study_name: str
    number: int
    arch_hash: str
    seed: int
    num_classes: int
    miou: float | None  # None for a supernet study's trial: nothing was trained stand-alone
    latency_ms: float | None
    latency: dict[str, Any] | None  # the trial's own latency record: median, spread, device, backend, settings
    input_size: tuple[int, int]
    supernet_miou: float | None = None  # a supernet study's: the subnet's, inherited weights recalibrated


def select_trial(run_dir: Path, *, trial_number: int | None = None,
                 max_latency_ms: float | None = None) -> TrialChoice:
    """Trial ``trial_number``, or else the best COMPLETE trial by the study's first objective.

    ``max_latency_ms`` keeps only trials whose measured latency is at most that; ties on the
    objective go to the lower trial number. INFEASIBLE, FAIL and PRUNED trials are never chosen.
    """
    run_dir = Path(run_dir)
    trials = load_trials(run_dir)
    heading = load_study_heading(run_dir)
    source = str(run_dir / "trials.csv")
    if trial_number is not None:
        row = _named_trial(trials, trial_number, source)
    else:
        row = _best_trial(trials, heading.objectives[0], max_latency_ms, source)
    if pd.isna(row["num_classes"]):
        raise SpecError(f"trial {int(row['number'])} has no num_classes (trials.csv was written by an older "
                        "archsearch)", source=source, allowed="a run directory written by `archsearch run` "
                        "since it records num_classes")
    latency = row["latency_ms"]
    supernet_miou = row.get("supernet_miou")
    return TrialChoice(study_name=heading.name, number=int(row["number"]), arch_hash=str(row["arch_hash"]),
                       seed=int(row["seed"]), num_classes=int(row["num_classes"]),
                       miou=None if pd.isna(row["miou"]) else float(row["miou"]),
                       latency_ms=None if pd.isna(latency) else float(latency), latency=latency_record(row),
                       input_size=heading.input_size,
                       supernet_miou=None if supernet_miou is None or pd.isna(supernet_miou) else float(supernet_miou))


def latency_record(row: pd.Series) -> dict[str, Any] | None:
    """The latency the trial recorded, with the device and settings it was measured under.

    A trial of an older run recorded only its median; then device and settings are unknown (None).
    """
    if pd.isna(row["latency_ms"]):
        return None
    record: dict[str, Any] = {"median_ms": float(row["latency_ms"]), "iqr_ms": None, "repeats": None,
                              "device_name": None, "backend": None, "settings": None}
    if not pd.isna(row["latency_iqr_ms"]):
        record["iqr_ms"] = float(row["latency_iqr_ms"])
    if not pd.isna(row["latency_repeats"]):
        record["repeats"] = int(row["latency_repeats"])
    record["device_name"] = row["latency_device"] or None
    record["backend"] = row["latency_backend"] or None
    record["settings"] = json.loads(row["latency_settings"]) if row["latency_settings"] else None
    if not pd.isna(row["latency_ratio"]):
        record.update(ratio=float(row["latency_ratio"]), reference=row["latency_reference"] or None,
                      reference_median_ms=float(row["latency_reference_ms"]))
    return record


def _named_trial(trials: pd.DataFrame, number: int, source: str) -> pd.Series:
    rows = trials[trials["number"] == number]
    if rows.empty:
        raise SpecError("no such trial in the run", source="--trial", value=number,
                        allowed=f"a trial number in {source}: {_numbers(trials)}")
    row = rows.iloc[0]
    if row["state"] != "COMPLETE":
        reason = f" ({row['fail_reason']})" if row.get("fail_reason") else ""
        raise SpecError(f"trial {number} is {row['state']}{reason}, so it has no trained weights to export",
                        source="--trial", value=number,
                        allowed=f"a COMPLETE trial: {_numbers(trials[trials['state'] == 'COMPLETE'])}")
    return row


def _best_trial(trials: pd.DataFrame, objective: tuple[str, str], max_latency_ms: float | None,
                source: str) -> pd.Series:
    complete = trials[trials["state"] == "COMPLETE"]
    if complete.empty:
        raise SpecError("the run has no COMPLETE trial to export", source=source,
                        allowed="a run in which at least one trial trained")
    if max_latency_ms is not None:
        measured = complete[complete["latency_ms"].notna()]
        if measured.empty:
            raise SpecError("the run measured no latency, so trials cannot be chosen by it", source="--max-latency",
                            value=max_latency_ms, allowed="a run of a study with a latency: section")
        complete = measured[measured["latency_ms"] <= max_latency_ms]
        if complete.empty:
            fastest = measured["latency_ms"].min()
            raise SpecError("no COMPLETE trial is this fast", source="--max-latency", value=max_latency_ms,
                            allowed=f"at least {math.ceil(fastest * 1000) / 1000:g} ms (the fastest COMPLETE trial)")
    metric, direction = objective
    scored = complete[complete[metric].notna()]
    if scored.empty:
        raise SpecError(f"no COMPLETE trial has a value of the study's first objective {metric}", source=source)
    ordered = scored.sort_values([metric, "number"], ascending=[direction == "minimize", True], kind="stable")
    return ordered.iloc[0]


def _numbers(trials: pd.DataFrame) -> str:
    numbers = [str(number) for number in trials["number"]]
    return ", ".join(numbers) if numbers else "none"
