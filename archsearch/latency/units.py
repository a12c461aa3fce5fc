"""The pieces a network's latency is predicted from, and how each is built and readied for timing.

A unit is one piece of a network's topology (see ``NodeKind.units``): one block of the stem
or a stage, a stage's input activation, a fusion, the context module, or the tail (branches
summed, the head, logits resized to the image), each at the input shapes it gets inside the
network, built and run by its node kind exactly as the network does. Its key is its canonical config plus those
shapes, so every network that contains the same unit at the same shapes shares one timing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from archsearch.arch.blocks.registry import ComponentConfig, NormSettings
from archsearch.arch.deploy import deploy
from archsearch.arch.topology import NODE_KINDS, Node
from archsearch.latency.result import LatencyResult
from archsearch.latency.settings import LatencySettings

Shape = tuple[int, int, int]
"""Channels, height, width of one tensor (the batch size comes from the latency settings)."""

_INPUT_SEED = 0


@dataclass(frozen=True)
class Unit:
    """One piece of a network at its input shapes; ``label`` says where it sits in the spec (not part of the key).

    ``details`` holds what else the piece depends on: the branch strides of a fusion; for the
    tail, the number of branches, the strides of the feature maps the head may read, the final
    stride, the number of classes and the image size. ``norm`` (BatchNorm settings) is needed
    to build the module but is no part of the key: folded or not, it costs the same. ``node``
    (the topology's piece), ``num_classes`` and ``image_size`` build and run it; the key holds
    what of them decides its cost.
    """

    kind: str
    label: str
    component: ComponentConfig | None
    input_shapes: tuple[Shape, ...]
    node: Node = field(compare=False)
    norm: NormSettings = field(default=NormSettings(), compare=False)
    details: Mapping[str, Any] = field(default_factory=dict)
    num_classes: int = field(default=19, compare=False)
    image_size: tuple[int, int] = field(default=(1, 1), compare=False)

    def key(self) -> str:
        """Canonical JSON of everything that decides this unit's latency."""
        data = {"kind": self.kind, "config": None if self.component is None else self.component.to_dict(),
                "inputs": [list(shape) for shape in self.input_shapes], **self.details}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def build(self) -> nn.Module:
        """The unit's train-form module; its forward takes the input tensors as positional arguments."""
        kind = NODE_KINDS[self.node.kind]
        return _NodeModule(self.node, kind.build(self.node, self.norm, self.num_classes), self.image_size)


MeasureTogether = Callable[[Sequence[nn.Module], LatencySettings], list[LatencyResult]]
"""Times several models together (``measure_together`` in interleaved rounds), or stands in for it in tests."""


def prepare_unit(unit: Unit, settings: LatencySettings) -> tuple[nn.Module, tuple[Shape, ...]]:
    """The unit's deploy form on fixed random inputs, ready to time, and the unit's output shapes.

    A timer runs a model on one image batch; the unit's real inputs ride along as buffers, so
    they move to the device, dtype and memory layout of ``settings`` with the module, and the
    batch is ignored. The output shapes come from one run on the CPU.
    """
    generator = torch.Generator().manual_seed(_INPUT_SEED)
    inputs = [torch.randn(settings.batch_size, *shape, generator=generator) for shape in unit.input_shapes]
    model = deploy(_WithInputs(unit.build(), inputs))
    with torch.no_grad():
        outputs = model(inputs[0])
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return model, tuple(tuple(output.shape[1:]) for output in outputs)


class _WithInputs(nn.Module):
    """Runs ``unit`` on stored inputs, whatever it is called with."""

    def __init__(self, unit: nn.Module, inputs: list[Tensor]) -> None:
        super().__init__()
        self.unit = unit
        self.count = len(inputs)
        for index, tensor in enumerate(inputs):
            self.register_buffer(f"input_{index}", tensor)

    def forward(self, ignored: Tensor) -> Any:
        return self.unit(*[getattr(self, f"input_{index}") for index in range(self.count)])


class _NodeModule(nn.Module):
    """Runs one node of a topology on its input tensors, as the whole network runs it."""

    def __init__(self, node: Node, module: nn.Module, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.node = node
        self.module = module
        self.image_size = image_size

    def forward(self, *inputs: Tensor) -> list[Tensor]:
        return NODE_KINDS[self.node.kind].run(self.node, self.module, list(inputs), self.image_size)
