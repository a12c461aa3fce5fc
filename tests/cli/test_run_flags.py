"""`archsearch run --dry-run` shows what would run and trains nothing; `--device` picks (and checks) the device."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import torch
import yaml

from archsearch.cli.main import main
from tests.helpers.paths import FIXTURES


@pytest.fixture
def tiny_study(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("tiny_study.yaml", "tiny_space.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path / "tiny_study.yaml"


def test_dry_run_prints_the_study_and_the_first_point_that_a_run_then_trains(tiny_study, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", str(tiny_study), "--out", str(run_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not run_dir.exists()
    study_text, point_text = out.split("# first point: ")
    resolved = yaml.safe_load(study_text)
    assert resolved["training"]["amp"] is None and resolved["training"]["iterations"] == 2  # defaults filled in
    assert resolved["augmentation"]["crop_size"] == [32, 32]
    params = yaml.safe_load(point_text.splitlines()[0].replace("'", '"'))
    assert "params_train: " in point_text and "receptive_field: " in point_text and "nothing was trained" in out

    assert main(["run", str(tiny_study), "--out", str(run_dir), "--trials", "1"]) == 0
    first = pd.read_csv(run_dir / "trials.csv").iloc[0]
    assert {name: first[f"param.{name}"] for name in params} == params
    assert f"arch_hash: {first['arch_hash']}" in point_text
    assert 0 <= first["data_wait_fraction"] < 1


def test_a_device_that_is_not_here_exits_2_before_anything_is_written(tiny_study, tmp_path, capsys):
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    status = main(["run", str(tiny_study), "--out", str(tmp_path / "run"), "--device", f"cuda:{count}"])
    error = capsys.readouterr().err
    assert status == 2 and "--device" in error and f"cuda:{count}" in error and "'cpu'" in error
    assert not (tmp_path / "run").exists()


def test_device_flag_sets_the_training_device(tiny_study, tmp_path, capsys):
    assert main(["run", str(tiny_study), "--dry-run", "--device", "cpu"]) == 0
    assert "device: cpu" in capsys.readouterr().out


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")
def test_mps_that_is_not_here_exits_2_before_anything_is_written(tiny_study, tmp_path, capsys):
    status = main(["run", str(tiny_study), "--out", str(tmp_path / "run"), "--device", "mps"])
    error = capsys.readouterr().err
    assert status == 2 and "--device: an MPS device was asked for" in error and "'cpu'" in error
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("device", "message"), [
    ("tpu", "--device: not a known device (got 'tpu')"),
    ("", "--device: expected a device name (got '')"),
])
def test_a_device_flag_that_names_no_device_is_reported_under_the_flag(tiny_study, tmp_path, capsys, device, message):
    status = main(["run", str(tiny_study), "--out", str(tmp_path / "run"), "--device", device, "--dry-run"])
    error = capsys.readouterr().err
    assert status == 2 and message in error and "--set" not in error, error


def test_a_dry_run_generates_no_data(tiny_study, tmp_path, capsys):
    assert main(["run", str(tiny_study), "--dry-run", "--set", "dataset.num_train=5000"]) == 0
    assert not (tmp_path / "cache").exists()
    assert "nothing was trained" in capsys.readouterr().out


def test_a_dry_run_refuses_a_synthetic_set_past_its_cap_at_once(tiny_study, tmp_path, capsys):
    assert main(["run", str(tiny_study), "--dry-run", "--set", "dataset.num_train=100000000"]) == 2
    err = capsys.readouterr().err
    assert "dataset.num_train: " in err and "at most" in err and "Traceback" not in err, err
    assert not (tmp_path / "cache").exists()
