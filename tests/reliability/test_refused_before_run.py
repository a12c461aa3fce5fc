"""Studies that could not run as written stop with exit 2 and one message before a run directory is made."""

from __future__ import annotations

import pytest

from archsearch.cli.main import main
from archsearch.resources import available_cpus


def refused_run(capsys, study, run_dir, *sets: str) -> str:
    capsys.readouterr()
    arguments = ["run", str(study), "--out", str(run_dir), "--trials", "1"]
    for assignment in sets:
        arguments += ["--set", assignment]
    status = main(arguments)
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("archsearch: error: ") and "Traceback" not in err, err
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
