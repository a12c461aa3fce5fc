"""Reliability tests: synthetic data goes into one cache per test session (never the user's ~/.cache),
shared with the `archsearch run` subprocesses the tests start, so that it is generated once."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from archsearch.latency import point as point_module
from archsearch.search import trial as trial_module
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


@pytest.fixture
def no_training(monkeypatch):
    """Trials are sampled, analysed and recorded for real; training and latency timing are instant fakes."""

    def fake_train(self, spec, metrics, trial_number, on_evaluation, **options):  # options: threads, weights
        for split in self._datasets:  # every sample is read, as training and evaluation would
            for index in range(len(split)):
                split[index]
        return replace(metrics, miou=0.5, train_seconds=0.0)

    def fake_latency(cache, arch_hash, model_factory, settings, **where):  # where: the device and how to run
        return SimpleNamespace(median_ms=1.0, iqr_ms=0.0, repeats=1, device_name="fake", backend=settings.backend,
                               settings=settings), False

    monkeypatch.setattr(trial_module.TrialRunner, "train", fake_train)
    monkeypatch.setattr(point_module, "cached_latency", fake_latency)
