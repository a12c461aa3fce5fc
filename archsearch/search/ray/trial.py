"""One study trial inside a Ray worker, and the results it reports to Ray Tune.

The worker gets the parsed StudyConfig (never the study file), the run directory's path and
the trial's number, seed and parameter values; it builds its own TrialRunner, replays the
values into a concrete spec and reports plain results that the driver's searcher turns into
Optuna trial states. Every result holds the objective metrics' keys (Ray Tune insists);
intermediate evaluations carry ``step`` (ASHA's clock), the last result carries ``outcome``.
"""

from __future__ import annotations

import os
import socket
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import ray
import torch
from ray import tune

from archsearch.errors import SpecError
from archsearch.search.config import StudyConfig
from archsearch.search.optuna_driver import InvalidPoint
from archsearch.run.directory import RunDirectory
from archsearch.search.trial import TrialMetrics, TrialRunner
from archsearch.space.sampling import FixedSuggester, sample

STEP = "step"
OUTCOME = "outcome"
FAIL_REASON = "fail_reason"
BAD_INPUT = "bad_input"
DUPLICATE_OF = "duplicate_of"
TWIN = "twin"
PLACEMENT_KEYS = ("node_id", "host", "pid")
RECORDED_KEYS = (tuple(field.name for field in fields(TrialMetrics)) + PLACEMENT_KEYS
                 + (FAIL_REASON, BAD_INPUT, DUPLICATE_OF))


def trial_threads(resources: Mapping[str, float]) -> int:
    """Torch threads for one trial: the CPUs it asked Ray for, at least one."""
    return max(1, int(resources.get("cpu", 1)))


def trial_device(study: StudyConfig) -> str:
    """A trial with a GPU share trains on the GPU Ray assigned it (CUDA_VISIBLE_DEVICES shows it as
    ``cuda``), whichever index the study names; ``resources: {gpu: 0.25}`` puts four trials on one GPU."""
    device = study.training.device
    return "cuda" if study.resources.get("gpu", 0) > 0 and device.startswith("cuda") else device


def ending(result: Mapping[str, Any] | None) -> str:
    """How a trial ended, from its last result: COMPLETE, INFEASIBLE, FAIL, or PRUNED when a scheduler stopped it."""
    if result is None:
        return "FAIL"
    return result.get(OUTCOME) or "PRUNED"


def run_trial(trial_config: dict[str, Any], *, study: StudyConfig, run_root: str, report_until: int | None,
              finished_numbers: frozenset[int] = frozenset()) -> None:
    """Ray Tune's trainable: ``trial_config`` holds ``number``, ``seed`` and ``params`` (fixed values included).

    With ``twin`` (the number and user attributes of a trained trial of the same point and
    seed) nothing is trained: the twin's result is reported and its weights shared.
    Intermediate mIoUs are reported only before step ``report_until`` (ASHA's ``max_t``;
    None without a scheduler), so a scheduler never stops a trial at its final evaluation.
    A restored experiment may hold trials that ended after its last snapshot; their numbers
    come in ``finished_numbers`` and they return at once, reporting nothing.
    """
    if trial_config["number"] in finished_numbers:
        return
    threads = trial_threads(study.resources)
    torch.set_num_threads(threads)
    study = replace(study, training=replace(study.training, num_threads=threads, device=trial_device(study)))
    known: dict[str, Any] = {
        **{objective.metric: None for objective in study.objectives},
        "node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}
    try:
        _run(trial_config, study, RunDirectory(Path(run_root)), known, report_until)
    except Exception as error:  # recorded with its reason; bad input (data, the space itself) stops the study
        tune.report({**known, OUTCOME: "FAIL", FAIL_REASON: f"{type(error).__name__}: {error}"[:2000],
                     BAD_INPUT: isinstance(error, SpecError)})


def _run(trial_config: Mapping[str, Any], study: StudyConfig, run_dir: RunDirectory, known: dict[str, Any],
         report_until: int | None) -> None:
    """Replay, analyze, time and train; ``known`` gathers what was measured, so that a failure reports it too."""
    if not (run_dir.root / "specs").is_dir():
        raise SpecError(f"the run directory is not visible on {socket.gethostname()}", path="--out",
                        value=str(run_dir.root), allowed="a directory that every Ray node mounts at the same path")
    twin = trial_config.get(TWIN)
    if twin is not None:  # the same point and seed trained before: its result and weights stand
        run_dir.share_weights(twin["number"], trial_config["number"])
        metrics = TrialMetrics.from_attrs(twin["attrs"])
        tune.report({**known, **metrics.to_attrs(), DUPLICATE_OF: twin["number"], OUTCOME: "COMPLETE"})
        return
    point = sample(study.space, FixedSuggester(trial_config["params"]))
    if not point.valid:
        raise InvalidPoint(point.invalid_reason)
    spec = point.spec
    run_dir.save_spec(spec)
    runner = TrialRunner(study, run_dir)
    metrics = runner.measure(spec, runner.analyze_point(spec, trial_config["seed"]))
    known.update(metrics.to_attrs())
    if metrics.infeasible:
        tune.report({**known, OUTCOME: "INFEASIBLE"})
        return
    metrics = runner.train(spec, metrics, trial_config["number"], _reporter(known, report_until))
    tune.report({**known, **metrics.to_attrs(), OUTCOME: "COMPLETE"})


def _reporter(known: Mapping[str, Any], report_until: int | None) -> Callable[[int, float], None] | None:
    if report_until is None:
        return None

    def report(step: int, miou: float) -> None:
        if step < report_until:
            tune.report({**known, STEP: step, "miou": miou})
    return report
