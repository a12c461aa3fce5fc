"""One study point's latency figures: predicted (with screening), measured, and against the reference.

The trial runner calls ``PointTiming.measure`` once per point and copies the figures into the
trial's metrics; the rules (screening, the reference timed alongside, re-timing near a relative
budget) live here, apart from how a study runs its trials.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from archsearch.arch.spec import ArchSpec
from archsearch.latency.budget import LatencyBudget
from archsearch.latency.cache import LatencyCache, cached_latency
from archsearch.latency.devices import device_name
from archsearch.latency.placement import LocalSite, TimingPlace, TimingSite
from archsearch.latency.predictor import LatencyPredictor, default_unit_table_path
from archsearch.latency.reference import ReferenceTiming
from archsearch.latency.settings import LatencySettings
from archsearch.latency.unit_table import CalibrationTable, UnitLatencyTable

Result = TypeVar("Result")


@dataclass(frozen=True)
class PointLatency:
    """What was predicted and measured of one point; None where not done. Names are trials.csv's columns.

    The trial's own latency record: median, spread and repeats, the device, the node that timed it
    (its Ray node id, None outside Ray, and host name; none when every figure came from the caches),
    the backend that ran and the settings (canonical JSON); with a reference, its name and median
    from the same rounds.

    ``latency_margin``: how far inside the tightest latency budget the point lies, as a fraction of
    that budget (negative: over it); ``latency_noise``: the ratio's noise band at the decision;
    ``latency_retimes``: re-timings taken because the ratio was over the budget within that band.
    """

    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    latency_repeats: int | None = None
    latency_device: str | None = None
    latency_node_id: str | None = None
    latency_host: str | None = None
    latency_backend: str | None = None
    latency_settings: str | None = None
    latency_predicted_ms: float | None = None
    latency_ratio: float | None = None
    latency_predicted_ratio: float | None = None
    latency_reference: str | None = None
    latency_reference_ms: float | None = None
    latency_margin: float | None = None
    latency_noise: float | None = None
    latency_retimes: int | None = None
    latency_cached: bool | None = None
    latency_seconds: float | None = None

    def as_metrics(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class PointTiming:
    """Times the points of one study: ``settings``, ``budget``, a latency cache and a per-study calibration table.

    The unit table (for screening) is shared across runs at ``unit_table_path``. Every timing (the point's,
    its reference's in the same rounds, the predictor's units) runs at ``site`` (by default this process);
    the caches are keyed by the name of the device there.
    """

    def __init__(self, settings: LatencySettings, budget: LatencyBudget, cache_path: Path, *, num_classes: int,
                 unit_table_path: Path | None = None, site: TimingSite | None = None) -> None:
        self.settings = settings
        self.budget = budget
        self.cache_path = cache_path
        self.num_classes = num_classes
        self.unit_table_path = unit_table_path or default_unit_table_path()
        self.site = site or LocalSite()
        self._place: TimingPlace | None = None  # where the point's last timing ran

    @cached_property
    def device(self) -> str:
        """The name of the device the site times on, asked there once (the caches' key)."""
        name, _ = self.site.call(device_name, self.settings)
        return name

    @cached_property
    def cache(self) -> LatencyCache:
        return LatencyCache(self.cache_path)

    @cached_property
    def predictor(self) -> LatencyPredictor:
        return LatencyPredictor(UnitLatencyTable(self.unit_table_path), self.settings,
                                calibration=CalibrationTable(self.cache_path), run=self._timed, device=self.device)

    @cached_property
    def reference(self) -> ReferenceTiming | None:
        if self.budget.reference is None:
            return None
        return ReferenceTiming(self.budget.reference, self.settings, self.cache, num_classes=self.num_classes,
                               maximum=self.budget.maximum_ratio, run=self._timed, device=self.device)

    def _timed(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        """Run a timing function at the site, noting where it ran."""
        result, self._place = self.site.call(function, *args, **kwargs)
        return result

    def measure(self, spec: ArchSpec, model_factory: Callable[[], nn.Module]) -> PointLatency:
        """Predict (with screening), then time ``spec``'s deploy form (built by ``model_factory`` only if timed)."""
        started = time.perf_counter()
        self._place = None
        point = PointLatency()
        ratio_prediction = prediction = None
        if self.budget.screening_margin is not None:
            if self.reference is not None:
                ratio_prediction = self.predictor.predict_ratio(spec, self.reference.spec, num_classes=self.num_classes)
                prediction = ratio_prediction.candidate
            else:
                prediction = self.predictor.predict(spec, num_classes=self.num_classes)
            point = dataclasses.replace(point, latency_predicted_ms=prediction.median_ms,
                                        latency_predicted_ratio=ratio_prediction.ratio if ratio_prediction else None)
            if self.budget.screened_out(point.latency_predicted_ms, point.latency_predicted_ratio):
                return dataclasses.replace(point, **self._where(), latency_seconds=time.perf_counter() - started)
        if self.reference is not None:
            decision, cached = self.reference.decide(spec.arch_hash, model_factory)
            result = decision.measurement.candidate
            point = dataclasses.replace(point, latency_ratio=decision.ratio, latency_noise=decision.noise,
                                        latency_reference=self.reference.name,
                                        latency_reference_ms=decision.measurement.reference.median_ms,
                                        latency_retimes=decision.retimes)
            if ratio_prediction is not None:
                self.predictor.calibrate_ratio(spec.arch_hash, ratio_prediction, self.reference.spec, decision.ratio)
        else:
            result, cached = cached_latency(self.cache, spec.arch_hash, model_factory, self.settings,
                                            device=self.device, run=self._timed)
        if prediction is not None:  # every confirmed point sharpens the next predictions
            self.predictor.calibrate(spec.arch_hash, prediction, result.median_ms)
        point = dataclasses.replace(point, latency_ms=result.median_ms, latency_iqr_ms=result.iqr_ms,
                                    latency_repeats=result.repeats, latency_device=result.device_name,
                                    latency_backend=result.backend, latency_settings=result.settings.to_json(),
                                    latency_cached=cached, **self._where())
        return dataclasses.replace(point, latency_margin=self.budget.margin(point.latency_ms, point.latency_ratio),
                                   latency_seconds=time.perf_counter() - started)

    def _where(self) -> dict[str, str | None]:
        """The node and host of the point's last timing (none when the caches answered everything)."""
        if self._place is None:
            return {}
        return {"latency_node_id": self._place.node_id, "latency_host": self._place.host}
