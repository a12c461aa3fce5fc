"""The run directory: the one place that knows its files (directory), the trials table's schema
(trials_table), the study as run (study_file) and the names of a trial's recorded facts (attributes)."""
