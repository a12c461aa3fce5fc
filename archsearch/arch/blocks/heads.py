"""Segmentation heads: DDRNet's head (also the auxiliary head) and RegSeg's top-down decoders.

A head gets the network's final feature map and every feature map by stride, and returns
class logits at its own output stride; the network resizes them to the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from archsearch.arch.blocks.layers import ConvNorm, NormActConv, conv_with, fuse_conv_bn, resize_to
from archsearch.errors import SpecError
from archsearch.arch.blocks.registry import BlockConfig, ComponentConfig, NormSettings, register_block, require


@dataclass(frozen=True, kw_only=True)
class HeadConfig(ComponentConfig):
    """A head turns features into logits; ``check`` sees the channels of every stride it may read.

    ``fixed_output_channels`` is None for class logits, else the head's own width (a boundary head's 1);
    ``align_corners`` is how its logits are resized to the image (True for PIDNet's heads).
    """

    fixed_output_channels: ClassVar[int | None] = None
    align_corners: ClassVar[bool] = False

    def check(self, final_channels: int, feature_channels: dict[int, int]) -> None:
        """Raise SpecError (path relative to the head) if the features cannot feed this head."""

    def output_stride(self, final_stride: int) -> int:
        return final_stride

    def build(self, final_channels: int, feature_channels: dict[int, int], num_classes: int,
              norm: NormSettings) -> nn.Module:
        raise NotImplementedError


class DDRHead(nn.Module):
    """BN -> ReLU -> 3x3 conv, BN -> ReLU, 1x1 classifier with bias (DDRNet and RDRNet)."""

    def __init__(self, in_channels: int, channels: int, num_classes: int, *, norm: NormSettings) -> None:
        super().__init__()
        self.conv = NormActConv(in_channels, channels, 3, norm=norm)
        self.bn = norm.make(channels)
        self.act = nn.ReLU(inplace=True)
        self.classifier = nn.Conv2d(channels, num_classes, 1, bias=True)

    def forward(self, final: Tensor, features: dict[int, Tensor] | None = None) -> Tensor:
        return self.classifier(self.act(self.bn(self.conv(final))))

    def fold_batchnorm(self) -> "DDRHead":
        """Fold the BN after the 3x3 conv into it, in place (deploy works on a copy)."""
        self.conv.conv = conv_with(*fuse_conv_bn(self.conv.conv.weight, None, self.bn), self.conv.conv)
        self.bn = nn.Identity()
        return self


@register_block("ddr_head")
@dataclass(frozen=True, kw_only=True)
class DDRHeadConfig(HeadConfig):
    channels: int

    def validate(self) -> None:
        require(self.channels > 0, "must be positive", path="channels", value=self.channels)

    def build(self, final_channels: int, feature_channels: dict[int, int], num_classes: int,
              norm: NormSettings) -> nn.Module:
        return DDRHead(final_channels, self.channels, num_classes, norm=self.resolved_norm(norm))


@dataclass(frozen=True, kw_only=True)
class DecoderStep:
    """Join the next finer projection to the upsampled coarser path, then refine the join."""

    merge: Literal["sum", "concat"] = "sum"
    concat_order: Literal["skip_first", "deep_first"] = "skip_first"
    refine: BlockConfig


class TopDownDecoder(nn.Module):
    """Project features at several strides, then walk from coarse to fine: resize, merge, refine."""

    def __init__(self, projections: nn.ModuleDict, steps: list[tuple[str, str, nn.Module]],
                 classifier: nn.Conv2d, strides: list[int]) -> None:
        super().__init__()
        self.projections = projections
        self.strides = strides
        self.merges = [(merge, order) for merge, order, _ in steps]
        self.refines = nn.ModuleList(refine for _, _, refine in steps)
        self.classifier = classifier

    def forward(self, final: Tensor, features: dict[int, Tensor]) -> Tensor:
        x = self.projections[str(self.strides[0])](features[self.strides[0]])
        for stride, (merge, order), refine in zip(self.strides[1:], self.merges, self.refines):
            skip = self.projections[str(stride)](features[stride])
            x = resize_to(x, skip.shape[-2:])
            if merge == "sum":
                x = skip + x
            else:
                x = torch.cat((skip, x) if order == "skip_first" else (x, skip), dim=1)
            x = refine(x)
        return self.classifier(x)


@register_block("topdown")
@dataclass(frozen=True, kw_only=True)
class TopDownConfig(HeadConfig):
    """RegSeg's decoders: ``projections`` maps a stride to its 1x1 conv-BN-ReLU width; steps go coarse to fine."""

    projections: dict[int, int]
    steps: tuple[DecoderStep, ...]

    def validate(self) -> None:
        strides = list(self.projections)
        require(len(strides) >= 1, "needs at least one stride", path="projections", value=self.projections)
        require(all(width > 0 for width in self.projections.values()), "widths must be positive",
                path="projections", value=self.projections)
        require(len(self.steps) == len(strides) - 1, "needs one step per stride after the first",
                path="steps", value=len(self.steps), allowed=str(len(strides) - 1))

    def ordered_strides(self) -> list[int]:
        """Strides from coarse to fine, the order the decoder walks."""
        return sorted(self.projections, reverse=True)

    def output_stride(self, final_stride: int) -> int:
        return self.ordered_strides()[-1]

    def step_channels(self) -> list[int]:
        """The width entering each step's refine block, and the classifier's width at the end."""
        strides = self.ordered_strides()
        width = self.projections[strides[0]]
        widths = []
        for stride, step in zip(strides[1:], self.steps):
            skip = self.projections[stride]
            if step.merge == "sum":
                require(skip == width, f"a sum needs equal widths ({width} arriving)",
                        path=f"projections.{stride}", value=skip, allowed=str(width))
                joined = width
            else:
                joined = width + skip
            widths.append(joined)
            width = step.refine.output_channels(joined)
        return widths + [width]

    def check(self, final_channels: int, feature_channels: dict[int, int]) -> None:
        for stride in self.ordered_strides():
            require(stride in feature_channels, "no feature map at this stride", path="projections",
                    value=stride, allowed=", ".join(str(s) for s in sorted(feature_channels)))
        for index, (step, joined) in enumerate(zip(self.steps, self.step_channels())):
            try:
                step.refine.check(joined)
            except SpecError as error:
                raise error.under(f"steps[{index}].refine")

    def build(self, final_channels: int, feature_channels: dict[int, int], num_classes: int,
              norm: NormSettings) -> nn.Module:
        norm = self.resolved_norm(norm)
        projections = nn.ModuleDict({
            str(stride): ConvNorm(feature_channels[stride], width, 1, norm=norm)
            for stride, width in self.projections.items()})
        widths = self.step_channels()
        steps = [(step.merge, step.concat_order, step.refine.build(joined, norm))
                 for step, joined in zip(self.steps, widths)]
        classifier = nn.Conv2d(widths[-1], num_classes, 1, bias=True)
        return TopDownDecoder(projections, steps, classifier, self.ordered_strides())
