"""Ranking COMPLETE trials: seeds pooled per architecture, and the Pareto front of any objectives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from archsearch.errors import SpecError
from archsearch.run.trials_table import CHOICE_PREFIX
from archsearch.search.config import DIRECTIONS

ARCHITECTURE_COLUMNS = ("latency_ms", "macs", "params_deploy", "params_train", "receptive_field", "output_stride")


def summarize(trials: pd.DataFrame, *, group_seeds: bool = True) -> pd.DataFrame:
    """COMPLETE trials ranked by mIoU, best first.

    When some architecture ran more than once (several seeds) and ``group_seeds`` is set,
    rows are architectures: ``miou_mean``, ``miou_std`` (ddof=1, NaN for one run), ``runs``,
    the median ``latency_ms`` and the architecture's own columns. Runs are grouped by
    ``arch_hash`` together with every ``param.*`` choice, so a sampled choice that does not
    change the architecture (a learning rate) keeps its runs apart. Otherwise rows are
    trials and keep ``number``, ``seed`` and ``miou``. A trial that repeats an earlier one
    (same architecture, choices and seed) is left out.
    """
    choices = [column for column in trials.columns if column.startswith(CHOICE_PREFIX)]
    complete = trials[trials["state"] == "COMPLETE"].sort_values("number", kind="stable")
    keys = ["arch_hash", *choices]
    # The same architecture and choices with the same seed is the same run, counted once.
    complete = complete.drop_duplicates([*keys, "seed"], keep="first")
    if not group_seeds or not complete.duplicated(keys).any():
        columns = ["number", "arch_hash", "seed", "miou", *ARCHITECTURE_COLUMNS, *choices]
        table = complete[columns].sort_values("miou", ascending=False, kind="stable", na_position="last")
        return table.reset_index(drop=True)
    aggregations = {"miou_mean": ("miou", "mean"), "miou_std": ("miou", "std"), "runs": ("miou", "size"),
                    "latency_ms": ("latency_ms", "median")}
    aggregations.update({column: (column, "first") for column in ARCHITECTURE_COLUMNS if column != "latency_ms"})
    table = complete.groupby(keys, sort=False, dropna=False).agg(**aggregations).reset_index()
    table = table[["arch_hash", "miou_mean", "miou_std", "runs", *ARCHITECTURE_COLUMNS, *choices]]
    return table.sort_values("miou_mean", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


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
