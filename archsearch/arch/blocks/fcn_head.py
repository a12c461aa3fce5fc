"""mmsegmentation's FCN head: a few 3x3 conv-BN-ReLU, Dropout2d(0.1), a 1x1 classifier with bias.

BiSeNetV1 and V2 use it as their main head and as every auxiliary head (on stage features).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from archsearch.arch.blocks.heads import HeadConfig
from archsearch.arch.blocks.layers import ConvNorm
from archsearch.arch.blocks.registry import NormSettings, register_block, require


class FCNHead(nn.Module):
    def __init__(self, in_channels: int, channels: int, num_convs: int, num_classes: int, *,
                 norm: NormSettings) -> None:
        super().__init__()
        widths = [in_channels] + [channels] * num_convs
        self.convs = nn.Sequential(*[ConvNorm(cin, cout, 3, norm=norm) for cin, cout in zip(widths, widths[1:])])
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(widths[-1], num_classes, 1, bias=True)

    def forward(self, final: Tensor, features: dict[int, Tensor] | None = None) -> Tensor:
        return self.classifier(self.dropout(self.convs(final)))


@register_block("fcn_head")
@dataclass(frozen=True, kw_only=True)
class FCNHeadConfig(HeadConfig):
    """``num_convs`` 3x3 conv-BN-ReLU of ``channels`` (the first from the input's width), then the classifier."""

    channels: int
    num_convs: int = 1

    def validate(self) -> None:
        require(self.channels > 0, "must be positive", path="channels", value=self.channels)
        require(self.num_convs >= 0, "must be at least 0", path="num_convs", value=self.num_convs)

    def build(self, final_channels: int, feature_channels: dict[int, int], num_classes: int,
              norm: NormSettings) -> nn.Module:
        return FCNHead(final_channels, self.channels, self.num_convs, num_classes, norm=self.resolved_norm(norm))
