"""archsearch latency: the report's fields, JSON output, and exit status 2 for settings this machine cannot run."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch

from archsearch import load_spec
from archsearch.cli.main import main, make_parser
from archsearch.cli.latency import latency_settings_from_flags
from archsearch.latency import LatencySettings, device_name
from archsearch.space.sampling import FixedSuggester, load_space, sample
from tests.helpers.paths import FIXTURES

QUICK = ["--input", "32x64", "--budget", "0", "--warmup", "0"]


@pytest.fixture
def spec_file(tmp_path) -> Path:
    """A small network (the tiny test space at width 16) as a spec file."""
    point = sample(load_space(FIXTURES / "tiny_space.yaml"),
                   FixedSuggester({"width": 16, "pattern": "short", "group_width": 8}))
    path = tmp_path / "tiny.yaml"
    path.write_text(point.spec.to_yaml())
    return path


def cli(capsys, *arguments) -> tuple[int, str, str]:
    status = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_json_reports_the_measurement_and_where_it_was_taken(capsys, spec_file):
    status, out, _ = cli(capsys, "latency", spec_file, *QUICK, "--classes", "7", "--json")
    report = json.loads(out)
    spec = load_spec(spec_file)
    assert status == 0
    assert report["name"] == spec.name and report["hash"] == spec.arch_hash
    assert report["num_classes"] == 7
    assert 0 < report["q1_ms"] <= report["median_ms"] <= report["q3_ms"]
    assert report["iqr_ms"] == pytest.approx(report["q3_ms"] - report["q1_ms"])
    assert report["repeats"] >= 10 and report["backend"] == "eager"
    assert report["device_name"] == device_name(LatencySettings())
    settings = report["settings"]
    assert settings["input_size"] == [32, 64] and settings["num_threads"] == 1 and settings["dtype"] == "fp32"
    assert settings["time_budget_seconds"] == 0.0 and settings["device"] == "cpu"


def test_text_report(capsys, spec_file):
    status, out, _ = cli(capsys, "latency", spec_file, *QUICK)
    lines = dict(line.split(maxsplit=1) for line in out.splitlines())
    assert status == 0
    assert lines["median"].endswith(" ms") and "of the median" in lines["IQR"] and int(lines["repeats"]) >= 10
    assert lines["backend"] == "eager" and lines["input"] == "1x3x32x64 fp32"
    assert lines["device"].startswith(device_name(LatencySettings()))


def test_every_flag_reaches_the_settings():
    arguments = make_parser().parse_args(
        ["latency", "regseg", "--input", "48x96", "--device", "cuda:1", "--dtype", "fp16", "--backend", "compile",
         "--threads", "3", "--channels-last", "--budget", "2.5", "--warmup", "0.5"])
    assert latency_settings_from_flags(arguments) == LatencySettings(
        input_size=(48, 96), device="cuda:1", dtype="fp16", backend="compile", num_threads=3, channels_last=True,
        time_budget_seconds=2.5, warmup_seconds=0.5)
    assert latency_settings_from_flags(make_parser().parse_args(["latency", "regseg"])) == LatencySettings()


@pytest.mark.parametrize("arguments, message", [
    (["--dtype", "fp8"], "--dtype: not an allowed value (got 'fp8'); allowed: 'fp32' | 'fp16' | 'bf16'"),
    (["--backend", "tensorrt"], "--backend: not an allowed value (got 'tensorrt')"),
    (["--device", "tpu"], "--device: not a known device (got 'tpu')"),
    (["--device", "mps"], "--device: mps devices are not supported here (got 'mps'); allowed: 'cpu', 'cuda', 'cuda:N'"),
    (["--device", ""], "--device: expected a device name (got '')"),
    (["--backend", "onnxruntime", "--channels-last"], "--channels-last: onnxruntime chooses its own memory layout"),
    (["--backend", "onnxruntime", "--dtype", "bf16"], "--dtype: onnxruntime has no bf16 convolution kernels"),
    (["--warmup", "inf"], "--warmup: expected a finite number (got inf); allowed: a finite number >= 0.0 and <= 600.0"),
    (["--warmup", "1e9"], "--warmup: out of range: a warm-up or timing runs for minutes at most (got 1000000000.0)"),
    (["--budget", "1e9"], "--budget: out of range: a warm-up or timing runs for minutes at most (got 1000000000.0)"),
])
def test_settings_that_cannot_run_exit_2(capsys, arguments, message):
    status, out, err = cli(capsys, "latency", "regseg", *QUICK, *arguments)
    assert status == 2 and message in err and out == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_device_exits_2_before_building(capsys, monkeypatch):
    build_module = importlib.import_module("archsearch.arch.build")

    def never(*args, **kwargs):
        raise AssertionError("built a model for a device that is not there")

    monkeypatch.setattr(build_module, "build", never)
    status, out, err = cli(capsys, "latency", "regseg", "--device", "cuda")
    assert status == 2 and out == ""
    assert "--device: a CUDA device was asked for but torch.cuda.is_available() is False" in err


def test_unknown_network_and_bad_flags_exit_2(capsys):
    status, _, err = cli(capsys, "latency", "no-such-net", *QUICK)
    assert status == 2 and "unknown preset and no such file" in err
    for arguments in (["--threads", "0"], ["--budget", "-1"], ["--input", "32"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["latency", "regseg", *arguments])
        assert exit_info.value.code == 2


def test_reference_prints_the_ratio_timed_in_interleaved_rounds(capsys, spec_file):
    from archsearch.latency.protocol import ROUNDS

    status, out, _ = cli(capsys, "latency", spec_file, *QUICK, "--reference", spec_file, "--json")
    report = json.loads(out)
    assert status == 0 and report["rounds"] == ROUNDS and report["reference"] == str(spec_file)
    assert report["ratio"] > 0 and report["reference_median_ms"] > 0 and report["ratio_noise"] >= 0
    status, out, _ = cli(capsys, "latency", spec_file, *QUICK, "--reference", spec_file)
    assert status == 0 and "ratio" in out and f"timed in the same {ROUNDS} interleaved rounds" in out


def test_an_unknown_reference_exits_2_naming_the_flag(capsys, spec_file):
    status, _, err = cli(capsys, "latency", spec_file, *QUICK, "--reference", "no-such-network")
    assert status == 2 and "--reference" in err and "unknown preset" in err
