"""BiSeNet's blocks: their parameters add up to mmsegmentation's BiSeNetV1/V2, and they fold exactly."""

from __future__ import annotations

import pytest
import torch

from archsearch import deploy
from archsearch.arch.blocks.bisenet import ContextEmbedding, GatherExpansion, GuidedAggregation
from archsearch.arch.blocks.registry import NormSettings, parse_block
from archsearch.arch.receptive_field import ReceptiveField
from archsearch.errors import SpecError
from tests.helpers.models import randomize_batchnorm

NORM = NormSettings()


def _count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _blocks(items: list[dict], channels: int) -> int:
    total = 0
    for item in items:
        config = parse_block(item, "test")
        total += _count(config.build(channels, NORM))
        channels = config.output_channels(channels)
    return total


def _merge(item: dict, channels: list[int], strides: list[int]) -> int:
    config = parse_block(item, "test")
    config.check(channels, strides)
    return _count(config.build(channels, strides, NORM))


def _head(item: dict, channels: int) -> int:
    return _count(parse_block(item, "head").build(channels, {}, 19, NORM))


CONTEXT_PATH = {"block": "bisenet_context", "out_channels": 128,
                "encoder": {"block": "timm_encoder", "model": "resnet18", "out_indices": [3, 4]}}


def _conv(out: int, kernel: int = 3, stride: int = 1) -> dict:
    return {"block": "conv", "out_channels": out, "kernel_size": kernel, "stride": stride}


def test_bisenetv1_parts_add_up_to_the_reference_counts():
    with torch.device("meta"):
        context = _blocks([CONTEXT_PATH], 3)
        spatial = _blocks([_conv(64, 7, 2), _conv(64, 3, 2), _conv(64, 3, 2), _conv(128, 1)], 3)
        fusion = _merge({"block": "ffm", "out_channels": 256}, [128, 128], [8, 8])
        assert context + spatial + fusion == 12_680_320  # FIGURES.md, "Seed-table rivals"
        assert _head({"block": "fcn_head", "channels": 256}, 256) == 595_219
        assert _head({"block": "fcn_head", "channels": 64}, 128) == 75_091


def test_bisenetv2_parts_add_up_to_the_reference_counts():
    detail = [_conv(64, 3, 2), _conv(64), _conv(64, 3, 2), _conv(64), _conv(64), _conv(128, 3, 2), _conv(128),
              _conv(128)]
    semantic = ([{"block": "bisenet_stem", "out_channels": 16}]
                + [{"block": "ge", "out_channels": 32, "stride": 2}, {"block": "ge", "out_channels": 32}]
                + [{"block": "ge", "out_channels": 64, "stride": 2}, {"block": "ge", "out_channels": 64}]
                + [{"block": "ge", "out_channels": 128, "stride": 2}] + [{"block": "ge", "out_channels": 128}] * 3
                + [{"block": "ce", "out_channels": 128}])
    backbone = _blocks(detail, 3) + _blocks(semantic, 3) + _merge({"block": "bga", "out_channels": 128},
                                                                  [128, 128], [8, 32])
    assert backbone == 2_157_712
    assert _head({"block": "fcn_head", "channels": 1024}, 128) == 1_201_171
    aux = [_head({"block": "fcn_head", "channels": width, "num_convs": 2}, cin)
           for cin, width in ((16, 16), (32, 64), (64, 256), (128, 1024))]
    assert aux == [4_995, 56_787, 743_187, 10_640_403]


def _folds(module: torch.nn.Module, inputs, remaining_batchnorms: int = 0) -> None:
    torch.manual_seed(0)
    module.eval()
    randomize_batchnorm(module)
    deployed = deploy(torch.nn.Sequential(module))[0]
    with torch.no_grad():
        expected, actual = module(inputs), deployed(inputs)
    for want, got in zip(expected if isinstance(expected, list) else [expected],
                         actual if isinstance(actual, list) else [actual]):
        assert (want - got).abs().max() / want.abs().max() <= 1e-5
    assert sum(isinstance(child, torch.nn.BatchNorm2d) for child in deployed.modules()) == remaining_batchnorms


@pytest.mark.parametrize("name", ["ffm", "bga"])
def test_merges_fold_every_batchnorm(name):
    channels, strides, shapes = {"ffm": ([8, 8], [8, 8], [(16, 16), (16, 16)]),
                                 "bga": ([8, 8], [8, 32], [(16, 16), (4, 4)])}[name]
    config = parse_block({"block": name, "out_channels": 8}, "merge")
    inputs = [torch.randn(1, width, *shape) for width, shape in zip(channels, shapes)]
    _folds(config.build(channels, strides, NORM), inputs)
    sizes = [width for width, _ in config.outputs(channels, strides)]
    assert sizes[0] == 8


@pytest.mark.parametrize("stride", [1, 2])
def test_gather_expansion_folds(stride):
    _folds(GatherExpansion(8, 8 * stride, expansion=6, stride=stride, norm=NORM), torch.randn(1, 8, 8, 8))


def test_context_embedding_folds_its_pooled_batchnorm_forward_into_the_conv():
    _folds(ContextEmbedding(8, 8, norm=NORM), torch.randn(2, 8, 6, 6))


def test_guided_aggregation_output_is_at_the_detail_stride():
    block = GuidedAggregation(8, norm=NORM).eval()
    assert block([torch.randn(1, 8, 16, 16), torch.randn(1, 8, 4, 4)]).shape == (1, 8, 16, 16)


def test_context_path_gives_maps_at_half_and_at_the_finer_levels_stride_and_folds():
    config = parse_block(CONTEXT_PATH, "context_path")
    assert config.output_features(3) == [(128, 8), (128, 16)]
    fine, coarse = config.receptive_fields(ReceptiveField())
    assert [(fine.size, fine.jump), (coarse.size, coarse.jump)] == [(435 + 64 + 32 + 16, 8), (435 + 64 + 32, 16)]
    block = config.build(3, NORM)
    _folds(block, torch.randn(1, 3, 64, 64))
    assert [tuple(output.shape[-2:]) for output in block(torch.randn(1, 3, 64, 64))] == [(8, 8), (4, 4)]


def test_context_path_needs_two_levels_an_octave_apart():
    with pytest.raises(SpecError, match="two levels"):
        parse_block({**CONTEXT_PATH, "encoder": {**CONTEXT_PATH["encoder"], "out_indices": [2, 4]}}, "context_path")


@pytest.mark.parametrize(("item", "channels", "strides", "message"), [
    ({"block": "bga", "out_channels": 8}, [8, 16], [8, 32], "out_channels"),
    ({"block": "bga", "out_channels": 8}, [8, 8], [8, 16], "4x coarser"),
    ({"block": "ffm", "out_channels": 8}, [8, 8, 8], [8, 8, 8], "reads 2 inputs"),
])
def test_merges_refuse_inputs_they_cannot_join(item, channels, strides, message):
    with pytest.raises(SpecError, match=message):
        parse_block(item, "merge").check(channels, strides)


def test_stride_one_layers_keep_their_width():
    with pytest.raises(SpecError, match="keeps its width"):
        parse_block({"block": "ge", "out_channels": 16}, "ge").check(8)
    with pytest.raises(SpecError, match="keeps the width"):
        parse_block({"block": "ce", "out_channels": 16}, "ce").check(8)
