"""Pixel losses for segmentation: class-weighted cross entropy, its OHEM form, aux weighting.

Both pixel losses are a class-weighted mean over the labelled pixels they keep, the same
reduction as ``nn.CrossEntropyLoss(weight=..., ignore_index=...)``, with one difference:
a batch with no kept labelled pixel (a crop of pure void) gives 0 instead of NaN, so it is
not mistaken for divergence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.train.config import TrainConfig


class CrossEntropy(nn.Module):
    """Cross entropy over ``[N, C, H, W]`` logits and ``[N, H, W]`` class-index targets."""

    def __init__(self, *, class_weights: Sequence[float] | None = None,
                 ignore_index: int = 255) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", _as_tensor(class_weights))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        pixel_losses = _pixel_cross_entropy(logits, target, self.ignore_index)
        return _weighted_mean(pixel_losses, _pixel_weights(target, self.class_weights,
                                                           self.ignore_index, logits.dtype))


class OhemCrossEntropy(nn.Module):
    """Cross entropy over the hard pixels only (online hard example mining, as in DDRNet).

    A labelled pixel is hard when the predicted probability of its true class is below
    ``threshold``; when fewer than ``min_kept`` pixels of the batch are that hard, the
    ``min_kept`` pixels with the lowest probability are kept instead (ties may keep a few
    more). Easy pixels give no gradient; ignored pixels are never kept.

    ``normalisation`` ``weight_sum`` divides the kept pixels' weighted losses by the sum of their
    class weights (``nn.CrossEntropyLoss``'s mean); ``kept_pixels`` is mmseg's OhemCrossEntropy
    (mmsegmentation ``ohem_cross_entropy_loss.py``, which DDRNet, PIDNet and RDRNet train with):
    it keeps the labelled pixels whose probability is below ``max(threshold, p[min(min_kept, n - 1)])``
    (``p`` the ``n`` labelled probabilities sorted, strictly below) and divides by their count.
    """

    def __init__(self, *, threshold: float = 0.7, min_kept: int = 100_000,
                 class_weights: Sequence[float] | None = None, ignore_index: int = 255,
                 normalisation: str = "weight_sum") -> None:
        super().__init__()
        self.threshold = threshold
        self.min_kept = min_kept
        self.ignore_index = ignore_index
        self.normalisation = normalisation
        self.register_buffer("class_weights", _as_tensor(class_weights))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        pixel_losses = _pixel_cross_entropy(logits, target, self.ignore_index)
        weights = _pixel_weights(target, self.class_weights, self.ignore_index, logits.dtype)
        labelled = target != self.ignore_index
        if self.normalisation == "kept_pixels":
            kept = self._mmseg_kept_pixels(pixel_losses.detach(), labelled)
            return _weighted_mean(pixel_losses * weights, kept.to(pixel_losses.dtype))
        hard = self._hard_pixels(pixel_losses.detach(), labelled)
        return _weighted_mean(pixel_losses, weights * hard)

    def _mmseg_kept_pixels(self, pixel_losses: Tensor, labelled: Tensor) -> Tensor:
        # p[min(min_kept, n - 1)] is the (min_kept + 1)-th smallest labelled probability, or the
        # largest when there are no more than min_kept labelled pixels (unlabelled ones sort last at 2).
        probability = torch.where(labelled, torch.exp(-pixel_losses), 2.0)
        flat = probability.flatten()
        kth = flat.kthvalue(min(self.min_kept + 1, flat.numel())).values
        largest = torch.where(labelled, probability, -1.0).max()
        cut = torch.clamp(torch.where(kth > 1.5, largest, kth), min=self.threshold)
        return labelled & (probability < cut)

    def _hard_pixels(self, pixel_losses: Tensor, labelled: Tensor) -> Tensor:
        # exp(-cross entropy) is the softmax probability of the true class. Unlabelled
        # pixels get probability 2 so they sort last; if fewer than min_kept pixels are
        # labelled, the k-th smallest is such a 2 and every labelled pixel is kept. No
        # host sync: k depends only on the tensor's size.
        probability = torch.where(labelled, torch.exp(-pixel_losses), 2.0)
        flat = probability.flatten()
        kept_count = min(self.min_kept, flat.numel())
        kth_lowest = flat.kthvalue(kept_count).values
        return labelled & ((probability < self.threshold) | (probability <= kth_lowest))


class SegmentationLoss(nn.Module):
    """The pixel loss on the main logits plus ``aux_weight`` times it on the aux logits.

    DDRNet and RDRNet supervise an auxiliary head on a middle stage with weight 0.4;
    models without such a head pass ``aux_logits=None`` and get the main loss alone. A model
    with several auxiliary heads (BiSeNet's, PIDNet's P head) passes a list: each is weighted.
    """

    def __init__(self, pixel_loss: nn.Module, aux_weight: float = 0.4) -> None:
        super().__init__()
        self.pixel_loss = pixel_loss
        self.aux_weight = aux_weight

    def forward(self, logits: Tensor, aux_logits: Tensor | list[Tensor] | None, target: Tensor) -> Tensor:
        loss = self.pixel_loss(logits, target)
        if aux_logits is None or self.aux_weight == 0.0:
            return loss
        for aux in aux_logits if isinstance(aux_logits, list) else [aux_logits]:
            loss = loss + self.aux_weight * self.pixel_loss(aux, target)
        return loss


def build_loss(config: TrainConfig) -> SegmentationLoss:
    """The loss ``config`` asks for, on the CPU (move it with ``.to(device)``)."""
    if config.loss == "ohem":
        pixel_loss: nn.Module = OhemCrossEntropy(
            threshold=config.ohem_threshold, min_kept=config.ohem_min_kept,
            class_weights=config.class_weights, ignore_index=config.ignore_index,
            normalisation=config.ohem_normalisation)
    else:
        pixel_loss = CrossEntropy(class_weights=config.class_weights,
                                  ignore_index=config.ignore_index)
    return SegmentationLoss(pixel_loss, config.aux_weight)


def _as_tensor(class_weights: Sequence[float] | None) -> Tensor | None:
    return None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)


def _pixel_cross_entropy(logits: Tensor, target: Tensor, ignore_index: int) -> Tensor:
    """Unweighted per-pixel loss, 0 at ignored pixels."""
    return F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")


def _pixel_weights(target: Tensor, class_weights: Tensor | None, ignore_index: int,
                   dtype: torch.dtype) -> Tensor:
    """Each pixel's class weight; 0 at ignored pixels."""
    labelled = target != ignore_index
    if class_weights is None:
        return labelled.to(dtype)
    return class_weights.to(dtype)[target.masked_fill(~labelled, 0)] * labelled


def _weighted_mean(pixel_losses: Tensor, weights: Tensor) -> Tensor:
    total_weight = weights.sum()
    return (pixel_losses * weights).sum() / torch.where(total_weight > 0, total_weight, 1.0)
