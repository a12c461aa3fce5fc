"""Racing seeds: how sure the seeds so far make a ranking, and which architectures get the next ones.

Pure numpy and scipy (no torch, no Optuna): the study loop of either backend (``search.racing``),
the report (``report.best``) and the replay benchmark all call the same rules. Callers import the
module that owns each name (``race.model``, ``race.probability``, ``race.decision``).
"""
