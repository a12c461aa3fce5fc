"""Studies: a space, data, a training recipe and a sampler; run with Optuna (or Ray Tune).

The names below are loaded on first use, so that importing one submodule (the study file's
sections, say) does not import Optuna and every backend with it.
"""

from archsearch.lazy import lazy_exports

_EXPORTS = {"RunDirectory": "archsearch.run.directory", "StudyConfig": "archsearch.study.config",
            "load_study": "archsearch.study.config", "parse_study": "archsearch.study.config",
            "StudyOutcome": "archsearch.search.backends", "get_backend": "archsearch.search.backends", "run_optuna": "archsearch.search.optuna_driver"}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
