"""Study files: which space, data, training recipe, objectives, sampler, budget, latency and constraints.

Every section is a frozen, typed dataclass parsed by the one schema (``archsearch.schema``:
declared fields only, types checked, ``validate`` for the rest), so an error names the study
file, the key path, the bad value and what is allowed, in the same words as a spec's.
Everything is checked when the file is read, before any trial starts. The run directory's
copy of the study (``study.yaml``) is read back through the same sections (``parse_record``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping, TypeVar

from archsearch.data.augmentation import AugmentationConfig
from archsearch.errors import SpecError
from archsearch.schema import parse_dataclass, require, unknown_key
from archsearch.io import MAX_YAML_DEPTH, parse_yaml, read_yaml
from archsearch.latency.settings import PREDICTOR_BACKENDS, LatencySettings
from archsearch.latency.budget import Constraint, LatencyBudget
from archsearch.latency.placement import TimingPlacement
from archsearch.race.decision import DEFAULT_RULE, DEFAULT_TEST, RaceRules, Rule
from archsearch.race.model import Test
from archsearch.runtime import RuntimeSettings
from archsearch.train.proxy_names import PROXY_NAMES
from archsearch.space.bounds import check_fixed, narrowed_parameters
from archsearch.space.sampling import Space, load_space, parse_space
from archsearch.study.metrics import (LATENCY_METRICS, METRIC_INFO, METRICS, PROXY_PREFIX, ConstraintMetric,
                                      Direction)
from archsearch.storage_url import connection_url, masked
from archsearch.supernet.settings import SupernetSettings
from archsearch.train.config import TrainConfig

ProxyName = Literal[PROXY_NAMES]
SamplerName = Literal["tpe", "nsga2", "random", "grid"]
PrunerName = Literal["none", "median", "percentile", "successive_halving", "hyperband"]
Backend = Literal["optuna", "ray"]
SAMPLERS: tuple[str, ...] = typing.get_args(SamplerName)
PRUNERS: tuple[str, ...] = typing.get_args(PrunerName)
BACKENDS: tuple[str, ...] = typing.get_args(Backend)
DEFAULT_INPUT_SIZE = (512, 1024)
# A study's name names its run directory (runs/<name>) and its study in the storage: one plain path part.
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
STUDY_NAME_RULE = ("letters, digits, '_', '-' and '.', starting with a letter or digit, at most 100 characters "
                   "(the run directory is runs/<name>)")
DEFAULT_OBJECTIVES = ({"metric": "miou", "direction": "maximize"},)


@dataclass(frozen=True)
class Objective:
    """``metric`` is one of METRICS, or ``proxy.<name>`` for a zero-cost proxy the study computes."""

    metric: str
    direction: Direction

    def validate(self) -> None:
        require(self.metric in METRICS or self.metric.startswith(PROXY_PREFIX), "unknown metric", path="metric",
                value=self.metric, allowed=", ".join(METRICS) + f", {PROXY_PREFIX}<name> (with proxies: [...])")


@dataclass(frozen=True)
class Bounds:
    """``{max: X}`` and/or ``{min: Y}`` on one metric; ``reference`` (latency_ratio only): the network
    the ratio is to, a preset name or a spec file relative to the study file."""

    max: float | None = None
    min: float | None = None
    reference: str | None = None

    def validate(self) -> None:
        require(self.max is not None or self.min is not None, "expected {max: X} and/or {min: Y}", path="",
                value={}, allowed="max, min")
        for name, value in (("max", self.max), ("min", self.min)):
            require(value is None or math.isfinite(value), "expected a finite number", path=name, value=value)
        # Every metric constrained (latency, MACs, parameters) is > 0: nothing could meet such a maximum.
        require(self.max is None or self.max > 0, "a maximum of 0 or less makes every point infeasible", path="max",
                value=self.max, allowed="a number > 0")
        require(self.min is None or self.max is None or self.min <= self.max, "the minimum is above the maximum",
                path="", value={"min": self.min, "max": self.max}, allowed="min <= max")


@dataclass(frozen=True)
class Screening:
    """Predict latency from per-block timings before measuring; a point predicted over the latency
    budget by more than ``margin`` (a fraction of it) is infeasible and is never built or timed whole.
    Points that pass are measured, and the measurement decides."""

    margin: float = 0.1

    def validate(self) -> None:
        require(self.margin >= 0, "expected a number >= 0 (a fraction of the latency budget)", path="margin",
                value=self.margin)


@dataclass(frozen=True)
class RaceSettings:
    """Seeds raced onto the contenders (see race.decision): ``min`` seeds for every architecture, then a
    seed a round, up to ``max``, for those the ``rule`` keeps in the race at ``confidence``: ``posterior``,
    those that could still be the best (the ``top`` best) after their remaining seeds; ``test``, those a
    one-sided ``test`` cannot yet tell from the best. The seeds are 0, 1, ... in that order."""

    min: int = 2
    max: int = 8
    confidence: float = 0.95
    top: int = 1
    test: Test = DEFAULT_TEST
    rule: Rule = DEFAULT_RULE

    def validate(self) -> None:
        require(self.min >= 2, "a race measures seed-to-seed spread, which needs 2 seeds", path="min",
                value=self.min, allowed="an integer >= 2")
        require(self.min <= self.max <= 1000, "expected min <= max <= 1000", path="max", value=self.max,
                allowed=f"an integer from {self.min} to 1000")
        require(0.5 <= self.confidence < 1, "expected a confidence from 0.5 to below 1", path="confidence",
                value=self.confidence, allowed="e.g. 0.9, 0.95, 0.99")
        require(self.top >= 1, "expected a positive integer", path="top", value=self.top)

    def rules(self) -> RaceRules:
        return RaceRules(minimum=self.min, maximum=self.max, confidence=self.confidence, top=self.top, test=self.test,
                         rule=self.rule)


@dataclass(frozen=True)
class RacingSeeds:
    """``seeds: {race: {...}}``: the other form of a study's seeds (the plain one is a list)."""

    race: RaceSettings


@dataclass(frozen=True)
class DatasetConfig:
    """``name`` and ``root`` are the section's own fields; every other key goes to the dataset (checked there)."""

    name: str = "synthetic"
    root: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetFields:
    name: str = "synthetic"
    root: str | None = None

    def validate(self) -> None:
        from archsearch.data.registry import DATASET_NAMES
        require(self.name in DATASET_NAMES, "unknown dataset", path="name", value=self.name,
                allowed=", ".join(DATASET_NAMES))


@dataclass(frozen=True)
class SamplerFields:
    """``name`` and ``seed``; every other key is an option of Optuna's sampler class (checked by it)."""

    name: SamplerName = "tpe"
    seed: int = 0

    def validate(self) -> None:
        require(0 <= self.seed < 2**32, "expected an integer from 0 to 2**32 - 1", path="seed", value=self.seed)


@dataclass(frozen=True)
class PrunerFields:
    """``name``; every other key is an option of the pruner (checked by Optuna's class or ASHA's settings)."""

    name: PrunerName = "none"


@dataclass(frozen=True)
class Resources:
    """What one trial asks Ray for."""

    cpu: float = 1.0
    gpu: float = 0.0

    def validate(self) -> None:
        for name in ("cpu", "gpu"):
            require(getattr(self, name) >= 0, "expected a non-negative number", path=name, value=getattr(self, name))


@dataclass(frozen=True)
class LatencySection:
    """A study's ``latency:`` section: how a point is timed (LatencySettings, every key but one) and, under
    ``placement``, on which Ray node (the Ray backend's; none: where the trial runs)."""

    settings: LatencySettings
    placement: TimingPlacement | None = None

    PLACEMENT: ClassVar[str] = "placement"
    FIELD_DESCRIPTION: ClassVar[str] = "a mapping of latency settings (device, dtype, ...) and placement"

    @classmethod
    def parse_field(cls, value: Any, path: str) -> "LatencySection":
        """The schema's hook: ``placement`` parsed as TimingPlacement, every other key as LatencySettings."""
        declared = [item.name for item in dataclasses.fields(LatencySettings)] + [cls.PLACEMENT]
        if not isinstance(value, Mapping):
            raise SpecError("expected a mapping", path=path, value=value, allowed=f"a mapping of {', '.join(declared)}")
        for key in value:
            if key not in declared:
                raise unknown_key(key, tuple(declared), f"{path}.")
        settings = {key: item for key, item in value.items() if key != cls.PLACEMENT}
        placement = value.get(cls.PLACEMENT)
        return cls(settings=parse_dataclass(LatencySettings, settings, path),
                   placement=None if placement is None else parse_dataclass(TimingPlacement, placement,
                                                                            f"{path}.{cls.PLACEMENT}"))


def _check_size(size: tuple[int, ...], path: str) -> None:
    require(len(size) == 2 and all(side > 0 for side in size), "expected [height, width] with positive integers",
            path=path, value=list(size))


@dataclass(frozen=True)
class StudyFile:
    """A study file as written: its sections typed and checked, its paths not yet resolved.

    ``training`` is checked by its own config (TrainConfig), ``latency`` is LatencySettings (and a placement);
    ``parameters`` by the space; ``dataset``, ``sampler`` and ``pruner`` options by their classes.
    """

    space: str
    training: dict[str, Any] | Literal["none"]  # none: nothing is trained (a search on proxies and costs)
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    fix: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE
    objectives: tuple[Objective, ...] = (Objective("miou", "maximize"),)
    sampler: str | dict[str, Any] | None = None
    pruner: str | dict[str, Any] | None = None
    trials: int = 10
    seeds: tuple[int, ...] | RacingSeeds = (0,)  # a list: every point with every seed; {race: ...}: raced
    storage: str | None = None
    latency: LatencySection | None = None  # its input_size, unless given, is the study's
    constraints: dict[ConstraintMetric, Bounds] = field(default_factory=dict)
    screening: Screening | None = None
    backend: Backend = "optuna"
    resources: Resources = field(default_factory=Resources)
    proxies: tuple[ProxyName, ...] = ()  # zero-cost proxies scored at initialization, before training
    supernet: SupernetSettings | None = None  # trials evaluate subnets of one trained supernet
    runtime: RuntimeSettings | None = None  # OpenMP's waiting over archsearch's defaults; applied before torch loads

    def validate(self) -> None:
        require(self.name is None or STUDY_NAME.fullmatch(self.name) is not None, "not a study name", path="name",
                value=self.name, allowed=STUDY_NAME_RULE)
        _check_size(self.input_size, "input_size")
        require(bool(self.objectives), "expected a non-empty list of {metric, direction}", path="objectives",
                value=[])
        metrics = [objective.metric for objective in self.objectives]
        require(len(set(metrics)) == len(metrics), "a metric is named twice", path="objectives", value=metrics)
        require(len(set(self.proxies)) == len(self.proxies), "a proxy is named twice", path="proxies",
                value=list(self.proxies))
        for index, metric in enumerate(metrics):
            if metric.startswith(PROXY_PREFIX):
                require(metric.removeprefix(PROXY_PREFIX) in self.proxies, "a proxy objective needs that proxy",
                        path=f"objectives[{index}].metric", value=metric,
                        allowed=f"a proxy named under proxies: ({', '.join(self.proxies) or 'none named'})")
            if self.training == "none":
                require(metric != "miou", "nothing is trained, so there is no mIoU", path=f"objectives[{index}].metric",
                        value=metric, allowed="a proxy.<name>, a cost, or a training recipe under training:")
        self._check_supernet(metrics)
        require(self.trials >= 1, "expected a positive integer", path="trials", value=self.trials)
        if not isinstance(self.seeds, RacingSeeds):
            require(bool(self.seeds) and len(set(self.seeds)) == len(self.seeds),
                    "expected a non-empty list of distinct integers", path="seeds", value=list(self.seeds))
            for index, seed in enumerate(self.seeds):  # torch, numpy and Optuna take 32-bit seeds
                require(0 <= seed < 2**32, "seed out of range", path=f"seeds[{index}]", value=seed,
                        allowed="an integer from 0 to 2**32 - 1")
        require(self.storage is None or "://" in self.storage, "expected an SQLAlchemy URL", path="storage",
                value=masked(self.storage) if self.storage is not None else None,
                allowed="sqlite:///path.db, postgresql://user@host/db, ... (null: SQLite in the run directory)")
        for metric in LATENCY_METRICS:
            if self.latency is None:
                require(metric not in self.constraints, "a latency constraint needs latency settings",
                        path=f"constraints.{metric}", value=_plain(self.constraints.get(metric)),
                        allowed="add a latency: section (device, dtype, ...)")
                require(metric not in metrics, "a latency objective needs latency settings", path="objectives",
                        value=metric, allowed="add a latency: section (device, dtype, ...)")
        require("latency_ratio" not in metrics or "latency_ratio" in self.constraints,
                "a latency_ratio objective needs a reference network", path="objectives", value="latency_ratio",
                allowed="add constraints: {latency_ratio: {reference: NAME}} (a max is optional)")
        for metric, bounds in self.constraints.items():
            for limit in ("min", "max"):
                require(getattr(bounds, limit) is None or limit in METRIC_INFO[metric].limits,
                        f"{metric} takes no {limit}imum", path=f"constraints.{metric}.{limit}",
                        value=getattr(bounds, limit), allowed=", ".join(METRIC_INFO[metric].limits))
            require((bounds.reference is not None) == (metric == "latency_ratio"),
                    "a latency ratio needs the network it is relative to" if metric == "latency_ratio"
                    else "only a latency_ratio has a reference network", path=f"constraints.{metric}.reference",
                    value=bounds.reference, allowed="a preset name or a spec file" if metric == "latency_ratio"
                    else "no reference")

    def _check_supernet(self, metrics: list[str]) -> None:
        """With a supernet, trials are ranked on it (supernet_miou) and not trained stand-alone (no miou)."""
        for index, metric in enumerate(metrics):
            if metric == "supernet_miou":
                require(self.supernet is not None, "supernet_miou needs a supernet", path=f"objectives[{index}].metric",
                        value=metric, allowed="add supernet: {iterations: N}")
            if metric == "miou" and self.supernet is not None:
                require(False, "with a supernet, trials are not trained stand-alone", path=f"objectives[{index}].metric",
                        value=metric, allowed="supernet_miou, a cost or a proxy")
        if self.supernet is not None:
            require(self.training != "none", "the supernet is trained with the study's recipe", path="training",
                    value=self.training, allowed="a training recipe")

    def objective_pairs(self) -> list[tuple[str, str]]:
        return [(objective.metric, objective.direction) for objective in self.objectives]


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


@dataclass(frozen=True)
class StudyConfig:
    name: str
    source: str
    space: Space
    space_path: Path
    fix: Mapping[str, Any]
    dataset: DatasetConfig
    augmentation: AugmentationConfig
    input_size: tuple[int, int]
    training: TrainConfig | None  # None: ``training: none``, a search on zero-cost proxies and costs alone
    objectives: tuple[Objective, ...]
    sampler: str
    sampler_seed: int
    sampler_options: Mapping[str, Any]
    pruner: str
    pruner_options: Mapping[str, Any]
    trials: int
    seeds: tuple[int, ...]
    storage: str | None  # the URL to connect with, its password included: never to be written or printed as is
    latency: LatencySettings | None
    constraints: tuple[Constraint, ...]
    screening: Screening | None
    backend: str
    resources: Resources
    proxies: tuple[str, ...] = ()
    supernet: SupernetSettings | None = None
    runtime: RuntimeSettings | None = None  # None: no runtime: section (archsearch's defaults)
    race: RaceRules | None = None  # seeds raced onto the contenders; ``seeds`` then lists the race's seeds
    placement: TimingPlacement | None = None  # latency.placement: the Ray node every timing runs on
    raw: Mapping[str, Any] = field(compare=False, default_factory=dict)

    @property
    def named_metrics(self) -> set[str]:
        """The metrics the study optimises or bounds: those a trial must compute."""
        return {objective.metric for objective in self.objectives} | {c.metric for c in self.constraints}

    @cached_property
    def budget(self) -> LatencyBudget:
        """The study's constraints and screening as the one object trials ask "within budget?" (built once)."""
        return LatencyBudget.of(self.constraints, self.screening.margin if self.screening is not None else None)

    @property
    def initial_seeds(self) -> tuple[int, ...]:
        """The seeds a new point is trained with at once: all of them, or a race's first ``min``."""
        return self.seeds[:self.race.minimum] if self.race is not None else self.seeds

    def with_overrides(self, *, trials: int | None = None, backend: str | None = None) -> "StudyConfig":
        return replace(self, trials=trials if trials is not None else self.trials,
                       backend=backend if backend is not None else self.backend)


Fields = TypeVar("Fields")


def parse_with_options(target: type[Fields], value: Any, path: str) -> tuple[Fields, dict[str, Any]]:
    """``{name: x, ...}`` (or a bare name): the keys ``target`` declares, typed, and the rest as options."""
    data = {"name": value} if isinstance(value, str) else dict(value or {})
    declared = {item.name for item in dataclasses.fields(target)}
    own = {key: item for key, item in data.items() if key in declared}
    return parse_dataclass(target, own, path), {key: item for key, item in data.items() if key not in declared}


def parse_record(data: Any, *, source: str) -> StudyFile:
    """A study's sections, checked, without opening its space or data: how a run directory's
    ``study.yaml`` is read back (report, export), and the first step of ``parse_study``."""
    if not isinstance(data, Mapping):
        raise SpecError("a study must be a mapping", value=type(data).__name__,
                        allowed=", ".join(item.name for item in dataclasses.fields(StudyFile)), source=source)
    try:
        return parse_dataclass(StudyFile, data, "")
    except SpecError as error:
        raise error.with_source(source) from None


def parse_study(data: Any, *, source: str, base_dir: Path) -> StudyConfig:
    """Check a study mapping; relative paths (space, dataset root, storage) are relative to ``base_dir``."""
    study = parse_record(data, source=source)
    try:
        return _resolve(study, dict(data), source, base_dir)
    except SpecError as error:
        raise error.with_source(source) from None


def _resolve(study: StudyFile, raw: dict[str, Any], source: str, base_dir: Path) -> StudyConfig:
    """The checks a study needs beyond its sections' own: files on disk, and sections that depend on each other."""
    space_path, space, fix = _space(study, base_dir)
    sampler, sampler_options = parse_with_options(SamplerFields, study.sampler, "sampler")
    pruner, pruner_options = parse_with_options(PrunerFields, study.pruner, "pruner")
    require(pruner.name == "none" or len(study.objectives) == 1, "pruning needs a single objective",
            path="pruner.name", value=pruner.name, allowed="none (with several objectives)")
    require(pruner.name == "none" or study.training != "none", "pruning stops training early, and nothing is trained",
            path="pruner.name", value=pruner.name, allowed="none")
    latency = _latency(study, raw)
    racing = isinstance(study.seeds, RacingSeeds)
    constraints = tuple(Constraint(metric, bounds.max, bounds.min,
                                   _latency_reference(bounds.reference, base_dir) if bounds.reference else None)
                        for metric, bounds in study.constraints.items())
    _check_screening(study, constraints, latency)
    if study.storage is not None:  # what is written (study.yaml, a dry run) shows the URL's password masked
        raw["storage"] = masked(study.storage)
    name = study.name or Path(source).stem
    require(STUDY_NAME.fullmatch(name) is not None, "the study has no name, and its file's name is not one",
            path="name", value=name, allowed=f"{STUDY_NAME_RULE}; add a name: to the study")
    return StudyConfig(
        name=name, source=source, space=space, space_path=space_path, fix=fix,
        dataset=_dataset(study.dataset, base_dir), augmentation=study.augmentation, input_size=study.input_size,
        training=None if study.training == "none" else TrainConfig.from_dict(study.training, source),
        objectives=study.objectives,
        sampler=sampler.name, sampler_seed=sampler.seed, sampler_options=sampler_options, pruner=pruner.name,
        pruner_options=pruner_options, trials=study.trials,
        seeds=tuple(range(study.seeds.race.max)) if racing else study.seeds,
        storage=connection_url(study.storage) if study.storage is not None else None,
        latency=latency, constraints=constraints, screening=study.screening, backend=study.backend,
        resources=study.resources, proxies=study.proxies, supernet=study.supernet,
        runtime=study.runtime,
        race=study.seeds.race.rules() if racing else None,
        placement=study.latency.placement if study.latency is not None else None, raw=raw)


def _space(study: StudyFile, base_dir: Path) -> tuple[Path, Space, dict[str, Any]]:
    """The space file, with the study's ``parameters`` narrowing some definitions (e.g. fewer widths), and the
    ``fix`` values as sampling takes them: the one check that both lie inside the space, before any trial."""
    space_path = (base_dir / study.space).resolve()
    require(space_path.exists(), "no such space file", path="space", value=str(space_path))
    space = load_space(space_path)
    for group in ("parameters", "fix"):
        for name in getattr(study, group):
            require(name in space.parameters, "not a parameter of the space", path=f"{group}.{name}", value=name,
                    allowed=", ".join(space.parameters))
    if study.parameters:
        merged = parse_space({"name": space.name, "parameters": narrowed_parameters(space, study.parameters),
                              "spec": dict(space.template)})
        space = replace(space, parameters=merged.parameters)
    return space_path, space, check_fixed(space, study.fix)


def _dataset(data: Mapping[str, Any], base_dir: Path) -> DatasetConfig:
    fields, options = parse_with_options(DatasetFields, data, "dataset")
    root = (base_dir / fields.root).resolve() if fields.root is not None else None
    if fields.name != "synthetic":  # whether it is there is checked when the data is (a dry run reads none)
        require(root is not None, f"dataset {fields.name!r} needs a root directory", path="dataset.root", value=None,
                allowed="the directory holding the dataset")
    return DatasetConfig(name=fields.name, root=root, options=options)


def _latency(study: StudyFile, raw: Mapping[str, Any]) -> LatencySettings | None:
    """The latency section's settings, timing the study's input size unless it names its own."""
    if study.latency is None or "input_size" in (raw.get("latency") or {}):
        return study.latency.settings if study.latency is not None else None
    return replace(study.latency.settings, input_size=study.input_size)


def _check_screening(study: StudyFile, constraints: tuple[Constraint, ...], latency: LatencySettings | None) -> None:
    if study.screening is None:
        return
    require(any(constraint.metric in LATENCY_METRICS and constraint.maximum is not None for constraint in constraints),
            "screening leaves out points predicted over the latency budget, and there is none", path="screening",
            value=_plain(study.screening),
            allowed="add constraints: {latency_ms: {max: MS}} or {latency_ratio: {max: R, reference: NAME}}")
    require(latency.backend in PREDICTOR_BACKENDS,
            "the latency predictor sums blocks timed one by one, which describes the eager backend only",
            path="latency.backend", value=latency.backend, allowed=", ".join(PREDICTOR_BACKENDS))


def _latency_reference(value: str, base_dir: Path) -> str:
    """A preset name as it is, or a spec file's absolute path (relative to the study file); the spec is checked."""
    from archsearch.arch.presets import preset_names

    path = "constraints.latency_ratio.reference"
    allowed = f"a spec YAML file (relative to the study file) or one of: {', '.join(preset_names())}"
    if value in preset_names():
        return value
    spec_path = (base_dir / value).resolve()
    require(spec_path.exists(), "unknown preset and no such spec file", path=path, value=value, allowed=allowed)
    from archsearch.arch.build import resolve_spec  # a network of its own: parsed (with torch) to be checked

    try:
        resolve_spec(str(spec_path))
    except SpecError as error:
        raise SpecError(f"the reference spec is not valid: {error}", path=path, value=value,
                        allowed=allowed) from None
    return str(spec_path)


def set_value(data: dict[str, Any], assignment: str) -> str:
    """Apply one ``--set key.path=value`` (value read as YAML 1.2) to raw study data; returns the key path."""
    key, equals, text = assignment.partition("=")
    parts = key.split(".")
    if not equals or not all(parts):
        raise SpecError("expected key=value", value=assignment, allowed="e.g. training.iterations=50",
                        source="--set")
    if len(parts) > MAX_YAML_DEPTH:
        raise SpecError(f"a key path deeper than {MAX_YAML_DEPTH} levels", value=key,
                        allowed=f"at most {MAX_YAML_DEPTH} dotted parts", source="--set")
    _assign(data, parts, parse_yaml(text, source=f"--set {key}"), assignment)
    return key


def _assign(data: dict[str, Any], parts: list[str], value: Any, assignment: str) -> None:
    """Put ``value`` at the key path ``parts``, making the mappings on the way."""
    target = data
    for depth, part in enumerate(parts[:-1]):
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        if not isinstance(child, dict):
            raise SpecError("cannot set inside a value that is not a mapping", path=".".join(parts[:depth + 1]),
                            value=child, source=f"--set {assignment}")
        target = child
    target[parts[-1]] = value


def load_study(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
               flags: Mapping[str, tuple[str, Any]] | None = None) -> StudyConfig:
    """Read a study file with ``--set`` overrides, then ``flags`` (key path -> (flag, value as typed), e.g.
    ``{"training.device": ("--device", "cuda:1")}``); an error in an overridden value names its ``--set`` or
    flag (a flag's own error shows no key path: the flag is the user's name for it)."""
    path = Path(path)
    data = read_yaml(path)
    sources: dict[str, str] = {}
    empty: set[str] = set()  # keys a --set gave no text (read as null), shown as '' in an error
    if (overrides or flags) and not isinstance(data, dict):
        raise SpecError("a study must be a mapping", value=type(data).__name__, source=str(path))
    for assignment in overrides:
        key = set_value(data, assignment)
        shown = f"storage={masked(assignment.partition('=')[2])}" if key == "storage" else assignment
        sources[key] = f"--set {shown} (over {path})"
        if not assignment.partition("=")[2].strip():
            empty.add(key)
    for key, (flag, value) in (flags or {}).items():
        _assign(data, key.split("."), value, f"{key}={value}")
        sources[key] = flag
    try:
        return parse_study(data, source=str(path), base_dir=path.parent)
    except SpecError as error:
        for key, source in sources.items():
            if error.path == key or error.path.startswith((f"{key}.", f"{key}[")):
                key_path = "" if flags and key in flags and error.path == key else error.path
                value = "" if key in empty and error.path == key and error.value is None else error.value
                raise SpecError(error.message, path=key_path, value=value, allowed=error.allowed,
                                source=source) from None
        raise
