"""PointTiming: a point's figures under absolute and relative budgets together (fake relative timer)."""

from __future__ import annotations

import pytest

import archsearch.latency.reference
from archsearch.latency import LatencySettings, device_name
from archsearch.latency.point import LatencyBudget, PointTiming
from archsearch.latency.relative import RelativeLatency
from archsearch.space.sampling import FixedSuggester, load_space, sample
from tests.helpers.paths import FIXTURES

SETTINGS = LatencySettings(input_size=(32, 64))


@pytest.fixture
def point_ms_and_reference_ms(monkeypatch):
    """The fake timer's figures: the point 12 ms, the reference 24 ms, in every round."""
    figures = {"point": 12.0, "reference": 24.0}

    def fake_measure_relative(candidate, reference, settings, *, reference_name):
        return RelativeLatency(candidate_rounds=((figures["point"],),) * 4,
                               reference_rounds=((figures["reference"],),) * 4, device_name=device_name(settings),
                               settings=settings, backend="eager", reference_name=reference_name)

    monkeypatch.setattr(archsearch.latency.reference, "measure_relative", fake_measure_relative)
    return figures


def spec(width: int = 16):
    return sample(load_space(FIXTURES / "tiny_space.yaml"),
                  FixedSuggester({"width": width, "pattern": "short", "group_width": 8})).spec


@pytest.fixture
def reference(tmp_path) -> str:
    path = tmp_path / "reference.yaml"
    path.write_text(spec(32).to_yaml())
    return str(path)


@pytest.mark.parametrize("maximum_ratio, maximum_ms, margin", [
    (0.6, None, (0.6 - 0.5) / 0.6),
    (0.6, 10.0, (10.0 - 12.0) / 10.0),
    (0.4, 20.0, (0.4 - 0.5) / 0.4),
])
def test_the_tightest_budget_gives_the_margin(tmp_path, point_ms_and_reference_ms, reference, maximum_ratio,
                                              maximum_ms, margin):
    budget = LatencyBudget(maximum_ratio=maximum_ratio, maximum_ms=maximum_ms, reference=reference)
    timing = PointTiming(SETTINGS, budget, tmp_path / "latency.db", num_classes=5)
    point = timing.measure(spec(), lambda: None)
    assert point.latency_ms == 12.0 and point.latency_ratio == 0.5 and point.latency_reference_ms == 24.0
    assert point.latency_margin == pytest.approx(margin)
    assert point.latency_retimes == 0 and point.latency_cached is False and point.latency_seconds >= 0
    assert timing.measure(spec(), lambda: None).latency_cached is True
