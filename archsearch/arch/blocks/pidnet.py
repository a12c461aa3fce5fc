"""PIDNet's parts (Xu et al., arXiv 2206.02066): Pag, Bag and Light-Bag fusion, PAPPM, the boundary head.

PIDNet runs three branches: P (detail, 1/8), I (context, down to 1/64) and D (boundary,
1/8). After each of its first two stages the I branch steers the other two: P takes
``Pag(P, compression(I))``, a pixel-attention gate, and D adds ``up(diff(I))``. At the end
the D branch decides per pixel how much of P and of I to keep (Bag, or Light-Bag in the
small and medium nets). Module attribute names follow mmsegmentation's (``f_p``, ``f_i``,
``compression``, ``diff``), so official checkpoints map onto them with few rules.

Fold rules: every conv+BN here is a ``ConvNorm`` and folds; Bag's BN -> ReLU -> conv and
PAPPM's pre-activated convs keep their BatchNorm, since a ReLU sits between it and the conv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from archsearch.arch.blocks.context import ContextConfig, PyramidPooling
from archsearch.arch.blocks.fusion import FusionConfig, _transform
from archsearch.arch.blocks.heads import DDRHead, DDRHeadConfig
from archsearch.arch.blocks.layers import ConvNorm, NormActConv, resize_to
from archsearch.arch.blocks.merge import MergeConfig
from archsearch.arch.blocks.registry import NormSettings, register_block, require
from archsearch.arch.receptive_field import ReceptiveField, widest


class Pag(nn.Module):
    """Pixel-attention-guided fusion: a one-channel gate from the dot product of two 1x1 projections.

    ``out = s * up(y) + (1 - s) * x`` with ``s = sigmoid(sum_c f_p(x) * up(f_i(y)))``; ``y``
    arrives with ``x``'s channels (PIDNet compresses the I branch first).
    """

    def __init__(self, channels: int, mid_channels: int, *, upsample_mode: str, norm: NormSettings) -> None:
        super().__init__()
        self.upsample_mode = upsample_mode
        self.f_i = ConvNorm(channels, mid_channels, 1, norm=norm, activation=False)
        self.f_p = ConvNorm(channels, mid_channels, 1, norm=norm, activation=False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        size = x.shape[-2:]
        guide = resize_to(self.f_i(y), size, self.upsample_mode)
        gate = torch.sigmoid((self.f_p(x) * guide).sum(dim=1, keepdim=True))
        return gate * resize_to(y, size, self.upsample_mode) + (1 - gate) * x


class PagExchange(nn.Module):
    """A stage's exchange with Pag: ``[P, (D,) I] -> [Pag(P, compression(I)), (D + up(diff(I)),) I']``.

    Branch 0 is the fine branch, the last the coarse one, a middle one the boundary branch.
    ``I'`` is ``I`` unless ``down`` (a strided conv path from the fine branch, as in bilateral
    fusion) is set, for networks that keep the fine-to-coarse message (RDRNet with Pag).
    """

    def __init__(self, channels: list[int], strides: list[int], *, mid_channels: int, fine_to_coarse: bool,
                 upsample_mode: str, norm: NormSettings) -> None:
        super().__init__()
        fine, coarse = channels[0], channels[-1]
        self.upsample_mode = upsample_mode
        self.compression = ConvNorm(coarse, fine, 1, norm=norm, activation=False)
        self.pag = Pag(fine, mid_channels, upsample_mode=upsample_mode, norm=norm)
        self.diff = (ConvNorm(coarse, channels[1], 3, norm=norm, activation=False) if len(channels) == 3 else None)
        self.down = _transform(fine, coarse, strides[0], strides[-1], norm) if fine_to_coarse else None

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        fine, coarse = inputs[0], inputs[-1]
        outputs = [self.pag(fine, self.compression(coarse))]
        if self.diff is not None:
            boundary = inputs[1]
            outputs.append(boundary + resize_to(self.diff(coarse), boundary.shape[-2:], self.upsample_mode))
        if self.down is not None:
            coarse = coarse + self.down(torch.relu(fine))
        outputs.append(coarse)
        return outputs


@register_block("pag_fusion")
@dataclass(frozen=True, kw_only=True)
class PagFusionConfig(FusionConfig):
    """PIDNet's exchange after a stage (two branches P, I or three P, D, I); see ``PagExchange``.

    ``mid_channels`` is Pag's projection width (PIDNet: half the P branch's).
    """

    mid_channels: int
    fine_to_coarse: bool = False

    def validate(self) -> None:
        require(self.mid_channels > 0, "must be positive", path="mid_channels", value=self.mid_channels)

    def check_branches(self, channels: list[int], strides: list[int]) -> None:
        """P, (D,) I: P and D at one stride, I no finer."""
        require(len(channels) in (2, 3), "Pag fusion joins two (P, I) or three (P, D, I) branches",
                path="branches", value=len(channels), allowed="2 or 3")
        require(strides[-1] >= strides[0], "the last branch (I) must be the coarsest", path="branches",
                value=strides)
        if len(channels) == 3:
            require(strides[1] == strides[0], "the boundary branch (D) runs at the P branch's stride",
                    path="branches", value=strides)

    def build(self, channels: list[int], strides: list[int], norm: NormSettings) -> PagExchange:
        return PagExchange(channels, strides, mid_channels=self.mid_channels, fine_to_coarse=self.fine_to_coarse,
                           upsample_mode=self.upsample_mode, norm=self.resolved_norm(norm))

    def receptive_fields(self, fields: list[ReceptiveField], strides: list[int]) -> list[ReceptiveField]:
        fine, coarse = fields[0], fields[-1]
        fused = [widest(fine, coarse.at_jump(fine.jump))]
        if len(fields) == 3:
            fused.append(widest(fields[1], coarse.window(3).at_jump(fields[1].jump)))
        if self.fine_to_coarse:
            down = fine
            while down.jump < coarse.jump:
                down = down.window(3, 2)
            coarse = widest(coarse, down)
        return fused + [coarse]


class LightBag(nn.Module):
    """``f_p((1 - s) * I + P) + f_i(I + s * P)`` with ``s = sigmoid(D)``; 1x1 conv+BN, no activation."""

    def __init__(self, channels: int, out_channels: int, *, norm: NormSettings) -> None:
        super().__init__()
        self.f_p = ConvNorm(channels, out_channels, 1, norm=norm, activation=False)
        self.f_i = ConvNorm(channels, out_channels, 1, norm=norm, activation=False)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        detail, context, boundary = _aligned(inputs)
        gate = torch.sigmoid(boundary)
        return self.f_p((1 - gate) * context + detail) + self.f_i(context + gate * detail)


class Bag(nn.Module):
    """``conv3x3(ReLU(BN(s * P + (1 - s) * I)))`` with ``s = sigmoid(D)``: PIDNet-L's boundary fusion."""

    def __init__(self, channels: int, out_channels: int, *, norm: NormSettings) -> None:
        super().__init__()
        self.conv = NormActConv(channels, out_channels, 3, norm=norm)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        detail, context, boundary = _aligned(inputs)
        gate = torch.sigmoid(boundary)
        return self.conv(gate * detail + (1 - gate) * context)


def _aligned(inputs: list[Tensor]) -> list[Tensor]:
    """P, I, D in that order, I resized (bilinear) to P's size."""
    detail, boundary, context = inputs
    return [detail, resize_to(context, detail.shape[-2:]), boundary]


@dataclass(frozen=True, kw_only=True)
class BoundaryMergeConfig(MergeConfig):
    """A join of P, D and I (in that order, equal widths; I may be coarser and is resized)."""

    arity: ClassVar[int] = 3

    def check(self, channels: list[int], strides: list[int]) -> None:
        super().check(channels, strides)
        require(len(set(channels)) == 1, "boundary fusion joins three branches of equal width", path="inputs",
                value=channels, allowed="three equal widths")
        require(strides[0] == strides[1] <= strides[2], "P and D share a stride and I is no finer",
                path="inputs", value=strides)


@register_block("light_bag")
@dataclass(frozen=True, kw_only=True)
class LightBagConfig(BoundaryMergeConfig):
    """PIDNet-S/M's boundary-attention fusion of P, D and I."""

    def build(self, channels: list[int], strides: list[int], norm: NormSettings) -> nn.Module:
        return LightBag(channels[0], self.out_channels, norm=self.resolved_norm(norm))


@register_block("bag")
@dataclass(frozen=True, kw_only=True)
class BagConfig(BoundaryMergeConfig):
    """PIDNet-L's boundary-attention fusion; its pre-activated BatchNorm stays in deployment."""

    def build(self, channels: list[int], strides: list[int], norm: NormSettings) -> nn.Module:
        return Bag(channels[0], self.out_channels, norm=self.resolved_norm(norm))

    def receptive_fields(self, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        return [field.window(3) for field in super().receptive_fields(fields)]


class PAPPM(PyramidPooling):
    """Every pooled scale plus the first, mixed by one pre-activated grouped 3x3 conv (PIDNet-S/M)."""

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__(in_channels, branch_channels, out_channels, **kwargs)
        pooled = len(self.scales) - 1
        self.processes = NormActConv(branch_channels * pooled, branch_channels * pooled, 3, groups=pooled,
                                     norm=kwargs["norm"])

    def mix(self, scales: list[Tensor]) -> list[Tensor]:
        first = scales[0]
        return [first, self.processes(torch.cat([scale + first for scale in scales[1:]], dim=1))]


@register_block("pappm")
@dataclass(frozen=True, kw_only=True)
class PAPPMConfig(ContextConfig):
    """PIDNet's parallel aggregation pyramid pooling module: RPPM's wiring with one plain grouped conv."""

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return PAPPM(in_channels, self.branch_channels, self.out_channels, **self.pooling_kwargs(norm))

    def mixed_field(self, field: ReceptiveField, pooled: list[ReceptiveField]) -> ReceptiveField:
        return widest(field, *pooled).window(3)


@register_block("pid_head")
@dataclass(frozen=True, kw_only=True)
class PIDHeadConfig(DDRHeadConfig):
    """PIDNet's I and P heads: DDRNet's head, whose logits mmsegmentation resizes with align_corners=True."""

    align_corners: ClassVar[bool] = True


class BoundaryHead(DDRHead):
    """PIDNet's D head: DDRNet's head with one output channel (boundary logits), whatever the classes."""

    def __init__(self, in_channels: int, channels: int, num_classes: int, *, norm: NormSettings) -> None:
        super().__init__(in_channels, channels, 1, norm=norm)


@register_block("boundary_head")
@dataclass(frozen=True, kw_only=True)
class BoundaryHeadConfig(DDRHeadConfig):
    """BN -> ReLU -> 3x3 conv -> BN -> ReLU -> 1x1 to one channel: the boundary (D) head of PIDNet."""

    fixed_output_channels: ClassVar[int | None] = 1
    align_corners: ClassVar[bool] = True

    def build(self, final_channels: int, feature_channels: dict[int, int], num_classes: int,
              norm: NormSettings) -> nn.Module:
        return BoundaryHead(final_channels, self.channels, num_classes, norm=self.resolved_norm(norm))
