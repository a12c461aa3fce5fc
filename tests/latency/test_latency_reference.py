"""ReferenceTiming: the reference timed with each point, results cached, re-timed near the budget (fake timer)."""

from __future__ import annotations

import pytest

from archsearch.latency import LatencyCache, LatencySettings, device_name
from archsearch.latency.reference import ReferenceTiming
from archsearch.latency.relative import RelativeLatency
from archsearch.space.sampling import FixedSuggester, load_space, sample
from tests.helpers.paths import FIXTURES

SETTINGS = LatencySettings(input_size=(32, 64))


def tiny_spec(width: int):
    return sample(load_space(FIXTURES / "tiny_space.yaml"),
                  FixedSuggester({"width": width, "pattern": "short", "group_width": 8})).spec


class FakeTimer:
    """Relative timings with prepared per-round ratios, one list per call; records the models it got."""

    def __init__(self, *ratios: tuple[float, ...]) -> None:
        self.ratios = list(ratios)
        self.models = []

    def __call__(self, candidate, reference) -> RelativeLatency:
        self.models.append((candidate, reference))
        ratios = self.ratios.pop(0)
        return RelativeLatency(candidate_rounds=tuple((10.0 * ratio,) for ratio in ratios),
                               reference_rounds=tuple((10.0,) for _ in ratios), device_name=device_name(SETTINGS),
                               settings=SETTINGS, backend="eager", reference_name="tiny-w32")


@pytest.fixture
def reference_file(tmp_path):
    path = tmp_path / "reference.yaml"
    path.write_text(tiny_spec(32).to_yaml())
    return path


def timing(tmp_path, reference_file, timer: FakeTimer, maximum: float | None) -> ReferenceTiming:
    return ReferenceTiming(str(reference_file), SETTINGS, LatencyCache(tmp_path / "latency.db"), num_classes=5,
                           maximum=maximum, timer=timer)


def test_a_point_is_timed_once_with_the_reference_then_read_from_the_cache(tmp_path, reference_file):
    timer = FakeTimer((0.5, 0.5, 0.5))
    built = []
    reference = timing(tmp_path, reference_file, timer, maximum=0.6)
    decision, cached = reference.decide("abc", lambda: built.append(1) or "candidate model")
    assert not cached and decision.feasible and decision.ratio == 0.5
    assert timer.models[0][0] == "candidate model" and timer.models[0][1] is reference.model
    assert reference.model.training is False  # the reference runs in its deploy form, in eval mode

    again, cached = timing(tmp_path, reference_file, timer, maximum=0.6).decide("abc", lambda: built.append(1))
    assert cached and again.ratio == 0.5 and len(timer.models) == 1 and built == [1]


def test_a_cached_point_near_the_budget_is_retimed_and_the_pooled_timing_stored(tmp_path, reference_file):
    timer = FakeTimer((0.56, 0.6, 0.64, 0.66), (0.55, 0.56, 0.57, 0.58))
    reference = timing(tmp_path, reference_file, timer, maximum=0.6)
    first, _ = reference.decide("abc", lambda: "candidate")
    assert first.retimes == 1 and first.feasible and len(timer.models) == 2
    stored = LatencyCache(tmp_path / "latency.db").get_relative("abc", reference.spec.arch_hash, device_name(SETTINGS),
                                                                    SETTINGS)
    assert stored == first.measurement and len(stored.round_ratios) == 8


def test_without_a_maximum_the_ratio_is_measured_and_never_retimed(tmp_path, reference_file):
    timer = FakeTimer((5.0, 6.0, 7.0))
    decision, _ = timing(tmp_path, reference_file, timer, maximum=None).decide("abc", lambda: "candidate")
    assert decision.ratio == 6.0 and decision.retimes == 0 and decision.feasible
