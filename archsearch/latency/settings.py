"""What a latency measurement runs on, and how long it times.

Every setting changes the number a measurement returns, so the cache key is all of
them; there are no hidden knobs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from archsearch.devices import check_device_name
from archsearch.errors import SpecError
from archsearch.runtime import current as current_runtime

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
BACKEND_NAMES: tuple[str, ...] = ("eager", "onnxruntime", "compile")
ONNXRUNTIME_DTYPES: tuple[str, ...] = ("fp32", "fp16")

TIMING_PROTOCOL = 2
"""Raised when how a timing runs changes the numbers it gives, so that caches keyed by
``LatencySettings.key`` time again: 2 keeps freed memory in the process (``allocator``)."""

LATENCY_DEVICE_KINDS: tuple[str, ...] = ("cpu", "cuda")  # what timing synchronizes with (no MPS timer)
MAX_WARMUP_SECONDS = 600.0
MAX_TIME_BUDGET_SECONDS = 3600.0
MAX_WARMUP_ITERATIONS = 100_000
MAX_REPEATS = 1_000_000
"""A warm-up beyond ten minutes or a timing beyond an hour is a typo (``1e9``, ``.inf``) that would hang a run;
the iteration and repeat counts are bounded for the same reason (they can outlast the time budgets)."""


@dataclass(frozen=True)
class LatencySettings:
    """How to time a deploy-form model: target, numeric format, input and time budget.

    Presence of the device is checked when measuring, not here, so that settings
    written on one machine can describe a run on another.

    device: "cpu", "cuda" or "cuda:N". dtype: "fp32", "fp16" or "bf16" for weights and
    input. batch_size, input_size (height, width), input_channels: the input tensor.
    channels_last: NHWC memory layout (eager and compile only). num_threads: torch
    intra-op threads, or onnxruntime's intra_op_num_threads. backend: "eager",
    "onnxruntime" or "compile". Warm-up runs for at least min_warmup_iterations calls
    and warmup_seconds; timing then stops after time_budget_seconds, but never before
    min_repeats samples nor after max_repeats. Each budget has a maximum (MAX_WARMUP_SECONDS and
    the like), so that no setting can make a measurement run for days.
    """

    device: str = "cpu"
    dtype: str = "fp32"
    batch_size: int = 1
    input_size: tuple[int, int] = (512, 1024)
    input_channels: int = 3
    channels_last: bool = False
    num_threads: int = 1
    backend: str = "eager"
    warmup_seconds: float = 1.0
    min_warmup_iterations: int = 5
    time_budget_seconds: float = 5.0
    min_repeats: int = 10
    max_repeats: int = 1000

    def __post_init__(self) -> None:
        check_device_name(self.device, kinds=LATENCY_DEVICE_KINDS)
        _check_choice("dtype", self.dtype, tuple(DTYPES))
        _check_choice("backend", self.backend, BACKEND_NAMES)
        _check_int("batch_size", self.batch_size, minimum=1)
        object.__setattr__(self, "input_size", _check_input_size(self.input_size))
        _check_int("input_channels", self.input_channels, minimum=1)
        if not isinstance(self.channels_last, bool):
            raise SpecError("must be true or false", path="channels_last", value=self.channels_last,
                            allowed="true, false")
        _check_int("num_threads", self.num_threads, minimum=1)
        object.__setattr__(self, "warmup_seconds",
                           _check_seconds("warmup_seconds", self.warmup_seconds, maximum=MAX_WARMUP_SECONDS))
        _check_int("min_warmup_iterations", self.min_warmup_iterations, minimum=0, maximum=MAX_WARMUP_ITERATIONS)
        object.__setattr__(self, "time_budget_seconds", _check_seconds("time_budget_seconds", self.time_budget_seconds,
                                                                       maximum=MAX_TIME_BUDGET_SECONDS))
        _check_int("min_repeats", self.min_repeats, minimum=1, maximum=MAX_REPEATS)
        _check_int("max_repeats", self.max_repeats, minimum=self.min_repeats, maximum=MAX_REPEATS)
        self._check_backend_combination()

    def _check_backend_combination(self) -> None:
        """Refuse settings that one backend cannot honour, instead of ignoring them."""
        if self.backend != "onnxruntime":
            return
        if self.channels_last:
            raise SpecError("onnxruntime chooses its own memory layout; channels_last applies to "
                            "the eager and compile backends only", path="channels_last", value=True,
                            allowed="false with backend onnxruntime")
        if self.dtype not in ONNXRUNTIME_DTYPES:
            raise SpecError("onnxruntime has no bf16 convolution kernels", path="dtype",
                            value=self.dtype, allowed=", ".join(ONNXRUNTIME_DTYPES))

    @classmethod
    def from_dict(cls, data: Any, source: str) -> "LatencySettings":
        """Build settings from parsed YAML/JSON; ``source`` names the file or flag for errors."""
        if not isinstance(data, Mapping):
            raise SpecError("latency settings must be a mapping", value=data,
                            allowed="a mapping of setting names to values", source=source)
        known = [field.name for field in dataclasses.fields(cls)]
        for key in data:
            if key not in known:
                raise SpecError("unknown latency setting", path=str(key), value=key,
                                allowed=", ".join(known), source=source)
        try:
            return cls(**data)
        except SpecError as error:
            raise error.with_source(source) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) that ``from_dict`` reads back to equal settings."""
        data = dataclasses.asdict(self)
        data["input_size"] = list(self.input_size)
        return data

    def to_json(self) -> str:
        """Canonical JSON of every setting (what a trial records): equal settings give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        """The settings, the timing protocol and, on the CPU, how OpenMP's threads wait (the process's
        ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT``, archsearch.runtime), for caching: a timing is reused
        only under all of them. Waiting changes a multi-threaded CPU timing (spinning threads answer a
        barrier sooner; README "Threads on a shared machine"), so it is part of what was timed."""
        waiting = f"|openmp {current_runtime().timing_key()}" if self.device == "cpu" else ""
        return f"{self.to_json()}|timing protocol {TIMING_PROTOCOL}{waiting}"

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype that weights and inputs are cast to."""
        return DTYPES[self.dtype]


def _check_choice(path: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError("not a known value", path=path, value=value, allowed=", ".join(allowed))


def _check_int(path: str, value: Any, *, minimum: int, maximum: int | None = None) -> None:
    allowed = f"an integer >= {minimum}" + (f" and <= {maximum:,}" if maximum is not None else "")
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("must be an integer", path=path, value=value, allowed=allowed)
    if value < minimum:
        raise SpecError("too small", path=path, value=value, allowed=allowed)
    if maximum is not None and value > maximum:
        raise SpecError("too large", path=path, value=value, allowed=allowed)


def _check_seconds(path: str, value: Any, *, maximum: float) -> float:
    """Return ``value`` as a float so that 1 and 1.0 give the same cache key."""
    allowed = f"a number of seconds >= 0 and <= {maximum:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise SpecError("must be a number of seconds", path=path, value=value, allowed=allowed)
    if not value <= maximum:
        raise SpecError("too long: a warm-up or timing runs for minutes at most", path=path, value=value, allowed=allowed)
    return float(value)


def _check_input_size(value: Any) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SpecError("must be [height, width]", path="input_size", value=value,
                        allowed="two positive integers")
    for index, side in enumerate(value):
        _check_int(f"input_size[{index}]", side, minimum=1)
    return (value[0], value[1])
