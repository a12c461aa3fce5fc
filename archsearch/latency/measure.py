"""Time a deploy-form model the way a deployment runs it.

Eval mode, inference mode, a fixed thread count, warm-up, then per-iteration timings
summarized by median and IQR. The caller's model is copied, never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from archsearch.errors import SpecError
from archsearch.latency.allocator import keep_freed_memory
from archsearch.latency.backends import prepare_runner
from archsearch.latency.devices import device_name, require_device
from archsearch.latency.result import LatencyResult
from archsearch.latency.settings import LatencySettings
from archsearch.latency.statistics import summarize_timings
from archsearch.latency.timing import (IterationTimer, collect_rounds, collect_samples, cuda_event_timer,
                                       wall_clock_timer)

_INPUT_SEED = 0


def measure_latency(model: nn.Module, settings: LatencySettings) -> LatencyResult:
    """Measure per-batch latency of ``model`` (already in deploy form) under ``settings``.

    Raises SpecError when the device is not present or the model cannot run in the
    requested dtype there, and ArchsearchError when the backend cannot run it.
    """
    device = require_device(settings)
    name = device_name(settings)
    with _timing_context(settings, device):
        timer, label = _prepared_timer(model, settings, device)
        samples = collect_samples(timer, settings)
    return LatencyResult.from_summary(summarize_timings(samples), device_name=name, settings=settings,
                                      backend=label)


@dataclass(frozen=True)
class RoundsMeasurement:
    """Per-iteration times of several models timed in interleaved rounds: ``samples[model][round]`` (ms)."""

    samples: list[list[list[float]]]
    device_name: str
    backends: tuple[str, ...]


def measure_in_rounds(models: Sequence[nn.Module], settings: LatencySettings, rounds: int) -> RoundsMeasurement:
    """Time ``models`` (deploy form) in ``rounds`` interleaved rounds under one ``settings`` (see collect_rounds).

    All models are placed and readied first, so that every round runs them back to back in
    the same state of the machine. Errors as in ``measure_latency``.
    """
    device = require_device(settings)
    name = device_name(settings)
    with _timing_context(settings, device):
        prepared = [_prepared_timer(model, settings, device) for model in models]
        samples = collect_rounds([timer for timer, _ in prepared], settings, rounds)
    return RoundsMeasurement(samples=samples, device_name=name, backends=tuple(label for _, label in prepared))


def measure_together(models: Sequence[nn.Module], settings: LatencySettings, rounds: int) -> list[LatencyResult]:
    """Each model's latency from its samples of ``rounds`` interleaved rounds (see ``measure_in_rounds``).

    Models timed together share the machine's slow and fast spells, so their latencies compare;
    timed one after the other, each takes the spell it fell in (median blocks of 100 iterations
    of one convolution wandered by 15% either way within a second on the shared VM).
    """
    measured = measure_in_rounds(models, settings, rounds)
    return [LatencyResult.from_summary(summarize_timings([value for round_ in rounds_ for value in round_]),
                                       device_name=measured.device_name, settings=settings, backend=backend)
            for rounds_, backend in zip(measured.samples, measured.backends)]


@contextmanager
def _timing_context(settings: LatencySettings, device: torch.device) -> Iterator[None]:
    """Threads, device, cuDNN autotuning, inference mode and reused memory, as a deployment runs them."""
    keep_freed_memory()
    with ExitStack() as stack:
        stack.enter_context(_torch_threads(settings.num_threads))
        if device.type == "cuda":
            stack.enter_context(torch.cuda.device(device))
            stack.enter_context(_cudnn_benchmark())
        stack.enter_context(torch.inference_mode())
        yield


def _prepared_timer(model: nn.Module, settings: LatencySettings, device: torch.device) -> tuple[IterationTimer, str]:
    """Place ``model``, run it once eagerly, ready the backend; return its iteration timer and backend label."""
    model, images = _place(model, settings, device)
    _run_once_eagerly(model, images, settings, device)
    runner = prepare_runner(model, images, settings, device)
    return _iteration_timer(runner.step, runner.on_torch_stream, device), runner.label


def _place(model: nn.Module, settings: LatencySettings,
           device: torch.device) -> tuple[nn.Module, torch.Tensor]:
    """Copy the model into eval mode on the device, dtype and layout; make a fixed input."""
    placed = copy.deepcopy(model).eval().to(device=device, dtype=settings.torch_dtype)
    height, width = settings.input_size
    generator = torch.Generator().manual_seed(_INPUT_SEED)
    images = torch.randn((settings.batch_size, settings.input_channels, height, width), generator=generator)
    images = images.to(device=device, dtype=settings.torch_dtype)
    if settings.channels_last:
        placed = placed.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    return placed, images


def _run_once_eagerly(model: nn.Module, images: torch.Tensor, settings: LatencySettings,
                      device: torch.device) -> None:
    """Run the model once as is, so that its own errors are not blamed on a backend.

    Half-precision CPU kernels are missing for some ops; that is reported as a dtype
    the model cannot use here, rather than as a crash deep inside PyTorch.
    """
    try:
        model(images)
    except (RuntimeError, NotImplementedError) as error:
        if device.type != "cpu" or settings.dtype == "fp32":
            raise
        raise SpecError(f"this model does not run in {settings.dtype} on the CPU: {error}", path="dtype",
                        value=settings.dtype, allowed="fp32, or a dtype with CPU kernels for every op "
                        "of this model") from error
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _iteration_timer(step: Callable[[], object], on_torch_stream: bool, device: torch.device) -> IterationTimer:
    if device.type == "cpu":
        return wall_clock_timer(step)
    if on_torch_stream:
        return cuda_event_timer(step, device)
    return wall_clock_timer(step, synchronize=lambda: torch.cuda.synchronize(device))


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Pin torch's intra-op thread count for the measurement; restore it afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _cudnn_benchmark() -> Iterator[None]:
    """Let cuDNN pick its fastest kernels, as tuned deployments do; restore the flag afterwards."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous
