"""RDRNet's reparameterizable block: several parallel branches in training, one 3x3 conv in deployment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.arch.blocks.layers import ConvNorm, FusedConv, conv_with, fuse_conv_bn, make_activation
from archsearch.arch.blocks.registry import BlockConfig, NormSettings, register_block, require
from archsearch.arch.receptive_field import ReceptiveField

RepBranch = Literal["serial_1x1", "1x1", "identity"]


class RepConv(nn.Module):
    """A 3x3 conv+BN summed with optional 1x1 branches and a BN identity, then an optional ReLU.

    ``serial_1x1`` is RDRNet's 1x1 conv+BN -> 1x1 conv+BN path (both convs with bias),
    ``1x1`` is RepVGG's single 1x1 conv+BN, ``identity`` a BN shortcut (only where the
    block keeps its shape). ``reparameterize`` folds all of it into one 3x3 conv.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, branches: tuple[str, ...],
                 activation: bool, norm: NormSettings) -> None:
        super().__init__()
        self.activation = activation
        self.conv3x3 = ConvNorm(in_channels, out_channels, 3, norm=norm, stride=stride, activation=False)
        self.conv1x1 = (ConvNorm(in_channels, out_channels, 1, norm=norm, stride=stride, activation=False)
                        if "1x1" in branches else None)
        self.serial1x1 = (nn.Sequential(
            ConvNorm(in_channels, out_channels, 1, norm=norm, stride=stride, bias=True, activation=False),
            ConvNorm(out_channels, out_channels, 1, norm=norm, bias=True, activation=False),
        ) if "serial_1x1" in branches else None)
        keeps_shape = in_channels == out_channels and stride == 1
        self.identity = norm.make(in_channels) if "identity" in branches and keeps_shape else None
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3x3(x)
        if self.conv1x1 is not None:
            out = out + self.conv1x1(x)
        if self.serial1x1 is not None:
            out = out + self.serial1x1(x)
        if self.identity is not None:
            out = out + self.identity(x)
        return self.act(out)

    def equivalent_kernel(self) -> tuple[Tensor, Tensor]:
        """One 3x3 kernel and bias that compute the sum of every branch."""
        weight, bias = self.conv3x3.fused_kernel()
        if self.conv1x1 is not None:
            weight_1x1, bias_1x1 = self.conv1x1.fused_kernel()
            weight, bias = weight + F.pad(weight_1x1, [1, 1, 1, 1]), bias + bias_1x1
        if self.serial1x1 is not None:
            first_weight, first_bias = self.serial1x1[0].fused_kernel()
            second_weight, second_bias = self.serial1x1[1].fused_kernel()
            first, second = first_weight[:, :, 0, 0], second_weight[:, :, 0, 0]
            serial_weight = (second @ first)[:, :, None, None]
            serial_bias = second @ first_bias + second_bias
            weight, bias = weight + F.pad(serial_weight, [1, 1, 1, 1]), bias + serial_bias
        if self.identity is not None:
            channels = self.identity.num_features
            identity_kernel = torch.zeros_like(weight)
            diagonal = torch.arange(channels, device=weight.device)
            identity_kernel[diagonal, diagonal, 1, 1] = 1.0
            identity_weight, identity_bias = fuse_conv_bn(identity_kernel, None, self.identity)
            weight, bias = weight + identity_weight, bias + identity_bias
        return weight, bias

    def reparameterize(self) -> FusedConv:
        weight, bias = self.equivalent_kernel()
        return FusedConv(conv_with(weight, bias, self.conv3x3.conv), self.activation)


@register_block("rep")
@dataclass(frozen=True, kw_only=True)
class RepConfig(BlockConfig):
    """RDRNet's RB (``branches: [serial_1x1, identity]``) or a RepVGG block (``[1x1, identity]``)."""

    out_channels: int
    stride: int = 1
    branches: tuple[RepBranch, ...] = ("serial_1x1", "identity")
    activation: bool = True

    def validate(self) -> None:
        require(self.out_channels > 0, "must be positive", path="out_channels", value=self.out_channels)
        require(self.stride in (1, 2), "must be 1 or 2", path="stride", value=self.stride, allowed="1, 2")
        require(len(set(self.branches)) == len(self.branches), "a branch is named twice", path="branches",
                value=list(self.branches))

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return RepConv(in_channels, self.out_channels, stride=self.stride, branches=self.branches,
                       activation=self.activation, norm=self.resolved_norm(norm))

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        return field.window(3, self.stride)


class RepParallelConv(nn.Module):
    """RPPM's pre-activated grouped 3x3: BN -> ReLU -> sum of parallel grouped 3x3 conv+BN branches."""

    def __init__(self, channels: int, *, groups: int, num_branches: int, norm: NormSettings) -> None:
        super().__init__()
        self.bn = norm.make(channels)
        self.act = nn.ReLU(inplace=True)
        self.parallel = nn.ModuleList(
            ConvNorm(channels, channels, 3, norm=norm, groups=groups, activation=False)
            for _ in range(num_branches))

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn(x))
        return sum(branch(x) for branch in self.parallel)

    def reparameterize(self) -> nn.Sequential:
        kernels = [branch.fused_kernel() for branch in self.parallel]
        weight = sum(kernel[0] for kernel in kernels)
        bias = sum(kernel[1] for kernel in kernels)
        return nn.Sequential(self.bn, self.act, conv_with(weight, bias, self.parallel[0].conv))
