"""Reliability tests: synthetic data goes into one cache per test session (never the user's ~/.cache),
shared with the `archsearch run` subprocesses the tests start, so that it is generated once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.helpers.paths import FIXTURES



@pytest.fixture(scope="session")
def cache_home(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "cache"


@pytest.fixture(autouse=True)
def isolated_cache(cache_home, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))


@pytest.fixture
def tiny_study(tmp_path) -> Path:
    """A copy of the tiny study and its space in a fresh directory."""
    for name in ("tiny_study.yaml", "tiny_space.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path / "tiny_study.yaml"
