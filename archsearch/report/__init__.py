"""Tables and a Pareto plot from a study's run directory.

Everything comes from ``RUN/trials.csv`` and ``RUN/study.yaml``; nothing is re-measured.
Repeated seeds of one architecture are pooled into mean and standard deviation, because a
single lucky seed is not a result. Every file is written atomically, so a report being
rewritten while a study runs is never seen half-written.
"""

from archsearch.report.figure import pareto_figure
from archsearch.report.markdown import report_markdown
from archsearch.report.ranking import objective_column, pareto_front, summarize
from archsearch.run.study_file import StudyHeading, load_study_heading
from archsearch.run.trials_table import REQUIRED_COLUMNS, load_trials
from archsearch.report.write import ReportFiles, write_report

__all__ = [
    "REQUIRED_COLUMNS", "ReportFiles", "StudyHeading", "load_study_heading", "load_trials", "objective_column",
    "pareto_figure", "pareto_front", "report_markdown", "summarize", "write_report",
]
