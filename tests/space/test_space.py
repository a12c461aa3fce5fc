"""Search spaces: choice nodes, expressions, conditions, invalid points, structural errors, grids, shipped spaces."""

from __future__ import annotations

import copy
import itertools
import random
from typing import Any

import pytest

from archsearch.arch.build import resolve_spec
from archsearch.errors import SpecError
from archsearch.arch.presets import preset_names
from archsearch.space.sampling import (FixedSuggester, RandomSuggester, SpaceError, enumerate_grid, load_space,
                              parse_space, sample)
from tests.helpers.paths import SPACES


# A tiny concrete network (strides 2, 4, 8); each test puts choices and expressions into a copy of it.
TEMPLATE: dict[str, Any] = {
    "name": "tiny",
    "stem": [{"block": "conv", "out_channels": 8, "stride": 2}],
    "stages": [
        {"blocks": [{"block": "dblock", "out_channels": 16, "stride": 2, "group_width": 8}]},
        {"blocks": [{"block": "dblock", "out_channels": 32, "stride": 2, "group_width": 8}]},
    ],
    "head": {"block": "topdown", "projections": {8: 16, 4: 16},
             "steps": [{"merge": "sum", "refine": {"block": "conv", "out_channels": 16}}]},
}


def make_space(parameters: dict | None = None, **changes: Any) -> Any:
    """The tiny template with ``changes``: a key path like ``stages.1.blocks`` (dots; digits index lists)."""
    template = copy.deepcopy(TEMPLATE)
    for dotted, value in changes.items():
        keys = [int(key) if key.isdigit() else key for key in dotted.split(".")]
        target = template
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return parse_space({"name": "tiny", "parameters": parameters or {}, "spec": template}, source="tiny.yaml")


def fixed(space, **values):
    return sample(space, FixedSuggester(values))


class Recorder:
    """Answers from a RandomSuggester and records every question (kind, name, arguments)."""

    def __init__(self, seed: int = 0) -> None:
        self.inner = RandomSuggester(random.Random(seed))
        self.calls: list[tuple] = []

    def categorical(self, name, options):
        self.calls.append(("categorical", name, list(options)))
        return self.inner.categorical(name, options)

    def integer(self, name, low, high, step, log):
        self.calls.append(("integer", name, low, high, step, log))
        return self.inner.integer(name, low, high, step, log)

    def real(self, name, low, high, step, log, grid):
        self.calls.append(("real", name, low, high, step, log, grid))
        return self.inner.real(name, low, high, step, log, grid)


def dblock(**fields):
    return {"block": "dblock", "group_width": 8, **fields}


# ---------------------------------------------------------------- choice nodes


def test_list_choice_records_the_value_and_puts_it_in_place():
    space = make_space({"width": {"choice": [8, 16, 24]}}, **{"stem.0.out_channels": "${width}"})
    for width in (8, 16, 24):
        point = fixed(space, width=width)
        assert point.valid, point.invalid_reason
        assert point.params == {"width": width}
        assert point.spec.stem[0].out_channels == width


def test_label_mapping_choice_records_the_label_and_substitutes_the_value():
    space = make_space({"refine": {"choice": {"one": 1, "three": 3}}},
                       **{"head.steps.0.refine.kernel_size": "${refine}"})
    recorder = Recorder()
    sample(space, recorder)
    assert recorder.calls == [("categorical", "refine", ["one", "three"])]
    point = fixed(space, refine="three")
    assert point.params == {"refine": "three"}
    assert point.spec.head.steps[0].refine.kernel_size == 3
    with pytest.raises(SpecError, match="not one of the options"):
        fixed(space, refine=3)        # the value is not a label


def test_structured_list_options_are_offered_and_recorded_as_json_labels():
    space = make_space({"dilations": {"choice": [[1], [1, 2], [1, 2, 4, 8]]}},
                       **{"stages.1.blocks.0.dilations": "${dilations}", "stages.1.blocks.0.out_channels": 64})
    recorder = Recorder()
    point = sample(space, recorder)
    assert recorder.calls == [("categorical", "dilations", ["[1]", "[1,2]", "[1,2,4,8]"])]
    assert point.params["dilations"] in ("[1]", "[1,2]", "[1,2,4,8]")
    point = fixed(space, dilations="[1,2,4,8]")
    assert point.params == {"dilations": "[1,2,4,8]"}
    assert point.spec.stages[1].branches[0][0].dilations == (1, 2, 4, 8)


def test_a_whole_mapping_can_be_an_option():
    convs = {"sum3": {"block": "conv", "out_channels": 16, "kernel_size": 3},
             "sum1": {"block": "conv", "out_channels": 16, "kernel_size": 1}}
    space = make_space({"refine": {"choice": convs}}, **{"head.steps.0.refine": "${refine}"})
    assert fixed(space, refine="sum1").spec.head.steps[0].refine.kernel_size == 1
    assert fixed(space, refine="sum3").spec.head.steps[0].refine.kernel_size == 3


def test_inline_choice_is_a_parameter_named_by_its_key_path():
    space = make_space(**{"stem.0.out_channels": {"choice": [8, 16]}})
    point = fixed(space, **{"stem[0].out_channels": 16})
    assert point.params == {"stem[0].out_channels": 16}
    assert point.spec.stem[0].out_channels == 16


def test_int_with_step_gives_only_values_on_the_step():
    space = make_space({"depth": {"int": [1, 7], "step": 3}},
                       **{"stages.1.blocks": [dblock(out_channels=32, stride=2),
                                              dblock(out_channels=32, repeat="${depth}")]})
    recorder = Recorder(seed=3)
    seen = set()
    for _ in range(40):
        point = sample(space, recorder)
        assert point.valid
        seen.add(point.params["depth"])
        assert len(point.spec.stages[1].branches[0]) == 1 + point.params["depth"]
    assert seen == {1, 4, 7}
    assert recorder.calls[0] == ("integer", "depth", 1, 7, 3, False)
    assert [point["depth"] for point in enumerate_grid(space)] == [1, 4, 7]


def test_int_bounds_and_step_may_be_expressions_of_other_parameters():
    space = make_space({"width": {"choice": [8, 16]}, "head_width": {"int": ["${width}", "${4 * width}"],
                                                                        "step": "${width}"}},
                       **{"stem.0.out_channels": "${width}", "head.projections": {8: "${head_width}",
                                                                                  4: "${head_width}"}})
    assert [tuple(point.values()) for point in enumerate_grid(space)] == [
        (8, 8), (8, 16), (8, 24), (8, 32), (16, 16), (16, 32), (16, 48), (16, 64)]


def test_float_grid_is_what_random_sampling_and_enumeration_use():
    space = make_space({"se": {"float": [0.0, 1.0], "grid": [0.0, 0.25, 0.5]}},
                       **{"stages.0.blocks.0.se_ratio": "${se}"})
    rng = RandomSuggester(random.Random(5))
    values = {sample(space, rng).params["se"] for _ in range(30)}
    assert values == {0.0, 0.25, 0.5}
    assert [point["se"] for point in enumerate_grid(space)] == [0.0, 0.25, 0.5]
    assert fixed(space, se=0.25).spec.stages[0].branches[0][0].se_ratio == 0.25


def test_float_log_is_passed_on_and_stays_in_range():
    space = make_space({"se": {"float": [0.01, 1.0], "log": True}}, **{"stages.0.blocks.0.se_ratio": "${se}"})
    recorder = Recorder(seed=1)
    for _ in range(20):
        point = sample(space, recorder)
        assert point.valid and 0.01 <= point.params["se"] <= 1.0
    assert recorder.calls[0] == ("real", "se", 0.01, 1.0, None, True, None)
    with pytest.raises(SpecError, match="grid"):
        enumerate_grid(space)        # a continuous float without grid or step cannot be enumerated


def test_float_step_is_enumerated_on_the_step():
    space = make_space({"se": {"float": [0.0, 0.5], "step": 0.25}}, **{"stages.0.blocks.0.se_ratio": "${se}"})
    assert [point["se"] for point in enumerate_grid(space)] == [0.0, 0.25, 0.5]


@pytest.mark.parametrize("kind", ["real", "integer"])
def test_random_suggester_samples_log_scales_log_uniformly(kind):
    suggester = RandomSuggester(random.Random(0))
    if kind == "real":
        values = [suggester.real("x", 1e-4, 1.0, None, True, None) for _ in range(1000)]
    else:
        values = [suggester.integer("x", 1, 10_000, 1, True) for _ in range(1000)]
    below_middle = sum(value < (1e-2 if kind == "real" else 100) for value in values) / len(values)
    assert 0.4 < below_middle < 0.6        # log-uniform: half the draws below the geometric middle


def test_random_suggester_keeps_a_float_on_its_step():
    suggester = RandomSuggester(random.Random(0))
    values = {suggester.real("x", 0.0, 1.0, 0.25, False, None) for _ in range(50)}
    assert values <= {0.0, 0.25, 0.5, 0.75, 1.0}


# ---------------------------------------------------------------- expressions


def test_whole_value_expression_keeps_its_type_and_interpolation_gives_a_string():
    space = make_space({"width": {"choice": [8, 16]}},
                       name="tiny-w${width}-x${2 * width}",
                       **{"stem.0.out_channels": "${width}", "stages.0.blocks.0.out_channels": "${2 * width}",
                          "stages.1.blocks.0.dilations": "${[1, width // 8]}",
                          "stages.1.blocks.0.out_channels": 64})
    point = fixed(space, width=16)
    assert point.valid, point.invalid_reason
    assert point.spec.name == "tiny-w16-x32"
    assert point.spec.stem[0].out_channels == 16 and isinstance(point.spec.stem[0].out_channels, int)
    assert point.spec.stages[0].branches[0][0].out_channels == 32
    assert point.spec.stages[1].branches[0][0].dilations == (1, 2)


def test_head_refers_to_the_base_width():
    space = make_space({"width": {"choice": [8, 16, 32]}},
                       **{"stem.0.out_channels": "${width}",
                          "head.steps.0.refine.out_channels": "${4 * width}"})
    for width in (8, 16, 32):
        spec = fixed(space, width=width).spec
        assert spec.head.steps[0].refine.out_channels == 4 * spec.stem[0].out_channels == 4 * width


def test_a_parameter_sampled_once_is_the_same_everywhere():
    space = make_space({"width": {"choice": [8, 16, 24, 32]}},
                       **{"stem.0.out_channels": "${width}", "stages.0.blocks.0.out_channels": "${width}",
                          "stages.1.blocks.0.out_channels": "${4 * width}"})
    recorder = Recorder(seed=7)
    spec = sample(space, recorder).spec
    assert len(recorder.calls) == 1
    assert 4 * spec.stem[0].out_channels == 4 * spec.stages[0].branches[0][0].out_channels \
        == spec.stages[1].branches[0][0].out_channels


# ---------------------------------------------------------------- conditions

CONDITIONAL = {
    "deep": {"choice": [False, True]},
    "depth": {"int": [2, 3]},                 # only under deep
    "dilated": {"choice": [False, True]},
    "dilation": {"choice": [2, 4]},            # only under dilated
    "width": {"choice": [16, 32]},
}
CONDITIONAL_BLOCKS = [
    dblock(out_channels="${width}", stride=2),
    {"if": "deep and depth > 2", "then": dblock(out_channels="${width}", repeat="${depth - 1}")},
    dblock(out_channels="${width}", dilations={"if": "dilated", "then": "${[1, dilation]}"}),
]


def conditional_space():
    return make_space(CONDITIONAL, **{"stages.1.blocks": CONDITIONAL_BLOCKS})


def test_a_parameter_only_under_a_false_if_is_never_sampled():
    space = conditional_space()
    point = fixed(space, deep=False, dilated=False, width=16)        # no depth, no dilation given: not asked
    assert point.valid, point.invalid_reason
    assert point.params == {"width": 16, "deep": False, "dilated": False}
    point = fixed(space, deep=True, depth=3, dilated=True, dilation=4, width=16)
    assert point.params == {"width": 16, "deep": True, "depth": 3, "dilated": True, "dilation": 4}
    with pytest.raises(SpecError, match="depth"):
        fixed(space, deep=True, dilated=False, width=16)             # now depth is needed


def test_if_in_a_list_drops_the_item_and_in_a_mapping_drops_the_key():
    space = conditional_space()
    blocks = fixed(space, deep=False, dilated=False, width=16).spec.stages[1].branches[0]
    assert len(blocks) == 2                                           # the if item is gone
    assert blocks[1].dilations == (1,)                               # the dilations key is gone: the default
    blocks = fixed(space, deep=True, depth=2, dilated=True, dilation=2, width=16).spec.stages[1].branches[0]
    assert len(blocks) == 2                                           # deep, but depth 2 is not > 2
    blocks = fixed(space, deep=True, depth=3, dilated=True, dilation=2, width=16).spec.stages[1].branches[0]
    assert len(blocks) == 4 and blocks[-1].dilations == (1, 2)


def test_if_takes_the_else_branch():
    space = make_space({"dilated": {"choice": [False, True]}},
                       **{"stages.1.blocks.0.dilations": {"if": "dilated", "then": [1, 2], "else": [1]},
                          "stages.1.blocks.0.out_channels": 64})
    assert fixed(space, dilated=True).spec.stages[1].branches[0][0].dilations == (1, 2)
    assert fixed(space, dilated=False).spec.stages[1].branches[0][0].dilations == (1,)


def test_if_condition_with_interpolated_names_is_evaluated():
    space = make_space({"width": {"choice": [8, 32]}},
                       **{"stages.1.blocks.0.dilations": {"if": "${width} > 16", "then": [1, 2], "else": [1]},
                          "stages.1.blocks.0.out_channels": 64})
    assert fixed(space, width=8).spec.stages[1].branches[0][0].dilations == (1,)


# ---------------------------------------------------------------- invalid points and structural errors


def test_group_width_not_dividing_is_an_invalid_point_naming_the_key_path():
    space = make_space({"group_width": {"choice": [8, 12]}},
                       **{"stages.0.blocks.0.group_width": "${group_width}"})
    point = fixed(space, group_width=12)
    assert not point.valid and point.spec is None
    assert point.params == {"group_width": 12}
    assert "stages[0].blocks[0].group_width" in point.invalid_reason
    assert "12" in point.invalid_reason
    assert fixed(space, group_width=8).valid


def test_a_failing_expression_is_an_invalid_point():
    space = make_space({"width": {"choice": [0, 8]}}, **{"stem.0.out_channels": "${64 // width}"})
    point = fixed(space, width=0)
    assert not point.valid and "stem[0].out_channels" in point.invalid_reason
    assert fixed(space, width=8).spec.stem[0].out_channels == 8


STRUCTURAL = {
    "unknown name": ({}, {"stem.0.out_channels": "${widht}"}, "widht"),
    "self reference": ({"width": {"int": [8, "${2 * width}"]}}, {"stem.0.out_channels": "${width}"}, "itself"),
    "mutual reference": ({"a": {"int": [1, "${b}"]}, "b": {"int": [1, "${a}"]}},
                         {"stem.0.out_channels": "${a}"}, "itself"),
    "inline choice with an extra key": ({}, {"stem.0.out_channels": {"choice": [8, 16], "stpe": 8}}, "stpe"),
    "empty choice": ({}, {"stem.0.out_channels": {"choice": []}}, "choice"),
    "int with float bounds": ({}, {"stem.0.out_channels": {"int": [8.0, 16]}}, "int"),
    "function call": ({}, {"stem.0.out_channels": "${open('x')}"}, "open"),
    "attribute access": ({"width": {"choice": [8]}}, {"stem.0.out_channels": "${width.real}"}, "width.real"),
}
@pytest.mark.parametrize(("parameters", "changes", "quoted"),
                         [pytest.param(*case, id=name) for name, case in STRUCTURAL.items()])
def test_a_structural_error_raises_and_quotes_the_bad_part(parameters, changes, quoted):
    space = make_space(parameters, **changes)
    with pytest.raises(SpecError, match=quoted) as raised:
        sample(space, RandomSuggester(random.Random(0)))
    assert "tiny.yaml" in str(raised.value)


@pytest.mark.parametrize(("parameters", "changes", "quoted"),
                         [pytest.param(*STRUCTURAL[name], id=name) for name in ("unknown name", "self reference")])
def test_a_structural_error_is_a_space_error(parameters, changes, quoted):
    with pytest.raises(SpaceError, match=quoted):
        sample(make_space(parameters, **changes), RandomSuggester(random.Random(0)))


def test_a_parameter_with_an_extra_key_is_refused_when_the_space_is_read():
    with pytest.raises(SpecError, match=r"parameters\.width.*(got 'stpe')"):
        make_space({"width": {"choice": [8, 16], "stpe": 8}})
    with pytest.raises(SpecError, match="must be a choice node"):
        make_space({"width": 8})
    with pytest.raises(SpecError, match="unknown field"):
        parse_space({"spec": TEMPLATE, "paramters": {}})


# ---------------------------------------------------------------- grids


def test_grid_of_an_unconditional_space_is_the_full_product_and_replays_to_distinct_specs():
    parameters = {"width": {"choice": [8, 16]}, "depth": {"int": [1, 3]},
                  "se": {"float": [0.0, 0.5], "grid": [0.0, 0.25]}, "tag": {"choice": ["a", "b"]}}
    space = make_space(parameters, name="tiny-${tag}",
                       **{"stem.0.out_channels": "${width}", "stages.0.blocks.0.se_ratio": "${se}",
                          "stages.1.blocks": [dblock(out_channels=32, stride=2),
                                              dblock(out_channels=32, repeat="${depth}")]})
    points = enumerate_grid(space)
    assert len(points) == 2 * 3 * 2 * 2
    combos = {(p["width"], p["depth"], p["se"], p["tag"]) for p in points}
    assert combos == set(itertools.product([8, 16], [1, 2, 3], [0.0, 0.25], ["a", "b"]))
    hashes: dict[tuple, set[str]] = {}
    for point in points:
        replayed = sample(space, FixedSuggester(point))
        assert replayed.valid and replayed.params == point
        hashes.setdefault((point["width"], point["depth"], point["se"]), set()).add(replayed.spec.arch_hash)
    assert all(len(same) == 1 for same in hashes.values())               # the tag only names the spec
    assert len(set.union(*hashes.values())) == 2 * 3 * 2                 # everything else is architecture


def test_grid_of_a_conditional_space_has_only_the_reachable_points():
    points = enumerate_grid(conditional_space())
    # width 2 x (deep false | deep true x depth 2..3) x (dilated false | dilated true x dilation 2, 4)
    assert len(points) == 2 * (1 + 2) * (1 + 2) == 18                   # the full product would be 32
    assert len({tuple(sorted(p.items())) for p in points}) == 18
    for point in points:
        assert ("depth" in point) == point["deep"]
        assert ("dilation" in point) == point["dilated"]
    specs = [sample(conditional_space(), FixedSuggester(point)).spec for point in points]
    assert all(spec is not None for spec in specs)
    # deep with depth 2 adds no block (the condition is depth > 2): the same network as not deep
    assert len({spec.arch_hash for spec in specs}) == 2 * 2 * 3


def test_grid_walks_a_parameter_whose_range_depends_on_another():
    space = make_space({"n": {"int": [1, 3]}, "m": {"int": [1, "${n}"]}},
                       **{"stages.1.blocks": [dblock(out_channels=32, stride=2),
                                              dblock(out_channels=32, repeat="${n}"),
                                              dblock(out_channels=64, repeat="${m}")]})
    points = enumerate_grid(space)
    assert [(p["n"], p["m"]) for p in points] == [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3)]


# ---------------------------------------------------------------- random sampling


def test_random_suggester_is_deterministic_by_seed():
    space = load_space(SPACES / "regseg.yaml")

    def draw(seed):
        suggester = RandomSuggester(random.Random(seed))
        points = [sample(space, suggester) for _ in range(15)]
        return [(p.params, p.spec.arch_hash if p.valid else p.invalid_reason) for p in points]

    assert draw(11) == draw(11)
    assert draw(11) != draw(12)


# ---------------------------------------------------------------- the shipped spaces

RDRNET_S = {"width": 32, "stage2_depth": 4, "stage3_depth": 3, "detail_depth": 3, "semantic_depth": 4,
            "branches": 2, "rep_branches": "rdrnet", "head_channels": 4, "context_channels": 128,
            "fusion": "bilateral", "context": "rppm"}
REGSEG = {"dilation_pattern": "exp48", "group_width": 16, "stage4_width": 48, "stage8_width": 128,
          "stage16_width": 256, "last_width": 320, "stage8_depth": 3, "decoder": "decoder26"}
REGSEG_ABLATIONS = preset_names("regseg-exp*-decoder*")


def test_rdrnet_space_reproduces_rdrnet_s():
    point = sample(load_space(SPACES / "rdrnet.yaml"), FixedSuggester(RDRNET_S))
    assert point.valid, point.invalid_reason
    assert point.spec.arch_hash == resolve_spec("rdrnet-s").arch_hash


def test_regseg_space_reproduces_regseg():
    point = sample(load_space(SPACES / "regseg.yaml"), FixedSuggester(REGSEG))
    assert point.valid, point.invalid_reason
    assert point.params == REGSEG
    assert point.spec.arch_hash == resolve_spec("regseg").arch_hash


def test_every_regseg_ablation_preset_is_a_point_of_the_space():
    assert len(REGSEG_ABLATIONS) == 13            # nine bodies with decoder14, exp43 with four more decoders
    space = load_space(SPACES / "regseg.yaml")
    hashes = set()
    for name in REGSEG_ABLATIONS:
        _, body, decoder = name.split("-")
        point = sample(space, FixedSuggester({**REGSEG, "dilation_pattern": body, "decoder": decoder}))
        assert point.valid, point.invalid_reason
        assert point.spec.arch_hash == resolve_spec(name).arch_hash, name
        hashes.add(point.spec.arch_hash)
    assert len(hashes) == 13 and resolve_spec("regseg").arch_hash not in hashes


def test_regseg_space_surfaces_bad_group_widths_and_depth_one():
    space = load_space(SPACES / "regseg.yaml")
    point = sample(space, FixedSuggester({**REGSEG, "group_width": 32}))
    assert not point.valid and "stages[0].blocks[0].group_width" in point.invalid_reason   # 48 / 32
    point = sample(space, FixedSuggester({**REGSEG, "group_width": 32, "stage4_width": 64,
                                          "dilation_pattern": "exp49"}))
    assert not point.valid and "stages[2].blocks[1].group_width" in point.invalid_reason   # 320 / 4 / 32
    point = sample(space, FixedSuggester({**REGSEG, "stage8_depth": 1}))
    assert point.valid and len(point.spec.stages[1].branches[0]) == 1


@pytest.mark.parametrize("path", sorted(SPACES.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_shipped_space_samples_mostly_valid_points(path):
    space = load_space(path)
    suggester = RandomSuggester(random.Random(2024))
    points = [sample(space, suggester) for _ in range(30)]
    valid = [point for point in points if point.valid]
    assert len(valid) >= 15, [point.invalid_reason for point in points if not point.valid]
    assert len({point.spec.arch_hash for point in valid}) > len(valid) // 2
    for point in points:
        assert point.valid or point.invalid_reason


def test_the_regseg_and_rdrnet_spaces_are_shipped():
    assert {"rdrnet", "regseg"} <= {path.stem for path in SPACES.glob("*.yaml")}


# ---------------------------------------------------------------- bounded evaluation


@pytest.mark.parametrize(("expression", "quoted"), [
    ("${10 ** 10 ** 10}", "bits"),
    ("${width ** width ** width}", "bits"),
    ("${len([1] * 10 ** 10)}", "values"),
    ("${len('ab' * 10 ** 10)}", "values"),
    ("${len([[1] * 10000] * 10000)}", "values"),
    ("${len([1] * 9000 + [1] * 9000)}", "values"),
    ("${round(5, -10 ** 18)}", "digits"),
    ("${len('%999999999d' % 1)}", "unsupported"),
    ("${int(1e308 * 10)}", "expression failed"),
    ("${2.0 ** 100000}", "expression failed"),
    ("${2 ** 1024 * 1.0}", "expression failed"),
])
def test_an_expression_beyond_the_bounds_fails_fast_naming_its_key_path(expression, quoted):
    import time

    space = make_space({"width": {"choice": [32]}}, **{"stem.0.out_channels": expression})
    started = time.perf_counter()
    try:
        point = fixed(space, width=32)
    except SpaceError as error:  # a value no architecture needs: the space file is wrong
        message = str(error)
    else:  # a value that fails to compute: an invalid point
        assert not point.valid
        message = point.invalid_reason
    assert time.perf_counter() - started < 1
    assert "stem[0].out_channels" in message and quoted in message and expression[2:-1] in message, message


def test_expressions_within_the_bounds_still_compute():
    space = make_space({"width": {"choice": [32]}},
                       **{"stem.0.out_channels": "${len([1] * 8) * 2 ** 2 + width ** 0 - 1 + round(7, -1) - 10}"})
    assert fixed(space, width=32).spec.stem[0].out_channels == 32


def test_the_dry_run_refuses_a_huge_expression_with_exit_2(tmp_path, monkeypatch, capsys):
    import shutil

    from archsearch.cli.main import main
    from tests.helpers.paths import FIXTURES

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("tiny_study.yaml", "tiny_space.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    study, space = tmp_path / "tiny_study.yaml", tmp_path / "tiny_space.yaml"
    space.write_text(space.read_text().replace("out_channels: '${width}', stride: 2",
                                               "out_channels: '${10 ** 10 ** 10}', stride: 2"))
    assert main(["run", str(study), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "spec.stages[1].blocks[0].out_channels" in err and "Traceback" not in err, err


# ---------------------------------------------------------------- grid size, counted before walking


def test_a_grid_past_the_cap_is_refused_at_once_naming_its_parameters_and_a_fix(monkeypatch):
    import time

    from archsearch.space import sampling

    walked = []
    monkeypatch.setattr(sampling, "_GridWalker", lambda *args: walked.append(1) or pytest.fail("walked the grid"))
    space = load_space(SPACES / "regseg.yaml")  # 9 x 5 x 4 x 5 x 3 x 3 x 4 x 5 = 162,000 points
    started = time.perf_counter()
    with pytest.raises(SpaceError) as caught:
        enumerate_grid(space)
    assert time.perf_counter() - started < 1
    message = str(caught.value)
    assert "162,000 points" in message and "dilation_pattern (9)" in message and "stage8_depth (5)" in message
    assert "fix:" in message and "random" in message


def test_the_grid_size_is_counted_exactly_where_the_space_allows():
    from archsearch.space.sampling import grid_size

    parameters = {"width": {"choice": [8, 16]}, "depth": {"int": [1, 3]},
                  "se": {"float": [0.0, 0.5], "grid": [0.0, 0.25]}, "tag": {"choice": ["a", "b"]},
                  "unused": {"choice": [1, 2, 3]}}
    space = make_space(parameters, name="tiny-${tag}",
                       **{"stem.0.out_channels": "${width}", "stages.0.blocks.0.se_ratio": "${se}",
                          "stages.1.blocks": [dblock(out_channels=32, stride=2),
                                              dblock(out_channels=32, repeat="${depth}")]})
    assert grid_size(space) == (24, {"width": 2, "depth": 3, "se": 2, "tag": 2})
    assert len(enumerate_grid(space)) == 24
    assert grid_size(space, {"width": 8})[0] == 12 == len(enumerate_grid(space, {"width": 8}))
    assert grid_size(conditional_space()) is None  # conditions: only a walk can count it


def test_a_conditional_grid_larger_than_its_product_suggests_is_still_walked_exactly():
    """A wide product whose conditions leave few points: not refused by the count, enumerated by the walk."""
    parameters = {"kind": {"choice": ["a", "b"]}, "wide": {"int": [1, 400]}, "deep": {"int": [1, 400]}}
    space = make_space(parameters, **{"stem.0.out_channels": {"if": "kind == 'a'", "then": "${wide}",
                                                               "else": "${deep}"}})
    assert len(enumerate_grid(space)) == 800
