"""One-shot search: a weight-sharing supernet over a space, exact subnet extraction, and its training.

Names are imported on first use, so that reading a study's ``supernet:`` section (``settings``)
does not import torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {"Supernet": "network", "extract": "network", "compile_supernet": "paths", "training_paths": "paths",
            "recalibrate_batchnorm": "recalibrate", "SupernetSettings": "settings", "evaluate_subnet": "training",
            "load_supernet": "training", "train_supernet": "training"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'archsearch.supernet' has no attribute {name!r}")
    return getattr(import_module(f"archsearch.supernet.{_EXPORTS[name]}"), name)
