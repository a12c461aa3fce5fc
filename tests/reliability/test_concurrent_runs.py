"""Two `archsearch run` processes on one study, one run directory and one SQLite storage, started together.

They share the work: no trial is lost or appears twice, every completed trial is in trials.csv,
and the study ends with the requested number of trials. Overshoot: each process starts a trial
only while fewer than the requested number are finished or running, but two processes can look
at the same moment and both start the last one, so a study may end with one trial more than
requested (never more with two processes). A process that has nothing left to start waits for
the other's last trials, so that both exit with the study's true status.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from typing import Any, Callable

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from tests.helpers.dead_trials import leave_orphan_trial
from tests.helpers.processes import check_run_directory, read_storage, start_run, write_study

from archsearch.search import RunDirectory, load_study
from archsearch.search.optuna_driver import open_study, prepare_study, run_optuna

TRIALS = 6
RANDOM = {"sampler": {"name": "random", "seed": 0}, "fix": {"group_width": 8}}


def run_two_at_once(study, run_dir, trials, cache_home, tmp_path) -> list[str]:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [start_run(study, run_dir, trials, cache_home, log) for log in logs]
    try:
        for process in processes:
            process.wait(timeout=150)
    except subprocess.TimeoutExpired:
        pytest.fail("a process did not finish within 150 s")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = [log.read_text(errors="replace") for log in logs]
    for process, output in zip(processes, outputs):
        assert "Traceback" not in output and "database is locked" not in output, output
        # A process with nothing left to start waits for the other's last trials, so both see the end.
        assert process.returncode == 0, output
        assert "study finished" in output
    return outputs


def finished_count(run_dir) -> int:
    return sum(trial.counted for trial in read_storage(run_dir).values())


def test_two_processes_share_a_random_study(tiny_study, tmp_path, cache_home):
    study = write_study(tiny_study, **RANDOM, training={"iterations": 10, "batch_size": 4, "optimizer": "adamw",
                                                        "num_threads": 1})
    run_dir = tmp_path / "run"
    run_two_at_once(study, run_dir, TRIALS, cache_home, tmp_path)
    total = finished_count(run_dir)
    assert total in (TRIALS, TRIALS + 1)
    stored = check_run_directory(run_dir, total, unique_points=False)
    assert len({trial.attrs["pid"] for trial in stored.values()}) == 2, "one process did all the work"


# ---------------------------------------------------------------- the same races, in one process and without waiting


def at_once(function: Callable[[], Any], count: int = 2) -> list[Any]:
    """Call ``function`` from ``count`` threads released together (each opens its own storage connection)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def call(index: int) -> None:
        barrier.wait()
        try:
            results[index] = function()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_starting_together_queues_the_grid_once(tiny_study, tmp_path):
    config = load_study(tiny_study, ["sampler=grid", "fix={group_width: 8}", "seeds=[0, 1]", "trials=12"])
    run_dir = RunDirectory(tmp_path / "run").create()
    prepared = at_once(lambda: prepare_study(config, run_dir))
    assert [grid_trials for _, grid_trials in prepared] == [12, 12]
    queued = prepared[0][0].get_trials()
    points = {(tuple(sorted(trial.system_attrs["fixed_params"].items())), trial.user_attrs["seed"])
              for trial in queued}
    assert len(queued) == len(points) == 12


def test_starting_together_retries_a_dead_trial_once(tiny_study, tmp_path):
    config = load_study(tiny_study, ["parameters.width={choice: [16]}", "fix={group_width: 8}"])
    run_dir = RunDirectory(tmp_path / "run").create()
    study = open_study(config, run_dir)
    leave_orphan_trial(study)
    at_once(lambda: prepare_study(config, run_dir))
    trials = study.get_trials()
    assert [trial.state for trial in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].system_attrs["fixed_params"] == trials[0].params


def test_an_older_table_never_replaces_a_newer_one(tiny_study, tmp_path, monkeypatch):
    """Writer A reads the storage, writer B reads it after a trial ended and writes; A must not then
    write its older table over B's (each reads and writes under the run directory's lock)."""
    from archsearch.run import trials_table as results

    config = load_study(tiny_study)
    run_dir = RunDirectory(tmp_path / "run").create()
    study = open_study(config, run_dir)
    first = study.ask()
    study.tell(first, 0.5)
    read_old, release_a = threading.Event(), threading.Event()
    original = results.trials_frame

    def slow_first_read(trials_now):
        frame = original(trials_now)
        if threading.current_thread().name == "A":
            read_old.set()
            release_a.wait(timeout=5)
        return frame

    monkeypatch.setattr(results, "trials_frame", slow_first_read)
    writer_a = threading.Thread(target=results.write_trials_csv, args=(study, run_dir), name="A")
    writer_a.start()
    assert read_old.wait(timeout=10)
    study.tell(study.ask(), 0.7)  # a trial ends after A read the storage
    writer_b = threading.Thread(target=results.write_trials_csv, args=(study, run_dir), name="B")
    writer_b.start()
    writer_b.join(timeout=0.5)  # B waits for A's lock (without the lock it would write now)
    release_a.set()
    writer_a.join(timeout=10)
    writer_b.join(timeout=10)
    assert list(pd.read_csv(run_dir.trials_csv)["number"]) == [0, 1]


def test_a_run_waits_for_the_last_trial_of_another_process_and_takes_it_over_if_that_dies(tiny_study, tmp_path):
    """Trial 0 is RUNNING in another live process; this run does trial 1, then waits instead of calling the
    study unfinished; when the other process dies, its trial is queued again and run here."""
    config = load_study(tiny_study, ["parameters.width={choice: [16]}", "fix={group_width: 8}"])
    run_dir = RunDirectory(tmp_path / "run").create()
    study = open_study(config, run_dir)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(4)"])
    reaper = threading.Thread(target=other.wait)  # reaped at once when it ends (a zombie still has a pid)
    reaper.start()
    orphan = study.ask({"pattern": optuna.distributions.CategoricalDistribution(["short", "long"])})
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", other.pid)
    orphan.set_user_attr("seed", 0)
    outcome = run_optuna(config.with_overrides(trials=2), run_dir)
    reaper.join(timeout=30)
    assert outcome.done and outcome.finished == 2
    trials = study.get_trials()
    assert [trial.state for trial in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[2].user_attrs["retry_of"] == 0
