"""The one network module every spec builds into: its topology's nodes, run in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from archsearch.arch.topology import IMAGE, NODE_KINDS, Topology

if TYPE_CHECKING:
    from archsearch.arch.spec import ArchSpec


class SegmentationNetwork(nn.Module):
    """Logits at the input's resolution; ``return_aux`` also gives the auxiliary head's (or None),
    or, for a spec with ``aux_heads``, the list of every auxiliary head's class logits.

    Each node's module sits at the node's ``module_path`` (``stem``, ``stages.1.branches.0``,
    ``stages.1.fusion``, ``context``, ``merge``, ``head``, ``aux_head``, ``aux_heads.0``), which fixes
    the state-dict names.
    The forward looks modules up by path on every call, so ``deploy`` may replace any of them,
    and a module set to None (the auxiliary head in deploy form) skips its node.
    """

    def __init__(self, *, topology: Topology, modules: dict[str, nn.Module], spec: "ArchSpec",
                 num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        self.num_classes = num_classes
        self.topology = topology
        self.context: nn.Module | None = None
        self.aux_head: nn.Module | None = None
        self.aux_heads: nn.Module | None = None
        for path, module in modules.items():
            _place(self, path.split("."), module)
        self._steps = [(node, NODE_KINDS[node.kind], tuple(node.module_path.split("."))) for node in topology.nodes]

    def forward(self, images: Tensor, return_aux: bool = False) -> Tensor | tuple[Tensor, Tensor | None]:
        image_size = tuple(images.shape[-2:])
        values = {IMAGE: images}
        for node, kind, parts in self._steps:
            if node.training_only and not return_aux:
                continue
            module = self._module(parts)
            if module is None:
                continue
            outputs = kind.run(node, module, [values[ref] for ref in node.inputs], image_size)
            values.update({node.output(index): output for index, output in enumerate(outputs)})
        logits = values[self.topology.logits]
        if not return_aux:
            return logits
        if not self.topology.more_aux_logits:
            return logits, values.get(self.topology.aux_logits)
        return logits, self._class_aux_logits(values)

    def _class_aux_logits(self, values: dict) -> list[Tensor]:
        """Every auxiliary head's class logits (a boundary head's own map is not one; see PIDNet's D head)."""
        refs = [self.topology.aux_logits, *self.topology.more_aux_logits]
        return [values[ref] for ref in refs
                if ref is not None and ref in values and self.topology.feature(ref).channels is None]

    def _module(self, parts: tuple[str, ...]) -> nn.Module | None:
        module = self
        for part in parts:
            module = module._modules[part]
            if module is None:
                return None
        return module


def _place(container: nn.Module, parts: list[str], module: nn.Module) -> None:
    """Put ``module`` at a dotted path, making containers on the way (a list where the next part is an index)."""
    name, rest = parts[0], parts[1:]
    if not rest:
        if container._modules.get(name) is None:  # nodes may share one stateless module
            setattr(container, name, module)
        return
    child = container._modules.get(name)
    if child is None:
        child = nn.ModuleList() if rest[0].isdigit() else nn.Module()
        setattr(container, name, child)
    _place(child, rest, module)
