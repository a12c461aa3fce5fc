"""Tables and a Pareto plot from a study's run directory.

Everything comes from ``RUN/trials.csv`` and ``RUN/study.yaml``; nothing is re-measured.
Repeated seeds of one architecture are pooled into mean and standard deviation, because a
single lucky seed is not a result. Every file is written atomically, so a report being
rewritten while a study runs is never seen half-written.
"""

from importlib import import_module
from typing import Any

# Names load on first use, so that ``archsearch fidelity`` (statistics only) starts without matplotlib.
_EXPORTS = {
    "pareto_figure": "archsearch.report.figure", "report_markdown": "archsearch.report.markdown",
    "objective_column": "archsearch.report.ranking", "pareto_front": "archsearch.report.ranking",
    "summarize": "archsearch.report.ranking", "StudyHeading": "archsearch.run.study_file",
    "load_study_heading": "archsearch.run.study_file", "REQUIRED_COLUMNS": "archsearch.run.trials_table",
    "load_trials": "archsearch.run.trials_table", "ReportFiles": "archsearch.report.write",
    "write_report": "archsearch.report.write",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
