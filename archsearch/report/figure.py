"""The report's figures, drawn on bare Agg figures (no pyplot state): the Pareto plot (mIoU against a cost)
and the race (each architecture's interval as its seeds came in)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from archsearch.report.best import RaceStep, RunsEvidence
from archsearch.report.ranking import objective_column, pareto_front
from archsearch.report.statistics import CONFIDENCE
from archsearch.study.metrics import METRIC_INFO, PLOT_X_METRICS

AXIS_LABELS = {name: METRIC_INFO[name].axis for name in PLOT_X_METRICS}
AXIS_SCALES = {name: METRIC_INFO[name].scale for name in PLOT_X_METRICS}
SHORT_HASH_LENGTH = 8
MOST_LABELS = 15


def pareto_figure(summary: pd.DataFrame, x_metric: str, *, title: str = "") -> Figure:
    """mIoU against ``x_metric`` (one of PLOT_X_METRICS), each point's 95% interval over seeds as an
    error bar; a point from a single seed is drawn hollow, since it has no interval to show.

    The marked front is that of the two plotted axes, so the step line is a true staircase
    even when the study optimised something else; report.md marks the study's own front when
    it has several objectives, and this one when it has one.
    """
    figure = Figure(figsize=(7, 5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    y_column = objective_column(summary, "miou")
    axes.set_xlabel(AXIS_LABELS[x_metric])
    axes.set_ylabel(f"mIoU (mean, {CONFIDENCE:.0%} t-interval over seeds)" if y_column == "miou_mean" else "mIoU")
    axes.grid(True, alpha=0.3)
    points = summary[summary[x_metric].notna() & summary[y_column].notna()]
    if points.empty:
        axes.text(0.5, 0.5, f"no complete trial with {x_metric} and an mIoU", ha="center", va="center",
                  transform=axes.transAxes)
        return figure
    x = points[x_metric].astype("float64").to_numpy() * AXIS_SCALES[x_metric]
    y = points[y_column].astype("float64").to_numpy()
    low = points["miou_ci_low"].astype("float64").to_numpy()
    high = points["miou_ci_high"].astype("float64").to_numpy()
    several = ~np.isnan(low)
    if several.any():
        axes.errorbar(x[several], y[several], yerr=[y[several] - low[several], high[several] - y[several]],
                      fmt="none", ecolor="0.6", elinewidth=1, capsize=2, zorder=1)
        axes.scatter(x[several], y[several], s=18, color="0.45", label=f"{CONFIDENCE:.0%} interval over seeds",
                     zorder=2)
    if (~several).any():
        axes.scatter(x[~several], y[~several], s=18, facecolors="none", edgecolors="0.45",
                     label="1 seed (no interval)", zorder=2)
    front = pareto_front(points, [(y_column, "maximize"), (x_metric, "minimize")]).to_numpy()
    order = np.argsort(x[front], kind="stable")
    axes.step(x[front][order], y[front][order], where="post", color="tab:red", linewidth=1.2, zorder=3)
    axes.scatter(x[front], y[front], s=40, marker="D", color="tab:red", label="Pareto front", zorder=4)
    hashes = points["arch_hash"].astype(str).to_numpy()
    for position in _labelled(front, order):
        axes.annotate(hashes[position][:SHORT_HASH_LENGTH], (x[position], y[position]), xytext=(4, 4),
                      textcoords="offset points", fontsize=7, zorder=5,
                      bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.7, "linewidth": 0})
    axes.legend(loc="best")
    return figure


def _labelled(front: np.ndarray, front_order: np.ndarray) -> np.ndarray:
    """Every point while few; else front points only, evenly thinned along the front so labels stay legible."""
    if len(front) <= MOST_LABELS:
        return np.arange(len(front))
    along_front = np.flatnonzero(front)[front_order]
    if len(along_front) <= MOST_LABELS:
        return along_front
    return along_front[np.linspace(0, len(along_front) - 1, MOST_LABELS).round().astype(int)]


def race_figure(steps: list[RaceStep], found: RunsEvidence, *, title: str = "") -> Figure:
    """The race as it ran: each architecture's mean and interval after each of its seeds (refitted on every run
    known then), its line ending where it stopped receiving seeds; leaders red, contenders the race's rule
    keeps blue, architectures out of the race grey with a cross at their last seed."""
    figure = Figure(figsize=(7, 5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(textwrap.fill(found.evidence.verdict, 90), fontsize=8)
    figure.suptitle(title)
    level = f"{found.evidence.rules.confidence:.0%}"
    axes.set_xlabel("seeds received")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(f"mIoU: mean and {level} interval as the seeds came in")
    axes.grid(True, alpha=0.3)
    race = found.evidence.standing
    if not steps:
        axes.text(0.5, 0.5, "no complete run with an mIoU", ha="center", va="center", transform=axes.transAxes)
        return figure
    arms = len(found.observations.arms)
    offsets = np.linspace(-0.2, 0.2, arms) if arms > 1 else np.zeros(1)
    labelled = set()
    for arm in range(arms):
        mine = [step for step in steps if step.arm == arm]
        if arm in race.leaders:
            color, label, marker = "tab:red", "leader", "o"
        elif race.out[arm]:
            color, label, marker = "0.6", "out: no more seeds", "x"
        else:
            color, label, marker = "tab:blue", "contender", "o"
        x = np.array([step.runs for step in mine]) + offsets[arm]
        y = np.array([step.mean for step in mine])
        low = np.array([step.low for step in mine])
        high = np.array([step.high for step in mine])
        axes.plot(x, y, color=color, linewidth=0.8, alpha=0.8, zorder=2)
        spread = ~np.isnan(low)
        axes.errorbar(x[spread], y[spread], yerr=[y[spread] - low[spread], high[spread] - y[spread]], fmt="none",
                      ecolor=color, elinewidth=0.8, alpha=0.5, capsize=1.5, zorder=1)
        axes.scatter(x[-1:], y[-1:], s=36, marker=marker, color=color, zorder=3,
                     label=label if label not in labelled else None)
        labelled.add(label)
        if not race.out[arm]:
            axes.annotate(found.names[found.observations.arms[arm]].split(" ")[0], (x[-1], y[-1]), xytext=(4, 2),
                          textcoords="offset points", fontsize=7, zorder=4)
    axes.legend(loc="best", fontsize=8)
    return figure
