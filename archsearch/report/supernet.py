"""A supernet study's two rankings side by side: its retrained points' supernet mIoU against their stand-alone mIoU.

``retrain_top: k`` trains the k best points by ``supernet_miou`` stand-alone after the search
(``RUN/supernet/retrained.csv``). How far the supernet's order holds among them is Kendall's tau
between the two columns, with its bootstrap interval (over k points it is wide: it says so).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from archsearch.report.markdown import markdown_table
from archsearch.report.statistics import CONFIDENCE, bootstrap_interval, kendall_tau, kendall_taus

RETRAINED = Path("supernet") / "retrained.csv"


def load_retrained(run_dir: Path) -> pd.DataFrame | None:
    """The retrained points (trial, arch_hash, supernet_miou, miou, ...) best by supernet first; None without any."""
    path = Path(run_dir) / RETRAINED
    if not path.exists():
        return None
    table = pd.read_csv(path)
    if table.empty:
        return None
    table = table.sort_values(["supernet_miou", "trial"], ascending=[False, True], kind="stable").reset_index(drop=True)
    table.insert(0, "supernet_rank", np.arange(1, len(table) + 1))
    table.insert(1, "standalone_rank", table["miou"].rank(ascending=False, method="min").astype(int))
    return table


def retrained_section(retrained: pd.DataFrame) -> list[str]:
    """report.md's section: both rankings of the retrained points and Kendall's tau between them."""
    cells = pd.DataFrame({
        "supernet rank": retrained["supernet_rank"].map(str), "stand-alone rank": retrained["standalone_rank"].map(str),
        "trial": retrained["trial"].map(str), "arch_hash": retrained["arch_hash"],
        "supernet mIoU": retrained["supernet_miou"].map(lambda value: f"{value:.4f}"),
        "stand-alone mIoU": retrained["miou"].map(lambda value: f"{value:.4f}")})
    lines = ["## Supernet ranking against stand-alone training", "",
             f"The {len(retrained)} best points by supernet mIoU (`retrain_top`), trained stand-alone with the "
             "study's recipe (supernet/retrained.csv).", "", *markdown_table(cells), ""]
    return lines + [agreement(retrained), ""]


def agreement(retrained: pd.DataFrame) -> str:
    """One sentence: Kendall's tau between the two mIoUs and its bootstrap interval, or why there is none."""
    if len(retrained) < 2:
        return "Kendall's tau needs at least two retrained points (retrain_top: 2 or more)."
    supernet, standalone = retrained["supernet_miou"].to_numpy(float), retrained["miou"].to_numpy(float)
    tau = kendall_tau(supernet, standalone)
    if np.isnan(tau):
        return "Kendall's tau is undefined here: one of the two rankings is all ties."
    low, high = bootstrap_interval(kendall_taus, supernet, standalone)
    return (f"Kendall's tau between the two rankings: {tau:.2f} ({CONFIDENCE:.0%} bootstrap interval "
            f"[{low:.2f}, {high:.2f}] over {len(retrained)} points; only the supernet's best were retrained, so "
            "this is the agreement at the top of its ranking).")
