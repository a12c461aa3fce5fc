"""Training and evaluation of one architecture: recipe, losses, mIoU and the trainer."""

from archsearch.train.config import TrainConfig
from archsearch.train.divergence import TrainingDiverged
from archsearch.train.evaluate import evaluate
from archsearch.train.loaders import default_workers, loader_settings, make_loader
from archsearch.train.losses import CrossEntropy, OhemCrossEntropy, SegmentationLoss, build_loss
from archsearch.train.metrics import ConfusionMatrix
from archsearch.train.optim import build_optimizer, build_scheduler
from archsearch.devices import present_device
from archsearch.train.trainer import TrainResult, train_and_evaluate

__all__ = [
    "ConfusionMatrix",
    "CrossEntropy",
    "OhemCrossEntropy",
    "SegmentationLoss",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "build_loss",
    "build_optimizer",
    "build_scheduler",
    "default_workers",
    "evaluate",
    "loader_settings",
    "make_loader",
    "present_device",
    "train_and_evaluate",
]
