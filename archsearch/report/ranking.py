"""Ranking COMPLETE trials: seeds pooled per architecture, and the Pareto front of any objectives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from archsearch.errors import SpecError
from archsearch.run.attributes import PROXY_PREFIX
from archsearch.run.trials_table import CHOICE_PREFIX
from archsearch.study.metrics import ARCHITECTURE_METRICS, DIRECTIONS, MEDIAN_METRICS, SCORE_METRICS
from archsearch.report.statistics import t_interval, tied_with

ARCHITECTURE_COLUMNS = ARCHITECTURE_METRICS
MEDIAN_COLUMNS = MEDIAN_METRICS
"""Measured again with every seed of an architecture: the median of its runs stands for it."""
SCORE_COLUMNS = SCORE_METRICS
"""Scores besides mIoU a trial may record (a supernet study ranks by its subnet's), kept (mean over seeds)."""


def summarize(trials: pd.DataFrame, *, group_seeds: bool = True,
              rank_by: tuple[str, str] = ("miou", "maximize")) -> pd.DataFrame:
    """COMPLETE trials ranked by mIoU (or the ``rank_by`` (metric, direction) of a study that trains
    nothing, such as a proxy), best first.

    When some architecture ran more than once (several seeds) and ``group_seeds`` is set,
    rows are architectures: ``miou_mean``, ``miou_std`` (ddof=1, NaN for one run), ``runs``,
    the median ``latency_ms`` and ``latency_ratio`` and the architecture's own columns. Runs are grouped by
    ``arch_hash`` together with every ``param.*`` choice, so a sampled choice that does not
    change the architecture (a learning rate) keeps its runs apart. Otherwise rows are
    trials and keep ``number``, ``seed`` and ``miou``. A trial that repeats an earlier one
    (same architecture, choices and seed) is left out.

    Both kinds carry ``miou_ci_low``/``miou_ci_high`` (the 95% Student-t interval over seeds,
    empty for one seed) and ``tied_with_best`` (True for the best row and for rows a Welch
    t-test cannot tell from it; empty where either has one seed), see archsearch.report.statistics.
    """
    choices = [column for column in trials.columns if column.startswith(CHOICE_PREFIX)]
    # A run without a relative latency budget (or from before them) has no ratios.
    trials = trials.reindex(columns=[*trials.columns, *(c for c in ARCHITECTURE_COLUMNS if c not in trials.columns)])
    proxies = [column for column in trials.columns if column.startswith(PROXY_PREFIX)]
    scores = [column for column in SCORE_COLUMNS if column in trials.columns]
    keys = architecture_keys(trials)
    complete = seed_runs(trials)
    if not group_seeds or not complete.duplicated(keys).any():
        columns = ["number", "arch_hash", "seed", "miou", *scores, *ARCHITECTURE_COLUMNS, *proxies, *choices]
        table = _ranked(complete[columns], rank_by, "miou")
        return _with_intervals(table, table["miou"], np.full(len(table), np.nan), np.ones(len(table)))
    aggregations = {"miou_mean": ("miou", "mean"), "miou_std": ("miou", "std"), "runs": ("miou", "size")}
    aggregations.update({column: (column, "median" if column in MEDIAN_COLUMNS else "first")
                         for column in ARCHITECTURE_COLUMNS})
    aggregations.update({column: (column, "mean") for column in [*scores, *proxies]})  # both depend on the seed
    table = complete.groupby(keys, sort=False, dropna=False).agg(**aggregations).reset_index()
    table = table[["arch_hash", "miou_mean", "miou_std", "runs", *scores, *ARCHITECTURE_COLUMNS, *proxies, *choices]]
    table = _ranked(table, rank_by, "miou_mean")
    return _with_intervals(table, table["miou_mean"], table["miou_std"], table["runs"])


def architecture_keys(trials: pd.DataFrame) -> list[str]:
    """The columns that tell architectures apart: the arch hash and every sampled choice."""
    return ["arch_hash", *(column for column in trials.columns if column.startswith(CHOICE_PREFIX))]


def seed_runs(trials: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials in trial order; the same architecture and choices with the same seed is the same run,
    counted once."""
    complete = trials[trials["state"] == "COMPLETE"].sort_values("number", kind="stable")
    return complete.drop_duplicates([*architecture_keys(trials), "seed"], keep="first")


def row_keys(frame: pd.DataFrame, keys: list[str]) -> list[tuple]:
    """Each row's architecture key as a hashable tuple (a missing choice is None, which equals itself)."""
    return [tuple(None if pd.isna(value) else value for value in row)
            for row in frame[keys].itertuples(index=False, name=None)]


def _ranked(table: pd.DataFrame, rank_by: tuple[str, str], miou_column: str) -> pd.DataFrame:
    metric, direction = rank_by
    column = miou_column if metric == "miou" else metric
    return table.sort_values(column, ascending=direction == "minimize", kind="stable",
                             na_position="last").reset_index(drop=True)


def _with_intervals(table: pd.DataFrame, mean: pd.Series, std: pd.Series, runs: pd.Series) -> pd.DataFrame:
    """Add the interval and tie columns after the mIoU ones; ties are with the best mIoU (none without one)."""
    mean, std, runs = (np.asarray(values, dtype="float64") for values in (mean, std, runs))
    low, high = t_interval(mean, std, runs)
    tied = np.full(len(table), np.nan)
    if not np.isnan(mean).all():
        best = int(np.nanargmax(mean))
        tied = tied_with(mean[best], std[best], int(runs[best]), mean, std, runs)
        tied[best] = True  # the best is tied with itself, however many seeds it has
    position = table.columns.get_loc("runs" if "runs" in table.columns else "miou") + 1
    table.insert(position, "miou_ci_low", low)
    table.insert(position + 1, "miou_ci_high", high)
    flags = pd.array([None if np.isnan(flag) else bool(flag) for flag in tied], dtype="boolean")
    table.insert(position + 2, "tied_with_best", flags)
    return table


def pareto_front(frame: pd.DataFrame, objectives: list[tuple[str, str]]) -> pd.Series:
    """True for rows no other row dominates under (column, direction) objectives.

    A row dominates another when it is at least as good in every objective and better in
    one, so tied rows are all on the front and one objective gives the best row(s). A row
    with a missing objective value is neither on the front nor dominates anything.
    """
    if not objectives:
        raise SpecError("no objectives", path="objectives", value=objectives,
                        allowed="one or more (column, direction) pairs")
    signed = []
    for metric, direction in objectives:
        if metric not in frame.columns:
            raise SpecError("no such column", path="objectives", value=metric, allowed=", ".join(frame.columns))
        if direction not in DIRECTIONS:
            raise SpecError("unknown direction", path=f"objectives.{metric}", value=direction,
                            allowed=", ".join(DIRECTIONS))
        values = pd.to_numeric(frame[metric], errors="coerce").astype("float64").to_numpy()
        signed.append(-values if direction == "maximize" else values)
    costs = np.column_stack(signed)
    usable = ~np.isnan(costs).any(axis=1)
    candidates = costs[usable]
    on_front = np.zeros(len(frame), dtype=bool)
    for row in np.flatnonzero(usable):
        no_worse = (candidates <= costs[row]).all(axis=1)
        better = (candidates < costs[row]).any(axis=1)
        on_front[row] = not (no_worse & better).any()
    return pd.Series(on_front, index=frame.index, name="pareto")


def objective_column(summary: pd.DataFrame, metric: str) -> str:
    """The summary column holding ``metric``: grouped tables hold mIoU as ``miou_mean``."""
    return "miou_mean" if metric == "miou" and "miou_mean" in summary.columns else metric
