"""Relative latency budgets in a study: the reference timed with every point, ratios in trials.csv, nothing fits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from archsearch.cli.main import main
from archsearch.latency import LatencySettings
from archsearch.latency.relative import RelativeLatency
from archsearch.search import load_study
from tests.helpers.paths import FIXTURES

TIMING = {"warmup_seconds": 0, "min_warmup_iterations": 1, "time_budget_seconds": 0, "min_repeats": 3}
REFERENCE_WIDTH = 32


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def parameters(model) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


@pytest.fixture
def timings(monkeypatch) -> list[tuple[int, int]]:
    """Fake relative timings: 'latency' is one ms per thousand parameters, and the machine gets 2x slower
    with every timing (which a ratio must not notice). Records (candidate, reference) parameter counts."""
    import archsearch.latency.reference

    calls: list[tuple[int, int]] = []

    def fake_measure_relative(candidate, reference, settings, *, reference_name):
        calls.append((parameters(candidate), parameters(reference)))
        slowdown = 2.0 ** len(calls)
        rounds = 4
        return RelativeLatency(
            candidate_rounds=tuple((parameters(candidate) / 1000 * slowdown,) for _ in range(rounds)),
            reference_rounds=tuple((parameters(reference) / 1000 * slowdown,) for _ in range(rounds)),
            device_name="test CPU", settings=settings, backend="eager", reference_name=reference_name)

    monkeypatch.setattr(archsearch.latency.reference, "measure_relative", fake_measure_relative)
    return calls


@pytest.fixture
def reference_file(tmp_path) -> Path:
    """The tiny space at width 32 as a spec file next to the study."""
    from archsearch.space.sampling import FixedSuggester, load_space, sample

    point = sample(load_space(FIXTURES / "tiny_space.yaml"),
                   FixedSuggester({"width": REFERENCE_WIDTH, "pattern": "short", "group_width": 8}))
    (tmp_path / "networks").mkdir()
    path = tmp_path / "networks" / "reference.yaml"
    path.write_text(point.spec.to_yaml())
    return path


def write_study(tmp_path: Path, constraints: dict, **changes) -> Path:
    shutil.copy(FIXTURES / "tiny_space.yaml", tmp_path / "tiny_space.yaml")
    study = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
    study.update(name="relative", trials=5, parameters={"group_width": {"choice": [8]}},
                 objectives=[{"metric": "miou", "direction": "maximize"},
                             {"metric": "latency_ratio", "direction": "minimize"}],
                 sampler={"name": "random", "seed": 0}, latency=TIMING, constraints=constraints)
    study.update(changes)
    path = tmp_path / "relative.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def run(study: Path, run_dir: Path, *extra: str) -> int:
    return main(["run", str(study), "--out", str(run_dir), *extra])


def test_points_over_the_ratio_never_train_and_trials_csv_has_the_ratio(tmp_path, timings, reference_file):
    study = write_study(tmp_path, {"latency_ratio": {"max": 1.0, "reference": "networks/reference.yaml"}})
    run_dir = tmp_path / "run"
    assert run(study, run_dir) == 0
    trials = pd.read_csv(run_dir / "trials.csv")
    measured = trials[trials["latency_ratio"].notna()]
    assert len(measured) == len(trials)
    # Every timing ran twice as slow as the one before; the ratio to the reference, timed alongside, did not.
    assert len({reference for _, reference in timings}) == 1  # the same reference, timed with every point
    assert measured["latency_ratio"].to_list() == pytest.approx([mine / theirs for mine, theirs in timings])
    assert measured["latency_reference_ms"].is_monotonic_increasing
    for _, row in measured.iterrows():
        expected_state = "COMPLETE" if row["latency_ratio"] <= 1.0 else "INFEASIBLE"
        assert row["state"] == expected_state
        assert row["latency_margin"] == pytest.approx(1.0 - row["latency_ratio"])
        assert row["latency_reference_ms"] > 0 and row["latency_retimes"] == 0
        assert row["latency_ms"] == pytest.approx(row["latency_ratio"] * row["latency_reference_ms"])
    assert {"COMPLETE", "INFEASIBLE"} <= set(trials["state"])
    assert (trials.loc[trials["state"] == "INFEASIBLE", "train_seconds"].isna()).all()
    same_as_reference = (trials["param.width"] == REFERENCE_WIDTH) & (trials["param.pattern"] == "short")
    assert (trials.loc[same_as_reference, "latency_ratio"] == 1.0).all()

    # The report ranks and plots by the ratio; the exported card gives it with its reference.
    assert main(["report", str(run_dir)]) == 0
    report = (run_dir / "report.md").read_text()
    assert "latency ratio" in report
    complete = trials[trials["state"] == "COMPLETE"]
    best = complete.loc[complete["miou"].idxmax()]
    assert f"{best['latency_ratio']:.3f}" in report
    assert main(["export", str(run_dir), "--trial", str(best["number"]), "--out", str(tmp_path / "x")]) == 0
    card = json.loads((tmp_path / "x" / "card.json").read_text())
    assert card["latency"]["ratio"] == pytest.approx(best["latency_ratio"])
    assert card["latency"]["reference"] == str(reference_file.resolve())
    assert f"{best['latency_ratio']:.3f}x" in (tmp_path / "x" / "card.md").read_text()


def test_nothing_fits_ends_with_status_3_and_says_what_to_change(tmp_path, timings, capsys):
    study = write_study(tmp_path, {"latency_ratio": {"max": 0.001, "reference": "rdrnet-s-simple"}}, trials=3)
    assert run(study, tmp_path / "run") == 3
    message = " ".join(capsys.readouterr().err.split())
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    fastest = trials.loc[trials["latency_ratio"].idxmin()]
    assert "no point met the latency budget (latency_ratio <= 0.001 (to rdrnet-s-simple))" in message
    assert f"the fastest trial #{fastest['number']} at {fastest['latency_ms']:.2f} ms" in message
    assert f"{fastest['latency_ratio']:.3f}x rdrnet-s-simple" in message
    assert "raise constraints.latency_ratio.max to at least" in message


def test_screening_predicts_the_ratio(tmp_path, timings, monkeypatch):
    """Units 'time' one ms per thousand parameters, so the predicted ratio is the parameter ratio, as measured."""
    import archsearch.latency.predictor
    from archsearch.latency import LatencyResult, device_name

    def fake_latency(model, settings):
        median_ms = parameters(model) / 1000
        return LatencyResult(median_ms=median_ms, iqr_ms=0.0, q1_ms=median_ms, q3_ms=median_ms, min_ms=median_ms,
                             repeats=3, device_name=device_name(settings), settings=settings, backend="eager")

    def fake_together(models, settings, rounds):
        unit_timings.append(len(models))
        return [fake_latency(model, settings) for model in models]

    unit_timings: list[int] = []
    monkeypatch.setattr(archsearch.latency.predictor, "measure_together", fake_together)
    study = write_study(tmp_path, {"latency_ratio": {"max": 0.5, "reference": "rdrnet-s-simple"}},
                        screening={"margin": 0.0}, trials=4)
    run_dir = tmp_path / "run"
    run(study, run_dir)
    trials = pd.read_csv(run_dir / "trials.csv")
    assert trials["latency_predicted_ratio"].notna().all()
    measured = trials[trials["latency_ratio"].notna()]
    assert measured["latency_predicted_ratio"].to_numpy() == pytest.approx(measured["latency_ratio"].to_numpy())
    screened = trials[trials["latency_ratio"].isna()]
    assert (screened["latency_predicted_ratio"] > 0.5).all() and (screened["state"] == "INFEASIBLE").all()
    assert len(timings) == measured["arch_hash"].nunique()
    # The first prediction timed the point's units and the reference's in one go; later ones only new units.
    assert 0 < len(unit_timings) <= len(trials) and sum(unit_timings) > 0


@pytest.mark.parametrize("bounds, message", [
    ({"max": 0.5}, "constraints.latency_ratio.reference: a latency ratio needs the network it is relative to"),
    ({"max": 0.5, "reference": "no-such-net"}, "constraints.latency_ratio.reference: unknown preset and no such"),
    ({"max": 0.5, "reference": "bad.yaml"}, "constraints.latency_ratio.reference: the reference spec is not valid"),
    ({"reference": "rdrnet-s"}, "constraints.latency_ratio: expected {max: X} and/or {min: Y}"),
    ({"max": "fast", "reference": "rdrnet-s"}, "constraints.latency_ratio.max: expected a number"),
])
def test_bad_relative_budgets_exit_2(tmp_path, capsys, bounds, message):
    (tmp_path / "bad.yaml").write_text("name: bad\nstem: 3\n")
    study = write_study(tmp_path, {"latency_ratio": bounds})
    assert run(study, tmp_path / "run") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_ratio_objective_needs_a_reference(tmp_path, capsys):
    study = write_study(tmp_path, {})
    assert run(study, tmp_path / "run") == 2
    assert "a latency_ratio objective needs a reference network" in capsys.readouterr().err


def test_the_reference_file_is_found_next_to_the_study(tmp_path, reference_file):
    study = write_study(tmp_path, {"latency_ratio": {"max": 0.6, "reference": "networks/reference.yaml"},
                                   "latency_ms": {"max": 30}})
    config = load_study(study)
    ratio, absolute = config.constraints
    assert ratio.reference == str(reference_file.resolve()) and ratio.maximum == 0.6
    assert absolute.metric == "latency_ms" and absolute.reference is None
    assert config.latency == LatencySettings.from_dict({**TIMING, "input_size": [32, 64]}, "test")
