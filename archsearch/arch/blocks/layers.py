"""Small layers shared by every block, and the one helper that folds BatchNorm into a conv."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.arch.blocks.registry import NormSettings


def fuse_conv_bn(weight: Tensor, bias: Tensor | None, norm: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Fold an eval-mode BatchNorm that follows a conv into the conv's weight and bias.

    ``weight`` has its output channels first (any conv, grouped or not, or an identity
    kernel); the result computes ``norm(conv(x))`` exactly up to float rounding.
    """
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    base = bias if bias is not None else torch.zeros_like(norm.running_mean)
    fused_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    fused_bias = norm.bias + (base - norm.running_mean) * scale
    return fused_weight, fused_bias


def make_activation(enabled: bool) -> nn.Module:
    return nn.ReLU(inplace=True) if enabled else nn.Identity()


def conv_with(weight: Tensor, bias: Tensor, template: nn.Conv2d) -> nn.Conv2d:
    """A conv with ``template``'s geometry and the given weight and bias."""
    conv = nn.Conv2d(template.in_channels, template.out_channels, template.kernel_size,
                     stride=template.stride, padding=template.padding, dilation=template.dilation,
                     groups=template.groups, bias=True, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


class FusedConv(nn.Module):
    """A conv with bias and an optional ReLU: the deploy form of conv+BN and of reparameterized blocks."""

    def __init__(self, conv: nn.Conv2d, activation: bool) -> None:
        super().__init__()
        self.conv = conv
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


class ConvNorm(nn.Module):
    """Post-activation conv -> BatchNorm -> optional ReLU (mmcv's ConvModule order)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, norm: NormSettings,
                 stride: int = 1, dilation: int = 1, groups: int = 1, bias: bool = False,
                 activation: bool = True) -> None:
        super().__init__()
        padding = dilation * (kernel_size // 2)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              dilation=dilation, groups=groups, bias=bias)
        self.bn = norm.make(out_channels)
        self.activation = activation
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))

    def fused_kernel(self) -> tuple[Tensor, Tensor]:
        """The weight and bias of one conv equal to conv+BN."""
        return fuse_conv_bn(self.conv.weight, self.conv.bias, self.bn)

    def fold_batchnorm(self) -> FusedConv:
        weight, bias = self.fused_kernel()
        return FusedConv(conv_with(weight, bias, self.conv), self.activation)


class NormActConv(nn.Module):
    """Pre-activation BatchNorm -> ReLU -> conv (DAPPM/RPPM and the DDR head); the BN cannot fold forward."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, norm: NormSettings,
                 stride: int = 1, dilation: int = 1, groups: int = 1, bias: bool = False) -> None:
        super().__init__()
        self.bn = norm.make(in_channels)
        self.act = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=dilation * (kernel_size // 2), dilation=dilation, groups=groups,
                              bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.act(self.bn(x)))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global pool, 1x1 conv, ReLU, 1x1 conv, sigmoid gate (RegSeg's SE)."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(channels, squeeze_channels, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(squeeze_channels, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.conv2(self.act(self.conv1(self.pool(x)))))


def resize_to(x: Tensor, size: tuple[int, int] | torch.Size, mode: str = "bilinear", *,
              align_corners: bool = False) -> Tensor:
    """Resize a feature map to ``size``; the identity when it already has it."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=tuple(size), mode="nearest")
    return F.interpolate(x, size=tuple(size), mode=mode, align_corners=align_corners)
