"""What a spec costs and sees, without training: parameters, MACs, receptive field, output stride.

Counting runs on PyTorch's meta device, so even RDRNet-L at 1024x2048 is counted in a
moment without allocating a byte of activations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from archsearch.arch.build import SpecLike, build, resolve_spec
from archsearch.arch.deploy import deploy
from archsearch.arch.network import SegmentationNetwork


@dataclass(frozen=True)
class Analysis:
    """Parameters are counted as the papers count them: every BatchNorm as its own layer."""

    name: str
    arch_hash: str
    num_classes: int
    input_size: tuple[int, int]
    params_train: int
    params_aux: int
    params_deploy: int
    macs: int
    receptive_field: int
    output_stride: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        return data


def count_parameters(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(parameter.numel() for parameter in module.parameters())


def count_macs(model: torch.nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> int:
    """Multiply-accumulates of one forward pass: torch.utils.flop_counter's FLOPs / 2."""
    device = next(model.parameters()).device
    images = torch.zeros(1, in_channels, *input_size, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(images)
    return counter.get_total_flops() // 2


def analyze(spec_or_model: SpecLike | SegmentationNetwork, input_size: tuple[int, int] = (1024, 2048), *,
            num_classes: int = 19) -> Analysis:
    """Count a spec (a preset name, a path, a mapping) or a built network's architecture."""
    if isinstance(spec_or_model, SegmentationNetwork):
        spec, num_classes = spec_or_model.spec, spec_or_model.num_classes
    else:
        spec = resolve_spec(spec_or_model)
    with torch.device("meta"):
        model = build(spec, num_classes=num_classes)
    params_aux = count_parameters(model.aux_head) + count_parameters(model.aux_heads)
    # Reparameterized with every BatchNorm kept, as the papers count parameters. The FLOP counter
    # counts convs (not BatchNorm, not biases), so folding BatchNorm would not change the MACs.
    deployed = deploy(model, fold_batchnorm=False)
    topology = model.topology
    return Analysis(
        name=spec.name,
        arch_hash=spec.arch_hash,
        num_classes=num_classes,
        input_size=tuple(input_size),
        params_train=count_parameters(model) - params_aux,
        params_aux=params_aux,
        params_deploy=count_parameters(deployed),
        macs=count_macs(deployed, input_size, spec.in_channels),
        # The final feature map's field, as RegSeg counts field-of-view (in input pixels).
        receptive_field=int(topology.receptive_field().size),
        output_stride=spec.head.output_stride(topology.feature(topology.final).stride),
    )
