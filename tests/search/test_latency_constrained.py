"""Latency-constrained studies end to end: over-budget points never train, samplers see the constraint, export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
import yaml

from archsearch.cli.main import main
from archsearch.latency import LatencyResult, LatencySettings, device_name
from archsearch.search import RunDirectory, load_study
from archsearch.search.optuna_driver import open_study
from tests.helpers.paths import FIXTURES, STUDIES

TIMING = {"warmup_seconds": 0, "min_warmup_iterations": 1, "time_budget_seconds": 0, "min_repeats": 3}
BUDGET_MS = 25.0


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def constrained_study(tmp_path) -> Path:
    """The tiny study, two objectives (mIoU up, latency down) and a latency budget."""
    shutil.copy(FIXTURES / "tiny_space.yaml", tmp_path / "tiny_space.yaml")
    study = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
    study.update(name="constrained", trials=6, parameters={"group_width": {"choice": [8]}},
                 objectives=[{"metric": "miou", "direction": "maximize"},
                             {"metric": "latency_ms", "direction": "minimize"}],
                 sampler={"name": "tpe", "seed": 0, "n_startup_trials": 3}, latency=TIMING,
                 constraints={"latency_ms": {"max": BUDGET_MS}})
    path = tmp_path / "constrained.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def fake_latency(model: torch.nn.Module, settings: LatencySettings) -> LatencyResult:
    """A deterministic 'latency': one ms per thousand deploy-form parameters (widths 16 and 32 fit, 48 does not)."""
    median_ms = sum(parameter.numel() for parameter in model.parameters()) / 1000
    return LatencyResult(median_ms=median_ms, iqr_ms=0.0, q1_ms=median_ms, q3_ms=median_ms, min_ms=median_ms,
                         repeats=3, device_name=device_name(settings), settings=settings, backend="eager")


def run(study: Path, run_dir: Path, *extra: str) -> int:
    return main(["run", str(study), "--out", str(run_dir), *extra])


def check_the_budget_held(run_dir: Path, budget_ms: float) -> pd.DataFrame:
    """Every trained trial is within the budget; every over-budget point is INFEASIBLE and never trained.

    An infeasible point's latency is its measurement, or its prediction where screening left it out untimed."""
    trials = pd.read_csv(run_dir / "trials.csv")
    for _, row in trials[trials["state"] == "COMPLETE"].iterrows():
        assert row["latency_ms"] <= budget_ms and row["train_seconds"] > 0
        assert (run_dir / "weights" / f"trial_{row['number']}.safetensors").is_file()
    for _, row in trials[trials["state"] == "INFEASIBLE"].iterrows():
        latency = row["latency_ms"] if pd.notna(row["latency_ms"]) else row["latency_predicted_ms"]
        assert latency > budget_ms and pd.isna(row["train_seconds"]) and pd.isna(row["miou"])
        assert not (run_dir / "weights" / f"trial_{row['number']}.safetensors").exists()
    return trials


def test_over_budget_points_are_infeasible_and_never_train(constrained_study, tmp_path, monkeypatch, capsys):
    import archsearch.latency.cache

    monkeypatch.setattr(archsearch.latency.cache, "measure_latency", fake_latency)
    run_dir = tmp_path / "run"
    assert run(constrained_study, run_dir) == 0
    trials = check_the_budget_held(run_dir, BUDGET_MS)
    assert {"COMPLETE", "INFEASIBLE"} <= set(trials["state"])
    assert set(trials.loc[trials["state"] == "INFEASIBLE", "param.width"]) == {48}

    # Optuna holds both objectives, and the sampler sees each trial's constraint.
    study = open_study(load_study(constrained_study), RunDirectory(run_dir))
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        infeasible = trial.user_attrs.get("infeasible", False)
        (violation,) = trial.constraints.values()
        assert (violation > 0) == infeasible
        assert trial.values[1] == trial.user_attrs["latency_ms"]
        assert trial.values[0] == (0.0 if infeasible else trial.user_attrs["miou"])

    # Exporting the best trial within a tighter budget takes the latency and its device from the run.
    fastest = trials.loc[trials["state"] == "COMPLETE", "latency_ms"].min()
    capsys.readouterr()
    assert main(["export", str(run_dir), "--best", "--max-latency", str(fastest), "--out", str(tmp_path / "x")]) == 0
    card = json.loads((tmp_path / "x" / "card.json").read_text())
    assert card["latency"]["median_ms"] == fastest
    assert card["latency"]["device_name"] == device_name(LatencySettings())
    assert card["latency"]["settings"]["min_repeats"] == TIMING["min_repeats"]


def test_screening_leaves_out_predicted_over_budget_points_without_timing_them(constrained_study, tmp_path,
                                                                                  monkeypatch):
    """The predictor (here summing the same fake per-unit 'latency') decides first; only what passes is timed whole."""
    import archsearch.latency.cache
    import archsearch.latency.predictor

    timed_whole: list[float] = []

    def fake_network_latency(model, settings):
        result = fake_latency(model, settings)
        timed_whole.append(result.median_ms)
        return result

    monkeypatch.setattr(archsearch.latency.cache, "measure_latency", fake_network_latency)
    monkeypatch.setattr(archsearch.latency.predictor, "measure_together",
                        lambda models, settings, rounds: [fake_latency(model, settings) for model in models])
    run_dir = tmp_path / "run"
    assert run(constrained_study, run_dir, "--set", "screening={margin: 0.0}") == 0
    trials = check_the_budget_held(run_dir, BUDGET_MS)

    screened = trials[trials["state"] == "INFEASIBLE"]
    assert len(screened) > 0 and set(screened["param.width"]) == {48}
    assert (screened["latency_predicted_ms"] > BUDGET_MS).all() and screened["latency_ms"].isna().all()
    measured = trials[trials["latency_ms"].notna()]
    assert (measured["latency_predicted_ms"] <= BUDGET_MS).all()
    # Units sum to the network: the fake per-parameter latency is predicted exactly.
    assert measured["latency_predicted_ms"].to_numpy() == pytest.approx(measured["latency_ms"].to_numpy())
    assert len(timed_whole) == measured["arch_hash"].nunique()

    # The sampler sees a screened point as infeasible, with its predicted latency as its latency objective.
    study = open_study(load_study(constrained_study, ["screening={margin: 0.0}"]), RunDirectory(run_dir))
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        if trial.user_attrs.get("latency_ms") is None:
            assert trial.values[1] == trial.user_attrs["latency_predicted_ms"]
            (violation,) = trial.constraints.values()
            assert violation > 0


@pytest.mark.parametrize("change, message", [
    ("screening={margin: 0.1}", "screening: screening leaves out points predicted over the latency budget"),
    ("screening={margin: -1}", "screening.margin: expected a number >= 0"),
    ("screening={tables: x}", "screening.tables: unknown field"),
])
def test_bad_screening_exits_2(constrained_study, tmp_path, capsys, change, message):
    extra = ["--set", "constraints={macs: {max: 1}}"] if "0.1" in change else []
    assert run(constrained_study, tmp_path / "run", *extra, "--set", change) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_screening_needs_the_eager_backend(constrained_study, tmp_path, capsys):
    assert run(constrained_study, tmp_path / "run", "--set", "screening={}", "--set", "latency.backend=onnxruntime") == 2
    assert "latency.backend: the latency predictor sums blocks timed one by one" in capsys.readouterr().err


def test_nsga2_with_real_timings_keeps_to_the_budget(constrained_study, tmp_path):
    """Real timings are noisy on a shared machine, so only the invariants are checked, whatever the split."""
    run_dir = tmp_path / "run"
    status = run(constrained_study, run_dir, "--set", "sampler={name: nsga2, seed: 0, population_size: 2}",
                 "--set", "constraints.latency_ms.max=3.0", "--trials", "4")
    trials = check_the_budget_held(run_dir, 3.0)
    assert len(trials) == 4 and set(trials["state"]) <= {"COMPLETE", "INFEASIBLE"}
    assert status == (0 if (trials["state"] == "COMPLETE").any() else 3)  # 3: nothing fits the budget
    assert trials["latency_ms"].notna().all()


@pytest.mark.parametrize("change, message", [
    ("constraints={flops: {max: 1}}", "constraints.flops: not an allowed value (got 'flops')"),
    ("latency=null", "constraints.latency_ms: a latency constraint needs latency settings"),
    ("latency.dtype=fp8", "latency.dtype: not an allowed value (got 'fp8')"),
])
def test_bad_constraints_exit_2(constrained_study, tmp_path, capsys, change, message):
    assert run(constrained_study, tmp_path / "run", "--set", change) == 2
    assert message in capsys.readouterr().err


def test_the_shipped_study_is_latency_constrained_and_multi_objective():
    config = load_study(STUDIES / "latency_constrained.yaml")
    assert [objective.metric for objective in config.objectives] == ["miou", "latency_ratio"]
    assert config.sampler in ("tpe", "nsga2") and config.dataset.name == "synthetic"
    (constraint,) = config.constraints  # relative to a reference timed alongside, which drift does not move
    assert constraint.metric == "latency_ratio" and 0 < constraint.maximum < 1
    assert constraint.reference == "rdrnet-s-simple"
    assert config.latency.device == "cpu" and config.latency.input_size == config.input_size
