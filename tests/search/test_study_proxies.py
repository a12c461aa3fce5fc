"""Zero-cost proxies in a study: recorded per trial before training, and a search that trains nothing."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml

from archsearch.cli.main import main
from archsearch.errors import SpecError
from archsearch.report.write import write_report
from archsearch.search import load_study
from tests.helpers.paths import FIXTURES, STUDIES

PROXIES = ["synflow", "naswot", "grad_norm", "snip"]


def study_file(tiny_study, **changes):
    data = yaml.safe_load(tiny_study.read_text())
    data.update(changes)
    tiny_study.write_text(yaml.safe_dump(data))
    return tiny_study


def test_proxies_and_earlier_evaluations_are_recorded(tiny_study, tmp_path):
    data = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
    study = study_file(tiny_study, proxies=PROXIES, trials=3,
                       training={**data["training"], "iterations": 2, "eval_every": 1})
    assert main(["run", str(study), "--out", str(tmp_path / "run")]) == 0
    frame = pd.read_csv(tmp_path / "run" / "trials.csv")
    complete = frame[frame["state"] == "COMPLETE"]
    assert len(complete) >= 1
    for name in PROXIES:
        assert complete[f"proxy.{name}"].map(math.isfinite).all()
    assert complete["miou_at.1"].between(0, 1).all() and complete["miou"].notna().all()
    best = complete[["miou_at.1", "miou"]].max(axis=1)  # trials.csv: the best evaluation and its step
    assert (complete["miou_best"] == best).all()
    assert (complete["miou_best_step"] == complete["miou_at.1"].ge(complete["miou"]).map({True: 1, False: 2})).all()


def test_a_search_on_a_proxy_trains_nothing(tiny_study, tmp_path):
    study = study_file(tiny_study, proxies=["synflow"], training="none", trials=3,
                       objectives=[{"metric": "proxy.synflow", "direction": "maximize"}])
    run_dir = tmp_path / "run"
    assert main(["run", str(study), "--out", str(run_dir)]) == 0
    frame = pd.read_csv(run_dir / "trials.csv")
    complete = frame[frame["state"] == "COMPLETE"]
    assert len(complete) >= 1 and complete["miou"].isna().all() and (complete["proxy.synflow"] > 0).all()
    assert not list((run_dir / "weights").iterdir())
    markdown = write_report(run_dir).markdown.read_text()
    assert "ranked by proxy.synflow (maximize)" in markdown
    table = pd.read_csv(run_dir / "report.csv")
    assert list(table["proxy.synflow"]) == sorted(table["proxy.synflow"], reverse=True)


@pytest.mark.parametrize("changes, path", [
    ({"proxies": ["zen"]}, "proxies[0]"),
    ({"proxies": "synflow"}, "proxies"),
    ({"objectives": [{"metric": "proxy.synflow", "direction": "maximize"}]}, "objectives[0].metric"),
    ({"training": "none"}, "objectives[0].metric"),
    ({"training": "none", "proxies": ["snip"], "pruner": "median",
      "objectives": [{"metric": "proxy.snip", "direction": "maximize"}]}, "pruner.name"),
])
def test_bad_proxy_settings_name_their_key(tiny_study, changes, path):
    with pytest.raises(SpecError) as error:
        load_study(study_file(tiny_study, **changes))
    assert error.value.path == path and error.value.source == str(tiny_study)


def test_fidelity_studies_train_the_same_architectures_a_quarter_as_long():
    short, long = load_study(STUDIES / "fidelity_short.yaml"), load_study(STUDIES / "fidelity_long.yaml")
    assert short.space.parameters == long.space.parameters and short.fix == long.fix and short.seeds == (0,)
    assert short.trials == long.trials >= 16 and short.sampler == long.sampler == "grid"
    assert long.training.iterations == 4 * short.training.iterations
    assert short.proxies == long.proxies == tuple(PROXIES)


@pytest.mark.slow
def test_a_trial_over_two_processes_records_its_result_and_weights(tiny_study, tmp_path):
    data = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
    study = study_file(tiny_study, trials=1, training={**data["training"], "processes": 2, "eval_every": 1})
    assert main(["run", str(study), "--out", str(tmp_path / "run")]) == 0
    frame = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert frame["state"].tolist() == ["COMPLETE"], frame["fail_reason"].tolist()
    assert frame["miou"].between(0, 1).all() and frame["miou_at.1"].between(0, 1).all()
    assert (tmp_path / "run" / "weights" / "trial_0.safetensors").is_file()  # rank 0's weights
