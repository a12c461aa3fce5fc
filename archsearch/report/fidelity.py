"""How well a cheap estimate orders architectures the way the expensive measurement does.

A search trusts a short schedule, a low resolution or a zero-cost proxy to rank
architectures; this module measures that trust on architectures measured both ways
(the statistics themselves are in archsearch.report.statistics). Every estimate is read as
"higher predicts better", so a cost that grows with accuracy (parameters, MACs) scores a
positive tau, and one that shrinks with it a negative one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from archsearch.errors import SpecError
from archsearch.run.attributes import INTERMEDIATE_PREFIX
from archsearch.run.trials_table import FLOAT_PREFIXES, load_trials
from archsearch.report.statistics import (bootstrap_interval, kendall_tau, kendall_taus, spearman_rho, spearman_rhos,
                                   top_k_overlap)

COST_ESTIMATES = ("params_train", "params_deploy", "macs", "latency_ms")
LEAST_ARCHITECTURES = 3


@dataclass(frozen=True)
class Agreement:
    """One estimate's agreement with a reference ranking over ``n`` architectures."""

    estimate: str
    against: str
    n: int
    kendall_tau: float
    kendall_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    top1: float
    top3: float
    top_quarter: float
    quarter: int

    def to_json(self) -> dict:
        """Plain data; an undefined statistic (a constant estimate) is None."""

        def number(value: float) -> float | None:
            return None if math.isnan(value) else float(value)

        return {"estimate": self.estimate, "against": self.against, "n": self.n,
                "kendall_tau": number(self.kendall_tau), "kendall_ci": [number(v) for v in self.kendall_ci],
                "spearman": number(self.spearman), "spearman_ci": [number(v) for v in self.spearman_ci],
                "top1": number(self.top1), "top3": number(self.top3),
                "top_quarter": number(self.top_quarter), "quarter": self.quarter}


def agreement(estimate: np.ndarray, reference: np.ndarray, *, estimate_name: str, against: str) -> Agreement:
    """Every statistic of one estimate against one reference, paired by position."""
    estimate = np.asarray(estimate, dtype="float64")
    reference = np.asarray(reference, dtype="float64")
    if len(estimate) < LEAST_ARCHITECTURES:
        raise SpecError(f"{len(estimate)} architectures are too few to compare rankings", path=estimate_name,
                        allowed=f"at least {LEAST_ARCHITECTURES} architectures measured both ways")
    quarter = max(1, len(reference) // 4)
    return Agreement(
        estimate=estimate_name, against=against, n=len(reference),
        kendall_tau=kendall_tau(estimate, reference), kendall_ci=bootstrap_interval(kendall_taus, estimate, reference),
        spearman=spearman_rho(estimate, reference), spearman_ci=bootstrap_interval(spearman_rhos, estimate, reference),
        top1=top_k_overlap(estimate, reference, 1), top3=top_k_overlap(estimate, reference, 3),
        top_quarter=top_k_overlap(estimate, reference, quarter), quarter=quarter)


def architecture_means(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture (index ``arch_hash``) of COMPLETE trials, numbers averaged over seeds.

    A repeated run (same architecture and seed) counts once, as in the report.
    """
    complete = trials[trials["state"] == "COMPLETE"].sort_values("number", kind="stable")
    complete = complete.drop_duplicates(["arch_hash", "seed"], keep="first")
    columns = ["miou", *(column for column in COST_ESTIMATES if column in complete.columns),
               *(column for column in complete.columns if column.startswith(FLOAT_PREFIXES))]
    numbers = complete[columns].apply(pd.to_numeric, errors="coerce").astype("float64")
    return numbers.groupby(complete["arch_hash"], sort=True).mean()


def estimate_columns(means: pd.DataFrame) -> list[str]:
    """The cheap estimates a run recorded: proxies, then costs, then earlier evaluations by step."""
    proxies = sorted(column for column in means.columns
                     if column.startswith(FLOAT_PREFIXES) and not column.startswith(INTERMEDIATE_PREFIX))
    costs = [column for column in COST_ESTIMATES if column in means.columns]
    steps = sorted((column for column in means.columns if column.startswith(INTERMEDIATE_PREFIX)),
                   key=lambda column: float(column.removeprefix(INTERMEDIATE_PREFIX)))
    return [column for column in (*proxies, *costs, *steps) if means[column].notna().any()]


def run_fidelity(run_dir: Path) -> tuple[list[Agreement], list[str]]:
    """Each recorded estimate of one run against its final mIoU; also the estimates left out and why."""
    means = architecture_means(load_trials(run_dir))
    _check_count(len(means), f"{run_dir} has {len(means)} complete architecture(s)")
    agreements, skipped = [], []
    for column in estimate_columns(means):
        both = means[[column, "miou"]].dropna()
        if len(both) < LEAST_ARCHITECTURES:
            skipped.append(f"{column}: recorded for {len(both)} architecture(s)")
            continue
        agreements.append(agreement(both[column].to_numpy(), both["miou"].to_numpy(),
                                    estimate_name=column, against="miou"))
    return agreements, skipped


def runs_fidelity(run_a: Path, run_b: Path) -> Agreement:
    """The mIoU ranking of ``run_a`` (the cheap one) against that of ``run_b`` over their common architectures."""
    means_a = architecture_means(load_trials(run_a))["miou"]
    means_b = architecture_means(load_trials(run_b))["miou"]
    common = means_a.index.intersection(means_b.index)
    _check_count(len(common), f"{run_a} ({len(means_a)}) and {run_b} ({len(means_b)}) have {len(common)} "
                              "complete architecture(s) in common")
    return agreement(means_a[common].to_numpy(), means_b[common].to_numpy(),
                     estimate_name=f"miou ({Path(run_a).name})", against=f"miou ({Path(run_b).name})")


def _check_count(count: int, what: str) -> None:
    if count < LEAST_ARCHITECTURES:
        raise SpecError(f"{what}; a ranking needs at least {LEAST_ARCHITECTURES}",
                        allowed="runs with more complete architectures (matched by arch_hash)")
