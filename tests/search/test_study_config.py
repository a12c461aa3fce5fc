"""Study files are checked before any trial starts; errors name the file, key path and value."""

from __future__ import annotations

import pytest
import yaml

from archsearch.cli.main import main
from archsearch.errors import SpecError
from archsearch.study.config import load_study
from tests.helpers.paths import STUDIES


def rewrite(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    return path


def test_tiny_study_parses(tiny_study):
    config = load_study(tiny_study)
    assert config.name == "tiny_study" and config.trials == 4 and config.sampler == "random"
    assert config.space.name == "tiny" and config.training.iterations == 2


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(bogus=1), "bogus: unknown field"),
    (lambda d: d.update(sampler={"name": "annealing"}), "sampler.name: not an allowed value (got 'annealing'); allowed: 'tpe'"),
    (lambda d: d["dataset"].update(name="kitti"), "dataset.name: unknown dataset"),
    (lambda d: d["training"].update(lr="fast"), "training.lr"),
    (lambda d: d.update(fix={"depth": 3}), "fix.depth: not a parameter of the space"),
    (lambda d: d.update(parameters={"width": {"choice": [8], "extra": 1}}), "parameters.width"),
    (lambda d: d.update(constraints={"latency_ms": {"max": 5}}), "constraints.latency_ms: a latency constraint needs"),
    (lambda d: d.update(constraints={"flops": {"max": 5}}), "constraints.flops: not an allowed value"),
    (lambda d: d.update(objectives=[{"metric": "accuracy", "direction": "maximize"}]), "objectives[0].metric"),
    (lambda d: d.update(seeds=[0, 0]), "seeds: expected a non-empty list of distinct integers"),
    (lambda d: d.update(space="missing.yaml"), "space: no such space file"),
    (lambda d: d.pop("training"), "training: missing required field"),
    (lambda d: d.update(storage="study.db"), "storage: expected an SQLAlchemy URL"),
])
def test_bad_study_values_are_named(tiny_study, change, expected):
    rewrite(tiny_study, change)
    with pytest.raises(SpecError) as caught:
        load_study(tiny_study)
    assert str(caught.value).startswith(str(tiny_study)) and expected in str(caught.value)


def test_a_missing_data_directory_is_refused_when_the_data_is_checked_not_when_the_study_is_read(tiny_study):
    from archsearch.study.datasets import check_data

    rewrite(tiny_study, lambda d: d.update(dataset={"name": "cityscapes", "root": "nowhere"}))
    config = load_study(tiny_study)  # a dry run shows the recipe without the data
    with pytest.raises(SpecError) as caught:
        check_data(config)
    assert str(caught.value).startswith(str(tiny_study)) and "dataset.root: no such data directory" in str(caught.value)


def test_set_overrides_values_with_yaml(tiny_study):
    config = load_study(tiny_study, ["training.iterations=7", "sampler.seed=3", "dataset.num_train=5"])
    assert config.training.iterations == 7 and config.sampler_seed == 3
    assert config.dataset.options["num_train"] == 5
    with pytest.raises(SpecError, match="--set: expected key=value"):
        load_study(tiny_study, ["training.iterations"])


def test_cli_rejects_a_bad_study_before_any_trial(tiny_study, tmp_path, capsys):
    rewrite(tiny_study, lambda d: d.update(pruner="sometimes"))
    run_dir = tmp_path / "run"
    assert main(["run", str(tiny_study), "--out", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "pruner.name: not an allowed value" in err and "Traceback" not in err
    assert not run_dir.exists()


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(sampler={"name": "tpe", "block": None}), "sampler: sampler rejects its options"),
    (lambda d: d.update(sampler={"name": "nsga2", "population_size": 1}), "sampler: sampler rejects its options"),
    (lambda d: d.update(pruner={"name": "median", "n_startup_trials": -1}), "pruner: pruner rejects its options"),
    (lambda d: d.update(backend="ray", pruner={"name": "hyperband", "reduction_factor": 1}), "pruner.reduction_factor"),
])
def test_options_the_sampler_or_pruner_refuse_stop_before_a_run_directory(tiny_study, tmp_path, capsys, change,
                                                                         expected):
    rewrite(tiny_study, change)
    run_dir = tmp_path / "run"
    assert main(["run", str(tiny_study), "--out", str(run_dir)]) == 2
    assert expected in capsys.readouterr().err
    assert not run_dir.exists()


def test_regseg_dilation_study_is_the_papers_nine_ablation_networks_with_three_seeds():

    from archsearch import resolve_spec
    from archsearch.search.optuna_driver import enumerate_grid_with_fixed
    from archsearch.space.sampling import FixedSuggester, sample

    study = STUDIES / "regseg_dilation.yaml"
    config = load_study(study)
    points = enumerate_grid_with_fixed(config)
    assert len(points) * len(config.seeds) == config.trials == 27
    for point in points:
        spec = sample(config.space, FixedSuggester({**config.fix, **point})).spec
        assert spec.arch_hash == resolve_spec(f"regseg-{point['dilation_pattern']}-decoder14").arch_hash


def test_shipped_studies_parse():

    for study in sorted((STUDIES).glob("*.yaml")):
        assert load_study(study).trials >= 1
