"""LatencyCache and cached_latency: round trips, keys, concurrent writers, no rebuild on a hit."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
from pathlib import Path

import pytest
import torch

from archsearch.errors import SpecError
from archsearch.latency import LatencyCache, LatencyResult, LatencySettings, cached_latency, device_name

SETTINGS = LatencySettings(input_size=(16, 16), warmup_seconds=0.0, min_warmup_iterations=1,
                           time_budget_seconds=0.0, min_repeats=3, max_repeats=5)
WRITES_PER_PROCESS = 40
# One changed value per field, each allowed next to SETTINGS: every setting must reach the key.
CHANGED_VALUES = {
    "device": "cuda:1", "dtype": "bf16", "batch_size": 2, "input_size": (256, 512), "input_channels": 4,
    "channels_last": True, "num_threads": 2, "backend": "compile", "warmup_seconds": 2.5,
    "min_warmup_iterations": 7, "time_budget_seconds": 9.0, "min_repeats": 4, "max_repeats": 20,
}


def result_for(settings: LatencySettings = SETTINGS, median_ms: float = 1.25,
               device: str = "Test CPU") -> LatencyResult:
    return LatencyResult(median_ms=median_ms, iqr_ms=0.1, q1_ms=1.2, q3_ms=1.3, min_ms=1.0, repeats=3,
                         device_name=device, settings=settings, backend="eager")


def test_every_setting_has_a_changed_value() -> None:
    assert set(CHANGED_VALUES) == {field.name for field in dataclasses.fields(LatencySettings)}


def test_round_trip(tmp_path: Path) -> None:
    cache = LatencyCache(tmp_path / "latency.sqlite")
    stored = result_for(median_ms=1.0 / 3.0)
    cache.put("arch-a", stored)
    assert cache.get("arch-a", "Test CPU", SETTINGS) == stored
    assert LatencyCache(tmp_path / "latency.sqlite").get("arch-a", "Test CPU", SETTINGS) == stored


def test_put_replaces_an_entry(tmp_path: Path) -> None:
    cache = LatencyCache(tmp_path / "latency.sqlite")
    cache.put("arch-a", result_for(median_ms=1.0))
    cache.put("arch-a", result_for(median_ms=2.0))
    assert cache.get("arch-a", "Test CPU", SETTINGS).median_ms == 2.0


def test_other_architecture_or_device_misses(tmp_path: Path) -> None:
    cache = LatencyCache(tmp_path / "latency.sqlite")
    cache.put("arch-a", result_for())
    assert cache.get("arch-b", "Test CPU", SETTINGS) is None
    assert cache.get("arch-a", "Other CPU", SETTINGS) is None


@pytest.mark.parametrize("name", sorted(CHANGED_VALUES))
def test_changing_any_setting_misses(tmp_path: Path, name: str) -> None:
    cache = LatencyCache(tmp_path / "latency.sqlite")
    cache.put("arch-a", result_for())
    changed = dataclasses.replace(SETTINGS, **{name: CHANGED_VALUES[name]})
    assert changed != SETTINGS
    assert cache.get("arch-a", "Test CPU", changed) is None


def write_entries(path: str, writer: int) -> None:
    cache = LatencyCache(path)
    for index in range(WRITES_PER_PROCESS):
        cache.put(f"arch-{writer}-{index}", result_for(median_ms=float(index)))
        cache.put("arch-shared", result_for(median_ms=float(writer)))


@pytest.mark.skipif(sys.platform != "linux", reason="uses fork to start writers quickly")
def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "latency.sqlite")
    context = multiprocessing.get_context("fork")  # the writers run no torch ops, so fork is safe
    writers = [context.Process(target=write_entries, args=(path, writer)) for writer in (0, 1)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
    assert [process.exitcode for process in writers] == [0, 0]
    cache = LatencyCache(path)
    for writer in (0, 1):
        for index in range(WRITES_PER_PROCESS):
            assert cache.get(f"arch-{writer}-{index}", "Test CPU", SETTINGS).median_ms == float(index)
    assert cache.get("arch-shared", "Test CPU", SETTINGS).median_ms in (0.0, 1.0)


def tiny_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())


def test_cached_latency_measures_once_then_hits(tmp_path: Path) -> None:
    cache = LatencyCache(tmp_path / "latency.sqlite")
    calls = []

    def factory() -> torch.nn.Module:
        calls.append(1)
        return tiny_net()

    measured, from_cache = cached_latency(cache, "arch-a", factory, SETTINGS)
    assert not from_cache and len(calls) == 1
    assert measured.device_name == device_name(SETTINGS)
    again, from_cache = cached_latency(cache, "arch-a", factory, SETTINGS)
    assert from_cache and again == measured and len(calls) == 1


def test_cached_latency_does_not_build_the_model_on_a_hit(tmp_path: Path) -> None:
    cache = LatencyCache(tmp_path / "latency.sqlite")
    stored = result_for(device=device_name(SETTINGS))
    cache.put("arch-a", stored)

    def factory() -> torch.nn.Module:
        raise AssertionError("the model was built although the cache had it")

    assert cached_latency(cache, "arch-a", factory, SETTINGS) == (stored, True)


def test_a_stored_result_that_does_not_parse_names_the_cache() -> None:
    data = result_for().to_dict()
    del data["iqr_ms"]
    with pytest.raises(SpecError, match="latency cache x.sqlite: not a stored latency result"):
        LatencyResult.from_dict(data, source="latency cache x.sqlite")
    data = result_for().to_dict()
    data["settings"]["dtype"] = "fp8"
    with pytest.raises(SpecError, match="latency cache x.sqlite: settings.dtype"):
        LatencyResult.from_dict(data, source="latency cache x.sqlite")
