"""Bilateral (multi-resolution) fusion between the branches of a stage, as in DDRNet and RDRNet.

Every branch j receives every other branch i, ReLU-activated first: a coarser branch through a
1x1 conv+BN and a bilinear resize, a finer one through one strided 3x3 conv+BN per halving
(ReLU between, widths doubling towards the target). Two branches give DDRNet's exchange exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.arch.blocks.layers import ConvNorm, resize_to
from archsearch.arch.blocks.registry import ComponentConfig, NormSettings, register_block
from archsearch.arch.receptive_field import ReceptiveField, widest


def _transform(source_channels: int, target_channels: int, source_stride: int, target_stride: int,
               norm: NormSettings) -> nn.Sequential:
    if source_stride >= target_stride:
        return nn.Sequential(ConvNorm(source_channels, target_channels, 1, norm=norm, activation=False))
    halvings = int(math.log2(target_stride // source_stride))
    layers = []
    channels = source_channels
    for step in range(halvings):
        last = step == halvings - 1
        out_channels = target_channels if last else target_channels // 2 ** (halvings - 1 - step)
        layers.append(ConvNorm(channels, out_channels, 3, norm=norm, stride=2, activation=not last))
        channels = out_channels
    return nn.Sequential(*layers)


class BilateralFusion(nn.Module):
    """``out_j = x_j + sum_i transform_ij(relu(x_i))``, every transform reading the inputs before fusion."""

    def __init__(self, channels: list[int], strides: list[int], *, upsample_mode: str,
                 norm: NormSettings) -> None:
        super().__init__()
        self.upsample_mode = upsample_mode
        self.pairs = [(source, target) for target in range(len(channels)) for source in range(len(channels))
                      if source != target]
        self.transforms = nn.ModuleDict({
            f"{source}_to_{target}": _transform(channels[source], channels[target], strides[source],
                                                strides[target], norm)
            for source, target in self.pairs})

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        activated = [F.relu(x) for x in inputs]
        outputs = list(inputs)
        for source, target in self.pairs:
            message = self.transforms[f"{source}_to_{target}"](activated[source])
            outputs[target] = outputs[target] + resize_to(message, inputs[target].shape[-2:], self.upsample_mode)
        return outputs


@register_block("bilateral_fusion")
@dataclass(frozen=True, kw_only=True)
class FusionConfig(ComponentConfig):
    """Exchange between every pair of branches at the end of a stage."""

    upsample_mode: Literal["bilinear", "nearest"] = "bilinear"

    def check_branches(self, channels: list[int], strides: list[int]) -> None:
        """Raise SpecError (path relative to the fusion's stage) unless it can join these branches."""

    def build(self, channels: list[int], strides: list[int], norm: NormSettings) -> BilateralFusion:
        return BilateralFusion(channels, strides, upsample_mode=self.upsample_mode,
                               norm=self.resolved_norm(norm))

    def receptive_fields(self, fields: list[ReceptiveField], strides: list[int]) -> list[ReceptiveField]:
        fused = []
        for target, target_field in enumerate(fields):
            arriving = [target_field]
            for source, source_field in enumerate(fields):
                if source == target:
                    continue
                if strides[source] >= strides[target]:
                    arriving.append(source_field.at_jump(target_field.jump))
                else:
                    for _ in range(int(math.log2(strides[target] // strides[source]))):
                        source_field = source_field.window(3, 2)
                    arriving.append(source_field)
            fused.append(widest(*arriving))
        return fused
