"""A supernet study on Ray: its one-off jobs run in Ray workers with the resources of one trial.

The supernet is trained by one Ray task before any search trial (resuming its checkpoint in the
run directory, as the Optuna backend does); the trials then evaluate its subnets in their own
workers. After the search, the ``retrain_top`` best points are trained stand-alone by one more
task. The driver itself trains nothing: on a cluster, the head node may have no GPU.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import ray
import torch
from optuna.trial import FrozenTrial

from archsearch.errors import SpecError
from archsearch.run.directory import RunDirectory
from archsearch.search.ray.trial import trial_device, trial_threads
from archsearch.search.trial import TrialRunner
from archsearch.study.config import StudyConfig


def train_supernet_on_ray(config: StudyConfig, run_dir: RunDirectory, resources: dict[str, float]) -> None:
    """Train (or finish training) the study's supernet in one Ray task with ``resources`` (one trial's)."""
    _run_job(config, run_dir, resources, TrialRunner.prepare_supernet)


def retrain_top_on_ray(config: StudyConfig, run_dir: RunDirectory, resources: dict[str, float],
                       trials: list[FrozenTrial]) -> None:
    """Train the ``retrain_top`` best of ``trials`` by ``supernet_miou`` stand-alone in one Ray task."""
    _run_job(config, run_dir, resources, partial(TrialRunner.retrain_top, trials=trials))


def _run_job(config: StudyConfig, run_dir: RunDirectory, resources: dict[str, float],
             job: Callable[[TrialRunner], Any]) -> None:
    task = ray.remote(num_cpus=resources["cpu"], num_gpus=resources["gpu"], max_retries=0)(_job_in_worker)
    ray.get(task.remote(config, str(run_dir.root.resolve()), job))


def _job_in_worker(study: StudyConfig, run_root: str, job: Callable[[TrialRunner], Any]) -> None:
    """In the worker: the trial's threads and device, as a search trial gets them, then the job."""
    run_dir = RunDirectory(Path(run_root))
    if not (run_dir.root / "specs").is_dir():
        raise SpecError(f"the run directory is not visible on {socket.gethostname()}", path="--out",
                        value=run_root, allowed="a directory that every Ray node mounts at the same path")
    threads = trial_threads(study.resources)
    torch.set_num_threads(threads)
    study = replace(study, training=replace(study.training, num_threads=threads, device=trial_device(study)))
    job(TrialRunner(study, run_dir))
