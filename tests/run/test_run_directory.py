"""The run directory's contract: what `run` writes, `report` and `export` read, whatever the study's objectives,
and a run directory written by an earlier archsearch still reports, exports and resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from archsearch.cli.main import main
from archsearch.run.study_file import load_study_heading
from archsearch.run.trials_table import COLUMNS, load_trials
from tests.helpers.paths import FIXTURES

TIMING = {"warmup_seconds": 0, "min_warmup_iterations": 1, "time_budget_seconds": 0, "min_repeats": 3}
INTEGER_COLUMNS = [column.name for column in COLUMNS if column.kind == "integer"]


def integer_cells(trials_csv: Path) -> pd.DataFrame:
    """The integer columns of a trials.csv as the text in the file."""
    return pd.read_csv(trials_csv, dtype=str, keep_default_na=False)[INTEGER_COLUMNS]


@pytest.fixture
def three_objectives(tmp_path) -> Path:
    """The tiny study with three objectives, one of them ``params_train``, and one point that fails."""
    shutil.copy(FIXTURES / "tiny_space.yaml", tmp_path / "tiny_space.yaml")
    study = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
    study.update(name="three", trials=3, parameters={"width": {"choice": [16]}},
                 objectives=[{"metric": "miou", "direction": "maximize"},
                             {"metric": "params_train", "direction": "minimize"},
                             {"metric": "latency_ms", "direction": "minimize"}],
                 sampler={"name": "random", "seed": 1}, latency=TIMING)
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_report_and_export_accept_three_objectives_with_params_train(three_objectives, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", str(three_objectives), "--out", str(run_dir)]) in (0, 1)
    trials = load_trials(run_dir)
    assert len(trials) == 3 and (trials["state"] == "COMPLETE").any()
    assert load_study_heading(run_dir).objectives == [("miou", "maximize"), ("params_train", "minimize"),
                                                       ("latency_ms", "minimize")]
    # Integer columns are written as integers, also beside a trial that has none of their values.
    for column, cells in integer_cells(run_dir / "trials.csv").items():
        assert all(cell == "" or cell.lstrip("-").isdigit() for cell in cells), (column, list(cells))
    assert main(["report", str(run_dir)]) == 0
    assert "params_train (minimize)" in (run_dir / "report.md").read_text()
    assert main(["export", str(run_dir), "--out", str(tmp_path / "export")]) == 0
    card = json.loads((tmp_path / "export" / "card.json").read_text())
    best = trials[trials["state"] == "COMPLETE"].sort_values(["miou", "number"], ascending=[False, True]).iloc[0]
    # The card carries the latency the trial recorded: its median, spread, device and settings.
    assert card["trial"] == best["number"] and card["latency"]["median_ms"] == best["latency_ms"]
    assert card["latency"]["iqr_ms"] == best["latency_iqr_ms"] and card["latency"]["repeats"] >= 3
    assert card["latency"]["device_name"] == best["latency_device"] and card["latency"]["settings"]["min_repeats"] == 3


@pytest.fixture
def legacy_run(tmp_path) -> tuple[Path, Path]:
    """A copy of the run directory the code of 7ef5ba6 wrote (tests/fixtures/legacy_study.yaml), with its study."""
    run_dir = tmp_path / "legacy_run"
    shutil.copytree(FIXTURES / "legacy_run", run_dir)
    for name in ("legacy_study.yaml", "tiny_space.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path / "legacy_study.yaml", run_dir


def test_a_run_written_by_earlier_code_reads_typed(legacy_run):
    _, run_dir = legacy_run
    assert "9169.0" in (run_dir / "trials.csv").read_text()  # how that code wrote integers beside a failed trial
    trials = load_trials(run_dir)
    assert list(trials["state"]) == ["FAIL", "COMPLETE"]
    assert trials.loc[1, "params_deploy"] == 9169 and str(trials["params_deploy"].dtype) == "Int64"
    assert trials["latency_device"].tolist() == ["", ""]  # not recorded then


def test_a_run_written_by_earlier_code_reports_and_exports(legacy_run, tmp_path, capsys):
    _, run_dir = legacy_run
    assert main(["report", str(run_dir)]) == 0
    assert "Study report: legacy" in (run_dir / "report.md").read_text()
    assert main(["export", str(run_dir), "--out", str(tmp_path / "export")]) == 0
    card = json.loads((tmp_path / "export" / "card.json").read_text())
    assert card["trial"] == 1 and card["input_size"] == [32, 64]
    assert card["latency"]["median_ms"] == pytest.approx(1.61819) and card["latency"]["device_name"] is None


def test_a_run_written_by_earlier_code_resumes(legacy_run, capsys):
    study, run_dir = legacy_run
    before = load_trials(run_dir)
    assert main(["run", str(study), "--out", str(run_dir), "--trials", "3"]) == 0
    after = load_trials(run_dir)
    assert len(after) == 3 and after.loc[2, "state"] in ("COMPLETE", "FAIL")
    for column in ("state", "arch_hash", "params_deploy", "miou", "fail_reason"):
        pd.testing.assert_series_equal(after.loc[:1, column], before[column])
    assert "9169.0" not in (run_dir / "trials.csv").read_text()  # rewritten with integer columns as integers


def test_an_integer_choice_stays_integers_where_a_trial_has_no_value():
    import optuna
    from optuna.distributions import CategoricalDistribution

    from archsearch.run.trials_table import trials_frame

    sampled = optuna.trial.create_trial(params={"width": 16, "pattern": "short"}, value=0.5,
                                        distributions={"width": CategoricalDistribution([16, 32]),
                                                       "pattern": CategoricalDistribution(["short", "long"])})
    unsampled = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL)
    frame = trials_frame([sampled, unsampled])
    assert str(frame["param.width"].dtype) == "Int64" and frame["param.width"].tolist()[0] == 16
    assert frame.to_csv(index=False).splitlines()[1].split(",")[-2:] == ["short", "16"]
