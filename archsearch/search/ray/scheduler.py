"""The study's pruner, as Ray Tune's ASHA: weak trials stop on their intermediate mIoU.

Optuna's successive halving and Hyperband pruners map onto ASHA (asynchronous successive
halving) with the same option names, counted in training steps: ``min_resource`` (the
first rung; default the first intermediate evaluation), ``reduction_factor`` (default 4)
and ``max_resource`` (default the study's ``training.iterations``). Intermediate mIoUs come
from ``training.eval_every``; without it a trial has nothing to be stopped on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler

from archsearch.errors import SpecError
from archsearch.study.config import StudyConfig
from archsearch.search.ray.trial import STEP

ASHA_PRUNERS = ("successive_halving", "hyperband")
ASHA_OPTIONS = ("min_resource", "reduction_factor", "max_resource")


@dataclass(frozen=True)
class AshaSettings:
    grace_period: int
    reduction_factor: float
    max_t: int


def asha_settings(config: StudyConfig) -> AshaSettings | None:
    """The ASHA settings the study's pruner names, None for ``pruner: none``; checked before Ray starts."""
    if config.pruner == "none":
        return None
    if config.pruner not in ASHA_PRUNERS:
        raise _error("the ray backend prunes with ASHA only", "pruner.name", config.pruner,
                     "none, " + ", ".join(ASHA_PRUNERS), config)
    options = dict(config.pruner_options)
    for key in options:
        if key not in ASHA_OPTIONS:
            raise _error("not an ASHA option", f"pruner.{key}", key, ", ".join(ASHA_OPTIONS), config)
    max_t = options.get("max_resource", "auto")
    if max_t == "auto":
        max_t = config.training.iterations
        if max_t is None:
            raise _error("a budget in epochs leaves ASHA's last rung unknown", "pruner.max_resource", "auto",
                         "the step budget as an integer, or training.iterations", config)
    max_t = _whole(max_t, "pruner.max_resource", config)
    grace = options.get("min_resource", "auto")
    if grace == "auto":
        grace = min(config.training.eval_every or 1, max_t)
    grace = _whole(grace, "pruner.min_resource", config)
    if grace > max_t:
        raise _error("the first rung is beyond the last", "pruner.min_resource", grace, f"at most {max_t}", config)
    factor = options.get("reduction_factor", 4)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
        raise _error("expected a number above 1", "pruner.reduction_factor", factor, "e.g. 3 or 4", config)
    return AshaSettings(grace_period=grace, reduction_factor=factor, max_t=max_t)


def make_scheduler(settings: AshaSettings | None) -> AsyncHyperBandScheduler | None:
    if settings is None:
        return None
    return AsyncHyperBandScheduler(time_attr=STEP, metric="miou", mode="max", max_t=settings.max_t,
                                   grace_period=settings.grace_period, reduction_factor=settings.reduction_factor)


def _whole(value: Any, path: str, config: StudyConfig) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _error("expected a positive number of training steps", path, value, "an integer >= 1, or auto", config)
    return value


def _error(message: str, path: str, value: Any, allowed: str, config: StudyConfig) -> SpecError:
    return SpecError(message, path=path, value=value, allowed=allowed, source=config.source)
