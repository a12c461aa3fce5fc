"""ArchSpec -> nn.Module, and the lookup that turns a preset name or a file path into a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from archsearch.errors import SpecError
from archsearch.arch.initialise import initialise
from archsearch.arch.network import SegmentationNetwork
from archsearch.arch.presets import preset_names, preset_path
from archsearch.arch.spec import ArchSpec, load_spec, parse_spec
from archsearch.arch.topology import NODE_KINDS

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


def build(spec: SpecLike, *, num_classes: int = 19) -> SegmentationNetwork:
    """Build the train form of a network (auxiliary head included when the spec has one), initialised by the
    spec's ``init`` scheme."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SpecError("must be a positive integer", path="num_classes", value=num_classes)
    spec = resolve_spec(spec)
    topology = spec.topology()
    modules = {node.module_path: NODE_KINDS[node.kind].build(node, spec.norm, num_classes) for node in topology.nodes}
    network = SegmentationNetwork(topology=topology, modules=modules, spec=spec, num_classes=num_classes)
    return initialise(network, spec.init)
