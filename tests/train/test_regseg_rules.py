"""RegSeg's learning-rate rule and weight-decay exemption, against RolandGao/RegSeg's own code.

The expected values are RegSeg's formulas, written out from its ``lr_schedulers.py``
(``poly_lr_scheduler``) and ``train_utils.py`` (``get_optimizer``: parameters whose name holds
"bn" get weight decay 0 when ``bn_weight_decay`` is False).
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from archsearch import load_spec
from archsearch.arch.build import build
from archsearch.arch.checkpoints import key_rules
from archsearch.arch.presets import preset_path
from archsearch.errors import SpecError
from archsearch.train import TrainConfig, build_optimizer, build_scheduler


def regseg_poly(step: int, total: int, warmup: int, factor: float, power: float = 0.9) -> float:
    """RegSeg's multiplier: poly over the whole budget, times the ramp while ``step < warmup``."""
    value = (1 - step / total) ** power
    if step < warmup:
        value *= factor + (1 - factor) * (step / warmup)
    return value


def test_multiplied_warmup_is_regsegs_lambda_lr_at_its_steps() -> None:
    total = 371 * 1000  # cityscapes_1000epochs.yaml: 2975 images / batch 8 = 371 steps x 1000 epochs
    config = TrainConfig(iterations=total, lr=0.05, warmup_iterations=3000, warmup_factor=0.1,
                         warmup_style="multiplied")
    optimizer = build_optimizer(nn.Linear(2, 2), config)
    scheduler = build_scheduler(optimizer, config, total)
    seen = {}
    for step in range(3001):  # the trainer steps the scheduler once per optimizer step, as RegSeg does
        seen[step] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    for step in (0, 1500, 3000):
        assert abs(seen[step] - 0.05 * regseg_poly(step, total, 3000, 0.1)) < 1e-12
    multiplier = scheduler.lr_lambdas[0]
    assert abs(0.05 * multiplier(100_000) - 0.05 * regseg_poly(100_000, total, 3000, 0.1)) < 1e-12
    assert multiplier(total) == 0.0


def test_multiplied_and_sequential_warmup_differ_in_mean_rate() -> None:
    """RegSeg's CamVid recipe (1000 warm-up steps of about 15k): the mean rates differ."""
    total, warmup = 701 // 12 * 200, 1000  # train+val = 701 images, batch 12, 200 epochs
    rates = {}
    for style in ("sequential", "multiplied"):
        config = TrainConfig(iterations=total, lr=1.0, warmup_iterations=warmup, warmup_factor=0.1,
                             warmup_style=style)
        optimizer = build_optimizer(nn.Linear(2, 2), config)
        scheduler = build_scheduler(optimizer, config, total)
        if style == "multiplied":
            rates[style] = sum(scheduler.lr_lambdas[0](step) for step in range(total)) / total
        else:
            total_rate = 0.0
            for _ in range(total):
                total_rate += optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
            rates[style] = total_rate / total
    expected = sum(regseg_poly(step, total, warmup, 0.1) for step in range(total)) / total
    assert rates["multiplied"] == pytest.approx(expected, rel=1e-12)
    assert rates["sequential"] / rates["multiplied"] - 1 > 0.03


def test_an_unknown_warmup_style_is_refused() -> None:
    with pytest.raises(SpecError, match="warmup_style"):
        TrainConfig(iterations=10, warmup_style="linear")


def test_batchnorm_exemption_is_regsegs_bn_name_rule_on_the_regseg_preset() -> None:
    model = build(load_spec(preset_path("regseg")), num_classes=19)
    config = TrainConfig(iterations=1, weight_decay=1e-4, weight_decay_exempt="batchnorm")
    groups = build_optimizer(model, config).param_groups
    undecayed = {id(parameter) for parameter in groups[1]["params"]}
    assert groups[1]["weight_decay"] == 0.0 and groups[0]["weight_decay"] == 1e-4
    ours = dict(model.named_parameters())
    # RegSeg names every BatchNorm bn/bn1/bn2/bn3 and nothing else "bn"; our names for the same
    # parameters are those the checkpoint rules give its "bn" keys.
    theirs_bn = _their_bn_names(ours)
    assert {name for name, parameter in ours.items() if id(parameter) in undecayed} == theirs_bn
    se_biases = [name for name in ours if ".se." in name and name.endswith("bias")]
    assert se_biases and not any(id(ours[name]) in undecayed for name in se_biases)
    assert id(ours["head.classifier.bias"]) not in undecayed


def _their_bn_names(ours: dict[str, nn.Parameter]) -> set[str]:
    """Our names of the parameters whose RegSeg name holds "bn": each name is turned back into RegSeg's,
    and the checkpoint format's rules (RegSeg -> ours) must give the name again."""
    exempt = set()
    for name in ours:
        theirs = _regseg_name(name)
        renamed = theirs
        for pattern, replacement in key_rules("regseg"):
            renamed = pattern.sub(replacement, renamed)
        assert renamed == name, (name, theirs)
        if "bn" in theirs:
            exempt.add(name)
    return exempt


def _regseg_name(name: str) -> str:
    """RegSeg's name of our parameter ``name``: each checkpoint rule undone."""
    reverse = [
        (r"\.conv1\.conv\.weight$", ".conv1.weight"), (r"\.conv1\.bn\.", ".bn1."),
        (r"\.conv2\.convs\.0\.weight$", ".conv2.weight"), (r"\.conv2\.bn\.", ".bn2."),
        (r"\.conv3\.conv\.weight$", ".conv3.weight"), (r"\.conv3\.bn\.", ".bn3."),
        (r"\.shortcut\.projection\.(conv|bn)\.", r".shortcut.\1."),
        (r"^stem\.0\.", "stem."), (r"^stages\.0\.branches\.0\.0\.", "body.stage4."),
        (r"^stages\.1\.branches\.0\.", "body.stage8."), (r"^stages\.2\.branches\.0\.", "body.stage16."),
        (r"^head\.projections\.(\d+)\.", r"decoder.head\1."), (r"^head\.refines\.0\.", "decoder.conv8."),
        (r"^head\.refines\.1\.", "decoder.conv4."), (r"^head\.classifier\.", "decoder.classifier."),
    ]
    for pattern, replacement in reverse:
        name = re.sub(pattern, replacement, name)
    return name
