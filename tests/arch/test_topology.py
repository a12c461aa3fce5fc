"""The topology: which tensor every node reads, and that a graph beyond today's presets builds, runs and counts."""

from __future__ import annotations

import torch

from archsearch import build, parse_spec
from archsearch.arch.blocks.conv import ConvConfig
from archsearch.arch.blocks.fusion import FusionConfig
from archsearch.arch.blocks.heads import DDRHeadConfig
from archsearch.arch.build import resolve_spec
from archsearch.arch.network import SegmentationNetwork
from archsearch.arch.blocks.registry import NormSettings
from archsearch.arch.topology import IMAGE, NODE_KINDS, PlanBuilder, Ref, Topology


def three_branches():
    """Stage 0 has two branches; stage 1 adds a third, which must fork from stage 0's coarsest (fused) output."""
    conv = lambda width, stride=1: {"block": "conv", "out_channels": width, "stride": stride}  # noqa: E731
    return parse_spec({
        "name": "three", "stem": [conv(8, 2)],
        "stages": [{"branches": [[conv(8)], [conv(8, 2)]], "fusion": {"block": "bilateral_fusion"}},
                   {"branches": [[conv(8)], [conv(8)], [conv(8, 2)]], "fusion": {"block": "bilateral_fusion"},
                    "input_activation": True}],
        "head": {"block": "ddr_head", "channels": 4},
        "aux_head": {"stage": 0, "branch": 1, "head": {"block": "ddr_head", "channels": 4}}})


def test_every_node_reads_what_the_spec_says():
    topology = three_branches().topology()
    by_name = {node.name: node for node in topology.nodes}
    assert by_name["stem"].inputs == (IMAGE,)
    assert by_name["stages[0].branches[1]"].inputs == (Ref("stem"),)  # a new branch forks from the coarsest
    assert by_name["stages[0].fusion"].inputs == (Ref("stages[0].branches[0]"), Ref("stages[0].branches[1]"))
    assert topology.stage_outputs[0] == (Ref("stages[0].fusion", 0), Ref("stages[0].fusion", 1))
    # Stage 1 activates its inputs, then its third branch forks from the activated coarsest.
    assert by_name["stages[1].input_activation[1]"].inputs == (Ref("stages[0].fusion", 1),)
    assert by_name["stages[1].branches[2]"].inputs == (Ref("stages[1].input_activation[1]"),)
    assert [feature.stride for feature in by_name["stages[1].fusion"].input_features] == [2, 4, 8]
    assert by_name["head"].inputs[:3] == topology.stage_outputs[1] and by_name["head"].details["branches"] == 3
    aux = by_name["aux_head"]
    assert aux.inputs == (topology.stage_outputs[0][1],) and aux.training_only
    # Module paths fix the state-dict names; the aux head sits outside the stages.
    assert by_name["stages[1].branches[2]"].module_path == "stages.1.branches.2"
    assert topology.shapes().stages == (((8, 2), (8, 4)), ((8, 2), (8, 4), (8, 8)))


def test_the_network_runs_the_plan_and_deploy_drops_the_aux_node():
    model = build(three_branches(), num_classes=3).eval()
    images = torch.randn(2, 3, 32, 32)
    logits, aux = model(images, return_aux=True)
    assert logits.shape == aux.shape == (2, 3, 32, 32)
    assert "stages.1.branches.2.0.conv.weight" in model.state_dict()
    assert "aux_head.classifier.weight" in model.state_dict()


def test_a_graph_with_two_paths_from_the_image_builds_runs_and_counts():
    """BiSeNet's shape: two paths both start from the image, a fusion reads both, an aux head reads one path."""
    plan = PlanBuilder(3)
    detail = plan.chain("detail", "detail", IMAGE, (ConvConfig(out_channels=8, stride=2),) * 3)
    semantic = plan.chain("semantic", "semantic", IMAGE,
                          (ConvConfig(out_channels=8, stride=2),) * 4 + (ConvConfig(out_channels=8, kernel_size=5),))
    fusion = plan.add("fusion", "fusion", "fusion", (detail, semantic), component=FusionConfig())
    outputs = (fusion.output(0), fusion.output(1))
    head = plan.add("head", "head", "head", outputs, component=DDRHeadConfig(channels=4), branches=2,
                    feature_refs={}, final_stride=8)
    aux = plan.add("aux_head", "aux_head", "aux_head", (semantic,), component=DDRHeadConfig(channels=4),
                   training_only=True)
    topology = Topology(nodes=tuple(plan.nodes), in_channels=3, stem=detail, stage_outputs=(outputs,),
                        final=outputs[0], logits=head.output(), aux_logits=aux.output())
    assert [feature.stride for feature in fusion.input_features] == [8, 16]
    modules = {node.module_path: NODE_KINDS[node.kind].build(node, NormSettings(), 5) for node in topology.nodes}
    model = SegmentationNetwork(topology=topology, modules=modules, spec=resolve_spec("regseg"), num_classes=5)
    logits, aux_logits = model.eval()(torch.randn(1, 3, 64, 64), return_aux=True)
    assert logits.shape == aux_logits.shape == (1, 5, 64, 64)
    # Detail: 3 + 4 + 8 = 15 (jump 8); semantic: 31 at jump 16, then the 5x5: 31 + 4 * 16 = 95, which the
    # fusion's 1x1 and resize carry into the detail branch; the sum takes the widest.
    assert topology.receptive_field().size == 95
