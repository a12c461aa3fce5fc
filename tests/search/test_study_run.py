"""Running studies: trials, failures with reasons, resume, determinism, grid, dead-process retry."""

from __future__ import annotations

import json
import os
from functools import partial

import optuna
import pandas as pd
import pytest
import yaml
from tests.helpers.dead_trials import leave_orphan_trial

from archsearch import load_spec
from archsearch.cli.main import main
from archsearch.report.write import write_report
from archsearch.resources import available_cpus
from archsearch.search import RunDirectory, load_study, run_optuna
from archsearch.search.optuna_driver import open_study


def run(study, run_dir, *extra) -> int:
    return main(["run", str(study), "--out", str(run_dir), *extra])


def trials(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "trials.csv")


def test_study_runs_and_records_everything(tiny_study, tmp_path):
    run_dir = tmp_path / "run"
    assert run(tiny_study, run_dir) == 0
    frame = trials(run_dir)
    assert list(frame["number"]) == [0, 1, 2, 3]
    assert set(frame["state"]) <= {"COMPLETE", "FAIL"}
    complete = frame[frame["state"] == "COMPLETE"]
    assert len(complete) >= 1
    for _, row in complete.iterrows():
        spec = load_spec(run_dir / "specs" / f"{row['arch_hash']}.yaml")
        assert spec.arch_hash == row["arch_hash"]
        assert (run_dir / "weights" / f"trial_{row['number']}.safetensors").is_file()
        assert 0.0 <= row["miou"] <= 1.0 and row["params_train"] > 0 and row["macs"] > 0
    assert {"param.width", "param.pattern", "param.group_width"} <= set(frame.columns)
    assert yaml.safe_load((run_dir / "study.yaml").read_text())["name"] == "tiny_study"
    recorded = json.loads(complete["runtime"].iloc[0])  # how OpenMP waited and how many threads trained
    assert recorded["torch_threads"] == 1 and {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} <= set(recorded)


@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 CPUs to leave one to another process")
@pytest.mark.parametrize(("busy_elsewhere", "expected"), [(0.1, 2), (1.0, 1), (3.0, 1)])
def test_adapt_threads_trains_with_the_cpus_other_processes_leave_free(tiny_study, tmp_path, monkeypatch,
                                                                       busy_elsewhere, expected):
    import archsearch.search.trial as trial_module

    used = []
    monkeypatch.setattr(trial_module, "busy_cpus_elsewhere", lambda: busy_elsewhere)
    monkeypatch.setattr(trial_module, "train_and_evaluate",
                        partial(spy_threads, used, trial_module.train_and_evaluate))
    run_dir = tmp_path / "run"
    assert run(tiny_study, run_dir, "--trials", "1", "--set", "training.num_threads=2",
               "--set", "training.adapt_threads=true") == 0
    recorded = json.loads(trials(run_dir)["runtime"].iloc[0])
    assert recorded["torch_threads"] == expected and used == [expected]


def spy_threads(used, train_and_evaluate, model, train_loader, val_loader, config, **options):
    used.append(config.num_threads)
    return train_and_evaluate(model, train_loader, val_loader, config, **options)


def test_a_point_drawn_again_with_the_same_seed_is_not_trained_again(tiny_study, tmp_path, monkeypatch):
    from archsearch.search.trial import TrialRunner

    trained = []
    train = TrialRunner.train
    monkeypatch.setattr(TrialRunner, "train", lambda self, spec, *rest, **options: trained.append(spec)
                        or train(self, spec, *rest, **options))
    run_dir = tmp_path / "run"
    one_point = ["parameters.width={choice: [32]}", "parameters.pattern={choice: {short: '[[1],[1,2]]'}}",
                 "parameters.group_width={choice: [8]}"]
    assert run(tiny_study, run_dir, *[f"--set={change}" for change in one_point], "--trials", "3") == 0
    frame = trials(run_dir)
    assert len(trained) == 1 and list(frame["state"]) == ["COMPLETE"] * 3
    assert frame["duplicate_of"].isna()[0] and list(frame["duplicate_of"][1:]) == [0, 0]
    assert frame["miou"].nunique() == 1 and frame["arch_hash"].nunique() == 1
    weights = [(run_dir / "weights" / f"trial_{number}.safetensors").read_bytes() for number in range(3)]
    assert weights[0] == weights[1] == weights[2]
    # The repeats are one run of one architecture, not three.
    assert "1 complete trials, one architecture each" in write_report(run_dir).markdown.read_text()


def test_invalid_points_fail_with_their_reason_and_the_study_goes_on(tiny_study, tmp_path):
    run_dir = tmp_path / "run"
    run(tiny_study, run_dir, "--set", "parameters.width={choice: [16]}", "--set",
        "parameters.group_width={choice: [16]}", "--trials", "2")
    frame = trials(run_dir)
    assert list(frame["state"]) == ["FAIL", "FAIL"]
    assert all("InvalidPoint" in reason and "group_width" in reason for reason in frame["fail_reason"])


def test_exceptions_in_training_are_recorded_and_exit_status_says_unfinished(tiny_study, tmp_path, monkeypatch):
    from archsearch.search import trial as trial_module
    from archsearch.train import TrainingDiverged

    def diverge(*args, **kwargs):
        raise TrainingDiverged(step=1, loss=float("nan"))

    monkeypatch.setattr(trial_module, "train_and_evaluate", diverge)
    run_dir = tmp_path / "run"
    status = run(tiny_study, run_dir, "--set", "parameters.width={choice: [16]}", "--set", "fix={group_width: 8}",
                 "--trials", "2")
    frame = trials(run_dir)
    assert status == 1  # no trial completed
    assert list(frame["state"]) == ["FAIL", "FAIL"]
    assert all(reason.startswith("TrainingDiverged") for reason in frame["fail_reason"])


def test_rerunning_resumes_and_extends_without_retraining(tiny_study, tmp_path):
    run_dir = tmp_path / "run"
    assert run(tiny_study, run_dir, "--trials", "2") == 0
    first = trials(run_dir)
    weights = {path.name: path.stat().st_mtime_ns for path in (run_dir / "weights").iterdir()}
    assert run(tiny_study, run_dir, "--trials", "2") == 0
    assert trials(run_dir).equals(first)
    assert run(tiny_study, run_dir, "--trials", "3") == 0
    extended = trials(run_dir)
    assert len(extended) == 3 and extended.iloc[:2].equals(first)
    for path in (run_dir / "weights").iterdir():
        if path.name in weights:
            assert path.stat().st_mtime_ns == weights[path.name]


def test_same_seed_same_architectures_and_metrics(tiny_study, tmp_path):
    runs = []
    for name in ("a", "b"):
        run(tiny_study, tmp_path / name)
        runs.append(trials(tmp_path / name))
    columns = ["state", "arch_hash", "param.width", "param.pattern", "param.group_width", "miou"]
    assert runs[0][columns].equals(runs[1][columns])
    run(tiny_study, tmp_path / "c", "--set", "sampler.seed=5", "--trials", "4")
    assert not trials(tmp_path / "c")[["param.width", "param.pattern", "param.group_width"]].equals(
        runs[0][["param.width", "param.pattern", "param.group_width"]])


def test_grid_with_seeds_runs_every_point_with_every_seed(tiny_study, tmp_path):
    run_dir = tmp_path / "run"
    assert run(tiny_study, run_dir, "--set", "sampler=grid", "--set", "seeds=[0, 1]", "--set",
               "fix={group_width: 8}", "--set", "parameters.width={choice: [16, 32]}", "--trials", "100") == 0
    frame = trials(run_dir)
    assert len(frame) == 2 * 2 * 2  # widths x patterns x seeds
    pairs = frame.groupby(["param.width", "param.pattern"])["seed"].apply(sorted)
    assert all(seeds == [0, 1] for seeds in pairs)
    assert (frame.groupby("arch_hash").size() == 2).all()


def test_a_trial_left_running_by_a_dead_process_is_retried(tiny_study, tmp_path):
    run_dir = RunDirectory(tmp_path / "run").create()
    config = load_study(tiny_study, ["parameters.width={choice: [16]}", "fix={group_width: 8}"])
    study = open_study(config, run_dir)
    dead_pid = leave_orphan_trial(study)
    outcome = run_optuna(config.with_overrides(trials=2), run_dir)
    states = [trial.state for trial in study.get_trials()]
    assert states[0] == optuna.trial.TrialState.FAIL
    assert outcome.done and outcome.completed == 2
    frame = trials(tmp_path / "run")
    assert frame.loc[0, "fail_reason"].startswith("the process running it died")
    assert frame.loc[1, "param.pattern"] == frame.loc[0, "param.pattern"]  # retried with the same point
    assert os.getpid() != dead_pid


def test_pruner_stops_weak_trials_on_intermediate_miou(tiny_study, tmp_path):
    run_dir = tmp_path / "run"
    status = run(tiny_study, run_dir, "--set", "fix={group_width: 8}", "--set",
                 "training.eval_every=1", "--set", "training.iterations=3", "--set",
                 "pruner={name: percentile, percentile: 99.9, n_startup_trials: 1, n_warmup_steps: 0}",
                 "--trials", "4")
    frame = trials(run_dir)
    assert status == 0
    pruned = frame[frame["state"] == "PRUNED"]
    assert len(pruned) >= 1
    assert all(reason.startswith("pruned at step") for reason in pruned["fail_reason"])
    assert not any((run_dir / "weights" / f"trial_{number}.safetensors").exists() for number in pruned["number"])
