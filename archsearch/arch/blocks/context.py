"""Pyramid pooling context modules on the coarsest branch: DDRNet's DAPPM and RDRNet's RPPM.

Both pool the input at several scales (average pools, then image-level pooling), project
each with a pre-activated 1x1 conv, upsample and mix the scales, then compress and add a
pre-activated 1x1 shortcut. DAPPM mixes the scales in a cascade of 3x3 convs; RPPM adds the
first scale to every pooled scale and mixes them all at once with one grouped, reparameterizable
3x3 conv.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from archsearch.arch.blocks.layers import NormActConv, resize_to
from archsearch.arch.blocks.registry import ComponentConfig, NormSettings, register_block, require
from archsearch.arch.blocks.rep import RepParallelConv
from archsearch.arch.receptive_field import ReceptiveField, widest


class PyramidPooling(nn.Module):
    """The scales, compression and shortcut DAPPM and RPPM share; subclasses mix the scales."""

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int, *,
                 pool_kernels: tuple[int, ...], pool_strides: tuple[int, ...], norm: NormSettings) -> None:
        super().__init__()
        pools: list[nn.Module] = [nn.Identity()]
        pools += [nn.AvgPool2d(kernel, stride, padding=kernel // 2) for kernel, stride in zip(pool_kernels, pool_strides)]
        pools.append(nn.AdaptiveAvgPool2d(1))
        self.scales = nn.ModuleList(
            nn.Sequential(pool, NormActConv(in_channels, branch_channels, 1, norm=norm)) for pool in pools)
        self.compression = NormActConv(branch_channels * len(pools), out_channels, 1, norm=norm)
        self.shortcut = NormActConv(in_channels, out_channels, 1, norm=norm)

    def pooled_scales(self, x: Tensor) -> list[Tensor]:
        """Every scale projected and resized back to the input's size."""
        return [resize_to(scale(x), x.shape[-2:]) for scale in self.scales]

    def mix(self, scales: list[Tensor]) -> list[Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.compression(torch.cat(self.mix(self.pooled_scales(x)), dim=1)) + self.shortcut(x)


class DAPPM(PyramidPooling):
    """Each scale is added to the previous mixed scale and refined by its own 3x3 conv."""

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__(in_channels, branch_channels, out_channels, **kwargs)
        norm = kwargs["norm"]
        self.processes = nn.ModuleList(
            NormActConv(branch_channels, branch_channels, 3, norm=norm) for _ in range(len(self.scales) - 1))

    def mix(self, scales: list[Tensor]) -> list[Tensor]:
        mixed = [scales[0]]
        for scale, process in zip(scales[1:], self.processes):
            mixed.append(process(scale + mixed[-1]))
        return mixed


class RPPM(PyramidPooling):
    """Every pooled scale plus the first scale, mixed by one grouped reparameterizable 3x3 conv."""

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int, *, parallel_branches: int,
                 **kwargs) -> None:
        super().__init__(in_channels, branch_channels, out_channels, **kwargs)
        pooled = len(self.scales) - 1
        self.processes = RepParallelConv(branch_channels * pooled, groups=pooled,
                                         num_branches=parallel_branches, norm=kwargs["norm"])

    def mix(self, scales: list[Tensor]) -> list[Tensor]:
        first = scales[0]
        return [first, self.processes(torch.cat([scale + first for scale in scales[1:]], dim=1))]


@dataclass(frozen=True, kw_only=True)
class ContextConfig(ComponentConfig):
    """Fields every pyramid pooling context module has; average pools use padding kernel // 2."""

    branch_channels: int
    out_channels: int
    pool_kernels: tuple[int, ...] = (5, 9, 17)
    pool_strides: tuple[int, ...] = (2, 4, 8)

    def validate(self) -> None:
        require(self.branch_channels > 0, "must be positive", path="branch_channels", value=self.branch_channels)
        require(self.out_channels > 0, "must be positive", path="out_channels", value=self.out_channels)
        require(len(self.pool_kernels) == len(self.pool_strides), "needs one stride per pool kernel",
                path="pool_strides", value=list(self.pool_strides),
                allowed=f"{len(self.pool_kernels)} strides")
        require(all(kernel % 2 == 1 for kernel in self.pool_kernels), "pool kernels must be odd",
                path="pool_kernels", value=list(self.pool_kernels))
        require(all(stride >= 1 for stride in self.pool_strides), "pool strides must be at least 1",
                path="pool_strides", value=list(self.pool_strides))

    def output_channels(self, in_channels: int) -> int:
        return self.out_channels

    def pooling_kwargs(self, norm: NormSettings) -> dict:
        return dict(pool_kernels=self.pool_kernels, pool_strides=self.pool_strides, norm=self.resolved_norm(norm))

    def receptive_field(self, field: ReceptiveField) -> ReceptiveField:
        pooled = [field.window(kernel, stride).at_jump(field.jump)
                  for kernel, stride in zip(self.pool_kernels, self.pool_strides)]
        return self.mixed_field(field, pooled)

    def mixed_field(self, field: ReceptiveField, pooled: list[ReceptiveField]) -> ReceptiveField:
        raise NotImplementedError


@register_block("dappm")
@dataclass(frozen=True, kw_only=True)
class DAPPMConfig(ContextConfig):
    """DDRNet's deep aggregation pyramid pooling module."""

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return DAPPM(in_channels, self.branch_channels, self.out_channels, **self.pooling_kwargs(norm))

    def mixed_field(self, field: ReceptiveField, pooled: list[ReceptiveField]) -> ReceptiveField:
        mixed = field
        for scale in pooled:
            mixed = widest(scale, mixed).window(3)
        return mixed


@register_block("rppm")
@dataclass(frozen=True, kw_only=True)
class RPPMConfig(ContextConfig):
    """RDRNet's reparameterizable pyramid pooling module."""

    parallel_branches: int = 2

    def validate(self) -> None:
        super().validate()
        require(self.parallel_branches >= 1, "must be at least 1", path="parallel_branches",
                value=self.parallel_branches)

    def build(self, in_channels: int, norm: NormSettings) -> nn.Module:
        return RPPM(in_channels, self.branch_channels, self.out_channels,
                    parallel_branches=self.parallel_branches, **self.pooling_kwargs(norm))

    def mixed_field(self, field: ReceptiveField, pooled: list[ReceptiveField]) -> ReceptiveField:
        return widest(field, *pooled).window(3)
