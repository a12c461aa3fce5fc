"""PIDNet's blocks: their parameters add up to mmsegmentation's PIDNet-S/M/L, and they fold exactly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archsearch import deploy
from archsearch.arch.blocks.pidnet import Bag, LightBag, PAPPM, Pag, PagExchange, PagFusionConfig
from archsearch.arch.blocks.registry import NormSettings, parse_block
from archsearch.arch.receptive_field import ReceptiveField
from archsearch.errors import SpecError
from tests.helpers.models import randomize_batchnorm

NORM = NormSettings()


def _count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _blocks(items: list[dict], channels: int) -> tuple[int, int]:
    total = 0
    for item in items:
        config = parse_block(item, "test")
        total += _count(config.build(channels, NORM))
        channels = config.output_channels(channels)
    return total, channels


def _basic(out: int, count: int, *, stride: int = 1, last_activation: bool = True) -> list[dict]:
    blocks = [{"block": "basic", "out_channels": out, "stride": stride if index == 0 else 1} for index in range(count)]
    blocks[-1]["activation"] = last_activation
    return blocks


def _bottleneck(out: int, count: int = 1, stride: int = 1) -> list[dict]:
    return [{"block": "bottleneck", "out_channels": out, "stride": stride if index == 0 else 1, "activation": False}
            for index in range(count)]


def _pidnet_backbone(c: int, ppm: int, stem_blocks: int, branch_blocks: int, large: bool) -> int:
    """PIDNet's backbone from our blocks, following the layout of mmsegmentation's pidnet.py."""
    stem = ([{"block": "conv", "out_channels": c, "stride": 2}] * 2 + _basic(c, stem_blocks)
            + _basic(2 * c, stem_blocks, stride=2))
    total = _blocks(stem, 3)[0]
    total += _blocks(_basic(4 * c, branch_blocks, stride=2), 2 * c)[0]
    total += _blocks(_basic(8 * c, branch_blocks, stride=2), 4 * c)[0]
    total += _blocks(_bottleneck(16 * c, 2, stride=2), 8 * c)[0]
    total += 2 * _blocks(_basic(2 * c, stem_blocks, last_activation=False), 2 * c)[0] + _blocks(_bottleneck(4 * c), 2 * c)[0]
    boundary = 2 * c if large else c
    if large:
        total += _blocks(_basic(2 * c, 1, last_activation=False) * 2, 2 * c)[0]
    else:
        total += _blocks(_basic(c, 1, last_activation=False) + _bottleneck(2 * c), 2 * c)[0]
    total += _blocks(_bottleneck(4 * c), 2 * c)[0]
    exchange = PagFusionConfig(mid_channels=c)
    total += _count(exchange.build([2 * c, boundary, 4 * c], [8, 8, 16], NORM))
    total += _count(exchange.build([2 * c, 2 * c, 8 * c], [8, 8, 32], NORM))
    context = parse_block({"block": "dappm" if large else "pappm", "branch_channels": ppm, "out_channels": 4 * c}, "c")
    total += _count(context.build(16 * c, NORM))
    merge = parse_block({"block": "bag" if large else "light_bag", "out_channels": 4 * c}, "m")
    return total + _count(merge.build([4 * c] * 3, [8, 8, 64], NORM))


# ../shared/reference/FIGURES.md, "Seed-table rivals": backbone / main head / (p head, p cls, d head, d cls).
@pytest.mark.parametrize(("c", "ppm", "stem_blocks", "branch_blocks", "head", "large", "backbone", "main_head", "aux"), [
    (32, 96, 2, 3, 128, False, 7_475_232, 150_419, (74_112, 2_451, 18_624, 33)),
    (64, 96, 2, 3, 128, False, 28_240_256, 298_131, (147_968, 2_451, 74_112, 65)),
    (64, 112, 3, 4, 256, True, 36_343_712, 595_731, (295_680, 4_883, 74_112, 65)),
])
def test_pidnet_parts_add_up_to_the_reference_counts(c, ppm, stem_blocks, branch_blocks, head, large, backbone,
                                                     main_head, aux):
    with torch.device("meta"):  # counting only: no memory, no initialisation
        _check_counts(c, ppm, stem_blocks, branch_blocks, head, large, backbone, main_head, aux)


def _check_counts(c, ppm, stem_blocks, branch_blocks, head, large, backbone, main_head, aux):
    assert _pidnet_backbone(c, ppm, stem_blocks, branch_blocks, large) == backbone
    assert _count(parse_block({"block": "pid_head", "channels": head}, "h").build(4 * c, {}, 19, NORM)) == main_head
    p_head = parse_block({"block": "pid_head", "channels": head}, "h").build(2 * c, {}, 19, NORM)
    d_head = parse_block({"block": "boundary_head", "channels": c}, "h").build(2 * c, {}, 19, NORM)
    assert (_count(p_head) - _count(p_head.classifier), _count(p_head.classifier),
            _count(d_head) - _count(d_head.classifier), _count(d_head.classifier)) == aux
    assert d_head.classifier.out_channels == 1


def test_pag_gate_is_one_channel_from_the_projected_dot_product():
    torch.manual_seed(0)
    pag = Pag(8, 4, upsample_mode="bilinear", norm=NORM).eval()
    randomize_batchnorm(pag)
    x, y = torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        up = lambda t: F.interpolate(t, size=(8, 8), mode="bilinear", align_corners=False)  # noqa: E731
        gate = torch.sigmoid((pag.f_p(x) * up(pag.f_i(y))).sum(1, keepdim=True))
        assert torch.allclose(pag(x, y), gate * up(y) + (1 - gate) * x, atol=1e-6)


def _fold_check(module: torch.nn.Module, *inputs) -> torch.nn.Module:
    torch.manual_seed(0)
    module.eval()
    randomize_batchnorm(module)
    deployed = deploy(module)
    with torch.no_grad():
        expected, actual = module(*inputs), deployed(*inputs)
    expected = expected if isinstance(expected, list) else [expected]
    actual = actual if isinstance(actual, list) else [actual]
    for want, got in zip(expected, actual):
        assert (want - got).abs().max() / want.abs().max() <= 1e-5
    return deployed


def _batchnorms(module: torch.nn.Module) -> int:
    return sum(isinstance(child, torch.nn.BatchNorm2d) for child in module.modules())


@pytest.mark.parametrize("fine_to_coarse", [False, True])
@pytest.mark.parametrize("boundary", [None, 4])
def test_pag_exchange_folds_every_batchnorm(fine_to_coarse, boundary):
    channels = [8, boundary, 16] if boundary else [8, 16]
    strides = [8, 8, 32] if boundary else [8, 32]
    exchange = PagExchange(channels, strides, mid_channels=4, fine_to_coarse=fine_to_coarse,
                           upsample_mode="bilinear", norm=NORM)
    inputs = [torch.randn(1, 8, 8, 8)] + ([torch.randn(1, 4, 8, 8)] if boundary else []) + [torch.randn(1, 16, 2, 2)]
    deployed = _fold_check(exchange, inputs)
    assert _batchnorms(deployed) == 0


def test_light_bag_folds_and_bag_keeps_its_preactivated_batchnorm():
    inputs = [torch.randn(1, 8, 8, 8), torch.randn(1, 8, 8, 8), torch.randn(1, 8, 4, 4)]
    assert _batchnorms(_fold_check(LightBag(8, 8, norm=NORM), inputs)) == 0
    assert _batchnorms(_fold_check(Bag(8, 8, norm=NORM), inputs)) == 1


def test_pappm_keeps_its_eight_preactivated_batchnorms():
    pappm = PAPPM(16, 4, 8, pool_kernels=(5, 9, 17), pool_strides=(2, 4, 8), norm=NORM)
    assert _count(pappm.processes.conv) == 16 * 4 * 9  # one 3x3 conv in 4 groups over the 4 pooled scales
    assert _batchnorms(_fold_check(pappm, torch.randn(1, 16, 16, 16))) == 8


def test_pag_fusion_refuses_branches_it_cannot_join():
    exchange = PagFusionConfig(mid_channels=4)
    with pytest.raises(SpecError, match="two .* or three"):
        exchange.check_branches([8, 8, 8, 8], [8, 8, 8, 8])
    with pytest.raises(SpecError, match="coarsest"):
        exchange.check_branches([8, 16], [16, 8])
    with pytest.raises(SpecError, match="boundary branch"):
        exchange.check_branches([8, 8, 16], [8, 16, 32])
    with pytest.raises(SpecError, match="mid_channels"):
        parse_block({"block": "pag_fusion", "mid_channels": 0}, "fusion")


def test_pag_fusion_receptive_fields():
    fine, boundary, coarse = ReceptiveField(50, 8), ReceptiveField(40, 8), ReceptiveField(300, 32)
    fused = PagFusionConfig(mid_channels=4).receptive_fields([fine, boundary, coarse], [8, 8, 32])
    assert [field.size for field in fused] == [300, 300 + 2 * 32, 300]
    assert [field.jump for field in fused] == [8, 8, 32]
