"""What a latency measurement runs on, and how long it times.

Every setting changes the number a measurement returns, so the cache key is all of
them; there are no hidden knobs.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from archsearch.devices import check_device_name
from archsearch.errors import SpecError
from archsearch.runtime import current as current_runtime
from archsearch.schema import Range, check_fields, parse_dataclass, require

if TYPE_CHECKING:  # reading settings (a study file) needs no torch; timing does
    import torch

Dtype = Literal["fp32", "fp16", "bf16"]
Backend = Literal["eager", "onnxruntime", "compile"]
DTYPES: tuple[str, ...] = typing.get_args(Dtype)
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
BACKEND_NAMES: tuple[str, ...] = typing.get_args(Backend)
PREDICTOR_BACKENDS = ("eager",)  # what the latency predictor's per-block timings describe
ONNXRUNTIME_DTYPES: tuple[str, ...] = ("fp32", "fp16")

TIMING_PROTOCOL = 2
"""Raised when how a timing runs changes the numbers it gives, so that caches keyed by
``LatencySettings.key`` time again: 2 keeps freed memory in the process (``allocator``)."""

LATENCY_DEVICE_KINDS: tuple[str, ...] = ("cpu", "cuda")  # what timing synchronizes with (no MPS timer)
MAX_WARMUP_SECONDS = 600.0
MAX_TIME_BUDGET_SECONDS = 3600.0
MAX_WARMUP_ITERATIONS = 100_000
MAX_REPEATS = 1_000_000
TOO_LONG = "a warm-up or timing runs for minutes at most"
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
    dtype: Dtype = "fp32"
    batch_size: Annotated[int, Range(1)] = 1
    input_size: tuple[Annotated[int, Range(1)], ...] = (512, 1024)
    input_channels: Annotated[int, Range(1)] = 3
    channels_last: bool = False
    num_threads: Annotated[int, Range(1)] = 1
    backend: Backend = "eager"
    warmup_seconds: Annotated[float, Range(0.0, MAX_WARMUP_SECONDS, why=TOO_LONG)] = 1.0
    min_warmup_iterations: Annotated[int, Range(0, MAX_WARMUP_ITERATIONS)] = 5
    time_budget_seconds: Annotated[float, Range(0.0, MAX_TIME_BUDGET_SECONDS, why=TOO_LONG)] = 5.0
    min_repeats: Annotated[int, Range(1, MAX_REPEATS)] = 10
    max_repeats: Annotated[int, Range(1, MAX_REPEATS)] = 1000

    def __post_init__(self) -> None:
        check_fields(self)  # settings built in Python are checked as those read from a file
        check_device_name(self.device, kinds=LATENCY_DEVICE_KINDS)
        require(len(self.input_size) == 2, "expected [height, width]", path="input_size", value=list(self.input_size),
                allowed="two positive integers")
        require(self.max_repeats >= self.min_repeats, "out of range", path="max_repeats", value=self.max_repeats,
                allowed=f"an integer >= {self.min_repeats} (min_repeats) and <= {MAX_REPEATS:,}")
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
        try:
            return parse_dataclass(cls, data, "")
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
    def torch_dtype(self) -> "torch.dtype":
        """The torch dtype that weights and inputs are cast to."""
        import torch

        return getattr(torch, TORCH_DTYPES[self.dtype])

    @property
    def dtype_bytes(self) -> int:
        """Bytes per element of weights and inputs (no torch needed to know it)."""
        return DTYPE_BYTES[self.dtype]
