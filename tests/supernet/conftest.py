"""The shipped RDRNet and RegSeg spaces with narrower widths: every structural choice kept, small enough to run."""

from dataclasses import replace

import pytest

from archsearch.space.sampling import Space, load_space
from tests.helpers.paths import SPACES

NARROW_RDRNET = {"width": {"choice": [4, 8]}, "context_channels": {"choice": [8, 16]}}
NARROW_REGSEG = {"group_width": {"choice": [4, 8]}, "stage4_width": {"choice": [16, 32]},
                 "stage8_width": {"int": [16, 48], "step": 16}, "stage16_width": {"choice": [32, 64]},
                 "last_width": {"choice": [32, 64]}}


def narrowed(name: str, widths: dict) -> Space:
    space = load_space(SPACES / f"{name}.yaml")
    return replace(space, parameters={**space.parameters, **widths})


@pytest.fixture(scope="session")
def rdrnet_space() -> Space:
    return narrowed("rdrnet", NARROW_RDRNET)


@pytest.fixture(scope="session")
def regseg_space() -> Space:
    return narrowed("regseg", NARROW_REGSEG)
