"""The timm encoder block: timm's feature levels as a block, ResNet-18 as BiSeNetV1's context path."""

from __future__ import annotations

import pytest
import torch

from archsearch import deploy
from archsearch.arch.blocks.registry import NormSettings, parse_block
from archsearch.arch.receptive_field import ReceptiveField
from archsearch.errors import SpecError
from tests.helpers.models import randomize_batchnorm
from tests.helpers.official_layouts import mmseg_resnet18_layout

RESNET18 = {"block": "timm_encoder", "model": "resnet18", "out_indices": [3, 4]}


def test_resnet18_levels_channels_and_strides_come_from_timm():
    config = parse_block(RESNET18, "context_path")
    assert (config.feature_channels(), config.feature_strides()) == ([256, 512], [16, 32])
    assert (config.output_channels(3), config.stride) == (256, 16)  # the first level is the one handed on
    assert config.output_features(3) == [(256, 16), (512, 32)]


def test_resnet18_has_mmsegmentations_parameters_and_key_names():
    with torch.device("meta"):
        encoder = parse_block(RESNET18, "context_path").build(3, NormSettings())
    ours = {key: tuple(value.shape) for key, value in encoder.state_dict().items()}
    assert ours == mmseg_resnet18_layout("body")
    assert sum(parameter.numel() for parameter in encoder.parameters()) == 11_176_512


def test_receptive_field_is_resnet18s():
    # 7x7/2 conv, 3x3/2 max pool, then two 3x3 convs per basic block at strides 4, 8, 16, 32.
    field = parse_block({**RESNET18, "out_indices": [4]}, "context_path").receptive_field(ReceptiveField())
    assert (field.size, field.jump) == (435, 32)
    stage4 = parse_block(RESNET18, "context_path").receptive_field(ReceptiveField())
    assert (stage4.size, stage4.jump) == (211, 16)


def test_forward_gives_each_level_and_folding_keeps_the_function():
    torch.manual_seed(0)
    encoder = parse_block(RESNET18, "context_path").build(3, NormSettings()).eval()
    randomize_batchnorm(encoder)
    images = torch.randn(1, 3, 64, 64)
    deployed = deploy(torch.nn.Sequential(encoder))  # the walker converts children, as in a network
    with torch.no_grad():
        expected, actual = encoder(images), deployed(images)
    assert [tuple(level.shape) for level in expected] == [(1, 256, 4, 4), (1, 512, 2, 2)]
    for want, got in zip(expected, actual):
        assert (want - got).abs().max() / want.abs().max() <= 1e-5
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in deployed.modules())


@pytest.mark.parametrize(("fields", "message"), [
    ({"model": "no_such_net"}, "not a timm model"),
    ({"out_indices": [4, 3]}, "ascending"),
    ({"out_indices": [5]}, "5 feature levels"),
    ({"out_indices": []}, "at least one"),
])
def test_bad_encoders_are_refused_with_the_key_named(fields, message):
    with pytest.raises(SpecError, match=message) as caught:
        parse_block({**RESNET18, **fields}, "context_path")
    assert "context_path." in str(caught.value)
