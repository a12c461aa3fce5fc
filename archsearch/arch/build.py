"""ArchSpec -> nn.Module, and the lookup that turns a preset name or a file path into a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from torch import nn

from archsearch.arch.blocks.registry import BlockConfig, NormSettings
from archsearch.errors import SpecError
from archsearch.arch.network import SegmentationNetwork, Stage
from archsearch.arch.presets import preset_names, preset_path
from archsearch.arch.spec import ArchSpec, load_spec, parse_spec

SpecLike = ArchSpec | str | Path | Mapping[str, Any]


def resolve_spec(spec: SpecLike) -> ArchSpec:
    """An ArchSpec from a spec, a mapping, a preset name or a YAML path."""
    if isinstance(spec, ArchSpec):
        return spec
    if isinstance(spec, Mapping):
        return parse_spec(spec, source="<mapping>")
    if isinstance(spec, str) and spec in preset_names():
        return load_spec(preset_path(spec))
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_spec(path)
    raise SpecError("unknown preset and no such file", value=str(spec),
                    allowed=f"a YAML file or one of: {', '.join(preset_names())}")


def _sequential(blocks: tuple[BlockConfig, ...], channels: int, norm: NormSettings) -> nn.Sequential:
    layers = []
    for block in blocks:
        layers.append(block.build(channels, norm))
        channels = block.output_channels(channels)
    return nn.Sequential(*layers)


def build(spec: SpecLike, *, num_classes: int = 19) -> SegmentationNetwork:
    """Build the train form of a network (auxiliary head included when the spec has one)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SpecError("must be a positive integer", path="num_classes", value=num_classes)
    spec = resolve_spec(spec)
    shapes = spec.shapes()
    norm = spec.norm
    stem = _sequential(spec.stem, spec.in_channels, norm)
    stages = []
    previous = [shapes.stem]
    for stage_spec, outputs in zip(spec.stages, shapes.stages):
        inputs = [previous[min(index, len(previous) - 1)] for index in range(len(outputs))]
        branches = [_sequential(blocks, channels, norm) for blocks, (channels, _) in zip(stage_spec.branches, inputs)]
        fusion = (stage_spec.fusion.build([c for c, _ in outputs], [s for _, s in outputs], norm)
                  if stage_spec.fusion is not None else None)
        stages.append(Stage(branches, fusion, stage_spec.input_activation))
        previous = list(outputs)
    context = spec.context.build(previous[-1][0], norm) if spec.context is not None else None
    final_channels, final_stride = shapes.final
    head = spec.head.build(final_channels, shapes.features, num_classes, norm)
    aux_head = aux_tap = None
    if spec.aux_head is not None:
        aux = spec.aux_head
        aux_channels = shapes.stages[aux.stage][aux.branch][0]
        aux_head = aux.head.build(aux_channels, {}, num_classes, norm)
        aux_tap = (aux.stage, aux.branch)
    return SegmentationNetwork(
        stem=stem, stages=stages, context=context, head=head, aux_head=aux_head, aux_tap=aux_tap,
        feature_strides=[[stride for _, stride in outputs] for outputs in shapes.stages],
        stem_stride=shapes.stem[1], final_stride=final_stride, spec=spec, num_classes=num_classes)
