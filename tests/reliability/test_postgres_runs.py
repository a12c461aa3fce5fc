"""Three `archsearch run` processes share one study stored in a real PostgreSQL server; one is killed
in the middle of a trial. No trial is lost or run twice, and the dead process's trial runs again.

This is the multi-machine path (a database every machine reaches) on one machine: the processes
know each other only through the database and the run directory they share.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from tests.helpers.postgres import new_database, postgres_server
from tests.helpers.processes import check_run_directory, read_storage, start_run, wait_for, write_study

TRIALS = 6
PROCESSES = 3


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


def test_three_processes_on_postgres_survive_one_killed_mid_trial(postgres, tiny_study, tmp_path, cache_home):
    url = new_database(postgres)
    study = write_study(tiny_study, sampler={"name": "random", "seed": 0}, fix={"group_width": 8}, storage=url,
                        training={"iterations": 60, "batch_size": 4, "optimizer": "adamw", "num_threads": 1})
    run_dir = tmp_path / "run"
    logs = [tmp_path / f"process_{index}.log" for index in range(PROCESSES)]
    processes = [start_run(study, run_dir, TRIALS, cache_home, log) for log in logs]
    try:
        def training_trial():
            """A trial that has been analysed and is training now (train_seconds is null until it ends)."""
            return next((trial for trial in read_storage(run_dir, url).values()
                         if trial.state == "RUNNING" and "macs" in trial.attrs
                         and trial.attrs.get("train_seconds") is None and "pid" in trial.attrs), None)

        victim_trial = wait_for(training_trial, 180, "a trial in training", interval=0.1)
        victim = next(process for process in processes if process.pid == victim_trial.attrs["pid"])
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
        survivors = [process for process in processes if process is not victim]
        for process in survivors:
            process.wait(timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("a surviving process did not finish within 300 s")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    for process, log in zip(processes, logs):
        if process is victim:
            continue
        output = log.read_text(errors="replace")
        assert process.returncode == 0 and "study finished" in output, output
        assert "Traceback" not in output
    # Processes that look at the same moment may each start the last trial: up to one more per extra process.
    stored = check_run_directory(run_dir, range(TRIALS, TRIALS + PROCESSES), unique_points=False, url=url)
    killed = stored[victim_trial.number]
    assert killed.state == "FAIL" and "fail_reason" not in killed.attrs
    retries = [trial for trial in stored.values() if trial.attrs.get("retry_of") == victim_trial.number]
    assert len(retries) == 1 and retries[0].state == "COMPLETE"
    assert retries[0].params == killed.params and retries[0].attrs["seed"] == killed.attrs["seed"]
    assert retries[0].attrs["pid"] != victim.pid
    assert len({trial.attrs["pid"] for trial in stored.values() if "pid" in trial.attrs}) == PROCESSES
