"""ResNet basic and bottleneck blocks as DDRNet and RDRNet use them (optional ReLU at the end)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from archsearch.arch.blocks.layers import ConvNorm, make_activation
from archsearch.arch.blocks.registry import BlockConfig, NormSettings, register_block, require
from archsearch.arch.receptive_field import ReceptiveField


class ResidualBlock(nn.Module):
    """``act(body(x) + shortcut(x))`` where the shortcut is a strided 1x1 conv+BN when the shape changes."""

    def __init__(self, body: nn.Sequential, in_channels: int, out_channels: int, *, stride: int,
                 activation: bool, norm: NormSettings) -> None:
        super().__init__()
        self.body = body
        needs_projection = stride != 1 or in_channels != out_channels
        self.downsample = (ConvNorm(in_channels, out_channels, 1, norm=norm, stride=stride, activation=False)
                           if needs_projection else nn.Identity())
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.downsample(x))


def _check_common(out_channels: int, stride: int) -> None:
    require(out_channels > 0, "must be positive", path="out_channels", value=out_channels)
    require(stride in (1, 2), "must be 1 or 2", path="stride", value=stride, allowed="1, 2")


@register_block("basic")
@dataclass(frozen=True, kw_only=True)
class BasicConfig(BlockConfig):
    """ResNet basic block: two 3x3 conv+BN (ReLU between)."""

    out_channels: int
    stride: int = 1
    activation: bool = True

    def validate(self) -> None:
        _check_common(self.out_channels, self.stride)

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        norm = self.resolved_norm(norm)
        body = nn.Sequential(
            ConvNorm(in_channels, self.out_channels, 3, norm=norm, stride=self.stride),
            ConvNorm(self.out_channels, self.out_channels, 3, norm=norm, activation=False))
        return ResidualBlock(body, in_channels, self.out_channels, stride=self.stride,
                             activation=self.activation, norm=norm)

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        return field.window(3, self.stride).window(3)


@register_block("bottleneck")
@dataclass(frozen=True, kw_only=True)
class BottleneckConfig(BlockConfig):
    """ResNet bottleneck: 1x1, strided 3x3, 1x1 to ``out_channels``; the middle is out/expansion wide.

    DDRNet and RDRNet use expansion 2 and no ReLU at the end of their last stage.
    """

    out_channels: int
    stride: int = 1
    expansion: int = 2
    activation: bool = True

    def validate(self) -> None:
        _check_common(self.out_channels, self.stride)
        require(self.expansion >= 1 and self.out_channels % self.expansion == 0,
                "out_channels must be a multiple of expansion", path="expansion", value=self.expansion)

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        norm = self.resolved_norm(norm)
        middle = self.out_channels // self.expansion
        body = nn.Sequential(
            ConvNorm(in_channels, middle, 1, norm=norm),
            ConvNorm(middle, middle, 3, norm=norm, stride=self.stride),
            ConvNorm(middle, self.out_channels, 1, norm=norm, activation=False))
        return ResidualBlock(body, in_channels, self.out_channels, stride=self.stride,
                             activation=self.activation, norm=norm)

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        return field.window(3, self.stride)
