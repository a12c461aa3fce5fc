"""Segmentation metrics from one confusion matrix: mIoU, per-class IoU, pixel accuracy."""

from __future__ import annotations

import math

import torch
from torch import Tensor


class ConfusionMatrix:
    """Pixel counts by (true class, predicted class), accumulated batch by batch.

    ``counts[t, p]`` is the number of labelled pixels of class ``t`` predicted as ``p``;
    pixels whose target is ``ignore_index`` are not counted. The counts stay on the
    device they were made on, so a GPU evaluation does not copy every batch to the host.

    A class that appears in neither the targets nor the predictions has IoU 0/0; it is
    reported as NaN and left out of :meth:`miou` (the mean is over the classes that do
    appear), so a validation subset that lacks a class is not penalised for it. A class
    that is predicted but never present counts, with IoU 0.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 device: torch.device | str = "cpu") -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.counts = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """Count one batch of predicted and true class indices of the same shape."""
        if prediction.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(prediction.shape)} differs from "
                             f"target shape {tuple(target.shape)}")
        classes = self.num_classes
        prediction = prediction.flatten().to(self.counts.device, torch.int64)
        target = target.flatten().to(self.counts.device, torch.int64)
        labelled = target != self.ignore_index
        outside = (target < 0) | (target >= classes) | (prediction < 0) | (prediction >= classes)
        if bool((labelled & outside).any()):
            raise ValueError(f"a labelled pixel has a class outside 0..{classes - 1} "
                             f"(ignore index is {self.ignore_index})")
        # Ignored pixels go to one extra bin that is dropped, which avoids a boolean
        # index (and its host sync on a GPU).
        pair_index = torch.where(labelled, target * classes + prediction, classes * classes)
        pair_counts = torch.bincount(pair_index, minlength=classes * classes + 1)
        self.counts += pair_counts[:-1].view(classes, classes)

    def reset(self) -> None:
        """Forget every counted pixel."""
        self.counts.zero_()

    def per_class_iou(self) -> tuple[float, ...]:
        """IoU of each class; NaN for a class absent from both targets and predictions."""
        return tuple(self._iou().tolist())

    def miou(self) -> float:
        """Mean IoU over the classes that appear; NaN when nothing has been counted."""
        iou = self._iou()
        present = ~iou.isnan()
        return float(iou[present].mean()) if bool(present.any()) else math.nan

    def pixel_accuracy(self) -> float:
        """Share of labelled pixels predicted correctly; NaN when nothing has been counted."""
        counts = self.counts.double()
        total = float(counts.sum())
        return float(counts.diagonal().sum()) / total if total else math.nan

    def _iou(self) -> Tensor:
        counts = self.counts.double()
        intersection = counts.diagonal()
        union = counts.sum(dim=0) + counts.sum(dim=1) - intersection
        return intersection / union
