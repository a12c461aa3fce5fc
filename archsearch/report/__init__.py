"""Tables and a Pareto plot from a study's run directory.

Everything comes from ``RUN/trials.csv`` and ``RUN/study.yaml``; nothing is re-measured.
Repeated seeds of one architecture are pooled into mean and standard deviation, because a
single lucky seed is not a result. Every file is written atomically, so a report being
rewritten while a study runs is never seen half-written.
"""
