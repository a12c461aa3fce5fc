"""BatchNorm recalibration: statistics re-estimated on a few batches, which weight-shared subnets need.

A supernet's running statistics mix every path that trained them; a subnet's own are the plain
average over a few batches of its own activations (SPOS; OFA does the same). The helper serves
a stand-alone network too (an extracted subnet, or any model after its weights changed).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import torch
from torch import Tensor, nn


def images_of(batch: Any) -> Tensor:
    """The images of a loader's ``(images, targets)`` batch, or the batch itself when it is a tensor."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


@contextmanager
def average_statistics(norms: list[nn.Module], model: nn.Module) -> Iterator[None]:
    """Within: ``model`` in train mode without gradients, ``norms`` averaging every batch equally (momentum None).

    Their momentum and the model's mode are restored afterwards.
    """
    momenta = [norm.momentum for norm in norms]
    was_training = model.training
    try:
        for norm in norms:
            norm.momentum = None
        model.train()
        with torch.no_grad():
            yield
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)


def recalibrate_batchnorm(model: nn.Module, batches: Iterable[Any]) -> int:
    """Reset every BatchNorm of ``model`` and re-estimate its statistics on ``batches``; the batches used."""
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
    device = next((tensor.device for tensor in model.parameters()), torch.device("cpu"))
    count = 0
    with average_statistics(norms, model):
        for batch in batches:
            model(images_of(batch).to(device))
            count += 1
    return count
