"""Zero-cost proxies: scores of an untrained network that are meant to rank architectures like training does.

Each follows its paper's definition, on the weights of every convolution and linear layer
(the layers a pruner scores, as in Abdelfattah et al. 2021, "Zero-Cost Proxies for
Lightweight NAS"):

- ``synflow`` (Tanaka et al. 2020, "Pruning neural networks without any data"): every
  parameter and buffer made non-negative (``|θ|``), the network in float64, one all-ones
  input; R = sum of the output, and the score is Σ |θ ⊙ ∂R/∂θ|. BatchNorm runs on its
  running statistics (eval mode): at initialization these are mean 0 and variance 1, so BN
  is a fixed positive scaling, as good as the paper's network without BN for a ranking, and
  the all-ones input never meets a batch statistic of its own.
- ``naswot`` (Mellor et al. 2021, "Neural Architecture Search without Training"): for a batch
  of N images, the binary code of each image is which units of every ReLU module are
  positive; K[i, j] = N_A − Hamming(c_i, c_j) with N_A the number of units; the score is
  log |det K|. Train mode, as in the paper's code.
- ``grad_norm`` (Abdelfattah et al. 2021): Σ over layers of ‖∂L/∂W‖₂ for the cross-entropy
  loss L of a batch (train mode, main logits).
- ``snip`` (Lee et al. 2019, "SNIP: Single-shot network pruning"): Σ |∂L/∂w ⊙ w| for the same L.

A score computed from data is the mean over the given batches. Every proxy gets a fresh
network from the factory, so one proxy's gradients or sign flips never reach another.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.train.proxy_names import PROXY_NAMES

IGNORE_INDEX = 255


def compute_proxies(make_model: Callable[[], nn.Module], batches: Sequence[tuple[Tensor, Tensor]],
                    names: Sequence[str] = PROXY_NAMES, *, ignore_index: int = IGNORE_INDEX) -> dict[str, float]:
    """``{name: score}`` for each of ``names`` on a fresh ``make_model()`` (seed it in the factory).

    ``batches`` are (images, labels) pairs; synflow reads only their shape.
    """
    unknown = [name for name in names if name not in PROXY_NAMES]
    if unknown:
        raise ValueError(f"unknown proxies {unknown}; known: {', '.join(PROXY_NAMES)}")
    if not batches:
        raise ValueError("zero-cost proxies need at least one batch")
    scores = {}
    for name in names:
        if name == "synflow":
            scores[name] = synflow(make_model(), batches[0][0].shape[1:])
        elif name == "naswot":
            scores[name] = _mean(naswot(make_model(), images) for images, _ in batches)
        else:
            score = grad_norm if name == "grad_norm" else snip
            scores[name] = _mean(score(make_model(), images, labels, ignore_index=ignore_index)
                                 for images, labels in batches)
    return scores


def _mean(values) -> float:
    values = list(values)
    return math.fsum(values) / len(values)


def scored_weights(model: nn.Module) -> list[nn.Parameter]:
    """The weights the proxies score: those of every convolution and linear layer."""
    return [module.weight for module in model.modules()
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and module.weight is not None]


def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Σ |θ ⊙ ∂R/∂θ| with R the summed output of the all-positive float64 network on one all-ones input."""
    model = model.double().eval()
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            if tensor.is_floating_point():
                tensor.abs_()
    model.zero_grad()
    output = model(torch.ones((1, *input_shape), dtype=torch.float64))
    output.sum().backward()
    return float(sum((weight.detach() * weight.grad).abs().sum() for weight in scored_weights(model)
                     if weight.grad is not None))


def naswot(model: nn.Module, images: Tensor) -> float:
    """log |det K| of the Hamming-similarity kernel of the batch's ReLU binary codes."""
    model = model.train()
    count = images.shape[0]
    kernel = torch.zeros((count, count), dtype=torch.float64)

    def add_codes(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        codes = (output.detach().reshape(count, -1) > 0).double()
        # Units where both codes agree: N_A - Hamming, summed over ReLU modules.
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [module.register_forward_hook(add_codes) for module in model.modules() if isinstance(module, nn.ReLU)]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def grad_norm(model: nn.Module, images: Tensor, labels: Tensor, *, ignore_index: int = IGNORE_INDEX) -> float:
    """Σ over layers of ‖∂L/∂W‖₂ (cross entropy of the batch, at initialization)."""
    return float(sum(weight.grad.norm() for weight in _weight_gradients(model, images, labels, ignore_index)))


def snip(model: nn.Module, images: Tensor, labels: Tensor, *, ignore_index: int = IGNORE_INDEX) -> float:
    """Σ |∂L/∂w ⊙ w| (cross entropy of the batch, at initialization)."""
    return float(sum((weight.grad * weight.detach()).abs().sum()
                     for weight in _weight_gradients(model, images, labels, ignore_index)))


def _weight_gradients(model: nn.Module, images: Tensor, labels: Tensor, ignore_index: int) -> list[nn.Parameter]:
    """The scored weights, each holding ∂L/∂w of the batch's cross entropy (train mode, main logits)."""
    model = model.train()
    model.zero_grad()
    F.cross_entropy(model(images), labels, ignore_index=ignore_index).backward()
    return [weight for weight in scored_weights(model) if weight.grad is not None]
