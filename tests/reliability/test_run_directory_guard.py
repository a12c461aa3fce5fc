"""A run directory guards its study: another study, changed settings or a storage that lost trials exit 2 and
change nothing; a deliberate continuation is recorded per trial and reports say so; states are counted apart."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
import yaml

from archsearch.cli.main import main
from archsearch.run.guard import FINGERPRINT_FILE, StudyIdentity, differences, read_storage
from archsearch.study.config import load_study
from tests.helpers.processes import write_study


def run(capsys, study: Path, run_dir: Path, trials: int, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["run", str(study), "--out", str(run_dir), "--trials", str(trials), *extra])
    return status, capsys.readouterr().err


def snapshot(run_dir: Path) -> dict[str, str]:
    """Every file of the run directory by its content's hash (locks aside)."""
    return {str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(run_dir.rglob("*")) if path.is_file() and not path.name.endswith(".lock")}


def refused(status: int, err: str) -> str:
    assert status == 2 and err.startswith("archsearch: error: ") and "Traceback" not in err, err
    return err


@pytest.fixture
def started(tiny_study, tmp_path, capsys, no_training) -> Path:
    """The tiny study run for two trials into ``run``."""
    run_dir = tmp_path / "run"
    assert run(capsys, tiny_study, run_dir, 2)[0] in (0, 1)
    return run_dir


def test_another_studys_directory_is_refused_and_kept(started, tiny_study, capsys):
    before = snapshot(started)
    other = tiny_study.parent / "other.yaml"
    other.write_text(tiny_study.read_text().replace("name: tiny_study", "name: other"))
    err = refused(*run(capsys, other, started, 3))
    assert f"run directory {started} belongs to another study: it holds study 'tiny_study' (space 'tiny'), " \
           "this is study 'other'" in err
    assert snapshot(started) == before


def test_a_directory_made_before_fingerprints_is_still_guarded(started, tiny_study, capsys):
    (started / FINGERPRINT_FILE).unlink()
    before = snapshot(started)
    other = tiny_study.parent / "other.yaml"
    other.write_text(tiny_study.read_text().replace("name: tiny_study", "name: other"))
    assert "belongs to another study: it holds study 'tiny_study'" in refused(*run(capsys, other, started, 3))
    assert snapshot(started) == before


def test_changed_settings_are_refused_naming_each_difference(started, tiny_study, capsys):
    before = snapshot(started)
    err = refused(*run(capsys, tiny_study, started, 3, "--set", "training.iterations=30",
                       "--set", "training.lr=0.0001"))
    assert "holds trials measured with other settings: training.iterations: 2 -> 30; training.lr: 0.001 -> 0.0001" \
           in err and "--allow-changed-settings" in err
    assert snapshot(started) == before


def test_settings_that_change_nothing_measured_are_not_differences(started, tiny_study, capsys):
    status, err = run(capsys, tiny_study, started, 3, "--set", "training.num_threads=1", "--set", "sampler.seed=5")
    assert status in (0, 1), err


def test_a_deliberate_continuation_records_each_trials_recipe(started, tiny_study, capsys):
    old = yaml.safe_load((started / FINGERPRINT_FILE).read_text())["recipe"]
    status, err = run(capsys, tiny_study, started, 4, "--set", "training.lr=0.0001", "--allow-changed-settings")
    assert status in (0, 1), err
    assert "continuing with changed settings" in err and "training.lr: 0.001 -> 0.0001" in " ".join(err.split())
    record = yaml.safe_load((started / FINGERPRINT_FILE).read_text())
    new = record["recipe"]
    assert new != old and [recipe["recipe"] for recipe in record["recipes"]] == [old, new]
    assert record["recipes"][1]["settings"]["training"]["lr"] == 0.0001
    table = pd.read_csv(started / "trials.csv")
    assert list(table["recipe"][:2]) == [old, old] and set(table["recipe"][2:]) == {new}
    status, err = run(capsys, tiny_study, started, 4)  # back to the first settings: refused again
    assert "training.lr: 0.0001 -> 0.001" in refused(status, err)


def test_a_report_of_mixed_recipes_says_so(started, tiny_study, capsys):
    assert run(capsys, tiny_study, started, 4, "--set", "training.lr=0.0001", "--allow-changed-settings")[0] in (0, 1)
    table = pd.read_csv(started / "trials.csv")
    if table[table["state"] == "COMPLETE"]["recipe"].nunique() < 2:
        pytest.skip("the sampled points did not complete under both recipes")
    capsys.readouterr()
    assert main(["report", str(started)]) == 0
    markdown = (started / "report.md").read_text()
    assert markdown.splitlines()[2].startswith("**Warning: the trials ranked here were trained with 2 different "
                                               "recipes**")


def test_an_emptied_storage_is_refused_and_nothing_changes(started, tiny_study, capsys):
    (started / "study.db").write_bytes(b"")
    before = snapshot(started)
    err = refused(*run(capsys, tiny_study, started, 4))
    assert "has rows or weights of trials 0, 1, but its storage holds 0 trials" in err and "study.db" in err
    assert snapshot(started) == before and (started / "study.db").stat().st_size == 0


def test_another_runs_storage_of_the_same_study_is_refused(started, tiny_study, tmp_path, capsys):
    assert run(capsys, tiny_study, started, 3)[0] in (0, 1)  # a later start records trial 0's start
    other = tmp_path / "other_run"
    assert run(capsys, tiny_study, other, 3)[0] in (0, 1)
    (started / "study.db").write_bytes((other / "study.db").read_bytes())
    before = snapshot(started)
    err = refused(*run(capsys, tiny_study, started, 4))
    assert "was made with another storage: its trial 0 started at" in err
    assert snapshot(started) == before


def test_the_storage_is_read_without_being_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    assert read_storage(url, "x").trials == 0 and not (tmp_path / "absent.db").exists()


def test_final_line_counts_every_state_apart(tiny_study, tmp_path, capsys, no_training):
    study = write_study(tiny_study, constraints={"macs": {"max": 1.0}})  # every point is infeasible
    status, err = run(capsys, study, tmp_path / "run", 2)
    line = " ".join(err.split())
    assert "0 complete" in line and "0 pruned" in line and "0 waiting" in line
    table = pd.read_csv(tmp_path / "run" / "trials.csv")
    infeasible, failed = (table["state"] == "INFEASIBLE").sum(), (table["state"] == "FAIL").sum()
    assert infeasible >= 1 and f"{infeasible} infeasible, 0 pruned, {failed} failed" in line
    assert status == 1 and "study not finished" in line  # nothing completed: not "finished"


def test_identity_ignores_speed_only_settings(tiny_study):
    base = StudyIdentity.of(load_study(tiny_study))
    assert StudyIdentity.of(load_study(tiny_study, ["training.num_threads=2"])).recipe == base.recipe
    changed = StudyIdentity.of(load_study(tiny_study, ["input_size=[32, 32]"]))
    assert differences(base.settings, changed.settings) == ["input_size: [32, 64] -> [32, 32]"]


def test_an_interrupted_trial_is_retried_before_new_points(tiny_study, tmp_path, capsys, no_training, monkeypatch):
    from archsearch.search import trial as trial_module

    study = write_study(tiny_study, sampler="grid", fix={"group_width": 8})
    fake_train = trial_module.TrialRunner.train

    def interrupted(self, spec, metrics, trial_number, on_evaluation, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(trial_module.TrialRunner, "train", interrupted)
    assert run(capsys, study, tmp_path / "run", 1)[0] == 130
    monkeypatch.setattr(trial_module.TrialRunner, "train", fake_train)
    first = pd.read_csv(tmp_path / "run" / "trials.csv")
    interrupted_params = first.loc[first["number"] == 0, ["param.width", "param.pattern"]].iloc[0].tolist()
    status, err = run(capsys, study, tmp_path / "run", 1)
    table = pd.read_csv(tmp_path / "run" / "trials.csv")
    retried = table[table["state"] == "COMPLETE"]
    assert status == 0, err
    assert len(retried) == 1 and retried[["param.width", "param.pattern"]].iloc[0].tolist() == interrupted_params
    assert "1 complete, 0 infeasible, 0 pruned, 1 failed, 0 waiting" in " ".join(err.split())


def test_the_storage_pops_retries_before_queued_points(tmp_path):
    import optuna
    from optuna.storages import RDBStorage

    from archsearch.search.optuna_driver import RetriesFirstStorage

    storage = RetriesFirstStorage(RDBStorage(f"sqlite:///{tmp_path / 'study.db'}"))
    study = optuna.create_study(storage=storage, study_name="s")
    for x in (1, 2):
        study.enqueue_trial({"x": x})
    study.enqueue_trial({"x": 0}, user_attrs={"retry_of": 7})
    popped = [study.ask().suggest_int("x", 0, 9) for _ in range(3)]
    assert popped == [0, 1, 2]


def test_a_running_trial_is_running_in_the_table(tiny_study, tmp_path, capsys, no_training, monkeypatch):
    from archsearch.search import trial as trial_module

    seen = {}
    fake_train = trial_module.TrialRunner.train

    def train_and_look(self, spec, metrics, trial_number, on_evaluation, **options):
        table = pd.read_csv(tmp_path / "run" / "trials.csv")
        seen[trial_number] = table.loc[table["number"] == trial_number, "state"].tolist()
        return fake_train(self, spec, metrics, trial_number, on_evaluation)

    monkeypatch.setattr(trial_module.TrialRunner, "train", train_and_look)
    study = write_study(tiny_study, sampler="grid", fix={"group_width": 8})  # every point queued (WAITING) first
    assert run(capsys, study, tmp_path / "run", 2)[0] == 0
    assert seen and all(states == ["RUNNING"] for states in seen.values())


def test_an_explicit_storage_of_another_run_is_refused(started, tiny_study, tmp_path, capsys):
    """The study in a storage belongs to one run directory: named explicitly for another --out, it is not adopted."""
    before = snapshot(started)
    url = f"sqlite:///{started / 'study.db'}"
    err = refused(*run(capsys, tiny_study, tmp_path / "B", 3, "--set", f"storage={url}"))
    assert f"belongs to the run directory {started.resolve()}" in err and "storage" in err, err
    assert snapshot(started) == before and not (tmp_path / "B").exists()


def test_a_storage_records_its_run_directory(started, tiny_study, tmp_path, capsys):
    import optuna

    record = yaml.safe_load((started / FINGERPRINT_FILE).read_text())
    study = optuna.load_study(study_name="tiny_study", storage=f"sqlite:///{started / 'study.db'}")
    assert study.user_attrs["run_directory"] == {"id": record["run_id"], "path": str(started.resolve())}
    moved = tmp_path / "moved"
    started.rename(moved)  # a moved run directory keeps its identity, and its own storage
    assert run(capsys, tiny_study, moved, 3)[0] in (0, 1)


def test_a_deleted_fingerprint_does_not_disable_the_settings_guard(started, tiny_study, capsys):
    (started / FINGERPRINT_FILE).unlink()
    before = snapshot(started)
    err = refused(*run(capsys, tiny_study, started, 3, "--set", "training.iterations=30"))
    assert f"no {FINGERPRINT_FILE}" in err and "other settings" in err, err
    assert snapshot(started) == before
    status, err = run(capsys, tiny_study, started, 3)  # the settings its trials recorded: the fingerprint is rebuilt
    assert status in (0, 1), err
    assert "training.iterations: 2 -> 30" in refused(*run(capsys, tiny_study, started, 4,
                                                           "--set", "training.iterations=30"))


def test_a_run_logged_to_a_file_prints_one_line_per_finished_trial(tiny_study, tmp_path, capsys, no_training):
    """Under capsys stderr is not a terminal, as in a log file, nohup or CI: a line per trial, as it ends."""
    status, err = run(capsys, tiny_study, tmp_path / "run", 3)
    table = pd.read_csv(tmp_path / "run" / "trials.csv")
    lines = [line for line in err.splitlines() if line.startswith("trial ")]
    assert len(lines) == len(table) == 3, err
    for line, row in zip(lines, table.itertuples()):
        arch = row.arch_hash if isinstance(row.arch_hash, str) else "-"
        assert line.startswith(f"trial {row.number}: {row.state} arch {arch} seed {row.seed}"), line
        assert (" mIoU 0.5000 " in line) == (row.state == "COMPLETE") and line.endswith(" s"), line


def test_a_grid_run_shorter_than_the_grid_queues_only_its_trials(tiny_study, tmp_path, capsys, no_training):
    study = write_study(tiny_study, sampler="grid", fix={"group_width": 8})  # 3 widths x 2 patterns
    capsys.readouterr()
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--trials", "2"]) == 0
    captured = capsys.readouterr()
    table = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert list(table["state"]) == ["COMPLETE", "COMPLETE"] and "0 waiting" in " ".join(captured.err.split())
    assert table["param.width"].dtype == "int64" and "16.0" not in captured.out and "32.0" not in captured.out
    assert run(capsys, study, tmp_path / "run", 6)[0] == 0  # the rest of the grid, each point once
    table = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert list(table["state"]) == ["COMPLETE"] * 6
    assert len(set(zip(table["param.width"], table["param.pattern"]))) == 6


def test_a_process_that_raced_past_the_guard_does_not_claim_another_runs_study(started, tiny_study, tmp_path):
    from archsearch.errors import SpecError
    from archsearch.search import RunDirectory
    from archsearch.search.optuna_driver import open_study

    other = RunDirectory(tmp_path / "other").create()
    record = yaml.safe_load((started / FINGERPRINT_FILE).read_text())
    (other.root / FINGERPRINT_FILE).write_text(yaml.safe_dump({**record, "run_id": "another"}))
    config = load_study(tiny_study, [f"storage=sqlite:///{started / 'study.db'}"])
    with pytest.raises(SpecError, match=f"belongs to the run directory {started.resolve()}, not to run directory"):
        open_study(config, other)
