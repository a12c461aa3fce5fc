"""Every preset family resizes its feature maps to the sizes the authors' code uses, odd sizes included.

The authors' rule, read from their code: mmsegmentation resizes one map to another map's shape
(BiSeNetV1 ``backbones/bisenetv1.py``: the 1/32 sum to the stride-16 feature, the 1/16 sum to
the ResNet's stride-8 feature; BiSeNetV2's BGA to the detail map; PIDNet's PagFM to the P map);
RDRNet (gyyang23/RDRNet ``rdrnet.py``) to ``ceil(H/8)``; DDRNet and PIDNet to ``H // 8``, which
equals the 1/8 map only where 8 divides H (their code fails elsewhere), as at the sizes here;
RegSeg's decoders (RolandGao/RegSeg ``blocks.py``) to ``x8.shape`` and ``x4.shape``. Every
stride-2 step there rounds up, so each map at stride s is ``ceil(H/s) x ceil(W/s)``, and every
resize in a forward pass must target such a size (the final one the image's).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from archsearch import build

ODD_AT_ONE_EIGHTH = [(264, 520), (360, 640)]  # ceil(H/8) x ceil(W/8) = 33 x 65 and 45 x 80
FAMILIES = ["rdrnet-s-simple", "ddrnet-23-slim", "pidnet-s", "pidnet-l", "bisenetv1", "bisenetv2", "regseg",
            "regseg-exp43-decoder14"]


def _resize_targets(model: torch.nn.Module, images: torch.Tensor, monkeypatch) -> list[tuple[int, int]]:
    targets: list[tuple[int, int]] = []
    interpolate = F.interpolate

    def recording(x, size=None, *args, **kwargs):
        targets.append(tuple(size))
        return interpolate(x, size, *args, **kwargs)

    monkeypatch.setattr(F, "interpolate", recording)
    with torch.no_grad():
        output = model(images)
    monkeypatch.setattr(F, "interpolate", interpolate)
    assert output.shape[-2:] == images.shape[-2:]
    return targets


@pytest.mark.parametrize("name", FAMILIES)
def test_every_resize_targets_a_map_size_of_the_authors_code(name, monkeypatch):
    model = build(name).eval()
    for height, width in ODD_AT_ONE_EIGHTH:
        allowed = {(math.ceil(height / stride), math.ceil(width / stride)) for stride in (1, 2, 4, 8, 16, 32, 64)}
        targets = _resize_targets(model, torch.randn(1, 3, height, width), monkeypatch)
        assert targets and targets[-1] == (height, width)
        assert set(targets) <= allowed, (height, width, sorted(set(targets) - allowed))


def test_bisenetv1_context_path_meets_the_stride_8_feature_of_its_resnet(monkeypatch):
    import timm

    model = build("bisenetv1").eval()
    stride_8 = timm.create_model("resnet18", features_only=True, pretrained=False, out_indices=(2,))
    for height, width in ODD_AT_ONE_EIGHTH:
        images = torch.randn(1, 3, height, width)
        with torch.no_grad():
            expected = tuple(stride_8(images)[0].shape[-2:])
            fine, coarse = model.stages[0].branches[1][0](images)
        assert expected == (math.ceil(height / 8), math.ceil(width / 8))
        assert tuple(fine.shape[-2:]) == expected  # mmseg: resize(x_16_sum, size=x_8.shape[2:])
        assert tuple(coarse.shape[-2:]) == (math.ceil(height / 16), math.ceil(width / 16))
        targets = _resize_targets(model, images, monkeypatch)
        assert expected in targets and (2 * coarse.shape[-2], 2 * coarse.shape[-1]) not in targets
