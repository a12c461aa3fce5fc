"""Initialisation schemes by name: a spec's ``init`` says how its weights start, as its authors start them.

- ``torch_default``: PyTorch's own per-layer initialisation, untouched (RegSeg: RolandGao/RegSeg's
  ``model.py`` and ``blocks.py`` initialise nothing themselves).
- ``kaiming_fan_out``: every conv weight ~ kaiming_normal(mode fan_out, ReLU gain), every conv bias 0,
  every BatchNorm weight 1 and bias 0. This is RDRNet's ``kaiming_init`` (gyyang23/RDRNet
  ``rdrnet.py``), PIDNet's and the DDR/PID heads' ``init_weights`` (mmsegmentation ``pidnet.py``,
  ``ddr_head.py``, ``pid_head.py``) and what mmcv's ``ConvModule`` and mmengine's ``Kaiming`` init
  give every other mmseg conv (fan_out, normal, bias 0). Where the authors differ, at step 0 only:
  the DDR/PID heads' ``init_weights`` leave their classifiers' biases at PyTorch's default (uniform
  within 1/sqrt(fan_in)), and DDRNet's ``_make_layer`` builds its 1x1 downsample convs as plain
  ``nn.Conv2d`` that no ``init_weights`` touches. No preset has a Linear layer; none is touched.
- ``kaiming_fan_out_normal_classifier``: ``kaiming_fan_out``, then every classifier (the heads'
  final 1x1 conv) ~ N(0, 0.01^2) with bias 0: mmseg's ``BaseDecodeHead`` ``init_cfg``, which
  ``FCNHead`` keeps (BiSeNetV1 and V2; mmseg ``bisenetv2.py`` itself inits Kaiming + BN 1).

Under both Kaiming schemes a timm encoder keeps timm's own initialisation: for ``resnet18`` that is
kaiming_normal fan_out, BatchNorm 1/0 and each block's last BatchNorm weight 0, exactly mmseg
``ResNet``'s default (``zero_init_residual=True``), which BiSeNetV1's context path uses.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from archsearch.arch.blocks.timm_encoder import TimmEncoder

CLASSIFIER_STD = 0.01  # mmseg BaseDecodeHead: init_cfg=dict(type='Normal', std=0.01, override=dict(name='conv_seg'))


def _own_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every named module outside timm encoders (those keep timm's initialisation)."""
    inside_encoders = {id(module) for encoder in model.modules() if isinstance(encoder, TimmEncoder)
                       for module in encoder.modules()}
    return [(name, module) for name, module in model.named_modules() if id(module) not in inside_encoders]


@torch.no_grad()
def _kaiming_fan_out(model: nn.Module) -> None:
    for _, module in _own_modules(model):
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@torch.no_grad()
def _kaiming_fan_out_normal_classifier(model: nn.Module) -> None:
    _kaiming_fan_out(model)
    for name, module in _own_modules(model):
        if name.rpartition(".")[2] == "classifier" and isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, std=CLASSIFIER_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


INIT_SCHEMES: dict[str, Callable[[nn.Module], None]] = {
    "torch_default": lambda model: None,
    "kaiming_fan_out": _kaiming_fan_out,
    "kaiming_fan_out_normal_classifier": _kaiming_fan_out_normal_classifier,
}
DEFAULT_INIT = "torch_default"  # what a spec without ``init`` gets, and what archsearch did before ``init``


def initialise(model: nn.Module, scheme: str) -> nn.Module:
    """Apply the named scheme in place (the spec's parser has checked the name) and return the model."""
    INIT_SCHEMES[scheme](model)
    return model
