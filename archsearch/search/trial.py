"""One trial: a concrete spec and a seed in, metrics out (analysis, latency, training, evaluation).

The trial never reads the study file again; it gets the parsed StudyConfig and a spec.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property, partial
from typing import Any, Callable, Mapping

import torch

from archsearch.arch.analyze import Analysis, analyze
from archsearch.arch.build import build
from archsearch.data.class_uniform import ClassUniformSampler, class_index
from archsearch.data.registry import archsearch_cache
from archsearch.errors import SpecError
from archsearch.arch.deploy import deploy
from archsearch.arch.memory import check_fits_inference, check_fits_training
from archsearch.io import write_state_dict, write_text_atomic
from archsearch.latency.budget import judged_value
from archsearch.latency.placement import TimingSite
from archsearch.latency.point import PointLatency, PointTiming
from archsearch.train.proxies import compute_proxies
from archsearch.resources import busy_cpus_elsewhere, threads_for_free_cpus
from archsearch.run.attributes import ARCH_HASH, INFEASIBLE, INTERMEDIATE_PREFIX, PROXY_PREFIX, SEED
from archsearch.study.config import StudyConfig
from archsearch.study.metrics import COMPUTED_METRICS, METRIC_INFO, compute_metric
from archsearch.run.directory import RunDirectory
from archsearch.study.datasets import study_datasets
from archsearch.arch.spec import ArchSpec, load_spec
from archsearch.space.sampling import Primitive
from archsearch.supernet.training import (calibration_batches, checkpoint_step, evaluate_subnet, load_supernet,
                                          train_supernet)
from archsearch.train import TrainConfig, TrainResult, loader_settings, make_loader, train_and_evaluate
from archsearch.train.distributed import train_in_processes

PROXY_BATCHES = 3
PROXY_BATCH_SIZE = 8  # when the study trains nothing, so has no batch size of its own


@dataclass(frozen=True, kw_only=True)
class TrialMetrics(PointLatency):
    """What one trial measured; ``infeasible`` points carry their cost but no mIoU. Its latency fields are
    PointLatency's (the trial's own latency record), declared once there.

    ``proxies`` (zero-cost proxy scores) and ``miou_history`` (the mIoU of every evaluation
    before the last, by step) are flattened into ``proxy.<name>`` and ``miou_at.<step>``
    attributes, so that each is a column of trials.csv and a metric of its own.
    """

    arch_hash: str
    seed: int
    num_classes: int
    params_train: int
    params_deploy: int
    macs: int
    receptive_field: int
    output_stride: int
    miou: float | None = None
    supernet_miou: float | None = None
    miou_best: float | None = None
    miou_best_step: int | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    data_wait_fraction: float | None = None
    trial_seconds: float | None = None
    proxy_seconds: float | None = None
    infeasible: bool = False
    constraint_violations: tuple[float, ...] = ()
    proxies: dict[str, float] = field(default_factory=dict)
    miou_history: dict[int, float] = field(default_factory=dict)
    computed: dict[str, float] = field(default_factory=dict)  # the registry's computed metrics, by name

    def value(self, metric: str) -> float | None:
        """``metric`` as objectives and constraints judge it (a screened-out point: its prediction)."""
        if metric.startswith(PROXY_PREFIX):
            return self.proxies.get(metric.removeprefix(PROXY_PREFIX))
        if metric in METRIC_INFO and METRIC_INFO[metric].compute is not None:
            return self.computed.get(metric)
        return judged_value(metric, lambda name: getattr(self, name))

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "TrialMetrics":
        """Metrics back from ``to_attrs`` data (a Ray result, say); other keys are left out."""
        known = {field.name for field in fields(cls)} - {"proxies", "miou_history", "computed"}
        data = {key: value for key, value in attrs.items() if key in known}
        data["constraint_violations"] = tuple(data.get("constraint_violations") or ())
        data["proxies"] = {key.removeprefix(PROXY_PREFIX): value for key, value in attrs.items()
                           if key.startswith(PROXY_PREFIX) and value is not None}
        data["miou_history"] = {int(key.removeprefix(INTERMEDIATE_PREFIX)): value for key, value in attrs.items()
                                if key.startswith(INTERMEDIATE_PREFIX) and value is not None}
        data["computed"] = {metric.name: attrs[metric.name] for metric in COMPUTED_METRICS
                            if attrs.get(metric.name) is not None}
        return cls(**data)

    def to_attrs(self) -> dict:
        data = asdict(self)
        data["constraint_violations"] = list(self.constraint_violations)
        data.update({f"{PROXY_PREFIX}{name}": value for name, value in data.pop("proxies").items()})
        data.update({f"{INTERMEDIATE_PREFIX}{step}": value for step, value in data.pop("miou_history").items()})
        data.update(data.pop("computed"))
        return data


class TrialRunner:
    """Runs trials of one study; data sets and the latency cache are opened once per process.

    ``timing_site``: where timings run (the Ray backend's placement); by default in this process.
    """

    def __init__(self, study: StudyConfig, run_dir: RunDirectory, *, timing_site: TimingSite | None = None) -> None:
        self.study = study
        self.run_dir = run_dir
        self.timing_site = timing_site
        self._analyses: dict[str, Analysis] = {}
        self._computed: dict[str, dict[str, float]] = {}
        self._class_index: dict | None = None

    @cached_property
    def _datasets(self):
        return study_datasets(self.study)

    @property
    def num_classes(self) -> int:
        return self._datasets[0].num_classes

    def analyze_point(self, spec: ArchSpec, seed: int) -> TrialMetrics:
        """Params, MACs and receptive field, and the registry's computed metrics the study names (as objective or
        constraint), counted once per architecture (its other seeds reuse them)."""
        analysis = self._analyses.get(spec.arch_hash)
        if analysis is None:
            analysis = self._analyses[spec.arch_hash] = analyze(spec, self.study.input_size,
                                                                num_classes=self.num_classes)
        computed = self._computed.get(spec.arch_hash)
        if computed is None:
            device = self.study.latency.device if self.study.latency is not None else "cpu"
            computed = self._computed[spec.arch_hash] = {
                metric.name: self._on_latency_device(compute_metric, metric, spec, self.study.input_size,
                                                     num_classes=self.num_classes, device=device)
                for metric in COMPUTED_METRICS if metric.name in self.study.named_metrics}
        return TrialMetrics(arch_hash=spec.arch_hash, seed=seed, num_classes=analysis.num_classes,
                            params_train=analysis.params_train,
                            params_deploy=analysis.params_deploy, macs=analysis.macs,
                            receptive_field=analysis.receptive_field, output_stride=analysis.output_stride,
                            computed=dict(computed))

    def _on_latency_device(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``function`` where the study's latency device is: on the timing site (placement), else here."""
        if self.timing_site is None:
            return function(*args, **kwargs)
        return self.timing_site.call(function, *args, **kwargs)[0]

    @cached_property
    def _point_timing(self) -> PointTiming:
        return PointTiming(self.study.latency, self.study.budget, self.run_dir.latency_cache,
                           num_classes=self.num_classes, site=self.timing_site)

    def measure(self, spec: ArchSpec, metrics: TrialMetrics) -> TrialMetrics:
        """Time the deploy form (cached per architecture) and check the constraints; training comes after.

        ``PointTiming`` does the timing: screening, the reference timed alongside, re-timing near a
        relative budget.
        """
        if self.study.latency is not None:
            def deployed():  # built only when it is timed (screening may leave it out)
                self._on_latency_device(check_fits_inference, spec, self.study.latency.input_size,
                                        num_classes=self.num_classes, batch_size=self.study.latency.batch_size,
                                        dtype_bytes=self.study.latency.torch_dtype.itemsize,
                                        device=self.study.latency.device)
                return deploy(build(spec, num_classes=self.num_classes))

            point = self._point_timing.measure(spec, deployed)
            metrics = replace(metrics, **point.as_metrics())
        return self._checked(metrics)

    def _checked(self, metrics: TrialMetrics) -> TrialMetrics:
        violations = self.study.budget.violations(metrics.value)
        return replace(metrics, constraint_violations=violations, infeasible=any(v > 0 for v in violations))

    def score_proxies(self, spec: ArchSpec, metrics: TrialMetrics) -> TrialMetrics:
        """The study's zero-cost proxies of the untrained network (built as training would build it, from
        the trial's seed), on the first PROXY_BATCHES batches of the seeded training order."""
        if not self.study.proxies:
            return metrics
        started = time.perf_counter()
        batch_size = self.study.training.batch_size if self.study.training is not None else PROXY_BATCH_SIZE
        loader = make_loader(self._datasets[0], batch_size, shuffle=True, seed=metrics.seed, drop_last=True)
        batches = list(itertools.islice(loader, PROXY_BATCHES))

        def untrained_model() -> torch.nn.Module:
            torch.manual_seed(metrics.seed)
            return build(spec, num_classes=self.num_classes)

        scores = compute_proxies(untrained_model, batches, self.study.proxies)
        return replace(metrics, proxies=scores, proxy_seconds=time.perf_counter() - started)

    def _train_in_processes(self, spec: ArchSpec, metrics: TrialMetrics, trial_number: int,
                            on_evaluation: Callable[[int, float], None] | None, config: TrainConfig,
                            started: float, weights_path: Path | None) -> TrialMetrics:
        """``training.processes`` > 1: one trial as that many processes (archsearch.train.distributed)."""
        if self.study.augmentation.class_uniform_sampling == "per_epoch" and self.study.augmentation.class_uniform_pct:
            raise SpecError("class-uniform epochs are drawn in one process", path="training.processes",
                            value=config.processes, allowed="1 with augmentation.class_uniform_sampling: per_epoch")
        train_set, val_set = self._datasets
        result, weights = train_in_processes(partial(build, spec, num_classes=self.num_classes), train_set, val_set,
                                             config, on_evaluation=on_evaluation)
        write_state_dict(weights_path or self.run_dir.weights_path(trial_number), weights)
        return self._trained(metrics, result, started)

    def _class_uniform_sampler(self, seed: int) -> ClassUniformSampler | None:
        """RegSeg's class-uniform epochs when the augmentation asks for them; the index is built once."""
        augmentation = self.study.augmentation
        if augmentation.class_uniform_sampling != "per_epoch" or augmentation.class_uniform_pct == 0.0:
            return None
        train_set = self._datasets[0]
        if self._class_index is None:
            self._class_index = class_index(train_set, augmentation.class_uniform_tile,
                                            archsearch_cache() / "class_index")
        return ClassUniformSampler(len(train_set), self._class_index, augmentation.class_uniform_pct, seed)

    def training_threads(self) -> int:
        """The torch threads this trial trains with: the study's (torch's count if it names none), or fewer when
        ``training.adapt_threads`` and other processes keep CPUs busy now, between trials."""
        training = self.study.training
        wanted = training.num_threads if training is not None and training.num_threads else torch.get_num_threads()
        if training is None or not training.adapt_threads:
            return wanted
        return threads_for_free_cpus(wanted, busy_cpus_elsewhere())

    def train(self, spec: ArchSpec, metrics: TrialMetrics, trial_number: int,
              on_evaluation: Callable[[int, float], None] | None, *, weights: Path | None = None,
              threads: int | None = None) -> TrialMetrics:
        """Train the point stand-alone and save its weights (at ``weights``, by default the trial's), with
        ``threads`` torch threads (by default the study's)."""
        started = time.perf_counter()
        train_set, val_set = self._datasets
        config = replace(self.study.training, seed=metrics.seed, num_threads=threads or self.study.training.num_threads)
        torch.manual_seed(metrics.seed)
        check_fits_training(spec, self.study.augmentation.crop_size or self.study.input_size,
                            num_classes=self.num_classes, batch_size=config.batch_size // config.processes,
                            device=config.device)
        if config.processes > 1:
            return self._train_in_processes(spec, metrics, trial_number, on_evaluation, config, started, weights)
        model = build(spec, num_classes=self.num_classes)
        loading = loader_settings(config)
        train_loader = make_loader(train_set, config.batch_size, shuffle=True, seed=metrics.seed, drop_last=True,
                                   sampler=self._class_uniform_sampler(metrics.seed), **loading)
        val_loader = make_loader(val_set, config.batch_size, shuffle=False, seed=metrics.seed, **loading)
        result = train_and_evaluate(model, train_loader, val_loader, config, on_evaluation=on_evaluation)
        write_state_dict(weights or self.run_dir.weights_path(trial_number), model.state_dict())
        return self._trained(metrics, result, started)

    @staticmethod
    def _trained(metrics: TrialMetrics, result: TrainResult, started: float) -> TrialMetrics:
        earlier = {step: miou for step, miou in result.history[:-1]}
        return replace(metrics, miou=result.miou, miou_best=result.miou_best, miou_best_step=result.miou_best_step,
                       train_seconds=result.train_seconds, miou_history=earlier,
                       eval_seconds=result.eval_seconds, data_wait_fraction=result.data_wait_fraction,
                       trial_seconds=time.perf_counter() - started)

    # ---------------------------------------------------------------- a study with a supernet

    @property
    def supernet_checkpoint(self):
        return self.run_dir.root / "supernet" / "checkpoint.pt"

    def prepare_supernet(self) -> None:
        """Train the study's supernet to its last step (resuming its checkpoint), once, before any trial.

        Under the run directory's lock, so that processes of one study train it once between them.
        """
        settings, config = self.study.supernet, self.study.training
        with self.run_dir.lock("supernet"):
            if checkpoint_step(self.supernet_checkpoint) >= settings.iterations:
                return
            loader = make_loader(self._datasets[0], config.batch_size, shuffle=True, seed=config.seed,
                                 drop_last=True, **loader_settings(config))
            train_supernet(self.study.space, loader, config, iterations=settings.iterations,
                           sampling=settings.sampling, num_classes=self.num_classes,
                           checkpoint=self.supernet_checkpoint, coverage=settings.coverage)

    @cached_property
    def _supernet(self):
        return load_supernet(self.supernet_checkpoint, self.study.space, num_classes=self.num_classes).to(
            self.study.training.device)

    def evaluate_on_supernet(self, params: Mapping[str, Primitive], metrics: TrialMetrics,
                             trial_number: int) -> TrialMetrics:
        """The point's subnet with inherited weights: BatchNorm recalibrated on the first training batches
        of the trial's seed, then its mIoU on the val split (``supernet_miou``); its weights are the trial's."""
        started = time.perf_counter()
        config = self.study.training
        train_set, val_set = self._datasets
        calibration = calibration_batches(make_loader(train_set, config.batch_size, shuffle=True, seed=metrics.seed,
                                                      drop_last=True), self.study.supernet.calibration_batches)
        val_loader = make_loader(val_set, config.batch_size, shuffle=False, seed=metrics.seed)
        miou, network = evaluate_subnet(self._supernet, dict(params), calibration, val_loader,
                                        num_classes=self.num_classes, ignore_index=config.ignore_index)
        write_state_dict(self.run_dir.weights_path(trial_number), network.state_dict())
        return replace(metrics, supernet_miou=miou, eval_seconds=time.perf_counter() - started)

    def retrain_top(self, trials: list[Any]) -> Path:
        """Train the ``retrain_top`` best points by ``supernet_miou`` stand-alone (once per architecture).

        The study's trials stay as they ended; ``supernet/retrained.csv`` gets one row per point
        (trial, arch_hash, supernet_miou, miou, train_seconds), rewritten after each, and its weights
        go to ``supernet/retrained/<arch_hash>.safetensors``. A run started again skips the points in it.
        """
        import pandas as pd

        table_path = self.run_dir.root / "supernet" / "retrained.csv"
        rows = pd.read_csv(table_path).to_dict("records") if table_path.exists() else []
        done = {row["arch_hash"] for row in rows}
        ranked = sorted((trial for trial in trials if trial.user_attrs.get("supernet_miou") is not None
                         and not trial.user_attrs.get(INFEASIBLE)),
                        key=lambda trial: (-trial.user_attrs["supernet_miou"], trial.number))
        chosen: dict[str, Any] = {}
        for trial in ranked:
            chosen.setdefault(trial.user_attrs[ARCH_HASH], trial)
        for arch_hash, trial in list(chosen.items())[:self.study.supernet.retrain_top]:
            if arch_hash in done:
                continue
            spec = load_spec(self.run_dir.spec_path(arch_hash))
            metrics = self.train(spec, self.analyze_point(spec, trial.user_attrs[SEED]), trial.number, None,
                                 weights=self.run_dir.root / "supernet" / "retrained" / f"{arch_hash}.safetensors")
            rows.append({"trial": trial.number, "arch_hash": arch_hash,
                         "supernet_miou": trial.user_attrs["supernet_miou"], "miou": metrics.miou,
                         "train_seconds": metrics.train_seconds})
            write_text_atomic(table_path, pd.DataFrame(rows).to_csv(index=False))
        return table_path
