"""Devices: a missing device is a SpecError, never a quiet fallback; CUDA runs when present."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from archsearch.errors import SpecError
from archsearch.latency import LatencySettings, device_name, measure_latency
from archsearch.latency.devices import cpu_name

QUICK = LatencySettings(input_size=(16, 16), warmup_seconds=0.0, min_warmup_iterations=1,
                        time_budget_seconds=0.0, min_repeats=3, max_repeats=3)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tiny_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())


def test_cpu_has_a_name() -> None:
    assert device_name(QUICK) == cpu_name() != ""


def test_cuda_without_cuda_is_a_spec_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SpecError, match="torch.cuda.is_available\\(\\) is False") as caught:
        measure_latency(tiny_net(), dataclasses.replace(QUICK, device="cuda"))
    assert caught.value.path == "device" and caught.value.value == "cuda"


def test_cuda_index_beyond_the_devices_present_is_a_spec_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SpecError, match="only 1 CUDA device") as caught:
        device_name(dataclasses.replace(QUICK, device="cuda:3"))
    assert caught.value.value == "cuda:3" and "cuda:0" in caught.value.allowed


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_cuda_eager_measures_and_restores_cudnn_benchmark(dtype: str) -> None:
    previous = torch.backends.cudnn.benchmark
    result = measure_latency(tiny_net(), dataclasses.replace(QUICK, device="cuda", dtype=dtype))
    assert result.repeats == 3 and result.median_ms > 0
    assert result.device_name == torch.cuda.get_device_name(0)
    assert torch.backends.cudnn.benchmark == previous


@needs_cuda
@pytest.mark.cuda
def test_cuda_onnxruntime_measures_or_names_the_missing_provider() -> None:
    import onnxruntime

    settings = dataclasses.replace(QUICK, device="cuda", backend="onnxruntime")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(SpecError, match="CUDAExecutionProvider"):
            measure_latency(tiny_net(), settings)
        return
    result = measure_latency(tiny_net(), settings)
    assert result.backend.startswith("onnxruntime (CUDAExecutionProvider")
