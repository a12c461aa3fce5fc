"""The outcome of one latency measurement, as stored in caches and trial results."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archsearch.errors import SpecError
from archsearch.latency.settings import LatencySettings
from archsearch.latency.statistics import TimingSummary


@dataclass(frozen=True)
class LatencyResult:
    """Median and spread of per-iteration latency, with what it was measured on.

    ``backend`` says what actually ran, e.g. ``"onnxruntime (CPUExecutionProvider,
    torchscript exporter)"``, which is more than the backend name in ``settings``.
    """

    median_ms: float
    iqr_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    repeats: int
    device_name: str
    settings: LatencySettings
    backend: str

    @classmethod
    def from_summary(cls, summary: TimingSummary, *, device_name: str, settings: LatencySettings,
                     backend: str) -> "LatencyResult":
        """Attach where and how the timings were taken to their summary."""
        return cls(median_ms=summary.median_ms, iqr_ms=summary.iqr_ms, q1_ms=summary.q1_ms,
                   q3_ms=summary.q3_ms, min_ms=summary.min_ms, repeats=summary.repeats,
                   device_name=device_name, settings=settings, backend=backend)

    @property
    def relative_iqr(self) -> float:
        """IQR as a fraction of the median: how repeatable this measurement was."""
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data that ``from_dict`` reads back to an equal result."""
        data = dataclasses.asdict(self)
        data["settings"] = self.settings.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str) -> "LatencyResult":
        """Read a result written by ``to_dict``; ``source`` names where it came from."""
        names = [field.name for field in dataclasses.fields(cls)]
        if not isinstance(data, Mapping) or sorted(data) != sorted(names):
            raise SpecError("not a stored latency result", value=data,
                            allowed=f"a mapping with keys {', '.join(names)}", source=source)
        fields = dict(data)
        try:
            fields["settings"] = LatencySettings.from_dict(data["settings"], source)
        except SpecError as error:
            raise error.under("settings") from None
        return cls(**fields)
