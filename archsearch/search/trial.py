"""One trial: a concrete spec and a seed in, metrics out (analysis, latency, training, evaluation).

The trial never reads the study file again; it gets the parsed StudyConfig and a spec.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from typing import Any, Callable, Mapping

import torch

from archsearch.arch.analyze import Analysis, analyze
from archsearch.arch.build import build
from archsearch.data import build_dataset, eval_transforms
from archsearch.arch.deploy import deploy
from archsearch.io import write_state_dict
from archsearch.latency import LatencyCache, cached_latency
from archsearch.latency.predictor import LatencyPredictor, default_unit_table_path
from archsearch.latency.unit_table import CalibrationTable, UnitLatencyTable
from archsearch.search.config import StudyConfig
from archsearch.run.directory import RunDirectory
from archsearch.arch.spec import ArchSpec
from archsearch.train import loader_settings, make_loader, train_and_evaluate


@dataclass
class TrialMetrics:
    """What one trial measured; ``infeasible`` points carry their cost but no mIoU."""

    arch_hash: str
    seed: int
    num_classes: int
    params_train: int
    params_deploy: int
    macs: int
    receptive_field: int
    output_stride: int
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    latency_repeats: int | None = None          # with the spread: the trial's own latency record
    latency_device: str | None = None
    latency_backend: str | None = None
    latency_settings: str | None = None         # LatencySettings as canonical JSON
    latency_predicted_ms: float | None = None
    latency_cached: bool | None = None
    latency_seconds: float | None = None
    miou: float | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    data_wait_fraction: float | None = None
    trial_seconds: float | None = None
    infeasible: bool = False
    constraint_violations: tuple[float, ...] = ()

    def value(self, metric: str) -> float | None:
        if metric == "latency_ms" and self.latency_ms is None:
            return self.latency_predicted_ms  # a point screened out by the predictor is never measured
        return getattr(self, metric)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "TrialMetrics":
        """Metrics back from ``to_attrs`` data (a Ray result, say); other keys are left out."""
        known = {field.name for field in fields(cls)}
        data = {key: value for key, value in attrs.items() if key in known}
        data["constraint_violations"] = tuple(data.get("constraint_violations") or ())
        return cls(**data)

    def to_attrs(self) -> dict:
        data = asdict(self)
        data["constraint_violations"] = list(self.constraint_violations)
        return data


def study_datasets(study: StudyConfig):
    """The study's train split (with its augmentation) and val split (``dataset.train_split`` and
    ``dataset.val_split``, default train and val; ``train+val`` joins two)."""
    dataset = study.dataset
    options = dict(dataset.options)
    train_split, val_split = options.pop("train_split", "train"), options.pop("val_split", "val")
    train = build_dataset(dataset.name, dataset.root, train_split,
                          study.augmentation.train_transforms(study.input_size), **options)
    val = build_dataset(dataset.name, dataset.root, val_split, eval_transforms(), **options)
    return train, val


def check_data(study: StudyConfig) -> None:
    """Build both splits and read their first sample: bad data is bad input, found before any trial runs."""
    for split in study_datasets(study):
        split[0]


class TrialRunner:
    """Runs trials of one study; data sets and the latency cache are opened once per process."""

    def __init__(self, study: StudyConfig, run_dir: RunDirectory) -> None:
        self.study = study
        self.run_dir = run_dir
        self._analyses: dict[str, Analysis] = {}

    @cached_property
    def _datasets(self):
        return study_datasets(self.study)

    @property
    def num_classes(self) -> int:
        return self._datasets[0].num_classes

    @cached_property
    def _latency_cache(self) -> LatencyCache:
        return LatencyCache(self.run_dir.latency_cache)

    def analyze_point(self, spec: ArchSpec, seed: int) -> TrialMetrics:
        """Params, MACs and receptive field, counted once per architecture (its other seeds reuse them)."""
        analysis = self._analyses.get(spec.arch_hash)
        if analysis is None:
            analysis = self._analyses[spec.arch_hash] = analyze(spec, self.study.input_size,
                                                                num_classes=self.num_classes)
        return TrialMetrics(arch_hash=spec.arch_hash, seed=seed, num_classes=analysis.num_classes,
                            params_train=analysis.params_train,
                            params_deploy=analysis.params_deploy, macs=analysis.macs,
                            receptive_field=analysis.receptive_field, output_stride=analysis.output_stride)

    @cached_property
    def _latency_predictor(self) -> LatencyPredictor:
        return LatencyPredictor(UnitLatencyTable(default_unit_table_path()), self.study.latency,
                                calibration=CalibrationTable(self.run_dir.latency_cache))

    def measure(self, spec: ArchSpec, metrics: TrialMetrics) -> TrialMetrics:
        """Time the deploy form (cached per architecture) and check the constraints; training comes after.

        With screening, the predicted latency comes first: a point predicted over the budget by
        more than the margin is infeasible at the cost of a table lookup, and is never built whole.
        """
        if self.study.latency is not None:
            started = time.perf_counter()
            prediction = None
            if self.study.screening is not None:
                prediction = self._latency_predictor.predict(spec, num_classes=self.num_classes)
                metrics = replace(metrics, latency_predicted_ms=prediction.median_ms)
                if prediction.median_ms > self._screening_limit_ms:
                    return self._checked(replace(metrics, latency_seconds=time.perf_counter() - started))
            result, cached = cached_latency(self._latency_cache, spec.arch_hash,
                                            lambda: deploy(build(spec, num_classes=self.num_classes)),
                                            self.study.latency)
            if prediction is not None:  # every confirmed point sharpens the next predictions
                self._latency_predictor.calibrate(spec.arch_hash, prediction, result.median_ms)
            metrics = replace(metrics, latency_ms=result.median_ms, latency_iqr_ms=result.iqr_ms,
                              latency_repeats=result.repeats, latency_device=result.device_name,
                              latency_backend=result.backend, latency_settings=result.settings.key(),
                              latency_cached=cached, latency_seconds=time.perf_counter() - started)
        return self._checked(metrics)

    @property
    def _screening_limit_ms(self) -> float:
        budget = min(constraint.maximum for constraint in self.study.constraints
                     if constraint.metric == "latency_ms" and constraint.maximum is not None)
        return budget * (1 + self.study.screening.margin)

    def _checked(self, metrics: TrialMetrics) -> TrialMetrics:
        violations = tuple(constraint.violation(metrics.value(constraint.metric))
                           for constraint in self.study.constraints)
        return replace(metrics, constraint_violations=violations, infeasible=any(v > 0 for v in violations))

    def train(self, spec: ArchSpec, metrics: TrialMetrics, trial_number: int,
              on_evaluation: Callable[[int, float], None] | None) -> TrialMetrics:
        started = time.perf_counter()
        train_set, val_set = self._datasets
        config = replace(self.study.training, seed=metrics.seed)
        torch.manual_seed(metrics.seed)
        model = build(spec, num_classes=self.num_classes)
        loading = loader_settings(config)
        train_loader = make_loader(train_set, config.batch_size, shuffle=True, seed=metrics.seed, drop_last=True,
                                   **loading)
        val_loader = make_loader(val_set, config.batch_size, shuffle=False, seed=metrics.seed, **loading)
        result = train_and_evaluate(model, train_loader, val_loader, config, on_evaluation=on_evaluation)
        write_state_dict(self.run_dir.weights_path(trial_number), model.state_dict())
        return replace(metrics, miou=result.miou, train_seconds=result.train_seconds,
                       eval_seconds=result.eval_seconds, data_wait_fraction=result.data_wait_fraction,
                       trial_seconds=time.perf_counter() - started)
