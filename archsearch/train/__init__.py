"""Training and evaluation of one architecture: recipe, losses, mIoU and the trainer.

Names are loaded on first use, so that reading a study's training section (``TrainConfig``)
imports no torch.
"""

from archsearch.lazy import lazy_exports

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


__getattr__ = lazy_exports(__name__, _EXPORTS)
