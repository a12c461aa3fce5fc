"""Reparameterization of single blocks: every branch combination folds to one conv exactly."""

from __future__ import annotations

import itertools

import pytest
import torch

from archsearch import build, deploy
from archsearch.arch.blocks.dblock import DilatedSplitConv
from archsearch.arch.blocks.registry import NormSettings
from archsearch.arch.blocks.rep import RepConv, RepParallelConv
from tests.helpers.models import randomize_batchnorm

BRANCH_SETS = [combo for size in range(4) for combo in itertools.combinations(("serial_1x1", "1x1", "identity"), size)]


@pytest.mark.parametrize("branches", BRANCH_SETS)
@pytest.mark.parametrize(("in_channels", "out_channels", "stride"), [(8, 8, 1), (8, 16, 2), (8, 8, 2)])
def test_rep_conv_folds_to_one_conv(branches, in_channels, out_channels, stride):
    torch.manual_seed(0)
    block = RepConv(in_channels, out_channels, stride=stride, branches=branches, activation=True,
                    norm=NormSettings(eps=1e-3, momentum=0.03)).eval()
    randomize_batchnorm(block)
    folded = block.reparameterize()
    images = torch.randn(2, in_channels, 9, 11)
    with torch.no_grad():
        assert torch.allclose(block(images), folded(images), rtol=1e-5, atol=1e-5)
    assert isinstance(folded.conv, torch.nn.Conv2d) and folded.conv.kernel_size == (3, 3)


def test_identity_branch_only_where_the_shape_is_kept():
    norm = NormSettings()
    assert RepConv(8, 8, stride=1, branches=("identity",), activation=True, norm=norm).identity is not None
    assert RepConv(8, 8, stride=2, branches=("identity",), activation=True, norm=norm).identity is None
    assert RepConv(8, 16, stride=1, branches=("identity",), activation=True, norm=norm).identity is None


def test_parallel_grouped_conv_folds():
    torch.manual_seed(0)
    block = RepParallelConv(16, groups=4, num_branches=3, norm=NormSettings()).eval()
    randomize_batchnorm(block)
    images = torch.randn(1, 16, 7, 7)
    with torch.no_grad():
        assert torch.allclose(block(images), block.reparameterize()(images), atol=1e-5)


def test_split_dilated_conv_folds_each_batchnorm_slice():
    torch.manual_seed(0)
    block = DilatedSplitConv(32, (1, 2, 4, 8), group_width=4, stride=2, norm=NormSettings()).eval()
    randomize_batchnorm(block)
    images = torch.randn(1, 32, 20, 20)
    with torch.no_grad():
        expected = block(images)
        folded = block.fold_batchnorm()
        assert torch.allclose(expected, folded(images), atol=1e-5)
    assert isinstance(folded.bn, torch.nn.Identity)


def test_deploy_leaves_the_train_form_untouched_and_trains_no_more():
    model = build("rdrnet-s-simple")
    before = {key: value.clone() for key, value in model.state_dict().items()}
    deployed = deploy(model)
    assert model.training and model.aux_head is not None
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert not deployed.training
    assert sum(p.numel() for p in deployed.parameters()) < sum(p.numel() for p in model.parameters())


def test_paper_count_form_keeps_batchnorm_but_folds_rep_blocks():
    model = build("rdrnet-s")
    counted = deploy(model, fold_batchnorm=False)
    kinds = {type(module).__name__ for module in counted.modules()}
    assert "RepConv" not in kinds and "ConvNorm" in kinds


def test_conv_block_in_both_orders_builds_and_deploys():
    from archsearch import parse_spec

    spec = parse_spec({
        "name": "orders",
        "stem": [{"block": "conv", "out_channels": 8, "stride": 2},
                 {"block": "conv", "out_channels": 8, "order": "norm-act-conv", "dilation": 2}],
        "stages": [{"blocks": [{"block": "basic", "out_channels": 16, "stride": 2},
                               {"block": "conv", "out_channels": 16, "kernel_size": 1, "activation": False}]}],
        "head": {"block": "ddr_head", "channels": 8},
    })
    model = build(spec, num_classes=3).eval()
    randomize_batchnorm(model)
    pre = model.stem[1]
    assert type(pre).__name__ == "NormActConv" and pre.bn.num_features == 8 and pre.conv.dilation == (2, 2)
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(images), deploy(model)(images), atol=1e-5)
