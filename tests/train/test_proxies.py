"""Zero-cost proxies on tiny networks, against values worked out by hand from each paper's definition."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archsearch.arch.build import build
from archsearch.train.proxies import PROXY_NAMES, compute_proxies, grad_norm, naswot, snip, synflow

TINY_NETWORK = {
    "name": "tiny",
    "stem": [{"block": "conv", "out_channels": 8, "stride": 2}],
    "stages": [{"blocks": [{"block": "dblock", "out_channels": 16, "stride": 2, "group_width": 8}]},
               {"blocks": [{"block": "dblock", "out_channels": 16, "stride": 2, "group_width": 8,
                            "dilations": [1, 2]}]}],
    "head": {"block": "topdown", "projections": {8: 8, 4: 8}, "steps": [{"merge": "sum",
                                                                       "refine": {"block": "conv", "out_channels": 8}}]},
}


def linear(weight: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    return layer


def two_layers() -> nn.Module:
    return nn.Sequential(linear([[1.0, -2.0], [3.0, 0.5]]), nn.ReLU(), linear([[-1.0, 2.0]]))


def test_synflow_by_hand():
    """|W1| = [[1, 2], [3, 0.5]], |W2| = [1, 2], input [1, 1]: h = [3, 3.5], R = 1·3 + 2·3.5 = 10.
    Layer 2: Σ|W2 ⊙ h| = 10. Layer 1: ∂R/∂W1[i, j] = |W2[i]|, so Σ = 1·1 + 2·1 + 3·2 + 0.5·2 = 10. Total 20."""
    assert synflow(two_layers(), (2,)) == pytest.approx(20.0)


def test_naswot_by_hand():
    """W = [[1, 0], [0, 1], [1, 1]] on x = [1, -1], [-1, 1], [1, 1]: pre-activations [1, -1, 0], [-1, 1, 0],
    [1, 1, 2]; codes 100, 010, 111; every Hamming distance 2, N_A = 3, so K = [[3, 1, 1], [1, 3, 1], [1, 1, 3]]
    and det K = 3·8 − 1·2 + 1·(−2) = 20."""
    model = nn.Sequential(linear([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), nn.ReLU())
    images = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    assert naswot(model, images) == pytest.approx(math.log(20.0))


def test_grad_norm_and_snip_by_hand():
    """W = I, x = [1, 2], label 0: logits [1, 2], p = [1/(1+e), e/(1+e)], ∂L/∂logits = p − [1, 0] = [−a, a]
    with a = e/(1+e); ∂L/∂W = [[−a, −2a], [a, 2a]]. grad_norm = a·√10; snip = |1·(−a)| + |1·2a| = 3a."""
    a = math.e / (1 + math.e)
    images, labels = torch.tensor([[1.0, 2.0]]), torch.tensor([0])
    assert grad_norm(linear([[1.0, 0.0], [0.0, 1.0]]), images, labels) == pytest.approx(a * math.sqrt(10))
    assert snip(linear([[1.0, 0.0], [0.0, 1.0]]), images, labels) == pytest.approx(3 * a)


def test_ignored_pixels_do_not_count():
    images, labels = torch.tensor([[1.0, 2.0], [5.0, -3.0]]), torch.tensor([0, 255])
    assert snip(linear([[1.0, 0.0], [0.0, 1.0]]), images, labels) == pytest.approx(3 * math.e / (1 + math.e))


def test_every_proxy_on_a_segmentation_network_is_finite_and_seeded():
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(3, 3, 32, 32, generator=generator), torch.randint(0, 4, (3, 32, 32), generator=generator))
               for _ in range(2)]

    def make_model() -> nn.Module:
        torch.manual_seed(0)
        return build(TINY_NETWORK, num_classes=4)

    first = compute_proxies(make_model, batches)
    assert set(first) == set(PROXY_NAMES) and all(math.isfinite(value) for value in first.values())
    assert first["synflow"] > 0 and first["grad_norm"] > 0 and first["snip"] > 0
    assert compute_proxies(make_model, batches, ["naswot"])["naswot"] == pytest.approx(first["naswot"])


def test_unknown_proxy_is_refused():
    with pytest.raises(ValueError, match="unknown proxies"):
        compute_proxies(two_layers, [(torch.ones(1, 2), torch.zeros(1, dtype=torch.long))], ["zen"])
