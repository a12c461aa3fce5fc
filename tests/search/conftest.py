"""Study tests write synthetic data into a per-session cache, never into the user's ~/.cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.helpers.paths import FIXTURES



@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def tiny_study(tmp_path) -> Path:
    """A copy of the tiny study and its space in a fresh directory."""
    for name in ("tiny_study.yaml", "tiny_space.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path / "tiny_study.yaml"
