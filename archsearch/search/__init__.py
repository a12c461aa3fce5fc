"""Studies: a space, data, a training recipe and a sampler; run with Optuna (or Ray Tune).

The names below are loaded on first use, so that importing one submodule (the study file's
sections, say) does not import Optuna and every backend with it.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {"RunDirectory": "archsearch.run.directory", "StudyConfig": "archsearch.study.config",
            "load_study": "archsearch.study.config", "parse_study": "archsearch.study.config",
            "StudyOutcome": "archsearch.search.backends", "get_backend": "archsearch.search.backends", "run_optuna": "archsearch.search.optuna_driver"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
