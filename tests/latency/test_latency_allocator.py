"""Timing keeps freed memory in the process: the same convolution, called again, faults no page in.

Each case runs in a fresh interpreter, whose allocator has freed nothing yet, as a study's
worker timing its first network does.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")

_FAULTS_PER_CALL = """
import json, resource, sys, torch
from archsearch.latency import LatencySettings, measure_latency
from archsearch.latency.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
if sys.argv[1] == "measure":  # any timing first, of a model that allocates nothing
    measure_latency(torch.nn.Identity(), LatencySettings(input_size=(8, 8), warmup_seconds=0, time_budget_seconds=0,
                                                         min_warmup_iterations=0, min_repeats=1))
torch.set_num_threads(1)
convolution = torch.nn.Conv2d(3, 32, 3, stride=2, padding=1).eval()
images = torch.randn(1, 3, 256, 512)
with torch.inference_mode():
    for _ in range(3):
        convolution(images)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        convolution(images)
print(json.dumps({"kept": kept, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10}))
"""


def _faults_per_call(mode: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", _FAULTS_PER_CALL, mode], capture_output=True, text=True,
                               check=True, timeout=120)
    return json.loads(completed.stdout.splitlines()[-1])


def test_a_timed_call_reuses_the_memory_the_last_call_freed() -> None:
    default = _faults_per_call("default")
    if default["faults"] < 100:
        pytest.skip("this allocator keeps the convolution's blocks already; nothing to compare")
    kept = _faults_per_call("keep")
    assert kept["kept"] is True
    assert kept["faults"] < 10, (default, kept)


def test_after_any_timing_the_process_keeps_freed_memory() -> None:
    if _faults_per_call("default")["faults"] < 100:
        pytest.skip("this allocator keeps the convolution's blocks already; nothing to compare")
    assert _faults_per_call("measure")["faults"] < 10
