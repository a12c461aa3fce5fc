"""A spec names its initialisation scheme; build applies it; the expected figures come from the formulas.

kaiming_normal(fan_out, ReLU): std = sqrt(2 / (out_channels * kh * kw)) (He et al., 2015; PyTorch's
fan_out of a conv weight). PyTorch's default conv init, kaiming_uniform(a=sqrt(5)): uniform within
1/sqrt(fan_in), so std = 1 / sqrt(3 * fan_in) with fan_in = in_channels / groups * kh * kw.
"""

from __future__ import annotations

import math
import shutil

import pytest
import torch
import yaml
from torch import nn

from archsearch import build
from archsearch.arch.blocks.timm_encoder import TimmEncoder
from archsearch.arch.initialise import INIT_SCHEMES, initialise
from archsearch.arch.presets import preset_names, preset_path
from archsearch.arch.spec import ArchSpec, load_spec, parse_spec
from archsearch.errors import SpecError
from archsearch.run.guard import StudyIdentity, differences
from archsearch.study.config import load_study
from tests.helpers.paths import FIXTURES, SPACES

MIN_WEIGHTS = 2000  # convs with enough weights for a tight std estimate


def _large_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    encoders = {id(module) for encoder in model.modules() if isinstance(encoder, TimmEncoder)
                for module in encoder.modules()}
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, nn.Conv2d) and module.weight.numel() >= MIN_WEIGHTS and id(module) not in encoders
            and not name.endswith("classifier")]


def _assert_std(name: str, weight: torch.Tensor, expected: float) -> None:
    """Sample std within 5 standard errors (std / sqrt(2n)), mean within 5 (std / sqrt(n))."""
    count = weight.numel()
    assert abs(weight.std().item() / expected - 1) < 5 / math.sqrt(2 * count), (name, weight.std().item(), expected)
    assert abs(weight.mean().item()) < 5 * expected / math.sqrt(count), name


@pytest.mark.parametrize("name", ["rdrnet-s-simple", "pidnet-s", "ddrnet-23-slim"])
def test_kaiming_fan_out_presets_have_he_fan_out_std_unit_norms_and_zero_biases(name):
    torch.manual_seed(0)
    model = build(name)
    assert model.spec.init == "kaiming_fan_out"
    convs = _large_convs(model)
    assert len(convs) > 10
    for conv_name, conv in convs:
        out_channels, _, kernel_h, kernel_w = conv.weight.shape
        _assert_std(conv_name, conv.weight, math.sqrt(2 / (out_channels * kernel_h * kernel_w)))
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.bias is not None:
            assert torch.all(module.bias == 0)


def test_kaiming_fan_out_resets_every_batchnorm_to_weight_1_bias_0():
    model = build("rdrnet-s-simple")
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.uniform_(2, 3)
            norm.bias.uniform_(2, 3)
    initialise(model, "kaiming_fan_out")
    assert norms and all(torch.all(norm.weight == 1) and torch.all(norm.bias == 0) for norm in norms)


def test_torch_default_keeps_pytorchs_own_init():
    torch.manual_seed(0)
    model = build("regseg")
    assert model.spec.init == "torch_default"
    convs = _large_convs(model)
    assert len(convs) > 10
    for conv_name, conv in convs:
        _, in_per_group, kernel_h, kernel_w = conv.weight.shape
        fan_in = in_per_group * kernel_h * kernel_w
        _assert_std(conv_name, conv.weight, 1 / math.sqrt(3 * fan_in))
        assert conv.weight.abs().max().item() <= 1 / math.sqrt(fan_in)  # uniform, not normal


def test_bisenet_classifiers_are_normal_001_and_the_timm_encoder_keeps_timms_init():
    torch.manual_seed(0)
    model = build("bisenetv1")
    assert model.spec.init == "kaiming_fan_out_normal_classifier"
    head = model.head.classifier
    _assert_std("head.classifier", head.weight, 0.01)
    assert torch.all(head.bias == 0)
    encoder = model.stages[0].branches[1][0].encoder.body
    # timm's resnet zeroes each block's last BatchNorm (mmseg ResNet's zero_init_residual); a reset would set 1
    assert torch.all(encoder.layer1[0].bn2.weight == 0) and torch.all(encoder.layer1[0].bn1.weight == 1)


def test_init_is_in_the_spec_and_its_yaml_but_not_the_architecture_hash():
    spec = load_spec_from_preset("regseg")
    data = spec.to_dict()
    assert data["init"] == "torch_default"
    other = parse_spec({**data, "init": "kaiming_fan_out"})
    assert other.init == "kaiming_fan_out" and other != spec
    assert other.arch_hash == spec.arch_hash  # same network, same cost: latency cache and exports are shared
    assert parse_spec(yaml.safe_load(other.to_yaml())).init == "kaiming_fan_out"
    without = {key: value for key, value in data.items() if key != "init"}
    assert parse_spec(without).init == "torch_default"


def load_spec_from_preset(name: str) -> ArchSpec:
    return load_spec(preset_path(name))


def test_unknown_scheme_is_a_spec_error_with_file_key_path_value_and_the_allowed_names(tmp_path):
    data = load_spec_from_preset("regseg").to_dict()
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**data, "init": "xavier"}))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert "bad.yaml" in message and "init" in message and "xavier" in message
    assert all(scheme in message for scheme in INIT_SCHEMES)


def test_a_space_change_of_init_changes_the_run_directory_fingerprint(tmp_path):
    for name in ("tiny_study.yaml", "tiny_space.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    before = StudyIdentity.of(load_study(tmp_path / "tiny_study.yaml"))
    space = yaml.safe_load((tmp_path / "tiny_space.yaml").read_text())
    space["spec"]["init"] = "kaiming_fan_out"
    (tmp_path / "tiny_space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    after = StudyIdentity.of(load_study(tmp_path / "tiny_study.yaml"))
    assert after.recipe != before.recipe
    assert any(line.startswith("space.template.init:") for line in differences(before.settings, after.settings))


def test_every_preset_and_shipped_space_names_its_scheme():
    for name in preset_names():
        assert "init" in yaml.safe_load(preset_path(name).read_text()), name
    for path in sorted(SPACES.glob("*.yaml")):
        assert yaml.safe_load(path.read_text())["spec"]["init"] in INIT_SCHEMES, path
