"""The grammar: parsing, compact repetition, validation errors, round trip and hashing."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
import yaml

from archsearch.arch.build import resolve_spec
from archsearch.arch.patterns import expand_pattern
from archsearch.arch.spec import load_spec, parse_spec
from archsearch.errors import SpecError

TINY = {
    "name": "tiny",
    "stem": [{"block": "conv", "out_channels": 8, "stride": 2}],
    "stages": [
        {"blocks": [{"block": "dblock", "out_channels": 16, "stride": 2, "group_width": 8}]},
        {"blocks": [{"block": "dblock", "out_channels": 32, "stride": 2, "group_width": 8},
                    {"block": "dblock", "out_channels": 32, "group_width": 8,
                     "each": {"dilations": "[[1],[1,2]] + 2*[[1,4]]"}}]},
    ],
    "head": {"block": "topdown", "projections": {8: 16, 4: 16},
             "steps": [{"merge": "sum", "refine": {"block": "conv", "out_channels": 16}}]},
}


def with_change(path: list, value) -> dict:
    data = copy.deepcopy(TINY)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def test_each_expands_a_pattern_into_one_block_per_value():
    spec = parse_spec(TINY)
    dilations = [block.dilations for block in spec.stages[1].branches[0][1:]]
    assert dilations == [(1,), (1, 2), (1, 4), (1, 4)]


def test_repeat_each_and_explicit_blocks_are_the_same_architecture():
    block = {"block": "dblock", "out_channels": 32, "group_width": 8, "dilations": [1, 4]}
    tail = ["stages", 1, "blocks", 1]
    repeated = with_change(tail, {"repeat": 2, **block})
    each = with_change(tail, {**{k: v for k, v in block.items() if k != "dilations"},
                              "each": {"dilations": "2*[[1,4]]"}})
    explicit = with_change(["stages", 1, "blocks"], [TINY["stages"][1]["blocks"][0], block, block])
    explicit["name"] = "another name"
    assert parse_spec(repeated) == parse_spec(each)
    assert parse_spec(each).architecture_dict() == parse_spec(explicit).architecture_dict()
    assert parse_spec(repeated).arch_hash == parse_spec(explicit).arch_hash


def test_hash_changes_with_any_architectural_value():
    base = parse_spec(TINY).arch_hash
    wider = parse_spec(with_change(["stem", 0, "out_channels"], 16)).arch_hash
    dilated = parse_spec(with_change(["stages", 1, "blocks", 1, "each", "dilations"], "4*[[1,4]]")).arch_hash
    assert len({base, wider, dilated}) == 3


def test_yaml_round_trip_keeps_the_spec_and_its_hash():
    for name in ("rdrnet-s", "regseg", "ddrnet-23-slim", "regseg-exp43-decoder10"):
        spec = resolve_spec(name)
        again = parse_spec(yaml.safe_load(spec.to_yaml()))
        assert again == spec
        assert again.arch_hash == spec.arch_hash
        assert again.metadata == spec.metadata


def test_saved_yaml_writes_runs_of_blocks_as_repeat():
    text = resolve_spec("rdrnet-s").to_yaml()
    assert "repeat: 4" in text


@pytest.mark.parametrize(("path", "value", "expected_path", "expected_text"), [
    (["stem", 0, "block"], "convolution", "stem[0].block", "unknown block"),
    (["stem", 0, "channels"], 8, "stem[0].channels", "unknown field"),
    (["stem", 0, "out_channels"], "eight", "stem[0].out_channels", "expected an integer"),
    (["stem", 0, "stride"], 3, "stem[0].stride", "must be 1 or 2"),
    (["stages", 0, "blocks", 0, "out_channels"], 20, "stages[0].blocks[0].group_width", "multiple of group_width"),
    (["stages", 1, "blocks", 1, "each", "dilations"], "[[1]] - [[2]]", "stages[1].blocks[1].each.dilations",
     "unsupported pattern"),
    (["head", "steps", 0, "merge"], "product", "head.steps[0].merge", "not an allowed value"),
    (["head", "projections"], {16: 16, 2: 16}, "head.projections", "no feature map at this stride"),
    (["stages", 0, "fusion"], {"block": "rep", "out_channels": 4}, "stages[0].fusion.block", "cannot stand here"),
])
def test_errors_name_the_key_path_the_value_and_what_is_allowed(path, value, expected_path, expected_text):
    with pytest.raises(SpecError) as caught:
        parse_spec(with_change(path, value), source="tiny.yaml")
    message = str(caught.value)
    assert message.startswith(f"tiny.yaml: {expected_path}:"), message
    assert expected_text in message
    assert "allowed" in message or "got" in message


def test_missing_required_field_is_named():
    data = copy.deepcopy(TINY)
    del data["stem"][0]["out_channels"]
    with pytest.raises(SpecError, match=r"stem\[0\]\.out_channels: missing required field"):
        parse_spec(data)


def test_summed_branches_must_have_equal_widths():
    spec = resolve_spec("rdrnet-s").to_dict()
    spec["context"]["out_channels"] = 96
    with pytest.raises(SpecError, match="context.out_channels: branches are summed"):
        parse_spec(spec)


def test_load_spec_names_the_file_for_bad_yaml(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="broken.yaml: not valid YAML at line"):
        load_spec(broken)
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "absent.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(SpecError, match="scalar.yaml: a spec must be a mapping"):
        load_spec(scalar)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(SpecError, match="unknown preset.*rdrnet-s"):
        resolve_spec("rdrnet-xl")


@pytest.mark.parametrize(("text", "expected"), [
    ("[[1],[1,2]] + 2*[[1,4]]", [[1], [1, 2], [1, 4], [1, 4]]),
    ("[[1,4]]*2 + [[1,6,12,18]]", [[1, 4], [1, 4], [1, 6, 12, 18]]),
    ("[1, 2, 3]", [1, 2, 3]),
])
def test_pattern_expressions(text, expected):
    assert expand_pattern(text, "x") == expected


@pytest.mark.parametrize("text", ["__import__('os')", "[1] * [2]", "[[1]] +", "2 * 3", "[1] * -1", "x"])
def test_pattern_expressions_reject_anything_else(text):
    with pytest.raises(SpecError, match="x: "):
        expand_pattern(text, "x")


def test_topology_is_compiled_once_per_spec_and_never_shared_or_pickled():
    spec = resolve_spec("rdrnet-s-simple")
    assert spec.topology() is spec.topology()
    renamed = dataclasses.replace(spec, description="a copy")
    assert renamed == spec and renamed.topology() is not spec.topology()
    restored = pickle.loads(pickle.dumps(spec))
    assert "_compiled_topology" not in restored.__dict__
    assert restored == spec and restored.topology().shapes() == spec.topology().shapes()


def test_a_pattern_repeated_past_its_cap_is_refused_without_overflow():
    with pytest.raises(SpecError, match="x: pattern gives 100000000000000000000 values.*at most 1000"):
        expand_pattern("[1] * 100000000000000000000", "x")
