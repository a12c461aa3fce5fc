"""measure_latency on the CPU: how the model is run, what is reported, and clear failures."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from torch import nn

import archsearch.latency.measure as measure_module
from archsearch.errors import ArchsearchError, SpecError
from archsearch.latency import LatencySettings, measure_latency, summarize_timings

QUICK = LatencySettings(input_size=(16, 24), warmup_seconds=0.0, min_warmup_iterations=1,
                        time_budget_seconds=0.0, min_repeats=3, max_repeats=3)


class SharedLog(list):
    """A list that survives measure_latency's deep copy of the model."""

    def __deepcopy__(self, memo: dict) -> "SharedLog":
        return self


class RecordingNet(nn.Module):
    """A tiny conv net that records how it was called."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.log = SharedLog()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.log.append({
            "inference_mode": torch.is_inference_mode_enabled(),
            "training": self.training,
            "threads": torch.get_num_threads(),
            "input_dtype": images.dtype,
            "weight_dtype": self.conv.weight.dtype,
            "shape": tuple(images.shape),
            "channels_last": images.is_contiguous(memory_format=torch.channels_last)
            and not images.is_contiguous(),
            "weight_channels_last": self.conv.weight.is_contiguous(memory_format=torch.channels_last)
            and not self.conv.weight.is_contiguous(),
        })
        return self.conv(images)


def quick(**changes) -> LatencySettings:
    return dataclasses.replace(QUICK, **changes)


def test_result_is_filled() -> None:
    result = measure_latency(RecordingNet(), QUICK)
    assert result.repeats == 3
    assert 0 < result.min_ms <= result.q1_ms <= result.median_ms <= result.q3_ms
    assert result.iqr_ms == pytest.approx(result.q3_ms - result.q1_ms)
    assert result.device_name and result.backend == "eager" and result.settings == QUICK


def test_model_runs_in_eval_and_inference_mode_on_the_settings_input() -> None:
    model = RecordingNet().train()
    measure_latency(model, quick(batch_size=2, input_size=(8, 12)))
    assert model.log and all(call["inference_mode"] and not call["training"] for call in model.log)
    assert {call["shape"] for call in model.log} == {(2, 3, 8, 12)}


def test_callers_model_is_left_as_it_was() -> None:
    model = RecordingNet().train()
    measure_latency(model, quick(dtype="bf16", channels_last=True))
    assert model.training
    assert model.conv.weight.dtype == torch.float32 and model.conv.weight.is_contiguous()


def test_thread_count_is_set_for_the_run_and_restored() -> None:
    previous = torch.get_num_threads()
    wanted = previous + 1
    model = RecordingNet()
    measure_latency(model, quick(num_threads=wanted))
    assert {call["threads"] for call in model.log} == {wanted}
    assert torch.get_num_threads() == previous


def test_channels_last_is_applied_to_input_and_weights() -> None:
    model = RecordingNet()
    measure_latency(model, quick(channels_last=True))
    assert all(call["channels_last"] and call["weight_channels_last"] for call in model.log)


def test_bf16_is_applied_to_input_and_weights() -> None:
    model = RecordingNet()
    measure_latency(model, quick(dtype="bf16"))
    assert {(call["input_dtype"], call["weight_dtype"]) for call in model.log} == {
        (torch.bfloat16, torch.bfloat16)}


def test_repeats_respect_min_and_max() -> None:
    assert measure_latency(RecordingNet(), quick(min_repeats=2, max_repeats=4)).repeats == 2
    assert measure_latency(RecordingNet(), quick(min_repeats=2, max_repeats=4,
                                                 time_budget_seconds=600.0)).repeats == 4


def test_result_is_the_median_and_iqr_of_the_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    timings = [5.0, 1.0, 9.0, 2.0, 7.0]
    values = itertools.cycle(timings)

    def fake_timer(step, synchronize=None):
        def run_once() -> float:
            step()
            return next(values)
        return run_once

    monkeypatch.setattr(measure_module, "wall_clock_timer", fake_timer)
    result = measure_latency(RecordingNet(), quick(min_warmup_iterations=0, min_repeats=5, max_repeats=5))
    expected = summarize_timings(timings)
    assert (result.median_ms, result.q1_ms, result.q3_ms, result.iqr_ms, result.min_ms) == (
        expected.median_ms, expected.q1_ms, expected.q3_ms, expected.iqr_ms, expected.min_ms)


class Halfless(nn.Module):
    """A module with an op that has no fp16 CPU kernel, as some PyTorch ops lack one."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.float16:
            raise RuntimeError('"some_op_cpu" not implemented for \'Half\'')
        return images * 2


def test_fp16_on_cpu_runs_when_the_ops_support_it() -> None:
    model = RecordingNet()
    measure_latency(model, quick(dtype="fp16"))
    assert {call["weight_dtype"] for call in model.log} == {torch.float16}


def test_fp16_on_cpu_without_kernels_is_a_dtype_error() -> None:
    with pytest.raises(SpecError) as caught:
        measure_latency(Halfless(), quick(dtype="fp16"))
    assert caught.value.path == "dtype" and caught.value.value == "fp16"
    assert "not implemented for 'Half'" in str(caught.value)


def test_onnxruntime_backend_times_a_tiny_model() -> None:
    settings = quick(backend="onnxruntime", num_threads=1)
    result = measure_latency(RecordingNet(), settings)
    assert result.backend == "onnxruntime (CPUExecutionProvider, torchscript exporter)"
    assert result.repeats == 3 and result.median_ms > 0 and result.iqr_ms >= 0
    assert result.settings == settings and result.device_name


def test_onnx_export_failure_names_both_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_export(*args, **kwargs):
        raise RuntimeError(f"cannot trace (dynamo={kwargs['dynamo']})")

    monkeypatch.setattr(torch.onnx, "export", failing_export)
    with pytest.raises(ArchsearchError, match="torchscript exporter: .*dynamo=False.*dynamo exporter: .*dynamo=True"):
        measure_latency(RecordingNet(), quick(backend="onnxruntime"))


def test_compile_failure_says_compile_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_compile(model):
        def compiled(images):
            raise RuntimeError("no working C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.raises(ArchsearchError, match="'compile' is unavailable.*no working C\\+\\+ compiler"):
        measure_latency(RecordingNet(), quick(backend="compile"))


@pytest.mark.slow
def test_compile_backend_times_a_tiny_model() -> None:
    result = measure_latency(RecordingNet(), quick(backend="compile"))
    assert result.backend == "compile (inductor)" and result.repeats == 3


@pytest.mark.slow
def test_onnx_export_falls_back_to_the_dynamo_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    real_export = torch.onnx.export

    def export_without_torchscript(*args, **kwargs):
        if not kwargs["dynamo"]:
            raise RuntimeError("the TorchScript exporter was removed")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", export_without_torchscript)
    result = measure_latency(RecordingNet(), quick(backend="onnxruntime"))
    assert result.backend == "onnxruntime (CPUExecutionProvider, dynamo exporter)"
