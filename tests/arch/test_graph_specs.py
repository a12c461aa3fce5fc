"""The grammar PIDNet and BiSeNet need: no stem, resting branches, a merge, several aux heads, multi-output blocks."""

from __future__ import annotations

import pytest
import torch

from archsearch import analyze, build, deploy, parse_spec
from archsearch.arch.build import resolve_spec
from archsearch.errors import SpecError
from archsearch.latency.predictor import walk_units


def two_paths(**extra):
    """Two paths from the image (no stem): a detail path to 1/8 and a semantic one to 1/32, joined by BGA."""
    return {"name": "two-paths",
            "stages": [{"branches": [[{"block": "conv", "out_channels": 8, "stride": 2}] * 3,
                                     [{"block": "bisenet_stem", "out_channels": 8},
                                      {"block": "ge", "out_channels": 8, "stride": 2}]]},
                       {"branches": [[], [{"block": "ge", "out_channels": 8, "stride": 2}] * 2]}],
            "merge": {"block": "bga", "out_channels": 8},
            "head": {"block": "fcn_head", "channels": 8},
            **extra}


def test_paths_from_the_image_rest_and_merge():
    spec = parse_spec(two_paths())
    topology = spec.topology()
    assert [topology.feature(ref).stride for ref in topology.stage_outputs[-1]] == [8, 32]
    assert topology.feature(topology.final).stride == 8 and topology.node("merge").kind == "merge"
    model = build(spec, num_classes=5).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5, 64, 64)
    assert analyze(spec, (64, 64)).output_stride == 8


def test_several_aux_heads_give_class_logits_and_deploy_drops_them():
    spec = parse_spec(two_paths(aux_heads=[{"stage": 0, "branch": 1, "head": {"block": "fcn_head", "channels": 4}},
                                           {"stage": 1, "branch": 1, "head": {"block": "fcn_head", "channels": 4}}]))
    model = build(spec, num_classes=5).train()
    logits, aux = model(torch.randn(2, 3, 64, 64), return_aux=True)
    assert [tuple(map.shape) for map in aux] == [(2, 5, 64, 64)] * 2
    assert analyze(spec, (64, 64), num_classes=5).params_aux == sum(p.numel() for p in model.aux_heads.parameters())
    assert deploy(model).aux_heads is None


def test_pidnet_aux_logits_leave_out_the_boundary_head():
    model = build("pidnet-s", num_classes=5).train()
    logits, aux = model(torch.randn(2, 3, 128, 128), return_aux=True)
    assert len(aux) == 1 and aux[0].shape == logits.shape  # the P head; the D head's map has one channel


def test_an_aux_head_may_read_another_output_of_a_branchs_last_block():
    spec = resolve_spec("bisenetv1")
    topology = spec.topology()
    strides = [topology.feature(topology.node(f"aux_heads[{index}]").inputs[0]).stride for index in range(2)]
    assert strides == [8, 16]


def test_specs_with_a_merge_round_trip_and_older_specs_keep_their_hash():
    for name in ("pidnet-s", "bisenetv1", "bisenetv2"):
        spec = resolve_spec(name)
        assert parse_spec(spec.to_dict()).arch_hash == spec.arch_hash
    assert "merge" not in resolve_spec("ddrnet-23").architecture_dict()


@pytest.mark.parametrize(("change", "path", "message"), [
    ({"merge": {"block": "ffm", "out_channels": 8, "colour": 1}}, "merge.colour", "unknown field"),
    ({"merge": {"block": "bag", "out_channels": 8}}, "merge.inputs", "reads 3 inputs"),
    ({"aux_heads": [{"stage": 0, "branch": 1, "output": 2, "head": {"block": "fcn_head", "channels": 4}}]},
     "aux_heads[0].output", "no such output"),
    ({"aux_heads": [{"stage": 3, "head": {"block": "fcn_head", "channels": 4}}]}, "aux_heads[0].stage",
     "no such stage"),
    ({"aux_heads": {"stage": 0}}, "aux_heads", "expected a list"),
])
def test_graph_mistakes_name_their_key(change, path, message):
    with pytest.raises(SpecError, match=message) as caught:
        parse_spec(two_paths(**change), source="net.yaml")
    assert f"net.yaml: {path}" in str(caught.value)


def test_a_multi_output_block_must_end_its_chain():
    encoder = {"block": "timm_encoder", "model": "resnet18", "out_indices": [3, 4]}
    data = two_paths()
    data["stages"][0]["branches"][1] = [encoder, {"block": "conv", "out_channels": 8}]
    with pytest.raises(SpecError, match="must end its chain") as caught:
        parse_spec(data)
    assert "stages[0].branches[1][1]" in str(caught.value)


def test_pag_fusion_names_the_stage_whose_branches_it_cannot_join():
    data = {"name": "pag", "stem": [{"block": "conv", "out_channels": 8, "stride": 2}],
            "stages": [{"branches": [[{"block": "conv", "out_channels": 8}],
                                     [{"block": "conv", "out_channels": 8, "stride": 2}],
                                     [{"block": "conv", "out_channels": 8, "stride": 2}]],
                        "fusion": {"block": "pag_fusion", "mid_channels": 4}}],
            "head": {"block": "ddr_head", "channels": 8}}
    with pytest.raises(SpecError, match="boundary branch") as caught:
        parse_spec(data)
    assert "stages[0].fusion" in str(caught.value)


def test_latency_units_walk_resting_branches_and_the_merge():
    def run_unit(unit):
        labels.append(unit.label)
        with torch.no_grad():
            outputs = unit.build().eval()(*[torch.randn(1, *shape) for shape in unit.input_shapes])
        return tuple(tuple(output.shape[1:]) for output in outputs)

    labels: list[str] = []
    walk_units(parse_spec(two_paths()), (64, 64), 5, run_unit)
    assert labels[-2:] == ["merge", "tail (branch sum, head, resize)"]
    assert not any(label.startswith("stages[1].branches[0]") for label in labels)  # the resting branch


def test_pidnet_logits_are_resized_with_align_corners_as_mmsegmentation_does():
    model = build("pidnet-s", num_classes=5).eval()
    captured = []
    model.head.register_forward_hook(lambda module, inputs, output: captured.append(output))
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 64, 96))
    expected = torch.nn.functional.interpolate(captured[0], size=(64, 96), mode="bilinear", align_corners=True)
    assert torch.equal(logits, expected)
