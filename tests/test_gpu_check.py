"""benchmarks/gpu_check.py's plumbing, on the CPU: the message and JSON line without CUDA, guarded parts, the
CUDA-marked test files. What it checks on a GPU is the CUDA tests' and archsearch's own code."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_without_cuda_it_says_so_and_prints_its_json_line():
    finished = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert finished.returncode == 2
    assert "needs a CUDA device" in finished.stderr
    summary = json.loads(finished.stdout.splitlines()[-1])
    assert summary["check"] == "gpu" and summary["cuda"] is False and "CUDA" in summary["error"]


def test_a_failing_part_is_recorded_and_the_next_runs_while_time_is_left(gpu_check):
    now = [0.0]

    def broken(deadline):
        raise RuntimeError("cuDNN said no")

    def slow(deadline):
        now[0] += 10.0
        return {"ms": 1.5}

    results = gpu_check.run_parts([("first", broken), ("second", slow), ("third", slow)], deadline=5.0,
                                  clock=lambda: now[0])
    assert results["first"] == {"error": "RuntimeError: cuDNN said no", "seconds": 0.0}
    assert results["second"] == {"ms": 1.5, "seconds": 10.0}
    assert results["third"] == {"skipped": "out of time (--budget)"}
    assert gpu_check.failed_parts({**results, "fourth": {"failed": ["rdrnet-s"]}}) == ["first", "fourth"]


def test_the_cuda_tests_are_found_by_their_mark(gpu_check):
    files = gpu_check.cuda_test_files()
    assert "tests/latency/test_latency_relative.py" in files and "tests/train/test_train_speed.py" in files
    assert str(Path(__file__).relative_to(ROOT)) not in files  # this file marks none
