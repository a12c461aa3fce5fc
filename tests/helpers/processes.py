"""Helpers of the reliability tests: study files, `archsearch run` subprocesses, the storage read with
plain SQL while another process writes it, and what a consistent run directory is."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest
import yaml

FINISHED_STATES = ("COMPLETE", "PRUNED")
DIED_REASON = "the process running it died; queued again"


def write_study(path: Path, **changes: Any) -> Path:
    """Rewrite a study file with top-level keys replaced (a None value deletes the key)."""
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ---------------------------------------------------------------- subprocesses


def cli_command(study: Path, run_dir: Path, trials: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "archsearch.cli.main", "run", str(study), "--out", str(run_dir),
            "--trials", str(trials), *extra]


def subprocess_env(cache_home: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(cache_home), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def start_run(study: Path, run_dir: Path, trials: int, cache_home: Path, log: Path, *extra: str) -> subprocess.Popen:
    """`archsearch run` in its own process; stdout and stderr go to ``log``."""
    handle = log.open("wb")
    try:
        return subprocess.Popen(cli_command(study, run_dir, trials, *extra), stdout=handle,
                                stderr=subprocess.STDOUT, env=subprocess_env(cache_home))
    finally:
        handle.close()


# ---------------------------------------------------------------- the storage, read without Optuna


@dataclass
class StoredTrial:
    number: int
    state: str
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def counted(self) -> bool:
        """Counts towards the requested trials: ended, except a dead process's trial (which is retried)."""
        return self.state in FINISHED_STATES or (self.state == "FAIL" and "fail_reason" in self.attrs)


def read_storage(run_dir: Path, url: str | None = None) -> dict[int, StoredTrial]:
    """Every trial of the run's storage by number (empty while the database or its tables do not exist).

    Plain SQL in a read transaction, so a test can watch a study that another process is writing:
    the run's SQLite file, or the database at ``url`` (a PostgreSQL server, say).
    """
    queries = ("SELECT trial_id, number, state FROM trials",
               "SELECT trial_id, key, value_json FROM trial_user_attributes",
               "SELECT trial_id, param_name, param_value, distribution_json FROM trial_params")
    results = _query_url(url, queries) if url is not None else _query_sqlite(run_dir / "study.db", queries)
    if results is None:
        return {}
    rows, attrs, params = results
    by_id = {trial_id: StoredTrial(number, state) for trial_id, number, state in rows}
    for trial_id, key, value in attrs:
        if trial_id in by_id:
            by_id[trial_id].attrs[key] = json.loads(value)
    for trial_id, name, value, distribution in params:
        if trial_id in by_id:
            by_id[trial_id].params[name] = _external_value(value, json.loads(distribution))
    return {trial.number: trial for trial in by_id.values()}


def _query_sqlite(path: Path, queries: tuple[str, ...]) -> list[list[tuple]] | None:
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.OperationalError:
        return None
    try:
        return [connection.execute(query).fetchall() for query in queries]
    except sqlite3.OperationalError:  # tables not created yet
        return None
    finally:
        connection.close()


_ENGINES: dict[str, Any] = {}


def _query_url(url: str, queries: tuple[str, ...]) -> list[list[tuple]] | None:
    import sqlalchemy

    engine = _ENGINES.get(url) or _ENGINES.setdefault(url, sqlalchemy.create_engine(url))
    try:
        with engine.connect() as connection:
            return [[tuple(row) for row in connection.execute(sqlalchemy.text(query))] for query in queries]
    except sqlalchemy.exc.ProgrammingError:  # tables not created yet
        return None


def _external_value(internal: float, distribution: dict[str, Any]) -> Any:
    if distribution.get("name") == "CategoricalDistribution":
        return distribution["attributes"]["choices"][int(internal)]
    return internal


def wait_for(condition: Callable[[], Any], timeout: float, what: str, process: subprocess.Popen | None = None,
             log: Path | None = None, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail (naming ``what``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            value = condition()
            if value:
                return value
            output = log.read_text(errors="replace")[-3000:] if log is not None else ""
            pytest.fail(f"the run ended (status {process.returncode}) before {what}:\n{output}")
        time.sleep(interval)
    if process is not None:
        process.kill()
        process.wait()
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


# ---------------------------------------------------------------- what a consistent run directory is


def check_run_directory(run_dir: Path, requested: int | range, *, unique_points: bool,
                        url: str | None = None) -> dict[int, StoredTrial]:
    """The storage (the run's SQLite file, or the database at ``url``), trials.csv, specs and weights agree;
    returns the storage's trials.

    ``requested``: how many trials count (or the range that may: processes started together can
    each start the last one). ``unique_points``: no (architecture, seed) pair completed twice (true of a grid study).
    """
    from safetensors.torch import load_file

    from archsearch import load_spec

    stored = read_storage(run_dir, url)
    assert not [t.number for t in stored.values() if t.state in ("RUNNING", "WAITING")], "a trial was left behind"
    counted = sum(t.counted for t in stored.values())
    assert counted in requested if isinstance(requested, range) else counted == requested

    died = [t for t in stored.values() if t.state == "FAIL" and "fail_reason" not in t.attrs]
    retries = [t for t in stored.values() if "retry_of" in t.attrs]
    assert sorted(t.attrs["retry_of"] for t in retries) == sorted(t.number for t in died)
    for retry in retries:
        original = stored[retry.attrs["retry_of"]]
        assert retry.params == original.params and retry.attrs["seed"] == original.attrs["seed"]
        assert retry.number > original.number

    complete = [t for t in stored.values() if t.state == "COMPLETE"]
    if unique_points:
        pairs = [(t.attrs["arch_hash"], t.attrs["seed"]) for t in complete]
        assert len(pairs) == len(set(pairs)), f"an architecture and seed trained twice: {pairs}"

    frame = pd.read_csv(run_dir / "trials.csv")
    assert sorted(frame["number"]) == sorted(stored), "trials.csv and the storage hold different trials"
    assert frame["number"].is_unique
    died_numbers = {t.number for t in died}
    for _, row in frame.iterrows():
        trial = stored[int(row["number"])]
        assert row["state"] in (trial.state, "INFEASIBLE")
        if trial.state == "COMPLETE":
            assert row["miou"] == pytest.approx(trial.attrs["miou"], abs=0, rel=1e-12)
        if trial.number in died_numbers:
            assert row["fail_reason"] == DIED_REASON

    for trial in complete:
        arch_hash = trial.attrs["arch_hash"]
        assert load_spec(run_dir / "specs" / f"{arch_hash}.yaml").arch_hash == arch_hash
        if not trial.attrs.get("infeasible"):
            weights = load_file(str(run_dir / "weights" / f"trial_{trial.number}.safetensors"))
            assert weights, f"empty weights for trial {trial.number}"
    return stored
