"""Share keys: which modules of a space's points are one module of the supernet, and what it refuses."""

import random

import pytest

from archsearch.errors import SpecError
from archsearch.space.sampling import RandomSuggester, load_space, parse_space, sample
from archsearch.supernet.layout import layout_of, tag_space
from tests.helpers.paths import SPACES


@pytest.mark.parametrize("name", ["rdrnet", "regseg"])
def test_layouts_of_the_shipped_spaces_give_the_sampled_specs(name):
    space = load_space(SPACES / f"{name}.yaml")
    tagged, rng = tag_space(space), random.Random(3)
    points = [point for point in (sample(space, RandomSuggester(rng)) for _ in range(40)) if point.valid]
    assert len(points) > 20
    for point in points:
        layout = layout_of(tagged, point.params)
        assert layout.spec == point.spec
        keys = list(layout.keys.values())
        assert len(keys) == len(set(keys))  # no two modules of one point share weights


def rdrnet_layout(**values):
    base = {"width": 16, "stage2_depth": 2, "stage3_depth": 1, "detail_depth": 1, "semantic_depth": 1,
            "branches": 2, "rep_branches": "rdrnet", "head_channels": 2, "context_channels": 64,
            "fusion": "bilateral", "context": "rppm", "boundary": False}
    return layout_of(tag_space(load_space(SPACES / "rdrnet.yaml")), {**base, **values})


def test_a_depth_choice_uses_the_first_blocks_of_its_item():
    shallow, deep = rdrnet_layout(stage2_depth=2), rdrnet_layout(stage2_depth=4)
    assert shallow.keys["stem.2"] == deep.keys["stem.2"] and shallow.keys["stem.3"] == deep.keys["stem.3"]
    assert deep.keys["stem.4"].startswith("spec/stem[2]|")  # a third repeat of the same item
    assert shallow.keys["stem.4"] == deep.keys["stem.6"]  # the stride-2 block after the repeats


def test_structural_choices_are_alternative_modules():
    bilateral, pag = rdrnet_layout(fusion="bilateral"), rdrnet_layout(fusion="pag")
    assert bilateral.keys["stages.0.fusion"] != pag.keys["stages.0.fusion"]
    boundary = rdrnet_layout(fusion="pag", boundary=True)
    assert boundary.keys["stages.0.branches.1.0"].startswith("spec/stages[0]/branches[1]/then")
    assert pag.keys["stages.0.branches.1.0"] == boundary.keys["stages.0.branches.2.0"]  # the semantic branch
    assert rdrnet_layout(context="pappm").keys["context"] != rdrnet_layout(context="dappm").keys["context"]
    three = rdrnet_layout(branches=3)
    assert three.keys["stages.1.branches.1.0"] != rdrnet_layout().keys["stages.1.branches.1.0"]


def test_a_choice_of_whole_decoders_keys_each_decoder_apart():
    space = load_space(SPACES / "regseg.yaml")
    tagged = tag_space(space)
    base = {"dilation_pattern": "exp48", "group_width": 16, "stage4_width": 48, "stage8_width": 128,
            "stage16_width": 256, "last_width": 320, "stage8_depth": 3}
    heads = {decoder: layout_of(tagged, {**base, "decoder": decoder}).keys["head"]
             for decoder in ("decoder4", "decoder12", "decoder26")}
    assert len(set(heads.values())) == 3 and heads["decoder4"].startswith("parameters/decoder/choice/decoder4")


TIMM = {"block": "timm_encoder", "model": "${model}", "out_indices": [1, 2]}


@pytest.mark.parametrize("data, choice", [
    ({"parameters": {"c": {"choice": [1, 3]}},
      "spec": {"in_channels": "${c}", "stages": [{"blocks": [{"block": "conv", "out_channels": 8}]}],
               "head": {"block": "fcn_head", "channels": 8}}}, "parameters.c"),
    ({"parameters": {"model": {"choice": ["resnet18", "resnet34"]}},
      "spec": {"stages": [{"blocks": [TIMM]}], "head": {"block": "fcn_head", "channels": 8}}}, "parameters.model"),
])
def test_a_choice_the_supernet_cannot_share_is_an_error_naming_it(data, choice):
    with pytest.raises(SpecError) as raised:
        tag_space(parse_space(data, source="s.yaml"))
    assert raised.value.path == choice and "cannot share" in str(raised.value)
