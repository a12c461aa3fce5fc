"""Study files: which space, data, training recipe, objectives, sampler, budget, latency and constraints.

Everything is checked when the file is read, before any trial starts; an error names the
study file, the key path, the bad value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from archsearch.data.augmentation import AugmentationConfig
from archsearch.errors import SpecError
from archsearch.latency import LatencySettings
from archsearch.latency.predictor import PREDICTOR_BACKENDS
from archsearch.space.sampling import Space, load_space, parse_space
from archsearch.arch.spec import read_yaml
from archsearch.train import TrainConfig

STUDY_KEYS = ("name", "description", "space", "parameters", "fix", "dataset", "augmentation", "input_size", "training",
              "objectives", "sampler", "pruner", "trials", "seeds", "storage", "latency", "constraints", "screening",
              "backend", "resources")
METRICS = ("miou", "latency_ms", "macs", "params_deploy", "params_train")
DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "nsga2", "random", "grid")
PRUNERS = ("none", "median", "percentile", "successive_halving", "hyperband")
BACKENDS = ("optuna", "ray")
CONSTRAINT_METRICS = ("latency_ms", "macs", "params_deploy", "params_train")
DEFAULT_INPUT_SIZE = (512, 1024)


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric; a point outside it is infeasible and never trains."""

    metric: str
    maximum: float | None = None
    minimum: float | None = None

    def violation(self, value: float) -> float:
        """Optuna's convention: <= 0 is feasible, the size of a violation otherwise."""
        over = value - self.maximum if self.maximum is not None else float("-inf")
        under = self.minimum - value if self.minimum is not None else float("-inf")
        return max(over, under)


@dataclass(frozen=True)
class Screening:
    """Predict latency from per-block timings before measuring; a point predicted over the latency
    budget by more than ``margin`` (a fraction of it) is infeasible and is never built or timed whole.
    Points that pass are measured, and the measurement decides."""

    margin: float = 0.1


@dataclass(frozen=True)
class DatasetConfig:
    name: str = "synthetic"
    root: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


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
    training: TrainConfig
    objectives: tuple[Objective, ...]
    sampler: str
    sampler_seed: int
    sampler_options: Mapping[str, Any]
    pruner: str
    pruner_options: Mapping[str, Any]
    trials: int
    seeds: tuple[int, ...]
    storage: str | None
    latency: LatencySettings | None
    constraints: tuple[Constraint, ...]
    screening: Screening | None
    backend: str
    resources: Mapping[str, float]
    raw: Mapping[str, Any] = field(compare=False, default_factory=dict)

    def with_overrides(self, *, trials: int | None = None, backend: str | None = None) -> "StudyConfig":
        return replace(self, trials=trials if trials is not None else self.trials,
                       backend=backend if backend is not None else self.backend)


def _error(message: str, path: str, value: Any = None, allowed: str = "") -> SpecError:
    return SpecError(message, path=path, value=value, allowed=allowed)


def _positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _error("expected a positive integer", path, value)
    return value


def _size(value: Any, path: str) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2):
        raise _error("expected [height, width]", path, value)
    return _positive_int(value[0], f"{path}[0]"), _positive_int(value[1], f"{path}[1]")


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error("expected a mapping", path, value)
    return value


def _named(value: Any, path: str, names: tuple[str, ...], default: str) -> tuple[str, dict[str, Any]]:
    """``{name: x, ...options}`` or a bare name."""
    if value is None:
        return default, {}
    if isinstance(value, str):
        value = {"name": value}
    data = dict(_mapping(value, path))
    name = data.pop("name", default)
    if name not in names:
        raise _error("unknown name", f"{path}.name", name, ", ".join(names))
    return name, data


def _narrowed(space: Space, overrides: Mapping[str, Any]) -> Space:
    """The space with some parameters' definitions replaced by the study's (e.g. fewer widths)."""
    for name, definition in overrides.items():
        if name not in space.parameters:
            raise _error("not a parameter of the space", f"parameters.{name}", name, ", ".join(space.parameters))
    merged = parse_space({"name": space.name, "parameters": {**space.parameters, **overrides},
                          "spec": dict(space.template)})
    return replace(space, parameters=merged.parameters)


def parse_study(data: Any, *, source: str, base_dir: Path) -> StudyConfig:
    """Check a study mapping; relative paths (space, dataset root, storage) are relative to ``base_dir``."""
    try:
        return _parse(data, source, base_dir)
    except SpecError as error:
        raise error.with_source(source) from None


def _parse(data: Any, source: str, base_dir: Path) -> StudyConfig:
    if not isinstance(data, Mapping):
        raise _error("a study must be a mapping", "", type(data).__name__, ", ".join(STUDY_KEYS))
    for key in data:
        if key not in STUDY_KEYS:
            raise _error("unknown key", str(key), key, ", ".join(STUDY_KEYS))
    for key in ("space", "training"):
        if key not in data:
            raise _error("missing required key", key, allowed=", ".join(STUDY_KEYS))
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise _error("expected a non-empty string", "name", name)

    if not isinstance(data["space"], str):
        raise _error("expected the path of a space YAML file", "space", data["space"])
    space_path = (base_dir / data["space"]).resolve()
    if not space_path.is_file():
        raise _error("no such space file", "space", str(space_path))
    space = _narrowed(load_space(space_path), _mapping(data.get("parameters"), "parameters"))
    fix = dict(_mapping(data.get("fix"), "fix"))
    for key in fix:
        if key not in space.parameters:
            raise _error("not a parameter of the space", f"fix.{key}", key, ", ".join(space.parameters))

    dataset_data = dict(_mapping(data.get("dataset"), "dataset"))
    dataset_name = dataset_data.pop("name", "synthetic")
    root = dataset_data.pop("root", None)
    if root is not None and not isinstance(root, str):
        raise _error("expected a directory path", "dataset.root", root)
    from archsearch.data import DATASET_NAMES
    if dataset_name not in DATASET_NAMES:
        raise _error("unknown dataset", "dataset.name", dataset_name, ", ".join(DATASET_NAMES))
    root_path = (base_dir / root).resolve() if root is not None else None
    if dataset_name != "synthetic":
        if root_path is None:
            raise _error(f"dataset {dataset_name!r} needs a root directory", "dataset.root", None,
                         "the directory holding the dataset")
        if not root_path.is_dir():
            from archsearch.data.registry import PREPARATION
            raise _error(f"no such data directory: {dataset_name} was looked for in {root_path}", "dataset.root",
                         str(root_path), f"a directory holding it: {PREPARATION[dataset_name]}")
    dataset = DatasetConfig(name=dataset_name, root=root_path, options=dataset_data)

    augmentation = AugmentationConfig.from_dict(data.get("augmentation"))
    input_size = _size(data.get("input_size", list(DEFAULT_INPUT_SIZE)), "input_size")
    training = TrainConfig.from_dict(data["training"], source)

    objectives_data = data.get("objectives", [{"metric": "miou", "direction": "maximize"}])
    if not isinstance(objectives_data, list) or not objectives_data:
        raise _error("expected a non-empty list of {metric, direction}", "objectives", objectives_data)
    objectives = []
    for index, item in enumerate(objectives_data):
        path = f"objectives[{index}]"
        item = _mapping(item, path)
        if set(item) - {"metric", "direction"}:
            raise _error("unknown key", path, sorted(set(item) - {"metric", "direction"}), "metric, direction")
        if item.get("metric") not in METRICS:
            raise _error("unknown metric", f"{path}.metric", item.get("metric"), ", ".join(METRICS))
        if item.get("direction") not in DIRECTIONS:
            raise _error("unknown direction", f"{path}.direction", item.get("direction"), ", ".join(DIRECTIONS))
        objectives.append(Objective(item["metric"], item["direction"]))
    if len({objective.metric for objective in objectives}) != len(objectives):
        raise _error("a metric is named twice", "objectives", [o.metric for o in objectives])

    sampler, sampler_options = _named(data.get("sampler"), "sampler", SAMPLERS, "tpe")
    sampler_seed = sampler_options.pop("seed", 0)
    if isinstance(sampler_seed, bool) or not isinstance(sampler_seed, int) or not 0 <= sampler_seed < 2**32:
        raise _error("expected an integer from 0 to 2**32 - 1", "sampler.seed", sampler_seed)
    pruner, pruner_options = _named(data.get("pruner"), "pruner", PRUNERS, "none")
    if pruner != "none" and len(objectives) > 1:
        raise _error("pruning needs a single objective", "pruner.name", pruner, "none (with several objectives)")

    seeds_data = data.get("seeds", [0])
    if not isinstance(seeds_data, list) or not seeds_data or not all(
            isinstance(seed, int) and not isinstance(seed, bool) for seed in seeds_data) \
            or len(set(seeds_data)) != len(seeds_data):
        raise _error("expected a non-empty list of distinct integers", "seeds", seeds_data)

    storage = data.get("storage")
    if storage is not None and (not isinstance(storage, str) or "://" not in storage):
        raise _error("expected an SQLAlchemy URL", "storage", storage,
                     "sqlite:///path.db, postgresql://user@host/db, ... (null: SQLite in the run directory)")

    latency = None
    if data.get("latency") is not None:
        latency_data = dict(_mapping(data["latency"], "latency"))
        latency_data.setdefault("input_size", list(input_size))
        try:
            latency = LatencySettings.from_dict(latency_data, source)
        except SpecError as error:
            raise error.under("latency") if not error.path.startswith("latency") else error
    constraints = []
    for metric, bounds in _mapping(data.get("constraints"), "constraints").items():
        path = f"constraints.{metric}"
        if metric not in CONSTRAINT_METRICS:
            raise _error("unknown constraint metric", path, metric, ", ".join(CONSTRAINT_METRICS))
        bounds = _mapping(bounds, path)
        if not bounds or set(bounds) - {"max", "min"}:
            raise _error("expected {max: X} and/or {min: Y}", path, dict(bounds), "max, min")
        for key, value in bounds.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _error("expected a number", f"{path}.{key}", value)
        if metric == "latency_ms" and latency is None:
            raise _error("a latency constraint needs latency settings", path, dict(bounds),
                         "add a latency: section (device, dtype, ...)")
        constraints.append(Constraint(metric, bounds.get("max"), bounds.get("min")))
    screening = _screening(data.get("screening"), constraints, latency)
    if latency is None and any(objective.metric == "latency_ms" for objective in objectives):
        raise _error("a latency objective needs latency settings", "objectives", "latency_ms",
                     "add a latency: section (device, dtype, ...)")

    backend = data.get("backend", "optuna")
    if backend not in BACKENDS:
        raise _error("unknown backend", "backend", backend, ", ".join(BACKENDS))
    resources = dict(_mapping(data.get("resources"), "resources"))
    for key, value in resources.items():
        if key not in ("cpu", "gpu") or isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise _error("expected cpu/gpu with a non-negative number", f"resources.{key}", value, "cpu, gpu")

    return StudyConfig(
        name=name, source=source, space=space, space_path=space_path, fix=fix, dataset=dataset,
        augmentation=augmentation, input_size=input_size, training=training, objectives=tuple(objectives),
        sampler=sampler, sampler_seed=sampler_seed, sampler_options=sampler_options, pruner=pruner,
        pruner_options=pruner_options, trials=_positive_int(data.get("trials", 10), "trials"),
        seeds=tuple(seeds_data), storage=storage, latency=latency, constraints=tuple(constraints),
        screening=screening, backend=backend, resources=resources, raw=dict(data))


def _screening(value: Any, constraints: list[Constraint], latency: LatencySettings | None) -> Screening | None:
    if value is None:
        return None
    data = dict(_mapping(value, "screening"))
    if set(data) - {"margin"}:
        unknown = sorted(set(data) - {"margin"})[0]
        raise _error("unknown screening setting", f"screening.{unknown}", unknown, "margin")
    margin = data.get("margin", Screening.margin)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise _error("expected a number >= 0 (a fraction of the latency budget)", "screening.margin", margin)
    if not any(constraint.metric == "latency_ms" and constraint.maximum is not None for constraint in constraints):
        raise _error("screening leaves out points predicted over the latency budget, and there is none",
                     "screening", dict(data), "add constraints: {latency_ms: {max: MS}}")
    if latency.backend not in PREDICTOR_BACKENDS:
        raise _error("the latency predictor sums blocks timed one by one, which describes the eager backend only",
                     "latency.backend", latency.backend, ", ".join(PREDICTOR_BACKENDS))
    return Screening(margin=float(margin))


def set_value(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set key.path=value`` (value parsed as YAML) to raw study data."""
    if "=" not in assignment:
        raise SpecError("expected key=value", path="--set", value=assignment, allowed="e.g. training.iterations=50")
    key, text = assignment.split("=", 1)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise SpecError("value is not valid YAML", path=f"--set {key}", value=text) from None
    parts = key.split(".")
    target = data
    for part in parts[:-1]:
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        if not isinstance(child, dict):
            raise SpecError("cannot set inside a non-mapping", path=f"--set {key}", value=child)
        target = child
    target[parts[-1]] = value


def load_study(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> StudyConfig:
    path = Path(path)
    data = read_yaml(path)
    if isinstance(data, dict):
        for assignment in overrides:
            set_value(data, assignment)
    return parse_study(data, source=str(path), base_dir=path.parent)
