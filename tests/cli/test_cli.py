"""The command line: listing, building, JSON output, saving, weights, and exit status 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from archsearch import build
from archsearch.cli.main import main
from archsearch.io import write_state_dict


def run(capsys, *arguments: str) -> tuple[int, str, str]:
    status = main(list(arguments))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_shows_presets_and_filters(capsys):
    status, out, _ = run(capsys, "list")
    assert status == 0 and "rdrnet-s " in out and "regseg-exp43-decoder10" in out
    status, out, _ = run(capsys, "list", "ddrnet-*")
    assert status == 0 and set(line.split()[0] for line in out.splitlines()) == {"ddrnet-23", "ddrnet-23-slim"}
    status, _, err = run(capsys, "list", "nothing-like-this")
    assert status == 2 and "no preset matches" in err


def test_build_json_has_the_documented_fields(capsys):
    status, out, _ = run(capsys, "build", "regseg", "--json", "--input", "512x1024", "--classes", "11")
    report = json.loads(out)
    assert status == 0
    assert {"name", "hash", "params_train", "params_deploy", "macs", "receptive_field", "output_stride"} <= set(report)
    assert report["name"] == "regseg" and report["receptive_field"] == 3807 and report["output_stride"] == 4
    assert report["input_size"] == [512, 1024] and isinstance(report["macs"], int)
    assert report["params_train"] == 3_334_951 - (19 - 11) * (64 + 1)


def test_build_text_report(capsys):
    status, out, _ = run(capsys, "build", "rdrnet-s-simple", "--input", "256x512")
    assert status == 0 and "7,125,363" in out and "receptive field" in out


def test_saved_spec_rebuilds_the_same_architecture(tmp_path, capsys):
    spec_path = tmp_path / "mine.yaml"
    assert run(capsys, "build", "ddrnet-23-slim", "--save", str(spec_path), "--json")[0] == 0
    status, out, _ = run(capsys, "build", str(spec_path), "--json", "--input", "64x64")
    original = json.loads(run(capsys, "build", "ddrnet-23-slim", "--json", "--input", "64x64")[1])
    assert status == 0 and json.loads(out)["hash"] == original["hash"]


def test_weights_load_and_deploy_form_saves(tmp_path, capsys):
    weights = tmp_path / "weights.safetensors"
    write_state_dict(weights, build("regseg-exp43-decoder14").state_dict())
    deployed = tmp_path / "deployed.safetensors"
    status, _, err = run(capsys, "build", "regseg-exp43-decoder14", "--weights", str(weights), "--deploy",
                         "--save", str(deployed), "--input", "64x64")
    assert status == 0, err
    status, _, err = run(capsys, "build", "regseg-exp43-decoder14", "--weights", str(deployed), "--input", "64x64")
    assert status == 0, err


@pytest.mark.parametrize(("arguments", "message"), [
    (["build", "no-such-net"], "unknown preset and no such file"),
    (["build", "missing.yaml"], "missing.yaml: no such file"),
    (["build", "regseg", "--weights", "absent.pth"], "no such checkpoint file"),
    (["build", "regseg", "--save", "out.txt"], "--save: cannot tell what to save"),
])
def test_bad_input_exits_2_with_one_message(capsys, tmp_path, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, *arguments)
    assert status == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.txt").exists()


def test_spec_errors_name_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstem: [{block: dblock, out_channels: 40, dilations: [1, 2, 3], group_width: 16}]\n"
                   "stages: [{blocks: [{block: conv, out_channels: 8}]}]\nhead: {block: ddr_head, channels: 8}\n")
    status, _, err = run(capsys, "build", str(bad))
    assert status == 2
    assert f"{bad}: stem[0].out_channels: out_channels must split evenly over the 3 dilations (got 40)" in err


def test_checkpoint_of_wrong_shape_exits_2(tmp_path, capsys):
    weights = tmp_path / "eleven.pt"
    torch.save(build("regseg", num_classes=11).state_dict(), weights)
    status, _, err = run(capsys, "build", "regseg", "--weights", str(weights))
    assert status == 2 and "head.classifier" in err and "wrong shape" in err


def test_console_script_bad_argument_has_no_traceback():
    result = subprocess.run([sys.executable, "-m", "archsearch.cli.main", "build", "regseg", "--input", "wide"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "expected HxW" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("arguments", [["--help"], ["list"], ["run", "--help"], ["report", "--help"]])
def test_help_and_list_import_no_heavy_library(arguments):
    """Start-up stays fast because torch, Ray and matplotlib are imported only by the commands that run them
    (benchmarks/cli_startup.py prints the time)."""
    probe = ("import sys\nfrom archsearch.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n"
             "    pass\nprint(sorted(name for name in ('torch', 'ray', 'matplotlib') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe, *arguments], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]"


def test_latency_help_still_quotes_the_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["latency", "--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "input size (default 512x1024)" in help_text and "--threads N" in help_text


def test_half_precision_weights_load_with_a_note(tmp_path, capsys):
    weights = tmp_path / "half.safetensors"
    write_state_dict(weights, {key: value.half() if value.is_floating_point() else value
                               for key, value in build("regseg-exp43-decoder14").state_dict().items()})
    status, _, err = run(capsys, "build", "regseg-exp43-decoder14", "--weights", str(weights), "--input", "64x64")
    assert status == 0 and f"note: {weights}: " in err and "stored in float16 were widened exactly to float32" in err
    assert "Warning" not in err
