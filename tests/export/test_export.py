"""archsearch export: trial choice, the files and their round trips, atomic writing, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch
import yaml

from archsearch import build, deploy, load_spec
from archsearch.arch.checkpoints import load_weights, load_weights_any_form
from archsearch.cli.main import main
from archsearch.export import export_trial, select_trial
from archsearch.io import write_state_dict
from archsearch.latency import LatencySettings
from archsearch.run.trials_table import REQUIRED_COLUMNS
from archsearch.search import RunDirectory
from archsearch.space.sampling import FixedSuggester, load_space, sample
from tests.helpers.paths import FIXTURES

INPUT_SIZE = (32, 64)
NUM_CLASSES = 5
# number, state, width, mIoU, latency (ms): trial 1 is the best; 4 the best at <= 8 ms, 0 at <= 6 ms.
TRIALS = [(0, "COMPLETE", 16, 0.30, 5.0), (1, "COMPLETE", 32, 0.50, 9.0), (2, "INFEASIBLE", 48, None, 20.0),
          (3, "FAIL", None, None, None), (4, "COMPLETE", 48, 0.40, 7.0)]
MEASURED = LatencySettings(input_size=INPUT_SIZE, num_threads=2)


def tiny_spec(width: int):
    point = sample(load_space(FIXTURES / "tiny_space.yaml"),
                   FixedSuggester({"width": width, "pattern": "short", "group_width": 8}))
    return point.spec


def make_run(root: Path, trials=TRIALS, *, latency: bool = True) -> Path:
    """A run directory as `archsearch run` leaves it, written by hand so each trial's figures are known."""
    run = RunDirectory(root).create()
    run.save_study({"name": "handmade", "space": "space.yaml", "training": {},
                    "objectives": [{"metric": "miou", "direction": "maximize"}],
                    "input_size": list(INPUT_SIZE)})
    rows = []
    for number, state, width, miou, latency_ms in trials:
        row = dict.fromkeys(REQUIRED_COLUMNS, "")
        row.update(number=number, state=state, seed=0, num_classes=NUM_CLASSES, **{"param.width": width or ""})
        if width is not None:
            spec = tiny_spec(width)
            run.save_spec(spec)
            row.update(arch_hash=spec.arch_hash, params_train=1, params_deploy=1, macs=1, receptive_field=1,
                       output_stride=4, latency_ms=latency_ms if latency else "", miou=miou or "")
            if state == "COMPLETE":
                torch.manual_seed(number)
                write_state_dict(run.weights_path(number), build(spec, num_classes=NUM_CLASSES).state_dict())
            if latency:  # the trial's own latency record, as the trial runner writes it
                row.update(latency_iqr_ms=0.25, latency_repeats=12, latency_device="Test CPU",
                           latency_backend="eager", latency_settings=MEASURED.to_json())
        else:
            row["fail_reason"] = "InvalidPoint: group_width"
        rows.append(row)
    pd.DataFrame(rows).to_csv(run.trials_csv, index=False)
    return root


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return make_run(tmp_path / "run")


def cli(capsys, *arguments) -> tuple[int, str, str]:
    status = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("max_latency, expected", [(None, 1), (8.0, 4), (6.0, 0), (5.0, 0)])
def test_best_picks_the_best_complete_trial_under_the_latency(run_dir, max_latency, expected):
    assert select_trial(run_dir, max_latency_ms=max_latency).number == expected


def test_export_writes_every_file_and_the_card(run_dir, tmp_path, capsys):
    out = tmp_path / "export"
    status, printed, _ = cli(capsys, "export", run_dir, "--best", "--max-latency", "8", "--out", out)
    assert status == 0 and "trial 4" in printed
    assert sorted(path.name for path in out.iterdir()) == [".archsearch-export", "arch.yaml", "card.json", "card.md",
                                                           "model.onnx", "model.safetensors"]
    card = json.loads((out / "card.json").read_text())
    spec = tiny_spec(48)
    assert card["trial"] == 4 and card["study"] == "handmade" and card["arch_hash"] == spec.arch_hash
    assert card["miou"] == 0.40 and card["num_classes"] == NUM_CLASSES and card["input_size"] == list(INPUT_SIZE)
    assert card["params_deploy"] > 0 and card["macs"] > 0 and card["receptive_field"] > 0
    assert card["latency"]["median_ms"] == 7.0 and card["latency"]["device_name"] == "Test CPU"
    assert card["latency"]["settings"] == MEASURED.to_dict()
    assert 0 <= card["onnx"]["max_abs_diff"] < 1e-4
    markdown = (out / "card.md").read_text()
    assert "0.4000" in markdown and "Test CPU" in markdown and card["rebuild_command"] in markdown


def test_exported_files_reproduce_the_trained_model(run_dir, tmp_path, capsys):
    out = tmp_path / "export"
    assert cli(capsys, "export", run_dir, "--trial", "1", "--out", out)[0] == 0
    spec = tiny_spec(32)
    trained = deploy(load_weights(build(spec, num_classes=NUM_CLASSES), run_dir / "weights" / "trial_1.safetensors"))
    images = torch.randn(2, 3, *INPUT_SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = trained(images)

    assert load_spec(out / "arch.yaml").arch_hash == spec.arch_hash
    status, printed, _ = cli(capsys, "build", out / "arch.yaml", "--weights", out / "model.safetensors",
                             "--classes", NUM_CLASSES, "--input", "32x64", "--json")
    assert status == 0 and json.loads(printed)["hash"] == spec.arch_hash
    rebuilt = load_weights_any_form(build(out / "arch.yaml", num_classes=NUM_CLASSES), out / "model.safetensors")
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(images), expected)

    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_output,) = session.run(None, {session.get_inputs()[0].name: images[:1].numpy()})
    assert np.abs(onnx_output - expected[:1].numpy()).max() < 1e-4


def test_an_interrupted_export_leaves_nothing_behind(run_dir, tmp_path, monkeypatch):
    from archsearch.export import onnx_check

    def broken(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_check, "write_checked_onnx", broken)
    out = tmp_path / "exports" / "model"
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_trial(run_dir, select_trial(run_dir), out_dir=out)
    assert list(out.parent.iterdir()) == []


def test_an_existing_directory_is_refused_unless_forced(run_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "export"
    assert cli(capsys, "export", run_dir, "--trial", "0", "--out", out)[0] == 0
    status, _, err = cli(capsys, "export", run_dir, "--trial", "1", "--out", out)
    assert status == 2 and "already exists" in err and "--force" in err
    assert json.loads((out / "card.json").read_text())["trial"] == 0

    from archsearch.export import onnx_check

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(onnx_check, "write_checked_onnx", disk_full)
    with pytest.raises(OSError):
        export_trial(run_dir, select_trial(run_dir, trial_number=1), out_dir=out, force=True)
    assert json.loads((out / "card.json").read_text())["trial"] == 0  # the old export is untouched
    monkeypatch.undo()

    (out / "stale.txt").write_text("from the old export")
    assert cli(capsys, "export", run_dir, "--trial", "1", "--out", out, "--force")[0] == 0
    assert json.loads((out / "card.json").read_text())["trial"] == 1 and not (out / "stale.txt").exists()
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_default_directory_is_in_the_run(run_dir, capsys):
    assert cli(capsys, "export", run_dir)[0] == 0
    assert (run_dir / "exports" / f"trial_1-{tiny_spec(32).arch_hash}" / "card.json").is_file()


@pytest.mark.parametrize("arguments, message", [
    (["--trial", "9"], "--trial: no such trial in the run (got 9)"),
    (["--trial", "2"], "trial 2 is INFEASIBLE"),
    (["--trial", "3"], "trial 3 is FAIL (InvalidPoint: group_width)"),
    (["--best", "--max-latency", "4"],
     "--max-latency: no COMPLETE trial is this fast (got 4.0); allowed: at least 5 ms"),
    (["--trial", "1", "--max-latency", "8"], "--max-latency narrows the choice of --best"),
])
def test_bad_choices_exit_2_with_a_message(run_dir, capsys, arguments, message):
    status, _, err = cli(capsys, "export", run_dir, *arguments)
    assert status == 2 and message in err and "Traceback" not in err


def test_runs_that_cannot_be_exported_exit_2(tmp_path, capsys):
    status, _, err = cli(capsys, "export", tmp_path / "missing")
    assert status == 2 and "no such run directory" in err

    failed = make_run(tmp_path / "failed", [row for row in TRIALS if row[1] != "COMPLETE"])
    status, _, err = cli(capsys, "export", failed)
    assert status == 2 and "no COMPLETE trial to export" in err

    unmeasured = make_run(tmp_path / "unmeasured", latency=False)
    status, _, err = cli(capsys, "export", unmeasured, "--max-latency", "10")
    assert status == 2 and "measured no latency" in err

    study = yaml.safe_load((unmeasured / "study.yaml").read_text())
    (unmeasured / "study.yaml").write_text(yaml.safe_dump({**study, "input_size": [32]}))
    status, _, err = cli(capsys, "export", unmeasured)
    assert status == 2 and "study.yaml: input_size: expected [height, width] with positive integers (got [32])" in err

    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(unmeasured), "--trial", "-1"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("where", ["the run itself", "the run's parent", "another run", "a user's folder",
                                   "an empty folder"])
def test_force_replaces_only_a_previous_export(run_dir, tmp_path, capsys, where):
    other = make_run(tmp_path / "other")
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = {"the run itself": run_dir, "the run's parent": tmp_path, "another run": other, "a user's folder": user,
           "an empty folder": empty}[where]
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    status, _, err = cli(capsys, "export", run_dir, "--trial", "1", "--out", out, "--force")
    assert status == 2 and "Traceback" not in err and repr(str(out)) in err \
        and ("not an export directory" in err or "holds the run directory" in err), err
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before


def test_force_refuses_an_export_directory_that_holds_the_run(run_dir, tmp_path, capsys):
    """A marker file copied above the run does not make the run replaceable."""
    (tmp_path / ".archsearch-export").write_text("archsearch export\n")
    status, _, err = cli(capsys, "export", run_dir, "--trial", "1", "--out", tmp_path, "--force")
    assert status == 2 and "holds the run directory" in err, err
    assert (run_dir / "trials.csv").is_file()
