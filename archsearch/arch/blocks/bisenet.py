"""BiSeNetV1's and BiSeNetV2's parts (Yu et al., arXiv 1808.00897 and 2004.02147).

V1: a spatial path (plain convs, in the spec) and a context path (``bisenet_context``: an
encoder, attention refinement of its last two levels, a global context vector and two 3x3
heads), joined by the feature fusion module (``ffm``). V2: a detail branch
(plain convs), a semantic branch (``bisenet_stem``, gather-and-expansion layers ``ge``, the
context embedding block ``ce``), joined by bilateral guided aggregation (``bga``).
Attribute names follow mmsegmentation's, so official checkpoints map with few rules.

Fold rules: every conv+BN folds. CE's BatchNorm after global pooling precedes a 1x1 conv with
nothing between and folds forward into it; no other BatchNorm here precedes its conv.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from archsearch.arch.blocks.layers import ConvNorm, FusedConv, conv_with, fuse_conv_bn, resize_to
from archsearch.arch.blocks.merge import MergeConfig
from archsearch.arch.blocks.registry import BlockConfig, NormSettings, register_block, require
from archsearch.arch.blocks.timm_encoder import TimmEncoderConfig
from archsearch.arch.receptive_field import ReceptiveField, widest


class AttentionRefinement(nn.Module):
    """conv-BN-ReLU 3x3, then a channel gate ``sigmoid(BN(1x1(global pool)))``."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: NormSettings) -> None:
        super().__init__()
        self.conv_layer = ConvNorm(in_channels, out_channels, 3, norm=norm)
        self.atten_conv_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                              ConvNorm(out_channels, out_channels, 1, norm=norm, activation=False),
                                              nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_layer(x)
        return x * self.atten_conv_layer(x)


@register_block("arm")
@dataclass(frozen=True, kw_only=True)
class AttentionRefinementConfig(BlockConfig):
    """BiSeNetV1's attention refinement module as a block of any branch."""

    out_channels: int

    def validate(self) -> None:
        require(self.out_channels > 0, "must be positive", path="out_channels", value=self.out_channels)

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return AttentionRefinement(in_channels, self.out_channels, norm=self.resolved_norm(norm))

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        return field.window(3)


class BiSeNetContextPath(nn.Module):
    """An encoder's levels c4 (stride s) and c5 (2s) -> ``[head16(up(arm16(c4) + c32)), c32]`` with
    ``c32 = head32(up(arm32(c5) + gap(c5)))``; nearest upsampling, the first map at s/2, the second at s.

    mmsegmentation resizes the first map to the size of its ResNet's stride-s/2 feature, which is
    ``ceil(H / (s/2))`` (every stride-2 step of a ResNet halves rounding up), not twice the stride-s
    map's size: the two differ where ``ceil(H / (s/2))`` is odd (e.g. 264 x 520 at s/2 = 8).
    """

    def __init__(self, encoder: nn.Module, channels: list[int], out_channels: int, *, fine_stride: int,
                 norm: NormSettings) -> None:
        super().__init__()
        level16, level32 = channels
        self.encoder = encoder
        self.fine_stride = fine_stride
        self.arm16 = AttentionRefinement(level16, out_channels, norm=norm)
        self.arm32 = AttentionRefinement(level32, out_channels, norm=norm)
        self.conv_head32 = ConvNorm(out_channels, out_channels, 3, norm=norm)
        self.conv_head16 = ConvNorm(out_channels, out_channels, 3, norm=norm)
        self.gap_conv = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvNorm(level32, out_channels, 1, norm=norm))

    def forward(self, x: Tensor) -> list[Tensor]:
        level16, level32 = self.encoder(x)
        coarse = self.arm32(level32) + self.gap_conv(level32)
        coarse = self.conv_head32(resize_to(coarse, level16.shape[-2:], "nearest"))
        fine_size = (-(-x.shape[-2] // self.fine_stride), -(-x.shape[-1] // self.fine_stride))
        fine = self.conv_head16(resize_to(self.arm16(level16) + coarse, fine_size, "nearest"))
        return [fine, coarse]


@register_block("bisenet_context")
@dataclass(frozen=True, kw_only=True)
class BiSeNetContextConfig(BlockConfig):
    """BiSeNetV1's context path: an encoder giving two levels (strides s, 2s), refined and joined top-down.

    Two outputs: the path's map at s/2 (what the branch hands on) and the intermediate map at s
    (where BiSeNetV1's second auxiliary head reads).
    """

    encoder: TimmEncoderConfig
    out_channels: int

    def validate(self) -> None:
        require(self.out_channels > 0, "must be positive", path="out_channels", value=self.out_channels)
        strides = self.encoder.feature_strides()
        require(len(strides) == 2 and strides[1] == 2 * strides[0] and strides[0] % 2 == 0,
                "the encoder must give two levels, the second at twice the first's (even) stride",
                path="encoder.out_indices", value=list(self.encoder.out_indices))

    def check(self, in_channels: int) -> None:
        self.encoder.check(in_channels)

    @property
    def stride(self) -> int:
        return self.encoder.feature_strides()[0] // 2

    def output_features(self, in_channels: int) -> list[tuple[int, int]]:
        return [(self.out_channels, self.stride), (self.out_channels, 2 * self.stride)]

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return BiSeNetContextPath(self.encoder.build(in_channels, norm), self.encoder.feature_channels(),
                                  self.out_channels, fine_stride=self.stride, norm=self.resolved_norm(norm))

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        return self.receptive_fields(field)[0]

    def receptive_fields(self, field: ReceptiveField) -> list[ReceptiveField]:
        """Of both outputs: each 3x3 conv counts at the grid it runs on."""
        level16, level32 = self.encoder.receptive_fields(field)
        coarse = level32.window(3).at_jump(level16.jump).window(3)
        fine = widest(level16.window(3), coarse).at_jump(level16.jump / 2).window(3)
        return [fine, coarse]


class FeatureFusion(nn.Module):
    """``f = conv-BN-ReLU 1x1(cat[spatial, context])``; ``f * sigmoid(conv-BN-ReLU 1x1(pool f)) + f``."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: NormSettings) -> None:
        super().__init__()
        self.conv1 = ConvNorm(in_channels, out_channels, 1, norm=norm)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.conv_atten = nn.Sequential(ConvNorm(out_channels, out_channels, 1, norm=norm), nn.Sigmoid())

    def forward(self, inputs: list[Tensor]) -> Tensor:
        fused = self.conv1(torch.cat([inputs[0], resize_to(inputs[1], inputs[0].shape[-2:])], dim=1))
        return fused * self.conv_atten(self.gap(fused)) + fused


@register_block("ffm")
@dataclass(frozen=True, kw_only=True)
class FeatureFusionConfig(MergeConfig):
    """BiSeNetV1's feature fusion module of the spatial path and the context path."""

    def build(self, channels: list[int], strides: list[int], norm: NormSettings) -> nn.Module:
        return FeatureFusion(sum(channels), self.out_channels, norm=self.resolved_norm(norm))


class StemBlock(nn.Module):
    """3x3/2 conv, then [1x1 -> 3x3/2 conv] beside a 3x3/2 max pool, concatenated, then a 3x3 conv."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: NormSettings) -> None:
        super().__init__()
        self.conv_first = ConvNorm(in_channels, out_channels, 3, norm=norm, stride=2)
        self.convs = nn.Sequential(ConvNorm(out_channels, out_channels // 2, 1, norm=norm),
                                   ConvNorm(out_channels // 2, out_channels, 3, norm=norm, stride=2))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.fuse_last = ConvNorm(2 * out_channels, out_channels, 3, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_first(x)
        return self.fuse_last(torch.cat([self.convs(x), self.pool(x)], dim=1))


@register_block("bisenet_stem")
@dataclass(frozen=True, kw_only=True)
class StemBlockConfig(BlockConfig):
    """BiSeNetV2's semantic stem: stride 4."""

    out_channels: int

    def validate(self) -> None:
        require(self.out_channels > 0 and self.out_channels % 2 == 0, "must be positive and even",
                path="out_channels", value=self.out_channels)

    @property
    def stride(self) -> int:
        return 4

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return StemBlock(in_channels, self.out_channels, norm=self.resolved_norm(norm))

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        first = field.window(3, 2)
        return widest(first.window(3, 2), first.window(3, 2)).window(3)


class BareConv(nn.Module):
    """A conv with bias and nothing after it (mmcv's ConvModule without norm or activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 conv+BN (optionally strided), then a pointwise conv, with BN or with a bias instead."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, pointwise_norm: bool,
                 norm: NormSettings) -> None:
        super().__init__()
        self.depthwise_conv = ConvNorm(in_channels, in_channels, 3, norm=norm, stride=stride, groups=in_channels,
                                       activation=False)
        self.pointwise_conv = (ConvNorm(in_channels, out_channels, 1, norm=norm, activation=False) if pointwise_norm
                               else BareConv(in_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class GatherExpansion(nn.Module):
    """``ReLU(conv2(dwconv(conv1(x))) + shortcut(x))``: the expansion is a grouped conv (groups = input width)."""

    def __init__(self, in_channels: int, out_channels: int, *, expansion: int, stride: int,
                 norm: NormSettings) -> None:
        super().__init__()
        middle = in_channels * expansion
        self.conv1 = ConvNorm(in_channels, in_channels, 3, norm=norm)
        if stride == 1:
            self.dwconv = nn.Sequential(ConvNorm(in_channels, middle, 3, norm=norm, groups=in_channels))
            self.shortcut = None
        else:
            self.dwconv = nn.Sequential(
                ConvNorm(in_channels, middle, 3, norm=norm, stride=stride, groups=in_channels, activation=False),
                ConvNorm(middle, middle, 3, norm=norm, groups=middle))
            self.shortcut = nn.Sequential(DepthwiseSeparable(in_channels, out_channels, stride=stride,
                                                             pointwise_norm=True, norm=norm))
        self.conv2 = nn.Sequential(ConvNorm(middle, out_channels, 1, norm=norm, activation=False))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv2(self.dwconv(self.conv1(x))) + shortcut)


@register_block("ge")
@dataclass(frozen=True, kw_only=True)
class GatherExpansionConfig(BlockConfig):
    """BiSeNetV2's gather-and-expansion layer; stride 1 keeps the width, stride 2 may change it."""

    out_channels: int
    stride: int = 1
    expansion: int = 6

    def validate(self) -> None:
        require(self.out_channels > 0, "must be positive", path="out_channels", value=self.out_channels)
        require(self.stride in (1, 2), "must be 1 or 2", path="stride", value=self.stride, allowed="1, 2")
        require(self.expansion >= 1, "must be at least 1", path="expansion", value=self.expansion)

    def check(self, in_channels: int) -> None:
        require(self.stride == 2 or in_channels == self.out_channels,
                f"a stride-1 layer keeps its width ({in_channels})", path="out_channels", value=self.out_channels,
                allowed=str(in_channels))

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return GatherExpansion(in_channels, self.out_channels, expansion=self.expansion, stride=self.stride,
                               norm=self.resolved_norm(norm))

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        field = field.window(3).window(3, self.stride)
        return field.window(3) if self.stride == 2 else field


class ContextEmbedding(nn.Module):
    """``conv_last(x + conv_gap(BN(pool x)))``: a global context vector added back, then a 3x3 conv."""

    def __init__(self, channels: int, out_channels: int, *, norm: NormSettings) -> None:
        super().__init__()
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), norm.make(channels))
        self.conv_gap = ConvNorm(channels, out_channels, 1, norm=norm)
        self.conv_last = ConvNorm(out_channels, out_channels, 3, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_last(x + self.conv_gap(self.gap(x)))

    def fold_batchnorm(self) -> "ContextEmbedding":
        """Fold the pooled BN forward into the 1x1 conv (nothing sits between), then conv_gap's own BN."""
        bn = self.gap[1]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        weight = self.conv_gap.conv.weight
        forward_weight = weight * scale.reshape(1, -1, 1, 1)
        forward_bias = weight[:, :, 0, 0] @ shift
        fused = fuse_conv_bn(forward_weight, forward_bias, self.conv_gap.bn)
        self.conv_gap = FusedConv(conv_with(*fused, self.conv_gap.conv), activation=True)
        self.gap = nn.Sequential(self.gap[0])
        return self


@register_block("ce")
@dataclass(frozen=True, kw_only=True)
class ContextEmbeddingConfig(BlockConfig):
    """BiSeNetV2's context embedding block at the end of the semantic branch."""

    out_channels: int

    def validate(self) -> None:
        require(self.out_channels > 0, "must be positive", path="out_channels", value=self.out_channels)

    def check(self, in_channels: int) -> None:
        require(in_channels == self.out_channels, f"adds its context to its input, so keeps the width ({in_channels})",
                path="out_channels", value=self.out_channels, allowed=str(in_channels))

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return ContextEmbedding(in_channels, self.out_channels, norm=self.resolved_norm(norm))

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        return field.window(3)


class GuidedAggregation(nn.Module):
    """``conv(d1 * sigmoid(up(s1)) + up(d2 * sigmoid(s2)))``: each branch gates the other at its own scale."""

    def __init__(self, channels: int, *, norm: NormSettings) -> None:
        super().__init__()
        self.detail_dwconv = nn.Sequential(DepthwiseSeparable(channels, channels, stride=1, pointwise_norm=False,
                                                              norm=norm))
        self.detail_down = nn.Sequential(ConvNorm(channels, channels, 3, norm=norm, stride=2, activation=False),
                                         nn.AvgPool2d(3, 2, 1))
        self.semantic_conv = nn.Sequential(ConvNorm(channels, channels, 3, norm=norm, activation=False))
        self.semantic_dwconv = nn.Sequential(DepthwiseSeparable(channels, channels, stride=1, pointwise_norm=False,
                                                                norm=norm))
        self.conv = ConvNorm(channels, channels, 3, norm=norm)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        detail, semantic = inputs
        detail_gated = self.detail_dwconv(detail) * torch.sigmoid(
            resize_to(self.semantic_conv(semantic), detail.shape[-2:]))
        semantic_gated = self.detail_down(detail) * torch.sigmoid(self.semantic_dwconv(semantic))
        return self.conv(detail_gated + resize_to(semantic_gated, detail.shape[-2:]))


@register_block("bga")
@dataclass(frozen=True, kw_only=True)
class GuidedAggregationConfig(MergeConfig):
    """BiSeNetV2's bilateral guided aggregation of the detail (1/8) and semantic (1/32) branches."""

    def check(self, channels: list[int], strides: list[int]) -> None:
        super().check(channels, strides)
        require(channels == [self.out_channels] * 2, "both branches arrive at out_channels", path="inputs",
                value=channels, allowed=str([self.out_channels] * 2))
        require(strides[1] == 4 * strides[0], "the semantic branch is 4x coarser than the detail branch",
                path="inputs", value=strides)

    def build(self, channels: list[int], strides: list[int], norm: NormSettings) -> nn.Module:
        return GuidedAggregation(self.out_channels, norm=self.resolved_norm(norm))

    def receptive_fields(self, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        detail, semantic = fields
        down = detail.window(3, 2).window(3, 2)
        return [widest(detail.window(3), semantic.window(3).at_jump(detail.jump), down.at_jump(detail.jump))
                .window(3)]
