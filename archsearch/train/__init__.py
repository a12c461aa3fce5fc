"""Training and evaluation of one architecture: recipe, losses, mIoU and the trainer.

Names are loaded on first use, so that reading a study's training section (``TrainConfig``)
imports no torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "TrainConfig": "archsearch.train.config",
    "TrainingDiverged": "archsearch.train.divergence",
    "evaluate": "archsearch.train.evaluation",
    "default_workers": "archsearch.train.loaders",
    "loader_settings": "archsearch.train.loaders",
    "make_loader": "archsearch.train.loaders",
    "CrossEntropy": "archsearch.train.losses",
    "OhemCrossEntropy": "archsearch.train.losses",
    "SegmentationLoss": "archsearch.train.losses",
    "build_loss": "archsearch.train.losses",
    "ConfusionMatrix": "archsearch.train.metrics",
    "build_optimizer": "archsearch.train.optim",
    "build_scheduler": "archsearch.train.optim",
    "present_device": "archsearch.devices",
    "TrainResult": "archsearch.train.trainer",
    "train_and_evaluate": "archsearch.train.trainer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
