"""PIDNet's parts as choices of the RDRNet space, and the study that ablates them."""

from __future__ import annotations

from archsearch.space.sampling import FixedSuggester, enumerate_grid, load_space, sample
from tests.helpers.paths import SPACES

SMALL_RDRNET = {"width": 8, "stage2_depth": 1, "stage3_depth": 1, "detail_depth": 1, "semantic_depth": 1,
                "branches": 2, "rep_branches": "rdrnet", "head_channels": 2, "context_channels": 64}


def _point(**choices):
    return sample(load_space(SPACES / "rdrnet.yaml"), FixedSuggester({**SMALL_RDRNET, **choices}))


def test_pag_fusion_boundary_branch_and_context_choices_make_pidnet_parts():
    point = _point(fusion="pag", boundary=True, context="pappm")
    assert point.valid, point.invalid_reason
    spec = point.spec
    assert [len(stage.branches) for stage in spec.stages] == [3, 3, 3]
    assert {stage.fusion.name for stage in spec.stages if stage.fusion} == {"pag_fusion"}
    assert (spec.merge.name, spec.context.name) == ("light_bag", "pappm")
    rdrnet = _point(fusion="bilateral", context="rppm").spec
    assert rdrnet.merge is None and len(rdrnet.stages[0].branches) == 2


def test_the_boundary_choice_is_asked_only_with_pag_fusion_and_two_branches():
    assert "boundary" not in _point(fusion="bilateral", context="rppm").params
    assert "boundary" in _point(fusion="pag", boundary=False, context="rppm").params
    three = _point(branches=3, fusion="pag", context="rppm")
    assert not three.valid and "boundary branch (D)" in three.invalid_reason


def test_the_ablation_grid_has_nine_points():
    fixed = {**SMALL_RDRNET}
    points = enumerate_grid(load_space(SPACES / "rdrnet.yaml"), fixed)
    combos = {(point["fusion"], point.get("boundary"), point["context"]) for point in points}
    assert len(points) == len(combos) == 3 + 6
