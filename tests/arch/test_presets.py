"""Every named preset reproduces the reference figures exactly and deploys to the same function."""

from __future__ import annotations

import pytest
import torch

from archsearch import analyze, build, deploy
from archsearch.arch.build import resolve_spec
from archsearch.arch.presets import preset_names
from tests.helpers.models import randomize_batchnorm

# ../shared/reference/FIGURES.md: counted from the authors' implementations, 19 classes.
# (train params without aux, aux head params, deploy params, deploy MACs at 1024x2048)
FIGURES = {
    "rdrnet-s-simple": (8_794_771, 38_355, 7_125_363, 40_911_831_040),
    "rdrnet-s": (8_869_843, 76_563, 7_200_435, 43_367_596_032),
    "rdrnet-m": (30_716_947, 150_419, 25_870_291, 161_582_546_944),
    "rdrnet-l": (43_045_267, 300_563, 36_653_011, 238_032_125_952),
    "regseg": (3_334_951, 0, 3_334_951, 38_353_186_560),
    "regseg-large": (6_131_579, 0, 6_131_579, 86_455_894_048),
    "ddrnet-23-slim": (5_695_923, 38_355, 5_695_923, 36_281_319_424),
    "ddrnet-23": (20_148_819, 150_419, 20_148_819, 143_060_500_480),
    # "Seed-table rivals": inference (backbone + main head), aux = every training-only head.
    "pidnet-s": (7_625_651, 95_220, 7_625_651, 47_194_226_688),
    "pidnet-m": (28_538_387, 224_596, 28_538_387, 177_328_717_824),
    "pidnet-l": (36_939_443, 374_740, 36_939_443, 274_933_465_088),
    "bisenetv1": (13_275_539, 150_182, 13_275_539, 118_338_256_896),
    "bisenetv2": (3_358_883, 11_445_372, 3_358_883, 98_413_199_360),
}

# BatchNorms that precede their conv with a ReLU between (BN -> ReLU -> conv) stay in the deploy
# form: PAPPM's eight and the I head's input BN in PIDNet-S/M; DAPPM's eleven, Bag's and the head's in L.
PREACTIVATED_BATCHNORMS = {"pidnet-s": 9, "pidnet-m": 9, "pidnet-l": 13, "bisenetv1": 0, "bisenetv2": 0}

# The RegSeg paper's backbone ablation (AblationStudies.md): field-of-view of each body.
FIELD_OF_VIEW = {"exp48": 3807, "exp43": 3743, "exp50": 3743, "exp46": 3295, "exp49": 3807, "exp52": 2207,
                 "exp47": 4127, "exp30": 3263, "exp51": 3743}

ABLATIONS = ([f"regseg-{body}-decoder14" for body in FIELD_OF_VIEW]
             + [f"regseg-exp43-{decoder}" for decoder in ("decoder4", "decoder10", "decoder12", "decoder26")])


def test_every_required_preset_exists():
    assert set(FIGURES) | set(ABLATIONS) <= set(preset_names())


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_preset_counts_match_the_reference_exactly(name):
    result = analyze(name)
    train, aux, deployed, macs = FIGURES[name]
    assert (result.params_train, result.params_aux, result.params_deploy, result.macs) == (train, aux, deployed, macs)
    metadata = resolve_spec(name).metadata
    assert (metadata["params_train"], metadata["params_aux"], metadata["params_deploy"],
            metadata["macs_deploy_1024x2048"]) == (train, aux, deployed, macs)


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_bodies_have_the_papers_field_of_view(name):
    body = name.split("-")[1]
    assert analyze(name, (64, 128)).receptive_field == FIELD_OF_VIEW[body]


def test_dilation_ablations_differ_only_in_dilations():
    results = [analyze(f"regseg-{body}-decoder14", (64, 128)) for body in FIELD_OF_VIEW]
    assert len({result.params_train for result in results}) == 1
    assert len({result.arch_hash for result in results}) == len(results)


def test_regseg_is_exp48_with_decoder26_and_exp43_decoder26_shares_its_counts():
    regseg, exp43 = analyze("regseg", (64, 128)), analyze("regseg-exp43-decoder26", (64, 128))
    assert regseg.params_train == exp43.params_train and regseg.output_stride == exp43.output_stride == 4


@pytest.mark.parametrize("name", preset_names())
def test_deploy_form_matches_the_train_form(name):
    torch.manual_seed(0)
    model = build(name).eval()
    randomize_batchnorm(model)
    deployed = deploy(model)
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, actual = model(images), deployed(images)
    relative_error = (expected - actual).abs().max() / expected.abs().max()
    assert relative_error <= 1e-5
    kinds = {type(module).__name__ for module in deployed.modules()}
    assert not kinds & {"RepConv", "ConvNorm", "RepParallelConv"}
    assert deployed.aux_head is None and deployed.aux_heads is None


@pytest.mark.parametrize("name", sorted(PREACTIVATED_BATCHNORMS))
def test_deploy_keeps_only_the_batchnorms_a_relu_separates_from_their_conv(name):
    deployed = deploy(build(name))
    remaining = sum(isinstance(module, torch.nn.BatchNorm2d) for module in deployed.modules())
    assert remaining == PREACTIVATED_BATCHNORMS[name]
