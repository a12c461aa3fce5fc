"""Every file archsearch writes is whole or absent: a writer that fails, or is killed with SIGKILL,
in the middle leaves the previous version (or nothing), never half a file.

Covers export_files (write_atomic, write_text_atomic, write_state_dict: `build --save`, trial weights,
specs, study.yaml), trials.csv, the report's three files, the latency cache and the synthetic data
cache. (The export command is tested by its own author in tests/test_export.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from archsearch.io import write_atomic, write_state_dict, write_text_atomic
from archsearch.latency import LatencyCache, LatencyResult, LatencySettings

OLD = "old content, whole\n"


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


# ---------------------------------------------------------------- export_files


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, failure):
    target = tmp_path / "file.txt"
    target.write_text(OLD)

    def write_half(temporary: Path) -> None:
        temporary.write_text("new conte")
        raise failure

    with pytest.raises(type(failure)):
        write_atomic(target, write_half)
    assert target.read_text() == OLD and leftovers(tmp_path) == []


def test_a_first_write_that_fails_leaves_nothing(tmp_path, monkeypatch):
    fail_writing_text_half_way(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(tmp_path / "sub" / "new.yaml", "name: x\n")
    assert not (tmp_path / "sub" / "new.yaml").exists() and leftovers(tmp_path / "sub") == []


def fail_writing_text_half_way(monkeypatch) -> None:
    """Path.write_text writes half its text, then fails as a full disk would."""
    original = Path.write_text

    def write_half(self, text, *args, **kwargs):
        original(self, text[:len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", write_half)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_failed_weights_write_keeps_the_old_weights(tmp_path, monkeypatch, suffix):
    import safetensors.torch

    target = tmp_path / f"weights{suffix}"
    old = {"a": torch.ones(3)}
    write_state_dict(target, old)
    before = target.read_bytes()

    def save_half(tensors, path, *args, **kwargs):
        Path(path).write_bytes(b"\x00" * 10)
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", save_half)
    monkeypatch.setattr(torch, "save", save_half)
    with pytest.raises(OSError, match="disk full"):
        write_state_dict(target, {"a": torch.zeros(3), "b": torch.zeros(2)})
    assert target.read_bytes() == before and leftovers(tmp_path) == []


def test_a_writer_killed_mid_write_leaves_the_old_file_whole(tmp_path):
    """SIGKILL cannot be cleaned up after: a temporary may stay behind, but the file itself is the old one."""
    target = tmp_path / "trials.csv"
    target.write_text(OLD)
    result = run_python(f"""
        import os, signal
        from pathlib import Path
        from archsearch.io import write_atomic

        def write_then_die(temporary):
            temporary.write_text("number,sta")
            os.kill(os.getpid(), signal.SIGKILL)

        write_atomic(Path({str(target)!r}), write_then_die)
    """)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert target.read_text() == OLD
    assert all(name.startswith(".trials.csv.") for name in leftovers(tmp_path))  # hidden, never read


def test_build_save_does_not_leave_half_a_file_when_the_save_fails(tmp_path, monkeypatch, capsys):
    from archsearch.cli.main import main

    saved = tmp_path / "regseg.yaml"
    saved.write_text(OLD)
    fail_writing_text_half_way(monkeypatch)
    capsys.readouterr()
    assert main(["build", "regseg", "--input", "64x128", "--save", str(saved), "--force"]) == 2
    assert capsys.readouterr().err == f"archsearch: error: cannot write {saved}: disk full\n"
    assert saved.read_text() == OLD and leftovers(tmp_path) == []


# ---------------------------------------------------------------- trials.csv


def test_a_failed_trials_table_write_keeps_the_previous_table(tmp_path, monkeypatch):
    import optuna

    from archsearch.search import RunDirectory
    from archsearch.run.trials_table import write_trials_csv

    run_dir = RunDirectory(tmp_path / "run").create()
    study = optuna.create_study()
    study.tell(study.ask(), 0.5)
    write_trials_csv(study, run_dir)
    before = run_dir.trials_csv.read_text()
    study.tell(study.ask(), 0.7)
    original = pd.DataFrame.to_csv

    def to_csv_half(self, path, *args, **kwargs):
        Path(path).write_text(original(self, None, *args, **kwargs)[:20])
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv_half)
    with pytest.raises(OSError):
        write_trials_csv(study, run_dir)
    monkeypatch.undo()
    assert run_dir.trials_csv.read_text() == before and leftovers(run_dir.root) == []
    write_trials_csv(study, run_dir)
    assert list(pd.read_csv(run_dir.trials_csv)["number"]) == [0, 1]


# ---------------------------------------------------------------- the report's three files


REPORT_RUN = {
    "trials.csv": "number,state,arch_hash,seed,params_train,params_deploy,macs,receptive_field,output_stride,"
                  "latency_ms,miou,train_seconds,fail_reason\n"
                  "0,COMPLETE,aaaaaaaaaaaa,0,100,90,1000,63,4,1.5,0.25,1.0,\n"
                  "1,COMPLETE,bbbbbbbbbbbb,0,200,180,2000,127,4,2.5,0.5,2.0,\n",
    "study.yaml": "name: atomic\nspace: space.yaml\ntraining: {}\nobjectives: [{metric: miou, direction: maximize}]\n",
}


@pytest.mark.parametrize("failing", ["archsearch.report.write.pareto_figure", "archsearch.report.write.report_markdown",
                                     "matplotlib.figure.Figure.savefig"])
def test_a_report_that_fails_to_render_writes_none_of_its_files(tmp_path, monkeypatch, failing):
    """The three files are one report: a failure while making any of them leaves all three as they were."""
    from archsearch.report.write import write_report

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name, text in REPORT_RUN.items():
        (run_dir / name).write_text(text)
    for name in ("report.md", "report.csv", "pareto.png"):
        (run_dir / name).write_text(OLD)

    def broken(*args, **kwargs):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(failing, broken)
    with pytest.raises(RuntimeError, match="rendering failed"):
        write_report(run_dir)
    for name in ("report.md", "report.csv", "pareto.png"):
        assert (run_dir / name).read_text() == OLD, name
    assert leftovers(run_dir) == []


# ---------------------------------------------------------------- the latency cache

SETTINGS = LatencySettings(input_size=(16, 16), warmup_seconds=0.0, min_warmup_iterations=1, time_budget_seconds=0.0,
                           min_repeats=3, max_repeats=5)


def a_result(median_ms: float) -> LatencyResult:
    return LatencyResult(median_ms=median_ms, iqr_ms=0.1, q1_ms=1.2, q3_ms=1.3, min_ms=1.0, repeats=3,
                         device_name="Test CPU", settings=SETTINGS, backend="eager")


def test_a_latency_write_that_fails_stores_nothing_and_keeps_the_old_entry(tmp_path, monkeypatch):
    cache = LatencyCache(tmp_path / "latency.db")
    cache.put("arch-a", a_result(1.0))
    monkeypatch.setattr(json, "dumps", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        cache.put("arch-a", a_result(2.0))
    with pytest.raises(OSError):
        cache.put("arch-b", a_result(3.0))
    monkeypatch.undo()
    assert cache.get("arch-a", "Test CPU", SETTINGS).median_ms == 1.0
    assert cache.get("arch-b", "Test CPU", SETTINGS) is None


def test_a_process_killed_inside_a_latency_write_leaves_the_cache_whole_and_unlocked(tmp_path):
    path = tmp_path / "latency.db"
    cache = LatencyCache(path)
    cache.put("arch-a", a_result(1.0))
    result = run_python(f"""
        import os, signal
        from archsearch.latency import LatencyCache
        cache = LatencyCache({str(path)!r})
        with cache._write_transaction() as connection:
            connection.execute("DELETE FROM latency")
            connection.execute("INSERT INTO latency VALUES ('arch-b', 'Test CPU', 'x', '{{broken', 0)")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert result.returncode == -signal.SIGKILL, result.stderr
    reopened = LatencyCache(path, timeout_seconds=5)
    assert reopened.get("arch-a", "Test CPU", SETTINGS).median_ms == 1.0
    reopened.put("arch-c", a_result(2.0))  # the dead writer's lock is gone
    assert reopened.get("arch-c", "Test CPU", SETTINGS).median_ms == 2.0


# ---------------------------------------------------------------- the synthetic data cache


def test_a_generation_killed_half_way_is_never_read_and_is_redone(tmp_path):
    from archsearch.data import CityscapesDataset, ensure_synthetic_cityscapes

    options = {"seed": 3, "num_train": 6, "num_val": 2, "height": 32, "width": 32}
    result = run_python(f"""
        import os, signal
        from archsearch.data import synthetic
        original = synthetic.render_scene
        calls = []

        def render_then_die(*args):
            calls.append(1)
            if len(calls) == 4:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args)

        synthetic.render_scene = render_then_die
        synthetic.ensure_synthetic_cityscapes({str(tmp_path)!r}, **{options!r})
    """)
    assert result.returncode == -signal.SIGKILL, result.stderr
    left = list(tmp_path.iterdir())
    assert left and all(path.name.startswith(".") and path.name.endswith(".partial") for path in left)
    root = ensure_synthetic_cityscapes(tmp_path, **options)
    assert len(CityscapesDataset(root, "train")) == 6 and len(CityscapesDataset(root, "val")) == 2
    for index in range(6):
        CityscapesDataset(root, "train")[index]  # every file whole
    assert list(tmp_path.iterdir()) == [root]  # the dead writer's staging directory was cleared away


def test_leftover_partial_directories_do_not_disturb_a_study(tiny_study, tmp_path, cache_home, capsys):
    """A killed generator's staging directory sits in the cache of a real study; the study runs."""
    from archsearch.cli.main import main

    (cache_home / "archsearch" / "synthetic").mkdir(parents=True, exist_ok=True)
    staging = cache_home / "archsearch" / "synthetic" / ".synthetic-cityscapes-000000000000.abc.partial"
    staging.mkdir(exist_ok=True)
    (staging / "junk.png").write_bytes(b"half")
    assert main(["run", str(tiny_study), "--out", str(tmp_path / "run"), "--trials", "1",
                 "--set", "fix={group_width: 8}", "--set", "training.iterations=1"]) == 0
    assert os.path.isdir(staging)  # left alone: it may be another writer's, still working
