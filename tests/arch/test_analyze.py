"""Analysis: receptive field counted by hand on small specs, output stride, MACs from the flop counter."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from archsearch import analyze, build, deploy, parse_spec


def spec(stem, stages, head=None):
    return parse_spec({"name": "hand", "stem": stem, "stages": stages,
                       "head": head or {"block": "ddr_head", "channels": 8}})


def test_receptive_field_grows_by_kernel_dilation_and_jump():
    # conv3 s2: 1 + 2*1 = 3 (jump 2); dblock s2 d1: +2*2 = 7 (jump 4); dblock d5: +2*5*4 = 47
    hand = spec([{"block": "conv", "out_channels": 16, "stride": 2}],
                [{"blocks": [{"block": "dblock", "out_channels": 16, "stride": 2},
                             {"block": "dblock", "out_channels": 32, "dilations": [1, 5]}]}])
    result = analyze(hand, (64, 64))
    assert result.receptive_field == 47 and result.output_stride == 4


def test_two_branches_take_the_widest_path_through_fusion():
    # stem 3 (jump 2); branch 0: two 3x3 at jump 2 -> 11; branch 1: 3x3 s2 then 3x3 at jump 4 -> 15 (jump 4)
    # fusion into branch 0: 1x1 + resize keeps 15; into branch 1: 3x3 s2 at jump 2 on 11 -> 15; final: 15
    hand = spec([{"block": "conv", "out_channels": 8, "stride": 2}],
                [{"branches": [[{"block": "conv", "out_channels": 8}, {"block": "conv", "out_channels": 8}],
                               [{"block": "conv", "out_channels": 16, "stride": 2},
                                {"block": "conv", "out_channels": 8}]],
                  "fusion": {"block": "bilateral_fusion"}}])
    assert analyze(hand, (32, 32)).receptive_field == 15


def test_macs_equal_the_flop_counter_on_the_real_deploy_form():
    model = deploy(build("regseg-exp43-decoder12"))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, 96, 160))
    assert analyze("regseg-exp43-decoder12", (96, 160)).macs == counter.get_total_flops() // 2


def test_analyze_accepts_a_built_model():
    model = build("ddrnet-23-slim", num_classes=7)
    from_model, from_name = analyze(model, (64, 64)), analyze("ddrnet-23-slim", (64, 64), num_classes=7)
    assert from_model == from_name and from_model.num_classes == 7


def test_model_output_matches_input_size_and_aux_only_on_request():
    model = build("ddrnet-23-slim", num_classes=5).train()
    images = torch.randn(2, 3, 70, 90)
    logits, aux = model(images, return_aux=True)
    assert logits.shape == aux.shape == (2, 5, 70, 90)
    assert model(images).shape == (2, 5, 70, 90)
