"""write_report: the run directory in, report.md, report.csv, pareto.png and race.png out, each written atomically."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from archsearch.errors import SpecError
import numpy as np
import pandas as pd

from archsearch.io import write_files_atomic
from archsearch.race.decision import RaceRules
from archsearch.report.best import RunsEvidence, race_history, runs_evidence
from archsearch.report.figure import PLOT_X_METRICS, pareto_figure, race_figure
from archsearch.report.markdown import report_markdown
from archsearch.report.ranking import objective_column, pareto_front, row_keys, summarize
from archsearch.report.supernet import load_retrained, retrained_section
from archsearch.run.study_file import load_study_heading
from archsearch.run.trials_table import load_trials
from archsearch.study.metrics import MIOU_KINDS


def mixed_recipes_notice(trials) -> str | None:
    """A warning when the COMPLETE trials were trained with different recipes (``--allow-changed-settings``)."""
    if "recipe" not in trials.columns:
        return None
    recipes = trials.loc[trials["state"] == "COMPLETE", "recipe"].fillna("").replace("", "(not recorded)")
    counts = recipes.value_counts(sort=False)
    if len(counts) < 2:
        return None
    listed = ", ".join(f"{recipe} ({count} trial{'s' * (count != 1)})" for recipe, count in counts.items())
    return (f"**Warning: the trials ranked here were trained with {len(counts)} different recipes**: {listed}. "
            "Their settings are in the run directory's fingerprint.yaml; compare trials of one recipe.")


@dataclass(frozen=True)
class ReportFiles:
    """Where ``write_report`` put its four files."""

    markdown: Path
    table: Path
    plot: Path
    race: Path


REPORT_FILE_NAMES = ("report.md", "report.csv", "pareto.png", "race.png")


def check_report_target(out_dir: Path, run_dir: Path) -> None:
    """Refuse, before any work, an ``--out`` other than the run itself that already holds report files (another
    run's report, say): replacing them is asked for with ``--force``."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir() or out_dir.resolve() == Path(run_dir).resolve():
        return
    present = [name for name in REPORT_FILE_NAMES if (out_dir / name).exists()]
    if present:
        raise SpecError(f"the directory already holds a report ({', '.join(present)})", source="--out",
                        value=str(out_dir), allowed="another directory, or --force to replace them")


def write_report(run_dir: Path, out_dir: Path | None = None, *, x_metric: str | None = None,
                 miou: str | None = None) -> ReportFiles:
    """Write ``report.md``, ``report.csv``, ``pareto.png`` and ``race.png`` into ``out_dir`` (default: the run dir).

    The plot puts mIoU against ``x_metric``: by default the latency ratio when any architecture
    has one (a relative budget), else latency when any has one, else MACs. A run with no COMPLETE
    trial still gets a report that says so. The report opens with the verdict (``report.best``); a study
    that trains nothing has no race and no race.png. ``miou`` ``miou_best`` ranks by each trial's best
    evaluation instead of its final one; None: ``miou_best`` when the study's first objective is.
    """
    if miou is not None and miou not in MIOU_KINDS:
        raise SpecError("unknown mIoU kind", path="miou", value=miou, allowed=", ".join(MIOU_KINDS))
    if x_metric is not None and x_metric not in PLOT_X_METRICS:
        raise SpecError("cannot plot mIoU against this", path="x_metric", value=x_metric,
                        allowed=", ".join(PLOT_X_METRICS))
    run_dir = Path(run_dir)
    trials = load_trials(run_dir)
    heading = load_study_heading(run_dir)
    if miou is None:
        miou = "miou_best" if heading.objectives[0][0] == "miou_best" else "miou"
    if miou == "miou_best":  # the table's mIoU columns then hold each trial's best evaluation
        trials = trials.assign(miou=trials["miou_best"])
    # A study that trains nothing (``training: none``) is ranked by its first objective, a proxy or a cost.
    complete = trials["state"] == "COMPLETE"
    trained_nothing = bool(complete.any() and trials.loc[complete, "miou"].isna().all())
    rank_by = heading.objectives[0] if trained_nothing else ("miou", "maximize")
    summary = summarize(trials, rank_by=rank_by)
    if x_metric is None:
        x_metric = next((metric for metric in ("latency_ratio", "latency_ms") if summary[metric].notna().any()), "macs")
    # One objective has no trade-off to show, so its table marks the plotted front (mIoU against cost).
    if len(heading.objectives) > 1:
        objectives = [(objective_column(summary, metric), direction) for metric, direction in heading.objectives]
        front_of = "the study's objectives"
    else:
        objectives = [(objective_column(summary, rank_by[0]), rank_by[1]), (x_metric, "minimize")]
        front_of = f"{'mIoU' if rank_by[0] == 'miou' else rank_by[0]} against {x_metric}" + (
            ", as plotted" if rank_by[0] == "miou" else "")
    summary["pareto"] = pareto_front(summary, objectives)
    retrained = load_retrained(run_dir)
    if retrained is not None:  # a supernet study's best points, trained stand-alone after its search
        summary["standalone_miou"] = summary["arch_hash"].map(retrained.set_index("arch_hash")["miou"])
    rules = heading.race or RaceRules()
    found = None if trained_nothing else runs_evidence(trials, rules)
    if found is not None:
        summary = with_probabilities(summary, found)
    out_dir = Path(run_dir if out_dir is None else out_dir)
    markdown_name, table_name, plot_name, race_name = REPORT_FILE_NAMES
    files = ReportFiles(markdown=out_dir / markdown_name, table=out_dir / table_name, plot=out_dir / plot_name,
                        race=out_dir / race_name)
    # Everything is rendered before anything is written: a failure while rendering leaves the old report.
    table = summary.to_csv(index=False)
    png, race_png = io.BytesIO(), io.BytesIO()
    pareto_figure(summary, x_metric, title=heading.name).savefig(png, format="png", dpi=120)
    verdict = (found.evidence.verdict if found is not None
               else f"no verdict: nothing was trained, so no architecture is best at mIoU (ranked by {rank_by[0]})")
    markdown = report_markdown(heading, trials, summary, x_metric, files.plot.name, front_of, rank_by=rank_by,
                               verdict=verdict, race_plot=files.race.name if found is not None else None,
                               rules=rules, sections=retrained_section(retrained) if retrained is not None else [])
    notice = mixed_recipes_notice(trials)
    if miou == "miou_best":
        best = "mIoU here is each trial's best evaluation (miou_best in trials.csv), not its final one."
        notice = f"{notice}\n\n{best}" if notice else best
    if notice:  # right under the title: before any figure is read
        title, _, rest = markdown.partition("\n")
        markdown = f"{title}\n\n{notice}\n{rest}"
    written = {files.table: table.encode("utf-8"), files.plot: png.getvalue(), files.markdown: markdown.encode("utf-8")}
    if found is not None:
        steps = race_history(found.observations, rules)
        race_figure(steps, found, title=heading.name).savefig(race_png, format="png", dpi=120)
        written[files.race] = race_png.getvalue()
    write_files_atomic(written)
    return files


def with_probabilities(summary: pd.DataFrame, found: RunsEvidence) -> pd.DataFrame:
    """``p_best`` (and ``p_top_<k>`` for a race for the top k) after the tie column, matched by architecture."""
    index = {key: position for position, key in enumerate(found.observations.arms)}
    rows = [index.get(key) for key in row_keys(summary, found.key_columns)]
    probabilities = found.evidence.probabilities
    columns = {"p_best": probabilities.p_best}
    if found.evidence.rules.top > 1:
        columns[f"p_top_{found.evidence.rules.top}"] = probabilities.p_top
    summary = summary.copy()
    position = summary.columns.get_loc("tied_with_best") + 1
    for offset, (name, values) in enumerate(columns.items()):
        summary.insert(position + offset, name, [np.nan if row is None else values[row] for row in rows])
    return summary
