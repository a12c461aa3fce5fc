"""Running a model over a validation loader into a confusion matrix."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.train.metrics import ConfusionMatrix


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], *, num_classes: int,
             ignore_index: int = 255, device: torch.device | str = "cpu",
             memory_format: torch.memory_format = torch.contiguous_format) -> ConfusionMatrix:
    """Count the model's predictions over ``loader``'s (images, targets) batches.

    The model runs in eval mode (BatchNorm uses running statistics) and is put back in
    the mode it was in; it must already be on ``device``. Logits of another size than the targets
    (an image resized for evaluation) are resized to the targets' (bilinear), as mmseg and RegSeg do.
    """
    matrix = ConfusionMatrix(num_classes, ignore_index, device)
    was_training = model.training
    model.eval()
    try:
        for images, targets in loader:
            logits = model(images.to(device, non_blocking=True).contiguous(memory_format=memory_format))
            if logits.shape[-2:] != targets.shape[-2:]:
                logits = F.interpolate(logits, size=targets.shape[-2:], mode="bilinear", align_corners=False)
            matrix.update(logits.argmax(dim=1), targets.to(device, non_blocking=True))
    finally:
        model.train(was_training)
    return matrix
