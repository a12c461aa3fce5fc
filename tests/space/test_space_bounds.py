"""`fix` values and study `parameters` are checked against the space's own definitions before any trial:
a value outside them, or a definition that adds values, is refused naming them; a list of labels narrows a
labelled choice."""

from __future__ import annotations

import pytest

from archsearch.space.bounds import check_fixed, narrowed_parameters
from archsearch.space.sampling import SpaceError, parse_space

PARAMETERS = {
    "width": {"choice": [16, 32, 48]},
    "depth": {"int": [1, 4]},
    "channels": {"int": [64, 192], "step": 32},
    "ratio": {"float": [0.25, 1.0]},
    "scale": {"float": [0.5, 2.0], "grid": [0.5, 1.0, 2.0]},
    "pattern": {"choice": {"short": "[[1],[1,2]]", "long": "[[1],[1,2],[1,4]]"}},
    "dilations": {"choice": [[1, 2], [1, 4]]},
    "flag": {"choice": [False, True]},
    "depth_after": {"int": [1, "${depth}"]},  # its bound is known only when a point is drawn
}
SPACE = parse_space({"name": "s", "parameters": PARAMETERS, "spec": {"name": "x"}}, source="s.yaml")


@pytest.mark.parametrize(("fixed", "expected"), [
    ({"width": 32, "depth": 4, "channels": 96, "ratio": 0.5, "scale": 2.0, "flag": True},
     {"width": 32, "depth": 4, "channels": 96, "ratio": 0.5, "scale": 2.0, "flag": True}),
    ({"pattern": "long"}, {"pattern": "long"}),
    ({"dilations": [1, 4]}, {"dilations": "[1,4]"}),  # a structured option given as itself: its label
    ({"dilations": "[1,4]"}, {"dilations": "[1,4]"}),
    ({"depth_after": 3}, {"depth_after": 3}),
])
def test_values_inside_the_space_are_kept(fixed, expected):
    assert check_fixed(SPACE, fixed) == expected


@pytest.mark.parametrize(("fixed", "message", "allowed"), [
    ({"width": 13}, "fix.width: not one of the space's choices (got 13)", "16, 32, 48"),
    ({"width": "16"}, "fix.width: not one of the space's choices", "16, 32, 48"),
    ({"flag": 1}, "fix.flag: not one of the space's choices (got 1)", "False, True"),
    ({"depth": 5}, "fix.depth: outside the space's range (got 5)", "an integer from 1 to 4"),
    ({"depth": 2.5}, "fix.depth: outside the space's range (got 2.5)", "an integer from 1 to 4"),
    ({"depth": True}, "fix.depth: outside the space's range (got True)", "an integer from 1 to 4"),
    ({"channels": 80}, "fix.channels: outside the space's range (got 80)", "from 64 to 192 in steps of 32"),
    ({"ratio": 2}, "fix.ratio: outside the space's range (got 2)", "a number from 0.25 to 1.0"),
    ({"scale": 1.5}, "fix.scale: outside the space's range (got 1.5)", "one of 0.5, 1.0, 2.0"),
    ({"pattern": "[[1],[1,2]]"}, "fix.pattern: not one of the space's choices", "short, long"),
    ({"pattern": "medium"}, "fix.pattern: not one of the space's choices (got 'medium')", "short, long"),
])
def test_values_outside_the_space_are_refused_naming_what_it_allows(fixed, message, allowed):
    with pytest.raises(SpaceError) as raised:
        check_fixed(SPACE, fixed)
    assert message in str(raised.value) and allowed in raised.value.allowed


@pytest.mark.parametrize("parameters", [
    {"width": {"choice": [16, 48]}},
    {"depth": {"int": [2, 3]}},
    {"depth": {"choice": [1, 4]}},
    {"channels": {"int": [96, 160], "step": 64}},
    {"ratio": {"float": [0.5, 1.0], "log": True}},
    {"scale": {"float": [0.5, 2.0], "grid": [0.5, 2.0]}},
    {"width": {"int": [16, 48], "step": 16}},
    {"pattern": {"choice": {"long": "[[1],[1,2],[1,4]]"}}},
    {"dilations": {"choice": [[1, 4]]}},
])
def test_narrower_definitions_are_taken_as_written(parameters):
    assert narrowed_parameters(SPACE, parameters) == {**PARAMETERS, **parameters}


@pytest.mark.parametrize(("parameters", "message", "outside"), [
    ({"width": {"choice": [16, 64, 96]}}, "parameters.width: adds values the space does not have", [64, 96]),
    ({"depth": {"int": [0, 4]}}, "parameters.depth: adds values", [0]),
    ({"channels": {"int": [64, 192], "step": 16}}, "parameters.channels: adds values", [80, 112, 144, 176]),
    ({"ratio": {"float": [0.1, 1.0]}}, "parameters.ratio: reaches beyond the space's range", [0.1, 1.0]),
    ({"scale": {"float": [0.5, 2.0]}}, "parameters.scale: reaches beyond the space's grid", [0.5, 2.0]),
    ({"width": {"float": [16, 48]}}, "parameters.width: reaches beyond the space's choices", [16, 48]),
    ({"pattern": {"choice": {"short": "[[1]]"}}}, "parameters.pattern: adds values", ["[[1]]"]),
    ({"pattern": {"choice": ["short", "medium"]}}, "parameters.pattern: adds values", ["medium"]),
])
def test_wider_definitions_are_refused_naming_the_values_the_space_lacks(parameters, message, outside):
    with pytest.raises(SpaceError) as raised:
        narrowed_parameters(SPACE, parameters)
    assert message in str(raised.value) and raised.value.value == outside


def test_a_list_of_labels_narrows_a_labelled_choice_to_those_entries():
    narrowed = narrowed_parameters(SPACE, {"pattern": {"choice": ["long"]}})
    assert narrowed["pattern"] == {"choice": {"long": "[[1],[1,2],[1,4]]"}}
