"""Predict a network's deploy-form latency without building or timing it: the sum of its units' latencies.

Each unit (a block, a stage's input activation, a fusion, the context module, the tail with
the head) is timed once per device and settings at the shapes it has inside the network and
kept in a SQLite table with its output shapes, so a later prediction of a network made of
known units is a walk over the spec's topology (the plan the built network runs) and a few lookups.
The units a prediction lacks are timed all together, in interleaved rounds: timed one after the
other, each took the machine's spell it fell in, and a sum of them ranked regseg networks with
Kendall tau 0.82 where timing them together gave 0.92 (benchmarks/latency_predictor.py, README).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from torch import nn

from archsearch.errors import SpecError
from archsearch.latency.devices import device_name
from archsearch.latency.measure import measure_together
from archsearch.latency.placement import RunTiming, call_here
from archsearch.latency.protocol import ROUNDS
from archsearch.latency.result import LatencyResult
from archsearch.latency.settings import PREDICTOR_BACKENDS, LatencySettings
from archsearch.latency.unit_table import CalibrationTable, UnitLatencyTable, UnitTiming
from archsearch.latency.units import MeasureTogether, Shape, Unit, prepare_unit
from archsearch.arch.spec import ArchSpec
from archsearch.arch.topology import IMAGE, NODE_KINDS, Ref

MIN_CALIBRATION_NETWORKS = 3
"""Below this many measured networks the sum of units stands uncorrected."""

ShapesOf = Callable[[Unit], tuple[Shape, ...]]
"""Gives a unit's output shapes (and, in the predictor, looks up or times the unit on the way)."""


def default_unit_table_path() -> Path:
    """``$XDG_CACHE_HOME/archsearch/latency_units.db`` (``~/.cache`` without XDG_CACHE_HOME)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "archsearch" / "latency_units.db"


@dataclass(frozen=True)
class LatencyPrediction:
    """A predicted median latency (ms): the units' sum ``sum_ms`` times the ``calibration`` factor.

    ``units`` gives each unit's timing; ``timed_units`` were not in the table and were timed now.
    """

    median_ms: float
    sum_ms: float
    calibration: float
    units: tuple[tuple[str, float], ...]
    timed_units: int
    device_name: str
    settings: LatencySettings


@dataclass(frozen=True)
class RatioPrediction:
    """A predicted latency ratio to a reference: the ratio of the two sums of units times ``calibration``."""

    ratio: float
    sum_ratio: float
    calibration: float
    candidate: LatencyPrediction


class LatencyPredictor:
    """Predicts latency under ``settings`` (device, dtype, threads, batch, image size) from a unit table.

    Units are timed with ``settings``' own warm-up and time budget (spread over the rounds), so
    short budgets fill a fresh table quickly. A network runs its units back to back, with caches
    and allocations that units timed alone do not see, so their sum is off by a factor that
    depends on the kind of network and the device; with a ``calibration`` table, ``calibrate`` records measured
    networks, and once MIN_CALIBRATION_NETWORKS are known the prediction is the sum times their
    median ratio. Only the eager backend is predicted: compiled and ONNX Runtime graphs
    fuse operations across units, so a sum of units says little about them. Units are timed through
    ``run`` (see latency.placement) on the device named ``device`` (by default this machine's).
    """

    def __init__(self, table: UnitLatencyTable, settings: LatencySettings, *,
                 calibration: CalibrationTable | None = None, measure: MeasureTogether | None = None,
                 run: RunTiming = call_here, device: str | None = None) -> None:
        if settings.backend not in PREDICTOR_BACKENDS:
            raise SpecError("the latency predictor sums units timed one by one, which describes the eager "
                            "backend only", path="backend", value=settings.backend,
                            allowed=", ".join(PREDICTOR_BACKENDS))
        self.table = table
        self.calibration = calibration
        self.settings = settings
        # A unit carries its own input shapes, so the image size is no part of its timing's key.
        self.unit_settings = replace(settings, input_size=(1, 1), input_channels=1)
        self.device_name = device or device_name(settings)
        self.measure = measure or partial(run, _measure_in_rounds)

    def predict(self, spec: ArchSpec, *, num_classes: int = 19) -> LatencyPrediction:
        """The predicted deploy-form latency of ``spec`` at ``settings.input_size``."""
        return self.predict_many([spec], num_classes=num_classes)[0]

    def predict_many(self, specs: Sequence[ArchSpec], *, num_classes: int = 19) -> list[LatencyPrediction]:
        """Predict several networks, timing the units the table lacks for all of them together first."""
        timings, timed = self._unit_timings(specs, num_classes)
        factor = self.calibration_factor()
        predictions = []
        for spec in specs:
            breakdown: list[tuple[str, float]] = []
            keys: set[str] = set()

            def look_up(unit: Unit) -> tuple[Shape, ...]:
                key = unit.key()
                breakdown.append((unit.label, timings[key].median_ms))
                keys.add(key)
                return timings[key].output_shapes

            walk_units(spec, self.settings.input_size, num_classes, look_up)
            total = sum(ms for _, ms in breakdown)
            predictions.append(LatencyPrediction(
                median_ms=total * factor, sum_ms=total, calibration=factor, units=tuple(breakdown),
                timed_units=len(keys & timed), device_name=self.device_name, settings=self.settings))
        return predictions

    def _unit_timings(self, specs: Sequence[ArchSpec], num_classes: int) -> tuple[dict[str, UnitTiming], set[str]]:
        """Every unit's timing by key, read from the table or, for the units it lacks, timed now (all in
        the same rounds) and written to it; and the keys of the units timed now."""
        settings_key = self.unit_settings.key()
        timings: dict[str, UnitTiming] = {}
        missing: dict[str, tuple[nn.Module, tuple[Shape, ...]]] = {}

        def shapes_of(unit: Unit) -> tuple[Shape, ...]:
            key = unit.key()
            if key in timings:
                return timings[key].output_shapes
            if key not in missing:
                known = self.table.get(key, self.device_name, settings_key)
                if known is not None:
                    timings[key] = known
                    return known.output_shapes
                missing[key] = prepare_unit(unit, self.unit_settings)
            return missing[key][1]

        for spec in specs:
            walk_units(spec, self.settings.input_size, num_classes, shapes_of)
        if missing:
            results = self.measure([model for model, _ in missing.values()], self.unit_settings)
            for (key, (_, shapes)), result in zip(missing.items(), results):
                timings[key] = UnitTiming(median_ms=result.median_ms, iqr_ms=result.iqr_ms, repeats=result.repeats,
                                          output_shapes=shapes)
                self.table.put(key, self.device_name, settings_key, timings[key])
        return timings, set(missing)

    def predict_ratio(self, spec: ArchSpec, reference: ArchSpec, *, num_classes: int = 19) -> RatioPrediction:
        """The predicted latency of ``spec`` over that of ``reference``, both at ``settings.input_size``.

        Calibrated on its own (``calibrate_ratio``): the sums of units of the reference and of a
        space's networks are off by different factors, and a measured ratio is what it is checked on.
        The units either lacks are timed in the same rounds, as the ratio itself is measured.
        """
        candidate, reference_prediction = self.predict_many([spec, reference], num_classes=num_classes)
        sum_ratio = candidate.sum_ms / reference_prediction.sum_ms
        factor = self.calibration_factor(_ratio_key(self.settings, reference))
        return RatioPrediction(ratio=sum_ratio * factor, sum_ratio=sum_ratio, calibration=factor, candidate=candidate)

    def calibrate(self, arch_hash: str, prediction: LatencyPrediction, measured_ms: float) -> None:
        """Record a network's measured latency against its sum of units, for later predictions."""
        self._record(arch_hash, self.settings.key(), prediction.sum_ms, measured_ms)

    def calibrate_ratio(self, arch_hash: str, prediction: RatioPrediction, reference: ArchSpec,
                        measured_ratio: float) -> None:
        """Record a network's measured ratio to ``reference`` against its ratio of sums of units."""
        self._record(arch_hash, _ratio_key(self.settings, reference), prediction.sum_ratio, measured_ratio)

    def _record(self, arch_hash: str, key: str, predicted: float, measured: float) -> None:
        if self.calibration is None:
            raise ValueError("this predictor has no calibration table to record into")
        self.calibration.add(arch_hash, self.device_name, key, predicted, measured)

    def calibration_factor(self, key: str | None = None) -> float:
        """The median of measured / predicted over the calibrated networks (of absolute latencies, or of
        ratios to one reference under ``key``), or 1 with too few of them."""
        if self.calibration is None:
            return 1.0
        ratios = self.calibration.ratios(self.device_name, key or self.settings.key())
        return statistics.median(ratios) if len(ratios) >= MIN_CALIBRATION_NETWORKS else 1.0


def _measure_in_rounds(models: Sequence[nn.Module], settings: LatencySettings) -> list[LatencyResult]:
    """The predictor's timer: units timed together in the protocol's rounds, as networks are."""
    return measure_together(models, settings, ROUNDS)


def _ratio_key(settings: LatencySettings, reference: ArchSpec) -> str:
    """The calibration table's key for ratios to ``reference``: apart from absolute latencies' and other references'."""
    return f"{settings.key()}|ratio to {reference.arch_hash}"


def walk_units(spec: ArchSpec, image_size: tuple[int, int], num_classes: int, shapes_of: ShapesOf) -> None:
    """Call ``shapes_of`` on every unit of ``spec``'s deploy form, in the order the network runs them."""
    shapes: dict[Ref, Shape] = {IMAGE: (spec.in_channels, *image_size)}
    for node in spec.topology().nodes:
        kind = NODE_KINDS[node.kind]
        if node.training_only:  # deploy drops it
            continue
        last = None
        for piece in kind.units(node):
            unit = Unit(kind.unit_kind, kind.label(piece), piece.component,
                        tuple(shapes[ref] for ref in piece.inputs), piece, spec.norm,
                        kind.unit_details(piece, num_classes, image_size), num_classes, tuple(image_size))
            shapes.update({piece.output(index): shape for index, shape in enumerate(shapes_of(unit))})
            last = piece
        # A node without units (an empty chain: no stem, a resting branch) passes its input on.
        outputs = [last.output(index) for index in range(len(node.outputs))] if last else list(node.inputs)
        shapes.update({node.output(index): shapes[ref] for index, ref in enumerate(outputs)})
