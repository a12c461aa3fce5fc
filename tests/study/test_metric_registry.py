"""The metric registry is what every list of metrics reads; the receptive field and peak memory as new metrics."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from archsearch.errors import SpecError
from archsearch.study.config import load_study
from archsearch.study.metrics import METRIC_INFO, REGISTRY
from tests.helpers.paths import FIXTURES


def test_every_list_of_metrics_reads_the_registry():
    from archsearch.cli.main import make_parser
    from archsearch.report.figure import AXIS_LABELS
    from archsearch.report.ranking import ARCHITECTURE_COLUMNS
    from archsearch.run.trials_table import COLUMNS
    from archsearch.study.config import StudyFile

    columns = {column.name: column.kind for column in COLUMNS}
    assert all(columns[metric.name] == metric.kind for metric in REGISTRY)
    assert set(AXIS_LABELS) == {metric.name for metric in REGISTRY if metric.axis}
    assert "memory_mb" in ARCHITECTURE_COLUMNS and "memory_mb" in AXIS_LABELS
    report = make_parser()._subparsers._group_actions[0].choices["report"]
    x_choices = next(action.choices for action in report._actions if action.dest == "x")
    assert tuple(x_choices) == tuple(AXIS_LABELS)
    assert StudyFile  # constraints are typed by the registry's constraint metrics:


@pytest.fixture
def study_with(tmp_path):
    def write(**changes):
        shutil.copy(FIXTURES / "tiny_space.yaml", tmp_path / "tiny_space.yaml")
        study = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
        study.update(changes)
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(study))
        return path
    return write


def test_a_constraint_takes_only_the_bounds_its_metric_allows(study_with):
    config = load_study(study_with(constraints={"receptive_field": {"min": 1000}}))
    assert [(c.metric, c.minimum, c.maximum) for c in config.constraints] == [("receptive_field", 1000.0, None)]
    with pytest.raises(SpecError) as error:
        load_study(study_with(constraints={"memory_mb": {"min": 1}}))
    assert error.value.path == "constraints.memory_mb.min" and error.value.allowed == "max"
    with pytest.raises(SpecError, match="constraints.flops: not an allowed value"):
        load_study(study_with(constraints={"flops": {"max": 1}}))
    assert METRIC_INFO["receptive_field"].constraint and not METRIC_INFO["receptive_field"].objective


def test_a_receptive_field_below_its_minimum_is_infeasible_and_never_trains(study_with, tmp_path, monkeypatch):
    from archsearch.cli.main import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    study = study_with(trials=2, constraints={"receptive_field": {"min": 100000}})
    assert main(["run", str(study), "--out", str(tmp_path / "run")]) != 2  # no point is feasible: not bad input
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    valid = trials[trials["fail_reason"].isna()]
    assert len(valid) and (valid["state"] == "INFEASIBLE").all() and valid["miou"].isna().all()
    assert (valid["receptive_field"] < 100000).all()
    assert not any((tmp_path / "run" / "weights").iterdir())


def test_peak_memory_is_an_objective_and_a_column(study_with, tmp_path, monkeypatch):
    from archsearch.cli.main import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    study = study_with(trials=1, objectives=[{"metric": "miou", "direction": "maximize"},
                                             {"metric": "memory_mb", "direction": "minimize"}],
                       constraints={"memory_mb": {"max": 1000}})
    assert main(["run", str(study), "--out", str(tmp_path / "run")]) == 0
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    complete = trials[trials["state"] == "COMPLETE"]
    assert len(complete) == 1 and 0 < complete["memory_mb"].iloc[0] < 1000


def test_miou_best_is_a_registry_metric_an_infeasible_point_scores_the_worst_on(study_with):
    from archsearch.run.trials_table import COLUMN_NAMES
    from archsearch.search.lifecycle import INFEASIBLE_MIOU, objective_values
    from archsearch.search.trial import TrialMetrics

    config = load_study(study_with(objectives=[{"metric": "miou_best", "direction": "maximize"},
                                               {"metric": "macs", "direction": "minimize"}]))
    assert {"miou_best", "miou_best_step", "runtime"} <= set(COLUMN_NAMES)
    metrics = TrialMetrics(arch_hash="a", seed=0, num_classes=19, params_train=10, params_deploy=9, macs=1000,
                           receptive_field=99, output_stride=8, infeasible=True)
    assert objective_values(config, metrics, infeasible=True) == [INFEASIBLE_MIOU, 1000.0]
    trained = TrialMetrics(arch_hash="a", seed=0, num_classes=19, params_train=10, params_deploy=9, macs=1000,
                           receptive_field=99, output_stride=8, miou=0.3, miou_best=0.4)
    assert objective_values(config, trained, infeasible=False) == [0.4, 1000.0]
