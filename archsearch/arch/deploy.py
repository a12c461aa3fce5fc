"""One walker that turns any built network into its deploy form."""

from __future__ import annotations

import copy

import torch
from torch import nn


def deploy(model: nn.Module, *, fold_batchnorm: bool = True) -> nn.Module:
    """Return the deploy form of ``model``, leaving ``model`` itself untouched.

    Every reparameterizable block (anything with ``reparameterize()``) becomes a single conv,
    and with ``fold_batchnorm`` every BatchNorm that follows a conv (anything with
    ``fold_batchnorm()``) is folded into it. The auxiliary heads, which only serve training,
    are dropped. ``fold_batchnorm=False`` gives the form the papers count parameters on.
    """
    deployed = copy.deepcopy(model).eval()
    with torch.no_grad():
        _convert(deployed, fold_batchnorm)
    for training_only in ("aux_head", "aux_heads"):
        if getattr(deployed, training_only, None) is not None:
            setattr(deployed, training_only, None)
    for parameter in deployed.parameters():
        parameter.requires_grad_(False)
    return deployed


def _convert(module: nn.Module, fold_batchnorm: bool) -> None:
    for name, child in list(module.named_children()):
        replacement = child
        if hasattr(child, "reparameterize"):
            replacement = child.reparameterize()
        elif fold_batchnorm and hasattr(child, "fold_batchnorm"):
            replacement = child.fold_batchnorm()
        _convert(replacement, fold_batchnorm)
        if replacement is not child:
            setattr(module, name, replacement)
