"""Which device a measurement runs on, and what that device is called.

A latency is only meaningful next to the hardware it was taken on, so a missing
device is an error, never a quiet switch to the CPU.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from archsearch.errors import SpecError
from archsearch.latency.settings import LatencySettings

_CPUINFO = Path("/proc/cpuinfo")


def require_device(settings: LatencySettings) -> torch.device:
    """Return the torch device the settings name, or raise SpecError if it is not here."""
    device = torch.device(settings.device)
    if device.type == "cpu":
        return device
    if not torch.cuda.is_available():
        raise SpecError("a CUDA device was asked for but torch.cuda.is_available() is False",
                        path="device", value=settings.device, allowed="'cpu' on this machine")
    count = torch.cuda.device_count()
    index = 0 if device.index is None else device.index
    if index >= count:
        raise SpecError(f"only {count} CUDA device(s) are present", path="device",
                        value=settings.device, allowed=_present_devices(count))
    return torch.device("cuda", index)


def device_name(settings: LatencySettings) -> str:
    """Name the hardware the settings run on: the GPU model, or the CPU model string."""
    device = require_device(settings)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def cpu_name() -> str:
    """The CPU model as the OS reports it (``platform.processor()`` is often empty on Linux)."""
    if _CPUINFO.is_file():
        for line in _CPUINFO.read_text(errors="replace").splitlines():
            label, _, value = line.partition(":")
            if label.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _present_devices(count: int) -> str:
    return ", ".join(["cpu", "cuda"] + [f"cuda:{index}" for index in range(count)])
