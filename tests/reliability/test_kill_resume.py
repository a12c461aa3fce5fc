"""kill -9 in the middle of a study, then the same command again: nothing completed is lost or redone.

Each test starts `python -m archsearch.cli.main run` as a real process, watches its SQLite storage
until the study is where the test wants it (training, timing latency, writing a trial's
results), kills it with SIGKILL, runs the same command to the end and checks the run
directory: the trials completed before the kill are still there, once, with the same mIoU
and untouched weights; the killed trial reads "the process running it died; queued again"
and has exactly one retry with the same point and seed; the study has the requested number
of trials; trials.csv, the storage, the specs and the weights agree.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from tests.helpers.processes import (DIED_REASON, StoredTrial, check_run_directory, read_storage, start_run, wait_for,
                                 write_study)

from archsearch.cli.main import main

# Two widths x two dilation patterns, one seed: four architectures, each exactly once in a grid study,
# so any architecture that completes twice was trained twice without need.
GRID = {"sampler": "grid", "fix": {"group_width": 8}, "parameters": {"width": {"choice": [16, 32]}}}
TRIALS = 4
FIRST_RUN_SECONDS = 90
Ready = Callable[[dict[int, StoredTrial]], bool]


def completed(stored: dict[int, StoredTrial]) -> dict[int, float]:
    return {number: trial.attrs["miou"] for number, trial in stored.items() if trial.state == "COMPLETE"}


def running(stored: dict[int, StoredTrial]) -> list[StoredTrial]:
    return [trial for trial in stored.values() if trial.state == "RUNNING"]


def kill_when(study: Path, run_dir: Path, cache_home: Path, log: Path, ready: Ready, what: str,
              interval: float = 0.05) -> dict[int, StoredTrial]:
    """Start the study, SIGKILL it once ``ready(storage)`` holds, and return the storage as the kill left it."""
    process = start_run(study, run_dir, TRIALS, cache_home, log)
    try:
        wait_for(lambda: ready(read_storage(run_dir)), FIRST_RUN_SECONDS, what, process, log, interval)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return read_storage(run_dir)


def weights_times(run_dir: Path, numbers) -> dict[int, int]:
    return {number: (run_dir / "weights" / f"trial_{number}.safetensors").stat().st_mtime_ns for number in numbers}


def resume_and_check(study: Path, run_dir: Path, before: dict[int, StoredTrial], capsys):
    """Run the same command to the end (in this process, which saves starting Python and torch again);
    everything completed before the kill is kept as it was."""
    kept = completed(before)
    times = weights_times(run_dir, kept)
    capsys.readouterr()
    status = main(["run", str(study), "--out", str(run_dir), "--trials", str(TRIALS)])
    assert status == 0, capsys.readouterr().err
    stored = check_run_directory(run_dir, TRIALS, unique_points=True)
    for number, miou in kept.items():
        assert stored[number].state == "COMPLETE" and stored[number].attrs["miou"] == miou
    assert weights_times(run_dir, kept) == times, "a trial completed before the kill was trained again"
    for trial in running(before):
        assert stored[trial.number].state == "FAIL"
        retry = [other for other in stored.values() if other.attrs.get("retry_of") == trial.number]
        assert len(retry) == 1 and retry[0].state == "COMPLETE"
    return stored


def test_killed_while_training(tiny_study, tmp_path, cache_home, capsys):
    study = write_study(tiny_study, **GRID, training={"iterations": 80, "batch_size": 4, "optimizer": "adamw",
                                                      "lr": 0.001, "num_threads": 1})
    run_dir = tmp_path / "run"

    def training_after_one_completed(stored):
        # Analysed and timed (macs recorded), not yet trained (train_seconds recorded as null until then).
        return completed(stored) and any("macs" in t.attrs and t.attrs.get("train_seconds") is None
                                         for t in running(stored))

    before = kill_when(study, run_dir, cache_home, tmp_path / "first.log", training_after_one_completed,
                       "a trial training after one completed")
    assert len(running(before)) == 1 and completed(before)
    stored = resume_and_check(study, run_dir, before, capsys)
    killed = running(before)[0].number
    frame = pd.read_csv(run_dir / "trials.csv").set_index("number")
    assert frame.loc[killed, "state"] == "FAIL" and frame.loc[killed, "fail_reason"] == DIED_REASON
    assert len(stored) == TRIALS + 1


def test_killed_while_timing_latency(tiny_study, tmp_path, cache_home, capsys):
    latency = {"device": "cpu", "warmup_seconds": 0.2, "min_warmup_iterations": 1, "time_budget_seconds": 1.0,
               "min_repeats": 3, "num_threads": 1}
    study = write_study(tiny_study, **GRID, latency=latency,
                        training={"iterations": 3, "batch_size": 4, "optimizer": "adamw", "num_threads": 1})
    run_dir = tmp_path / "run"

    def timing_after_one_completed(stored):
        return completed(stored) and any("arch_hash" in t.attrs and "macs" not in t.attrs for t in running(stored))

    before = kill_when(study, run_dir, cache_home, tmp_path / "first.log", timing_after_one_completed,
                       "a trial timing its latency after one completed")
    assert len(running(before)) == 1
    measured_before = latency_entries(run_dir)
    assert set(measured_before) == {before[number].attrs["arch_hash"] for number in completed(before)}
    stored = resume_and_check(study, run_dir, before, capsys)
    measured_after = latency_entries(run_dir)
    for arch_hash, measured_at in measured_before.items():
        assert measured_after[arch_hash] == measured_at, "a latency measured before the kill was measured again"
    complete = [trial for trial in stored.values() if trial.state == "COMPLETE"]
    assert {trial.attrs["arch_hash"] for trial in complete} == set(measured_after)
    for trial in complete:
        assert trial.attrs["latency_ms"] > 0


def latency_entries(run_dir: Path) -> dict[str, float]:
    connection = sqlite3.connect(run_dir / "latency.db")
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return dict(connection.execute("SELECT arch_hash, measured_at FROM latency").fetchall())
    finally:
        connection.close()


@pytest.mark.parametrize("moment", ["weights written", "trials.csv rewritten"])
def test_killed_while_writing_a_trials_results(tiny_study, tmp_path, cache_home, capsys, moment):
    """Killed in the few milliseconds between a trial's weights and its COMPLETE state (on this machine the
    kill lands there every time), or right after trials.csv is rewritten with a completed trial."""
    study = write_study(tiny_study, **GRID, training={"iterations": 20, "batch_size": 4, "optimizer": "adamw",
                                                      "num_threads": 1})
    run_dir = tmp_path / "run"
    csv = run_dir / "trials.csv"

    def weights_of_a_running_trial(stored):
        return any((run_dir / "weights" / f"trial_{t.number}.safetensors").exists() for t in running(stored))

    def table_shows_a_completed_trial(stored):
        return csv.exists() and ",COMPLETE," in csv.read_text()

    ready = weights_of_a_running_trial if moment == "weights written" else table_shows_a_completed_trial
    before = kill_when(study, run_dir, cache_home, tmp_path / "first.log", ready, moment, interval=0.005)
    resume_and_check(study, run_dir, before, capsys)
