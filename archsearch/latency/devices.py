"""Which device a measurement runs on, and what that device is called.

A latency is only meaningful next to the hardware it was taken on, so a missing
device is an error, never a quiet switch to the CPU.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from archsearch.devices import present_device
from archsearch.latency.settings import LATENCY_DEVICE_KINDS, LatencySettings

_CPUINFO = Path("/proc/cpuinfo")


def require_device(settings: LatencySettings) -> torch.device:
    """Return the torch device the settings name, or raise SpecError if it is not here (training's rule)."""
    return present_device(settings.device, kinds=LATENCY_DEVICE_KINDS)


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
