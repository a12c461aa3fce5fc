"""Merges: blocks that read several feature maps (branches, encoder levels) and give one or more.

A merge states how many inputs it reads (``arity``), checks their channels and strides, and
says what it gives: one (channels, stride) pair per output, finest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from archsearch.arch.blocks.registry import ComponentConfig, NormSettings, require
from archsearch.arch.receptive_field import ReceptiveField, widest


@dataclass(frozen=True, kw_only=True)
class MergeConfig(ComponentConfig):
    """Inputs in the order the merge names them; ``out_channels`` is the width of its (first) output."""

    arity: ClassVar[int] = 2
    out_channels: int

    def validate(self) -> None:
        require(self.out_channels > 0, "must be positive", path="out_channels", value=self.out_channels)

    def check(self, channels: list[int], strides: list[int]) -> None:
        """Raise SpecError (path ``inputs``) unless these inputs fit; subclasses add their own rules."""
        require(len(channels) == self.arity, f"{self.name} reads {self.arity} inputs", path="inputs",
                value=len(channels), allowed=str(self.arity))

    def outputs(self, channels: list[int], strides: list[int]) -> list[tuple[int, int]]:
        """(channels, stride) of each output; by default one map at the first input's stride."""
        return [(self.out_channels, strides[0])]

    def build(self, channels: list[int], strides: list[int], norm: NormSettings) -> nn.Module:
        raise NotImplementedError

    def receptive_fields(self, fields: list[ReceptiveField]) -> list[ReceptiveField]:
        """By default pointwise: the widest input, on the first input's grid."""
        return [widest(*[field.at_jump(fields[0].jump) for field in fields])]
