"""Studies that could not run as written stop with exit 2 and one message before a run directory is made."""

from __future__ import annotations

import pytest

from archsearch.cli.main import main
from archsearch.resources import available_cpus
from tests.helpers.processes import write_study


def refused_run(capsys, study, run_dir, *sets: str) -> str:
    capsys.readouterr()
    arguments = ["run", str(study), "--out", str(run_dir), "--trials", "1"]
    for assignment in sets:
        arguments += ["--set", assignment]
    status = main(arguments)
    err = capsys.readouterr().err
    # One error; a line before it may say what the check prepared (e.g. the synthetic data it generated once).
    assert status == 2 and err.count("archsearch: error: ") == 1 and "Traceback" not in err, err
    assert not run_dir.exists()
    return err


def test_run_out_onto_a_file_is_refused(tiny_study, capsys):
    target = tiny_study.parent / "file"
    target.write_text("x")
    capsys.readouterr()
    assert main(["run", str(tiny_study), "--out", str(target), "--trials", "1"]) == 2
    assert "--out: exists and is not a directory" in capsys.readouterr().err and target.read_text() == "x"
    err = refused_run(capsys, tiny_study, target / "run")
    assert f"--out: cannot write here: {target} is not a directory" in err


@pytest.mark.parametrize("url", ["mssql+pymssql://user@host/db", "nosuchdatabase://host/db"])
def test_storage_without_its_driver_leaves_no_run_directory(tiny_study, capsys, url):
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", f"storage={url}")
    assert "storage: cannot use this storage" in err and "driver is installed" in err


def test_batch_larger_than_the_training_set_is_refused_with_its_key(tiny_study, capsys):
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", "training.batch_size=9")
    assert "training.batch_size: larger than the training set" in err and "at most 8" in err


def test_thread_counts_beyond_the_cpus_are_refused(tiny_study, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # a user's OMP_NUM_THREADS would replace the study's count
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", f"training.num_threads={available_cpus() + 1}")
    assert "training.num_threads: more threads than" in err


@pytest.mark.parametrize(("bounds", "message"), [
    ("{max: -1}", "constraints.latency_ms.max: a maximum of 0 or less makes every point infeasible"),
    ("{max: 0}", "constraints.latency_ms.max: a maximum of 0 or less"),
    ("{min: 5, max: 2}", "constraints.latency_ms: the minimum is above the maximum"),
    ("{max: .inf}", "constraints.latency_ms.max: expected a finite number"),
])
def test_latency_bounds_nothing_could_meet_are_refused(tiny_study, capsys, bounds, message):
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", "latency.device=cpu",
                      f"constraints.latency_ms={bounds}")
    assert message in err


def test_a_bad_sampler_option_lists_the_allowed_ones(tiny_study, capsys):
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", "sampler.name=tpe", "sampler.startup=3")
    assert "sampler: sampler rejects its options" in err and "allowed: tpe's options:" in err
    assert "n_startup_trials" in err


def test_a_fixed_value_outside_the_space_is_refused_before_any_trial(tiny_study, capsys):
    message = "fix.width: not one of the space's choices (got 13); allowed: 16, 32, 48"
    assert message in refused_run(capsys, tiny_study, tiny_study.parent / "run", "fix.width=13")
    assert main(["run", str(tiny_study), "--dry-run", "--set", "fix.width=13"]) == 2  # the same check
    assert message in capsys.readouterr().err


def test_study_parameters_that_widen_the_space_are_refused_naming_the_new_values(tiny_study, capsys):
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", "parameters.width={choice: [16, 64]}")
    assert "parameters.width: adds values the space does not have (got [64])" in err


def test_a_labelled_choice_narrowed_by_labels_runs(tiny_study, capsys, no_training):
    import pandas as pd

    run_dir = tiny_study.parent / "run"
    assert main(["run", str(tiny_study), "--out", str(run_dir), "--trials", "1", "--set", "fix.group_width=8",
                 "--set", "parameters.pattern={choice: [long]}"]) == 0
    row = pd.read_csv(run_dir / "trials.csv").iloc[0]
    assert row["state"] == "COMPLETE" and row["param.pattern"] == "long"


def test_an_empty_set_value_is_shown(tiny_study, capsys):
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", "trials=")
    assert "--set trials= (over" in err and "trials: expected an integer (got '')" in err


@pytest.mark.parametrize(("assignment", "message"), [
    ("dataset.height=3", "dataset.height: synthetic dataset parameter is out of range (got 3)"),
    ("dataset.num_train=0", "dataset.num_train: synthetic dataset parameter is out of range (got 0)"),
])
def test_a_bad_dataset_option_names_the_study_and_its_key(tiny_study, capsys, assignment, message):
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", assignment)
    assert f"{tiny_study}: {message}" in err


@pytest.mark.parametrize("setting", ["latency.warmup_seconds=1e9", "latency.time_budget_seconds=.inf",
                                     "latency.min_repeats=1000000000"])
def test_an_unbounded_latency_budget_is_refused_before_the_run(tiny_study, capsys, setting):
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", "latency.device=cpu", setting)
    key = setting.partition("=")[0]
    assert f"{key}: " in err and "<=" in err, err


@pytest.fixture
def data_untouched(monkeypatch):
    """Fails a test that reads a sample: a size that cannot fit must be refused before the first one is padded."""
    from archsearch.study import datasets as trial

    def never(config):
        raise AssertionError("read data before refusing the size")

    monkeypatch.setattr(trial, "check_data", never)


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(("sets", "key", "size"), [
    (["augmentation.crop_size=null", "input_size=[100000,100000]"], "input_size", "[100000, 100000]"),
    (["augmentation.crop_size=[100000,100000]"], "augmentation.crop_size", "[100000, 100000]"),
    (["augmentation.crop_size=[20000,20000]"], "augmentation.crop_size", "[20000, 20000]"),
    (["latency.device=cpu", "latency.input_size=[100000,100000]"], "latency.input_size", "[100000, 100000]"),
])
def test_a_size_no_network_could_fit_is_refused_before_any_data_is_read(tiny_study, capsys, data_untouched, sets,
                                                                        key, size, dry_run):
    run_dir = tiny_study.parent / "run"
    err = refused_run(capsys, tiny_study, run_dir, *sets) if not dry_run else None
    if dry_run:
        arguments = ["run", str(tiny_study), "--dry-run"] + [part for item in sets for part in ("--set", item)]
        assert main(arguments) == 2
        err = capsys.readouterr().err
    assert f"{key}: " in err and f"(got {size})" in err and "available" in err and "allowed: " in err, err


def test_the_size_check_lets_a_study_that_fits_run(tiny_study):
    from archsearch.run.preflight import check_sizes_fit
    from archsearch.study.config import load_study

    check_sizes_fit(load_study(tiny_study, ["augmentation.crop_size=[512,512]"]))


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(("seeds", "index"), [("[99999999999999999999]", 0), ("[-1]", 0), ("[0, 4294967296]", 1)])
def test_a_seed_out_of_range_is_refused_at_parse_naming_file_key_and_range(tiny_study, capsys, seeds, index,
                                                                          dry_run):
    run_dir = tiny_study.parent / "run"
    if dry_run:
        assert main(["run", str(tiny_study), "--dry-run", "--set", f"seeds={seeds}"]) == 2
        err = capsys.readouterr().err
    else:
        err = refused_run(capsys, tiny_study, run_dir, f"seeds={seeds}")
    assert f"{tiny_study}" in err and f"seeds[{index}]: " in err and "0 to 2**32 - 1" in err, err
    assert not run_dir.exists()


def test_a_seed_out_of_range_in_the_file_is_named_with_the_file(tiny_study):
    from archsearch.errors import SpecError
    from archsearch.study.config import load_study

    tiny_study.write_text(tiny_study.read_text().replace("seeds: [0]", "seeds: [0, -1]"))
    with pytest.raises(SpecError) as caught:
        load_study(tiny_study)
    assert caught.value.source == str(tiny_study) and caught.value.path == "seeds[1]" and caught.value.value == -1


def test_a_grid_past_the_cap_is_refused_before_the_run_naming_its_parameters(tiny_study, capsys):
    space = tiny_study.parent / "tiny_space.yaml"
    space.write_text(space.read_text().replace("width: {choice: [16, 32, 48]}", "width: {int: [8, 100000]}"))
    err = refused_run(capsys, tiny_study, tiny_study.parent / "run", "sampler.name=grid")
    assert "the grid has 399,972 points: width (99993) x pattern (2) x group_width (2)" in err and "fix:" in err, err


@pytest.mark.parametrize("name", ["../../x", "ABSOLUTE", ".", "..", "a/b", "", "tab\there"])
def test_a_study_name_is_an_identifier_not_a_path(tiny_study, capsys, monkeypatch, name):
    work = tiny_study.parent / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the default run directory is runs/<name>, here
    name = str(tiny_study.parent / "elsewhere") if name == "ABSOLUTE" else name
    write_study(tiny_study, name=name)
    before = sorted(path.name for path in tiny_study.parent.iterdir())
    capsys.readouterr()
    assert main(["run", str(tiny_study), "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{tiny_study}: name: not a study name (got {name!r}); allowed: letters, digits" in err, err
    assert sorted(path.name for path in tiny_study.parent.iterdir()) == before


def test_a_study_file_named_like_a_path_needs_a_name(tiny_study, capsys):
    odd = tiny_study.parent / "..yaml"
    odd.write_text(tiny_study.read_text().replace("name: tiny_study\n", ""))
    err = refused_run(capsys, odd, tiny_study.parent / "run")
    assert "name:" in err and "'.'" in err and "add a name:" in err


def test_out_into_a_folder_that_is_not_a_run_directory_is_refused(tiny_study, capsys):
    folder = tiny_study.parent / "results"
    folder.mkdir()
    (folder / "trials.csv").write_text("my own table\n")
    capsys.readouterr()
    assert main(["run", str(tiny_study), "--out", str(folder), "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert "--out: not a run directory" in err and repr(str(folder)) in err and "Traceback" not in err, err
    assert sorted(path.name for path in folder.iterdir()) == ["trials.csv"]
    assert (folder / "trials.csv").read_text() == "my own table\n"
