"""What to tell a user whose run found no point within its latency budget."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from archsearch.latency.point import LatencyBudget


def nothing_fits_message(budget: LatencyBudget, trials: Iterable[Mapping[str, Any]]) -> str | None:
    """A message naming the budget, the fastest point measured and what to change; None if no budget was broken.

    ``trials`` are trials.csv rows; only measured points count (a screened-out point's figure is a
    prediction). None as well when a measured point was feasible, or the fastest one is within the
    latency budget (another constraint left it out).
    """
    measured = [row for row in trials if _number(row.get("latency_ms")) is not None]
    if not measured or (budget.maximum_ms is None and budget.maximum_ratio is None) \
            or any(row.get("state") != "INFEASIBLE" for row in measured):
        return None
    by_ratio = budget.maximum_ratio is not None and all(_number(row.get("latency_ratio")) is not None
                                                         for row in measured)
    fastest = min(measured, key=lambda row: row["latency_ratio"] if by_ratio else row["latency_ms"])
    figures = f"{fastest['latency_ms']:.2f} ms"
    ratio = _number(fastest.get("latency_ratio"))
    if ratio is not None:
        figures += f", {ratio:.3f}x {budget.reference}"
    bounds = []
    if budget.maximum_ratio is not None:
        bounds.append(f"latency_ratio <= {budget.maximum_ratio:g} (to {budget.reference})")
    if budget.maximum_ms is not None:
        bounds.append(f"latency_ms <= {budget.maximum_ms:g}")
    changes = []
    if budget.maximum_ratio is not None and ratio is not None and ratio > budget.maximum_ratio:
        changes.append(f"raise constraints.latency_ratio.max to at least {_round_up(ratio * 1.1)}")
    if budget.maximum_ms is not None and fastest["latency_ms"] > budget.maximum_ms:
        changes.append(f"raise constraints.latency_ms.max to at least {_round_up(fastest['latency_ms'] * 1.1)}")
        if budget.maximum_ratio is None:
            changes.append("or give the budget relative to a reference network "
                           "(constraints: {latency_ratio: {max: R, reference: NAME}}), which a busier or "
                           "another machine does not move")
    if not changes:
        return None
    changes.append("or narrow the space to smaller networks (parameters: / fix:)")
    return (f"no point met the latency budget ({' and '.join(bounds)}): {len(measured)} measured, the fastest "
            f"trial #{fastest['number']} at {figures}. To find feasible points, {', '.join(changes)}.")


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _round_up(value: float) -> str:
    """Two significant digits, rounded up: a budget to write into a study file."""
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return f"{math.ceil(value / scale) * scale:.{max(0, -int(math.log10(scale)))}f}"
