"""RegSeg's D-block: a grouped 3x3 conv whose channel splits each get their own dilation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from archsearch.arch.blocks.layers import ConvNorm, make_activation, SqueezeExcite, conv_with, fuse_conv_bn
from archsearch.arch.blocks.registry import BlockConfig, NormSettings, register_block, require
from archsearch.arch.receptive_field import ReceptiveField, widest


class DilatedSplitConv(nn.Module):
    """Split channels into ``len(dilations)`` equal parts; each gets a grouped 3x3 conv with its dilation.

    With BN (and ReLU) after the concatenation; ``fold_batchnorm`` folds each BN slice into its split.
    """

    def __init__(self, channels: int, dilations: tuple[int, ...], *, group_width: int, stride: int,
                 norm: NormSettings | None, activation: bool = True) -> None:
        super().__init__()
        split = channels // len(dilations)
        self.convs = nn.ModuleList(
            nn.Conv2d(split, split, 3, stride=stride, padding=dilation, dilation=dilation,
                      groups=split // group_width, bias=norm is None)
            for dilation in dilations)
        self.bn = norm.make(channels) if norm is not None else nn.Identity()
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        if len(self.convs) == 1:
            out = self.convs[0](x)
        else:
            parts = torch.tensor_split(x, len(self.convs), dim=1)
            out = torch.cat([conv(part) for conv, part in zip(self.convs, parts)], dim=1)
        return self.act(self.bn(out))

    def fold_batchnorm(self) -> "DilatedSplitConv":
        """Fold the BN into the split convs, in place (deploy works on a copy)."""
        split = self.convs[0].out_channels
        for index, conv in enumerate(self.convs):
            norm = _slice_norm(self.bn, slice(index * split, (index + 1) * split))
            self.convs[index] = conv_with(*fuse_conv_bn(conv.weight, conv.bias, norm), conv)
        self.bn = nn.Identity()
        return self


def _slice_norm(norm: nn.BatchNorm2d, part: slice) -> nn.BatchNorm2d:
    """The BN statistics of a channel slice, as a BN of its own."""
    sliced = nn.BatchNorm2d(part.stop - part.start, eps=norm.eps, device=norm.weight.device,
                            dtype=norm.weight.dtype)
    with torch.no_grad():
        sliced.weight.copy_(norm.weight[part])
        sliced.bias.copy_(norm.bias[part])
        sliced.running_mean.copy_(norm.running_mean[part])
        sliced.running_var.copy_(norm.running_var[part])
    return sliced.eval()


class Shortcut(nn.Module):
    """RegSeg's projection shortcut: 2x2 average pool (ceil) when striding, then 1x1 conv+BN."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, norm: NormSettings) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True) if stride != 1 else nn.Identity()
        self.projection = ConvNorm(in_channels, out_channels, 1, norm=norm, activation=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.pool(x))


class DBlock(nn.Module):
    """1x1 conv+BN+ReLU, dilated split conv+BN+ReLU, SE, 1x1 conv+BN, residual, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, dilations: tuple[int, ...], group_width: int,
                 stride: int, se_ratio: float, norm: NormSettings) -> None:
        super().__init__()
        self.conv1 = ConvNorm(in_channels, out_channels, 1, norm=norm)
        self.conv2 = DilatedSplitConv(out_channels, dilations, group_width=group_width, stride=stride, norm=norm)
        squeeze_channels = int(in_channels * se_ratio)
        self.se = SqueezeExcite(out_channels, squeeze_channels) if squeeze_channels > 0 else nn.Identity()
        self.conv3 = ConvNorm(out_channels, out_channels, 1, norm=norm, activation=False)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = (Shortcut(in_channels, out_channels, stride=stride, norm=norm)
                         if needs_projection else nn.Identity())
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut(x)
        return self.act(self.conv3(self.se(self.conv2(self.conv1(x)))) + shortcut)


@register_block("dblock")
@dataclass(frozen=True, kw_only=True)
class DBlockConfig(BlockConfig):
    """RegSeg's D-block; one dilation makes it a RegNet Y block. SE squeezes to ``se_ratio`` x input channels."""

    out_channels: int
    dilations: tuple[int, ...] = (1,)
    group_width: int = 16
    stride: int = 1
    se_ratio: float = 0.25

    def validate(self) -> None:
        require(self.out_channels > 0, "must be positive", path="out_channels", value=self.out_channels)
        require(len(self.dilations) > 0 and all(d >= 1 for d in self.dilations),
                "needs at least one dilation, each at least 1", path="dilations", value=list(self.dilations))
        require(self.group_width > 0, "must be positive", path="group_width", value=self.group_width)
        require(self.stride in (1, 2), "must be 1 or 2", path="stride", value=self.stride, allowed="1, 2")
        require(0.0 <= self.se_ratio <= 1.0, "must lie in [0, 1]", path="se_ratio", value=self.se_ratio)
        splits = len(self.dilations)
        require(self.out_channels % splits == 0,
                f"out_channels must split evenly over the {splits} dilations",
                path="out_channels", value=self.out_channels, allowed=f"a multiple of {splits}")
        split = self.out_channels // splits
        require(split % self.group_width == 0,
                f"each dilation's {split} channels must be a multiple of group_width {self.group_width}",
                path="group_width", value=self.group_width,
                allowed=f"a divisor of {split}; or out_channels a multiple of {splits * self.group_width}")

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return DBlock(in_channels, self.out_channels, dilations=self.dilations, group_width=self.group_width,
                      stride=self.stride, se_ratio=self.se_ratio, norm=self.resolved_norm(norm))

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        main = field.window(3, self.stride, max(self.dilations))
        if self.stride == 1:
            return main
        return widest(main, field.window(2, 2))
