"""Studies: a space, data, a training recipe and a sampler; run with Optuna (or Ray Tune)."""

from archsearch.search.config import StudyConfig, load_study, parse_study
from archsearch.search.optuna_driver import StudyOutcome, run_optuna
from archsearch.run.directory import RunDirectory

__all__ = ["RunDirectory", "StudyConfig", "StudyOutcome", "load_study", "parse_study", "run_optuna"]
