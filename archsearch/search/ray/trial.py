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
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

import ray
import torch
from ray import tune

from archsearch.errors import OutputError, SpecError
from archsearch.run import attributes
from archsearch.run.directory import RunDirectory
from archsearch.study.config import Resources, StudyConfig
from archsearch.search.lifecycle import FAIL, Outcome, Twin, failure, live_trial
from archsearch.search.ray.placement import RaySite
from archsearch.search.trial import TrialRunner
from archsearch.space.sampling import FixedSuggester, sample

STEP = "step"
OUTCOME = "outcome"
TWIN = "twin"
NOT_RECORDED = (STEP, OUTCOME)


def trial_threads(resources: Resources) -> int:
    """Torch threads for one trial: the CPUs it asked Ray for, at least one."""
    return max(1, int(resources.cpu))


def trial_device(study: StudyConfig) -> str:
    """A trial with a GPU share trains on the GPU Ray assigned it (CUDA_VISIBLE_DEVICES shows it as
    ``cuda``), whichever index the study names; ``resources: {gpu: 0.25}`` puts four trials on one GPU."""
    device = study.training.device
    return "cuda" if study.resources.gpu > 0 and device.startswith("cuda") else device


def ending(result: Mapping[str, Any] | None) -> str:
    """How a trial ended, from its last result: COMPLETE, INFEASIBLE, FAIL, or PRUNED when a scheduler stopped it."""
    if result is None:
        return FAIL
    return result.get(OUTCOME) or "PRUNED"


def outcome_of(result: Mapping[str, Any] | None) -> Outcome:
    """The trial's outcome back from its last result (what the worker recorded, and how it ended)."""
    result = result or {}
    return Outcome(ending(result), {key: value for key, value in result.items()
                                    if key not in NOT_RECORDED and value is not None})


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
    if study.training is not None:
        study = replace(study, training=replace(study.training, num_threads=threads, device=trial_device(study)))
    # Every result holds the objectives' keys (Ray Tune insists), and where the trial ran.
    known: dict[str, Any] = {
        **{objective.metric: None for objective in study.objectives},
        attributes.NODE_ID: ray.get_runtime_context().get_node_id(), attributes.HOST: socket.gethostname(),
        attributes.PID: os.getpid()}
    run_dir = RunDirectory(Path(run_root))
    if not (run_dir.root / "specs").is_dir():
        error = SpecError(f"the run directory is not visible on {socket.gethostname()}", path="--out",
                          value=str(run_dir.root), allowed="a directory that every Ray node mounts at the same path")
        tune.report({**known, **failure(error), OUTCOME: FAIL})
        return
    twin = trial_config.get(TWIN)
    try:
        site = RaySite(study.placement) if study.placement is not None else None  # timed on the target's node
        outcome = live_trial(TrialRunner(study, run_dir, timing_site=site),
                             lambda: sample(study.space, FixedSuggester(trial_config["params"])),
                             number=trial_config["number"], seed=trial_config["seed"],
                             twin=Twin(twin["number"], twin["attrs"]) if twin is not None else None,
                             record=known.update, on_evaluation=_reporter(known, report_until))
    except OutputError as error:  # on a worker the trial fails with the path and reason (the driver goes on)
        known.update(failure(error))
        outcome = Outcome(FAIL, known, error)
    tune.report({**known, OUTCOME: outcome.state})


def _reporter(known: Mapping[str, Any], report_until: int | None) -> Callable[[int, float], None] | None:
    if report_until is None:
        return None

    def report(step: int, miou: float) -> None:
        if step < report_until:
            tune.report({**known, STEP: step, "miou": miou})
    return report
