"""Outputs checked before work and written cleanly (exit 2 naming path and reason, umask modes, --force),
and resources bounded before work (threads, memory), each with one message and no traceback."""

from __future__ import annotations

import os
import stat

import pytest
import yaml

from archsearch import resources
from archsearch.arch.build import resolve_spec
from archsearch.arch.memory import memory_needs
from archsearch.cli.main import main
from archsearch.io import write_text_atomic

TINY_SPEC = """\
name: tiny
stem: [{block: conv, out_channels: 8, stride: 2}]
stages:
- blocks: [{block: dblock, out_channels: 16, stride: 2, group_width: 8}]
head: {block: topdown, projections: {4: 8}, steps: []}
"""
REPORT_COLUMNS = ("number,state,arch_hash,seed,params_train,params_deploy,macs,receptive_field,output_stride,"
                  "latency_ms,miou,train_seconds,fail_reason")


def run(capsys, *arguments: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(arguments))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def refused(capsys, *arguments: str) -> str:
    status, _, err = run(capsys, *arguments)
    assert status == 2 and err.startswith("archsearch: error: ") and "Traceback" not in err, err
    assert err.count("\n") == 1, err  # one message
    return err


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPEC)
    return path


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


# ---------------------------------------------------------------- build --save


def test_save_under_a_file_is_refused_before_building(tmp_path, spec_file, capsys):
    (tmp_path / "plain").write_text("x")
    err = refused(capsys, "build", str(spec_file), "--input", "32x32", "--save", str(tmp_path / "plain" / "out.yaml"))
    assert f"--save: cannot write here: {tmp_path / 'plain'} is not a directory" in err


def test_save_into_a_missing_directory_makes_it(tmp_path, spec_file, capsys):
    target = tmp_path / "new" / "dir" / "out.yaml"
    assert run(capsys, "build", str(spec_file), "--input", "32x32", "--save", str(target))[0] == 0
    assert yaml.safe_load(target.read_text())["name"] == "tiny"


def test_save_over_an_existing_file_needs_force(tmp_path, spec_file, capsys):
    target = tmp_path / "out.yaml"
    target.write_text("mine\n")
    err = refused(capsys, "build", str(spec_file), "--input", "32x32", "--save", str(target))
    assert "--save: the file already exists" in err and "--force" in err and target.read_text() == "mine\n"
    assert run(capsys, "build", str(spec_file), "--input", "32x32", "--save", str(target), "--force")[0] == 0
    assert yaml.safe_load(target.read_text())["name"] == "tiny"


def test_save_onto_a_directory_or_unknown_suffix_is_refused(tmp_path, spec_file, capsys):
    (tmp_path / "d.yaml").mkdir()
    assert "--save: is a directory" in refused(capsys, "build", str(spec_file), "--save", str(tmp_path / "d.yaml"))
    assert "cannot tell what to save" in refused(capsys, "build", str(spec_file), "--save", str(tmp_path / "x.txt"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_save_into_a_read_only_directory_is_refused(tmp_path, spec_file, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert "no permission to write in" in refused(capsys, "build", str(spec_file), "--save", str(locked / "a.yaml"))


def test_an_os_error_while_saving_names_the_path(tmp_path, spec_file, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    target = tmp_path / "out.pt"
    err = refused(capsys, "build", str(spec_file), "--input", "32x32", "--save", str(target))
    assert err == f"archsearch: error: cannot write {target}: Permission denied\n"
    assert os.listdir(tmp_path) == ["tiny.yaml"]  # no temporary left


def test_saved_files_follow_the_umask(tmp_path, spec_file, capsys, umask_027):
    for name in ("spec.yaml", "weights.safetensors"):
        assert run(capsys, "build", str(spec_file), "--input", "32x32", "--save", str(tmp_path / name))[0] == 0
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640


def test_atomic_writes_follow_the_umask(tmp_path, umask_027):
    write_text_atomic(tmp_path / "table.csv", "a\n")
    assert stat.S_IMODE((tmp_path / "table.csv").stat().st_mode) == 0o640


def test_export_directory_follows_the_umask(tmp_path, umask_027):
    from archsearch.export.directory import write_directory_atomic

    write_directory_atomic(tmp_path / "export", lambda folder: (folder / "card.json").write_text("{}"))
    assert stat.S_IMODE((tmp_path / "export").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "export" / "card.json").stat().st_mode) == 0o640


def test_export_out_onto_a_file_is_refused_before_work(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "file").write_text("x")
    err = refused(capsys, "export", str(tmp_path / "run"), "--out", str(tmp_path / "file" / "sub"))
    assert f"--out: cannot write here: {tmp_path / 'file'} is not a directory" in err


def test_export_target_checked_before_the_work(tmp_path):
    from archsearch.errors import SpecError
    from archsearch.export.directory import check_export_target

    (tmp_path / "file").write_text("x")
    with pytest.raises(SpecError, match="exists and is not a directory"):
        check_export_target(tmp_path / "file", force=True)
    with pytest.raises(SpecError, match="is not a directory"):
        check_export_target(tmp_path / "file" / "export")


# ---------------------------------------------------------------- report --out


def write_run(run_dir, trials_csv: str):
    run_dir.mkdir()
    (run_dir / "trials.csv").write_text(trials_csv)
    (run_dir / "study.yaml").write_text("name: unit\nobjectives: [{metric: miou, direction: maximize}]\n")
    return run_dir


def test_report_out_onto_a_file_is_refused(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", REPORT_COLUMNS + "\n0,COMPLETE,aa,0,1,1,1,1,8,,0.5,1.0,\n")
    (tmp_path / "file").write_text("x")
    assert "--out: exists and is not a directory" in refused(capsys, "report", str(run_dir), "--out",
                                                             str(tmp_path / "file"))
    assert "--out: cannot write here" in refused(capsys, "report", str(run_dir), "--out",
                                                 str(tmp_path / "file" / "sub"))


def test_report_on_a_table_cut_inside_its_header_keeps_the_old_report(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", REPORT_COLUMNS[:len(REPORT_COLUMNS) - 4])
    for name in ("report.md", "report.csv", "pareto.png"):
        (run_dir / name).write_text(f"old {name}")
    assert "ends in the middle of a line" in refused(capsys, "report", str(run_dir))
    for name in ("report.md", "report.csv", "pareto.png"):
        assert (run_dir / name).read_text() == f"old {name}"
    (run_dir / "trials.csv").write_text(REPORT_COLUMNS + "\n0,COMPLETE,aa,0,1,1,1,1,8,,0.5")  # a row cut short
    assert "ends in the middle of a line" in refused(capsys, "report", str(run_dir))


# ---------------------------------------------------------------- resources


def test_threads_beyond_the_cpus_are_refused(capsys, spec_file):
    cpus = resources.available_cpus()
    err = refused(capsys, "latency", str(spec_file), "--threads", str(cpus + 1), "--input", "32x32")
    assert f"--threads: more threads than the {cpus} CPU" in err and f"allowed: 1 to {cpus}" in err


def test_threads_default_to_the_affinity_mask():
    assert resources.available_cpus() == len(os.sched_getaffinity(0))


def test_negative_input_size_gets_the_flags_own_message(capsys, spec_file):
    with pytest.raises(SystemExit) as caught:
        main(["build", str(spec_file), "--input", "-5x10"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("archsearch build: error: argument --input: expected HxW with "
                                                        "positive integers, e.g. 1024x2048 (got '-5x10')")


@pytest.fixture
def little_memory(monkeypatch):
    """A machine with 64 MiB free: any real network is too large, without allocating anything."""
    monkeypatch.setattr(resources, "available_memory_bytes", lambda device="cpu": 64 * 2**20)


def test_classes_beyond_memory_are_refused_with_the_estimate(capsys, spec_file, little_memory):
    err = refused(capsys, "build", str(spec_file), "--classes", "100000000", "--input", "32x32")
    needs = memory_needs(resolve_spec(str(spec_file)), (32, 32), num_classes=100_000_000)
    assert needs.parameters > 8 * 100_000_000  # the head's last conv alone
    assert "building tiny with 100000000 classes needs about" in err and "more than the" in err


def test_huge_input_for_latency_is_refused_before_allocating(capsys, spec_file):
    err = refused(capsys, "latency", str(spec_file), "--input", "200000x200000")
    assert "running tiny on 1x3x200000x200000 needs about" in err


def test_widths_beyond_memory_are_refused(tmp_path, capsys, little_memory):
    wide = tmp_path / "wide.yaml"
    wide.write_text(TINY_SPEC.replace("out_channels: 16", "out_channels: 8192"))
    err = refused(capsys, "build", str(wide), "--input", "32x32")
    assert "needs about" in err and "more than the 64.0 MiB available" in err


def test_an_allocation_failure_is_the_same_clean_message(capsys, spec_file, monkeypatch):
    import archsearch.arch.build as build_module

    def fail(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 9000000000 bytes.")

    monkeypatch.setattr(build_module, "build", fail)
    err = refused(capsys, "latency", str(spec_file), "--input", "32x32")
    assert "timing tiny ran out of memory" in err and "can't allocate memory" in err


def test_memory_needs_count_the_real_parameters(spec_file):
    from archsearch import build

    spec = resolve_spec(str(spec_file))
    needs = memory_needs(spec, (32, 64), num_classes=5)
    assert needs.parameters == sum(parameter.numel() for parameter in build(spec, num_classes=5).parameters())
    assert needs.input_values == 3 * 32 * 64
    assert needs.largest_activation == 5 * 32 * 64  # the logits at the input's resolution
    assert needs.training_bytes(batch_size=2) == 4 * (4 * needs.parameters + 2 * (needs.input_values
                                                                                 + needs.activations))



@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_cuda_work_is_checked_against_the_devices_free_memory(spec_file):
    import torch

    from archsearch.arch.memory import check_fits_training
    from archsearch.resources import OutOfMemory

    free = torch.cuda.mem_get_info()[0]
    assert resources.available_memory_bytes("cuda") == pytest.approx(free, rel=0.1)
    with pytest.raises(OutOfMemory, match="memory on cuda, more than the"):
        check_fits_training(resolve_spec(str(spec_file)), (2048, 2048), num_classes=19, batch_size=100_000,
                            device="cuda")


@pytest.mark.parametrize("umask", [0o002, 0o077])
def test_storage_cache_and_lock_files_follow_the_umask(tmp_path, umask):
    """study.db, latency.db (and its WAL files) and the run directory's locks are made like every other file."""
    from archsearch.latency.cache import LatencyCache
    from archsearch.search import RunDirectory, load_study
    from archsearch.search.optuna_driver import open_study
    from tests.helpers.paths import FIXTURES

    previous = os.umask(umask)
    try:
        run_dir = RunDirectory(tmp_path / "run").create()
        with run_dir.lock("queue"):
            pass
        open_study(load_study(FIXTURES / "tiny_study.yaml"), run_dir)
        LatencyCache(run_dir.latency_cache)
    finally:
        os.umask(previous)
    made = [run_dir.root / name for name in ("study.db", "latency.db", ".queue.lock")]
    made += sorted(run_dir.root.glob("latency.db-*"))
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in made} == \
        {path.name: oct(0o666 & ~umask) for path in made}


def test_report_out_into_another_run_keeps_its_report_unless_forced(tmp_path, capsys):
    from tests.report.test_report import trial, write_run

    rows = [trial(0, "a", miou=0.5, macs=2_000_000_000)]
    first, second = write_run(tmp_path / "A", rows), write_run(tmp_path / "B", rows)
    assert run(capsys, "report", str(second))[0] == 0
    before = {name: (second / name).read_bytes() for name in ("report.md", "report.csv", "pareto.png")}
    err = refused(capsys, "report", str(first), "--out", str(second))
    assert "--out: " in err and repr(str(second)) in err and "--force" in err and "report.md" in err, err
    assert {name: (second / name).read_bytes() for name in before} == before
    assert run(capsys, "report", str(first), "--out", str(second), "--force")[0] == 0


@pytest.mark.parametrize("command", [["report", "RUN"], ["run", "STUDY"], ["export", "RUN"]])
def test_an_empty_output_path_is_refused(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--out", ""])
    assert exit_info.value.code == 2 and "--out: expected a path (got '')" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
