"""Metrics, declared once: what each is, which way is better, how it is stored, and where it may be used.

Objectives and constraints (the study file), the trials table's columns (``run.trials_table``), the ranking
(``report.ranking``), the plot's axes (``report.figure``) and the CLI's choices (``report --x``, the table
``run`` prints) all read this registry. A metric a trial computes itself (``compute``: a function of the
concrete spec, the study's input size and class count, and the device) is computed for every point by the
trial runner before any training, so adding one is one entry here plus its function. Nothing in this module
imports torch, so reading a study or ranking a table stays light.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

PROXY_PREFIX = "proxy."  # proxy.<name>: a zero-cost proxy of the untrained network (a metric of its own)
Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[str, ...] = typing.get_args(Direction)
ColumnKind = Literal["integer", "float", "text"]
Aggregation = Literal["first", "median", "mean"]


@dataclass(frozen=True)
class MetricInfo:
    """One metric.

    ``better``: the direction a user wants it to go (a plot's front minimises a cost on x).
    ``kind``: its trials.csv column's type. ``objective`` / ``constraint``: whether a study may optimise or
    bound it, and ``limits`` which bounds (``min``, ``max``) a constraint may give it. ``per_architecture``:
    how the ranking pools an architecture's seeds (None: a score ranked on its own). ``axis`` and ``scale``:
    the plot's label and the factor its values are drawn with (None: not a plot axis). ``shown``: a column of
    the table ``archsearch run`` prints. ``compute``: ``module:function`` computing it for a spec (called as
    ``function(spec, input_size, num_classes=..., device=...)``), or None when the trial measures it itself.
    ``latency``: a figure of the latency timing, which needs the study's ``latency:`` section.
    ``trained``: a score a network earns by training; an infeasible point, never trained, scores the worst.
    """

    name: str
    better: Direction
    unit: str
    kind: ColumnKind
    description: str
    objective: bool = False
    constraint: bool = False
    limits: tuple[str, ...] = ("min", "max")
    per_architecture: Aggregation | None = None
    axis: str | None = None
    scale: float = 1.0
    shown: bool = False
    compute: str | None = None
    latency: bool = False
    trained: bool = False


REGISTRY: tuple[MetricInfo, ...] = (
    MetricInfo("miou", "maximize", "", "float", "mean IoU on the val split after training", objective=True,
               shown=True, trained=True),
    MetricInfo("miou_best", "maximize", "", "float",
               "the best of the trial's evaluations on the val split (what RegSeg reports)", objective=True,
               trained=True),
    MetricInfo("supernet_miou", "maximize", "", "float", "mIoU of the point's subnet of the study's supernet",
               objective=True, per_architecture="mean", trained=True),
    MetricInfo("latency_ms", "minimize", "ms", "float", "median latency of the deploy form (latency: settings)",
               objective=True, constraint=True, per_architecture="median", axis="latency (ms)", shown=True,
               latency=True),
    MetricInfo("latency_ratio", "minimize", "", "float",
               "latency over the reference network's, timed in the same rounds", objective=True, constraint=True,
               per_architecture="median", axis="latency / the reference's (timed alongside)", shown=True,
               latency=True),
    MetricInfo("macs", "minimize", "MACs", "integer", "multiply-accumulates of one forward pass at input_size",
               objective=True, constraint=True, per_architecture="first", axis="GMACs", scale=1e-9, shown=True),
    MetricInfo("params_deploy", "minimize", "parameters", "integer", "parameters of the deploy form",
               objective=True, constraint=True, per_architecture="first", axis="parameters (M, deploy form)",
               scale=1e-6, shown=True),
    MetricInfo("params_train", "minimize", "parameters", "integer", "parameters of the train form",
               objective=True, constraint=True, per_architecture="first"),
    MetricInfo("receptive_field", "maximize", "pixels", "integer",
               "theoretical receptive field of the output, in input pixels", constraint=True,
               per_architecture="first", shown=True),
    MetricInfo("output_stride", "minimize", "", "integer", "input size over the logits' size",
               per_architecture="first"),
    MetricInfo("memory_mb", "minimize", "MB", "float",
               "peak memory of one deploy-form forward pass at batch 1 and input_size (weights, input, activations)",
               objective=True, constraint=True, limits=("max",), per_architecture="first",
               axis="peak inference memory (MB, deploy form, batch 1)", shown=True,
               compute="archsearch.arch.peak_memory:peak_inference_mb"),
)
METRIC_INFO: dict[str, MetricInfo] = {metric.name: metric for metric in REGISTRY}
METRICS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY if metric.objective)
"""What a study may optimise (besides ``proxy.<name>``)."""
CONSTRAINT_METRICS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY if metric.constraint)
ConstraintMetric = Literal[CONSTRAINT_METRICS]  # type: ignore[valid-type]
LATENCY_METRICS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY if metric.latency)
PLOT_X_METRICS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY if metric.axis is not None)
ARCHITECTURE_METRICS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY
                                              if metric.per_architecture in ("first", "median"))
"""A property of the architecture (the same for each of its seeds, or measured again with each: the median)."""
MEDIAN_METRICS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY if metric.per_architecture == "median")
SCORE_METRICS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY if metric.per_architecture == "mean")
"""Scores besides mIoU a trial may record (a supernet study ranks by its subnet's), averaged over seeds."""
SHOWN_METRICS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY if metric.shown)
TRAINED_METRICS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY if metric.trained)
MIOU_KINDS: tuple[str, ...] = tuple(metric.name for metric in REGISTRY
                                    if metric.trained and metric.per_architecture is None)
"""What a report's mIoU may be: each trial's final evaluation, or its best (the number RegSeg reports)."""
COMPUTED_METRICS: tuple[MetricInfo, ...] = tuple(metric for metric in REGISTRY if metric.compute is not None)


def compute_metric(metric: MetricInfo, spec, input_size: tuple[int, int], *, num_classes: int,
                   device: str = "cpu") -> float:
    """Compute ``metric`` for a concrete spec with its registered function (imported here, with what it needs)."""
    from importlib import import_module

    module, _, function = metric.compute.partition(":")
    return getattr(import_module(module), function)(spec, input_size, num_classes=num_classes, device=device)
