"""The plain convolution block, in post-activation (conv-BN-ReLU) or pre-activation (BN-ReLU-conv) order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from archsearch.arch.blocks.layers import ConvNorm, NormActConv
from archsearch.arch.blocks.registry import BlockConfig, NormSettings, register_block, require
from archsearch.arch.receptive_field import ReceptiveField


@register_block("conv")
@dataclass(frozen=True, kw_only=True)
class ConvConfig(BlockConfig):
    """conv-norm-act: RegSeg's stem and decoder convs, DDRNet's stem, any plain layer."""

    out_channels: int
    kernel_size: int = 3
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    bias: bool = False
    activation: bool = True
    order: Literal["conv-norm-act", "norm-act-conv"] = "conv-norm-act"

    def validate(self) -> None:
        require(self.out_channels > 0, "must be positive", path="out_channels", value=self.out_channels)
        require(self.kernel_size % 2 == 1 and self.kernel_size > 0, "must be a positive odd number",
                path="kernel_size", value=self.kernel_size)
        require(self.stride in (1, 2), "must be 1 or 2", path="stride", value=self.stride, allowed="1, 2")
        require(self.dilation >= 1, "must be at least 1", path="dilation", value=self.dilation)
        require(self.groups >= 1 and self.out_channels % self.groups == 0,
                "out_channels must be divisible by groups", path="groups", value=self.groups)
        require(self.order == "conv-norm-act" or self.activation, "pre-activation order always has its ReLU",
                path="activation", value=self.activation, allowed="true with order norm-act-conv")

    def check(self, in_channels: int) -> None:
        require(in_channels % self.groups == 0, f"input channels ({in_channels}) must be divisible by groups",
                path="groups", value=self.groups)

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        norm = self.resolved_norm(norm)
        if self.order == "norm-act-conv":
            return NormActConv(in_channels, self.out_channels, self.kernel_size, norm=norm, stride=self.stride,
                               dilation=self.dilation, groups=self.groups, bias=self.bias)
        return ConvNorm(in_channels, self.out_channels, self.kernel_size, norm=norm, stride=self.stride,
                        dilation=self.dilation, groups=self.groups, bias=self.bias, activation=self.activation)

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        return field.window(self.kernel_size, self.stride, self.dilation)
