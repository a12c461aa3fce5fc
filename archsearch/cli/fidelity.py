"""``archsearch fidelity``: how far a cheap ranking (short schedule, proxy, cost) agrees with an expensive one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def command_fidelity(arguments: argparse.Namespace) -> int:
    from archsearch.report.fidelity import run_fidelity, runs_fidelity

    if arguments.run_b is None:
        agreements, skipped = run_fidelity(arguments.run_a)
    else:
        agreements, skipped = [runs_fidelity(arguments.run_a, arguments.run_b)], []
    if arguments.json:
        print(json.dumps([agreement.to_json() for agreement in agreements], indent=2))
    else:
        print(_table(agreements))
        print("tau: Kendall's tau-b; rho: Spearman's; [..]: 95% bootstrap intervals over architectures; "
              "topK: share of the reference's K best among the estimate's K best (higher estimate = better).")
    for reason in skipped:
        print(f"left out {reason}", file=sys.stderr)
    return 0


def _table(agreements: list) -> str:
    def number(value: float) -> str:
        return "n/a" if value != value else f"{value:+.3f}"

    header = ("estimate", "against", "n", "tau [95% CI]", "rho [95% CI]", "top1", "top3", "top n/4")
    rows = [(a.estimate, a.against, str(a.n),
             f"{number(a.kendall_tau)} [{number(a.kendall_ci[0])}, {number(a.kendall_ci[1])}]",
             f"{number(a.spearman)} [{number(a.spearman_ci[0])}, {number(a.spearman_ci[1])}]",
             f"{a.top1:.2f}", f"{a.top3:.2f}", f"{a.top_quarter:.2f} (k={a.quarter})") for a in agreements]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in (header, *rows))


def add_fidelity_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("fidelity", help="rank agreement: a run's cheap estimates against its mIoU, "
                                                  "or two runs of one space against each other")
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="a run directory (the cheap one, with RUN_B)")
    parser.add_argument("run_b", type=Path, nargs="?", metavar="RUN_B",
                        help="a second run of the same space (the reference); without it, RUN_A's proxies, "
                             "costs and earlier evaluations are compared with its final mIoU")
    parser.add_argument("--json", action="store_true", help="print a JSON list of agreements")
    parser.set_defaults(handler=command_fidelity)
