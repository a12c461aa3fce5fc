"""report.md: the verdict, trial counts, the ranking table, the plots and the failures, as plain Markdown."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from archsearch.race.decision import RaceRules
from archsearch.race.probability import SAMPLES
from archsearch.run.study_file import StudyHeading
from archsearch.run.attributes import PROXY_PREFIX
from archsearch.run.trials_table import CHOICE_PREFIX, TRIAL_STATES
from archsearch.report.statistics import CONFIDENCE, TIE_LEVEL

STATE_WORDS = {"COMPLETE": "complete", "FAIL": "failed", "PRUNED": "pruned", "INFEASIBLE": "infeasible",
               "RUNNING": "running", "WAITING": "waiting"}
MARKDOWN_ROWS = 50
LISTED_FAILURES = 20
LISTED_TRIAL_NUMBERS = 10
TEST_WORDS = {"paired": "architecture and seed effects, one noise level",
              "pooled": "architecture effects, one noise level", "welch": "each architecture its own spread"}


def report_markdown(heading: StudyHeading, trials: pd.DataFrame, summary: pd.DataFrame, x_metric: str,
                    plot_name: str, front_of: str, *, rank_by: tuple[str, str] = ("miou", "maximize"),
                    verdict: str = "", race_plot: str | None = None, rules: RaceRules = RaceRules(),
                    sections: list[str] = ()) -> str:
    """The whole report.md: verdict, counts, objectives, ranking table, plots, ``sections`` (lines of further
    sections: a supernet study's retrained points), failures; ``front_of`` names what summary's ``pareto`` column
    is the front of, ``rank_by`` what the table is ordered by, ``rules`` what P(best) and the verdict were weighed
    with."""
    objectives = ", ".join(f"{metric} ({direction})" for metric, direction in heading.objectives)
    lines = [f"# Study report: {heading.name}", ""]
    if verdict:
        lines += [f"**{verdict}**", ""]
    lines += [state_counts(trials), "", f"Objectives: {objectives}.", ""]
    if heading.race is not None:
        race = heading.race
        best = "the best" if race.top == 1 else f"the top {race.top}"
        kept = (f"a {race.test} test at {race.confidence:.0%} cannot tell from {best}" if race.rule == "test" else
                f"the posterior ({race.test} model) gives at least {1 - race.confidence:.0%} chance to be among "
                f"{best} after their remaining seeds")
        lines += [f"Seeds raced: {race.minimum} for every architecture, then a round at a time for those "
                  f"{kept}, up to {race.maximum}.", ""]
    if summary.empty:
        lines += ["No trial has completed, so there is nothing to rank yet.", ""]
    else:
        if rank_by[0] != "miou":
            lines += [f"Nothing was trained (training: none): ranked by {rank_by[0]} ({rank_by[1]}).", ""]
        lines += [_ranking_intro(summary)]
        if "p_best" in summary.columns:
            lines[-1] += " " + _probability_method(rules)
        lines += ["", "## Ranking", "", *markdown_table(_ranking_cells(summary)), ""]
        if len(summary) > MARKDOWN_ROWS:
            lines += [f"Top {MARKDOWN_ROWS} of {len(summary)} shown; report.csv holds them all.", ""]
        lines += [f"On the Pareto front of {front_of}: {int(summary['pareto'].sum())} "
                  f"of {len(summary)} (marked `*`).", ""]
        unplotted = int(summary[x_metric].isna().sum())
        if unplotted:
            lines += [f"{unplotted} without {x_metric} not plotted.", ""]
    lines += [f"![mIoU against {x_metric}]({plot_name})", ""]
    if race_plot is not None:
        lines += [f"![each architecture's mIoU interval as its seeds came in]({race_plot})", ""]
    lines += [*sections, *_failure_section(trials)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _probability_method(rules: RaceRules) -> str:
    top = f" and P(top {rules.top}), the share among the {rules.top} best" if rules.top > 1 else ""
    return (f"P(best) is the share of {SAMPLES} draws from the posterior of the mean mIoUs (flat prior, "
            f"{rules.test} model of seed noise: {TEST_WORDS[rules.test]}) in which the architecture is best{top}.")


def state_counts(trials: pd.DataFrame) -> str:
    """E.g. ``12 trials: 10 complete, 1 failed, 1 infeasible.``"""
    counts = trials["state"].value_counts()
    parts = [f"{counts[state]} {STATE_WORDS[state]}" for state in TRIAL_STATES if counts.get(state, 0)]
    total = len(trials)
    return f"{total} trial{'' if total == 1 else 's'}" + (f": {', '.join(parts)}." if parts else ".")


def _ranking_intro(summary: pd.DataFrame) -> str:
    level = f"{CONFIDENCE:.0%}"
    if "runs" in summary.columns:
        return (f"{len(summary)} architectures from {int(summary['runs'].sum())} complete trials; "
                "mIoU is the mean ± standard deviation over runs (seeds), latency the median. "
                f"The {level} CI is the Student-t interval of the mean (mean ± t(0.975, n−1)·s/√n); "
                f"`≈` marks an architecture that a two-sided Welch t-test at {TIE_LEVEL:.0%} cannot tell "
                "from the best (architectures with a single seed are not tested).")
    return (f"{len(summary)} complete trials, one architecture each: with one seed there is no interval "
            "and no test of which ranks are tied, so close mIoUs may differ by seed noise alone.")


def _ranking_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """The ranking as display strings: the top rows, counts in G/M units, choices without their prefix."""
    top = summary.head(MARKDOWN_ROWS)
    cells = pd.DataFrame({"rank": [str(rank) for rank in range(1, len(top) + 1)]}, index=top.index)
    if "runs" in top.columns:
        cells["arch_hash"] = top["arch_hash"]
        cells["mIoU"] = [_mean_and_std(mean, std) for mean, std in zip(top["miou_mean"], top["miou_std"])]
        cells[f"{CONFIDENCE:.0%} CI"] = [_interval(low, high) for low, high in zip(top["miou_ci_low"],
                                                                                     top["miou_ci_high"])]
        cells["tied"] = [_tie_mark(rank, tied) for rank, tied in enumerate(top["tied_with_best"])]
        for column in (column for column in top.columns if column == "p_best" or column.startswith("p_top_")):
            title = "P(best)" if column == "p_best" else f"P(top {column.removeprefix('p_top_')})"
            cells[title] = top[column].map(lambda value: _cell(value, 2))
        cells["runs"] = top["runs"].map(str)
    else:
        cells["trial"] = top["number"].map(str)
        cells["arch_hash"] = top["arch_hash"]
        cells["seed"] = top["seed"].map(_cell)
        cells["mIoU"] = top["miou"].map(lambda value: _cell(value, 4))
        cells[f"{CONFIDENCE:.0%} CI"] = "1 seed"
    cells["latency (ms)"] = top["latency_ms"].map(lambda value: _cell(value, 2))
    if top["latency_ratio"].notna().any():
        cells["latency ratio"] = top["latency_ratio"].map(lambda value: _cell(value, 3))
    cells["GMACs"] = top["macs"].map(lambda value: _cell(value, 2, 1e-9))
    cells["params (M)"] = top["params_deploy"].map(lambda value: _cell(value, 2, 1e-6))
    cells["RF"] = top["receptive_field"].map(_cell)
    cells["OS"] = top["output_stride"].map(_cell)
    for column in (column for column in top.columns if column.startswith(PROXY_PREFIX)):
        cells[column] = top[column].map(lambda value: "" if pd.isna(value) else f"{value:.4g}")
    cells["pareto"] = top["pareto"].map(lambda marked: "*" if marked else "")
    for column in (column for column in top.columns if column.startswith(CHOICE_PREFIX)):
        cells[column.removeprefix(CHOICE_PREFIX)] = top[column].map(_cell)
    return cells


def _interval(low: float, high: float) -> str:
    """A zero-width interval from one seed would claim certainty; it says how many seeds instead."""
    return "1 seed" if pd.isna(low) else f"[{low:.4f}, {high:.4f}]"


def _tie_mark(rank: int, tied: Any) -> str:
    if pd.isna(tied) or not bool(tied):
        return ""
    return "best" if rank == 0 else "≈"


def _mean_and_std(mean: float, std: float) -> str:
    return f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}"


def _cell(value: Any, decimals: int | None = None, scale: float = 1.0) -> str:
    """Display text for one value: empty if missing; fixed decimals if given, else floats to four digits."""
    if pd.isna(value):
        return ""
    if decimals is not None:
        return f"{float(value) * scale:.{decimals}f}"
    if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
        return f"{value:.4g}"
    return str(value)


def _failure_section(trials: pd.DataFrame) -> list[str]:
    """One row per distinct (state, reason), most frequent first, so a thousand OOMs take one line."""
    failed = trials[trials["state"].isin(("FAIL", "INFEASIBLE"))].sort_values("number", kind="stable")
    if failed.empty:
        return []
    failed = failed.assign(reason=failed["fail_reason"].replace("", "(no reason given)"))
    groups = failed.groupby(["state", "reason"], sort=False)["number"].agg(list).reset_index()
    groups["count"] = groups["number"].map(len)
    groups = groups.sort_values("count", ascending=False, kind="stable")
    shown = groups.head(LISTED_FAILURES)
    cells = pd.DataFrame({"state": shown["state"], "count": shown["count"].map(str),
                          "trials": shown["number"].map(_trial_numbers), "reason": shown["reason"]})
    lines = ["## Failed and infeasible trials", "", *markdown_table(cells), ""]
    if len(groups) > LISTED_FAILURES:
        lines += [f"… and {len(groups) - LISTED_FAILURES} more reasons; trials.csv has every one.", ""]
    return lines


def _trial_numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(number) for number in numbers[:LISTED_TRIAL_NUMBERS])
    return shown + (", …" if len(numbers) > LISTED_TRIAL_NUMBERS else "")


def markdown_table(cells: pd.DataFrame) -> list[str]:
    """A pipe table of string cells (pandas' own ``to_markdown`` needs tabulate, which is optional)."""

    def row(values: list[str]) -> str:
        return "| " + " | ".join(_escape_cell(value) for value in values) + " |"

    return [row(list(cells.columns)), "|" + "|".join("---" for _ in cells.columns) + "|",
            *(row(list(values)) for values in cells.itertuples(index=False, name=None))]


def _escape_cell(value: Any) -> str:
    """One line, and a pipe in a value (a failure message, a string choice) must not split the cell."""
    return " ".join(str(value).split()).replace("|", "\\|")
