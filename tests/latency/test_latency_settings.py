"""LatencySettings: validation with key paths, round trips and the cache key."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from archsearch.errors import SpecError
from archsearch.latency import LatencySettings
from archsearch.latency import settings as settings_module

# One changed value per field: every setting must reach the cache key.
CHANGED_VALUES = {
    "device": "cuda:1", "dtype": "bf16", "batch_size": 2, "input_size": (256, 512), "input_channels": 4,
    "channels_last": True, "num_threads": 2, "backend": "compile", "warmup_seconds": 2.5,
    "min_warmup_iterations": 7, "time_budget_seconds": 9.0, "min_repeats": 4, "max_repeats": 20,
}


def test_every_field_has_a_changed_value() -> None:
    assert set(CHANGED_VALUES) == {field.name for field in dataclasses.fields(LatencySettings)}


def test_from_dict_reads_plain_yaml_data() -> None:
    settings = LatencySettings.from_dict(
        {"device": "cuda:0", "dtype": "fp16", "input_size": [720, 960], "num_threads": 2,
         "warmup_seconds": 1, "backend": "onnxruntime"}, source="study.yaml")
    assert settings.input_size == (720, 960)
    assert settings.warmup_seconds == 1.0 and isinstance(settings.warmup_seconds, float)
    assert settings.torch_dtype == torch.float16


def test_to_dict_round_trips() -> None:
    settings = LatencySettings(**CHANGED_VALUES)
    assert LatencySettings.from_dict(settings.to_dict(), source="test") == settings


@pytest.mark.parametrize(("data", "path", "allowed_fragment"), [
    ({"device": "gpu"}, "device", "cuda:N"),
    ({"device": "cuda:x"}, "device", "cuda:N"),
    ({"dtype": "float16"}, "dtype", "fp16"),
    ({"backend": "tensorrt"}, "backend", "onnxruntime"),
    ({"batch_size": 0}, "batch_size", ">= 1"),
    ({"batch_size": True}, "batch_size", "integer"),
    ({"input_size": [512]}, "input_size", "two positive integers"),
    ({"input_size": [512, -4]}, "input_size[1]", ">= 1"),
    ({"input_size": [512.0, 4]}, "input_size[0]", "integer"),
    ({"channels_last": "yes"}, "channels_last", "true, false"),
    ({"num_threads": 0}, "num_threads", ">= 1"),
    ({"warmup_seconds": -1}, "warmup_seconds", ">= 0"),
    ({"time_budget_seconds": "5s"}, "time_budget_seconds", ">= 0"),
    ({"min_warmup_iterations": -1}, "min_warmup_iterations", ">= 0"),
    ({"min_repeats": 0}, "min_repeats", ">= 1"),
    ({"min_repeats": 10, "max_repeats": 5}, "max_repeats", ">= 10"),
    ({"backend": "onnxruntime", "channels_last": True}, "channels_last", "false"),
    ({"backend": "onnxruntime", "dtype": "bf16"}, "dtype", "fp32, fp16"),
    ({"repeats": 3}, "repeats", "max_repeats"),
])
def test_bad_settings_name_source_path_value_and_allowed(data: dict, path: str, allowed_fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        LatencySettings.from_dict(data, source="study.yaml")
    error = caught.value
    assert error.source == "study.yaml"
    assert error.path == path
    assert allowed_fragment in error.allowed
    assert str(error).startswith(f"study.yaml: {path}: ")


def test_settings_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(SpecError, match="--latency: expected a mapping"):
        LatencySettings.from_dict(["cpu"], source="--latency")


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(SpecError) as caught:
        LatencySettings(dtype="int8")
    assert caught.value.path == "dtype"


def test_key_is_stable_and_ignores_int_versus_float_seconds() -> None:
    assert LatencySettings(warmup_seconds=1).key() == LatencySettings(warmup_seconds=1.0).key()
    assert LatencySettings().key() == LatencySettings.from_dict({}, source="test").key()


@pytest.mark.parametrize("name", sorted(CHANGED_VALUES))
def test_changing_any_setting_changes_the_key(name: str) -> None:
    changed = dataclasses.replace(LatencySettings(), **{name: CHANGED_VALUES[name]})
    assert changed.key() != LatencySettings().key()


def test_a_new_timing_protocol_changes_the_key_but_not_the_recorded_settings(monkeypatch) -> None:
    settings = LatencySettings(num_threads=2)
    before_key, before_json = settings.key(), settings.to_json()
    monkeypatch.setattr(settings_module, "TIMING_PROTOCOL", settings_module.TIMING_PROTOCOL + 1)
    assert settings.key() != before_key and settings.to_json() == before_json
    assert LatencySettings.from_dict(json.loads(before_json), source="test") == settings


@pytest.mark.parametrize(("name", "value"), [
    ("warmup_seconds", float("inf")), ("warmup_seconds", 1e9), ("warmup_seconds", float("nan")),
    ("time_budget_seconds", float("inf")), ("time_budget_seconds", 1e9),
    ("min_warmup_iterations", 10 ** 9), ("min_repeats", 10 ** 9), ("max_repeats", 10 ** 12),
])
def test_time_budgets_are_finite_and_bounded_naming_the_range(name: str, value) -> None:
    """A warm-up or timing that could run for days is a typo; the message says the range allowed."""
    with pytest.raises(SpecError) as caught:
        LatencySettings.from_dict({name: value}, source="study.yaml")
    assert caught.value.path == name and "<=" in caught.value.allowed


def test_the_largest_budgets_allowed_are_accepted() -> None:
    from archsearch.latency.settings import MAX_REPEATS, MAX_TIME_BUDGET_SECONDS, MAX_WARMUP_ITERATIONS, \
        MAX_WARMUP_SECONDS

    LatencySettings(warmup_seconds=MAX_WARMUP_SECONDS, time_budget_seconds=MAX_TIME_BUDGET_SECONDS,
                    min_warmup_iterations=MAX_WARMUP_ITERATIONS, min_repeats=MAX_REPEATS, max_repeats=MAX_REPEATS)
