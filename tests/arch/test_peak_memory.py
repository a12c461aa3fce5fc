"""Peak inference memory of the deploy form (the ``memory_mb`` metric), counted on the CPU."""

from __future__ import annotations

from itertools import chain

import pytest
import torch

from archsearch.arch.build import build
from archsearch.arch.deploy import deploy
from archsearch.arch.peak_memory import BYTES_PER_MB, peak_inference_mb
from archsearch.arch.spec import parse_spec

TINY = {
    "name": "tiny",
    "stem": [{"block": "conv", "out_channels": 8, "stride": 2}],
    "stages": [{"blocks": [{"block": "dblock", "out_channels": 16, "stride": 2, "group_width": 8}]}],
    "head": {"block": "topdown", "projections": {4: 8}, "steps": []},
}
CLASSES = 5


def weight_bytes(spec) -> int:
    model = deploy(build(spec, num_classes=CLASSES))
    return sum(tensor.numel() * tensor.element_size() for tensor in chain(model.parameters(), model.buffers()))


def test_the_peak_holds_weights_input_and_logits_and_less_than_every_tensor_at_once():
    spec = parse_spec(TINY)
    height, width = 32, 48
    peak = peak_inference_mb(spec, (height, width), num_classes=CLASSES) * BYTES_PER_MB
    image, logits = 3 * height * width * 4, CLASSES * height * width * 4
    assert peak >= weight_bytes(spec) + image + logits  # all alive when the pass returns
    model = deploy(build(spec, num_classes=CLASSES)).eval()
    outputs = []  # every module's output, kept: more than ever lives at once
    for module in model.modules():
        module.register_forward_hook(lambda _, __, output: outputs.append(output))
    with torch.no_grad():
        model(torch.zeros(1, 3, height, width))
    kept = sum(tensor.numel() * 4 for tensor in outputs if isinstance(tensor, torch.Tensor))
    assert peak < weight_bytes(spec) + image + kept


def test_activations_grow_with_the_pixels():
    spec = parse_spec(TINY)
    weights = weight_bytes(spec)
    small = peak_inference_mb(spec, (32, 32), num_classes=CLASSES) * BYTES_PER_MB - weights
    large = peak_inference_mb(spec, (64, 64), num_classes=CLASSES) * BYTES_PER_MB - weights
    assert large / small == pytest.approx(4.0, rel=0.05)
