"""Reading and validating a study imports no torch: checked in a fresh interpreter, where nothing else loaded it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "optuna", "ray")
PROBE = """
import json, sys
{imports}
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {heavy!r})))
"""


def heavy_modules_after(imports: str) -> list[str]:
    code = PROBE.format(imports=imports, heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize(("study", "overrides"), [
    (FIXTURES / "tiny_study.yaml", []),
    (ROOT / "studies" / "latency_constrained.yaml", []),
    (ROOT / "studies" / "rdrnet_width.yaml", ["runtime.spin_count=5"]),  # raced seeds, a runtime: section
    (ROOT / "studies" / "paper" / "regseg_camvid.yaml", []),  # the recipes' padding, warm-up and evaluation fields
], ids=["tiny", "latency_constrained", "raced_with_runtime", "regseg_recipe"])
def test_loading_a_study_imports_no_torch(study, overrides):
    loaded = heavy_modules_after(f"from archsearch.study.config import load_study\n"
                                 f"load_study({str(study)!r}, {overrides!r})")
    assert loaded == []


def test_the_ranking_reads_directions_without_torch():
    assert heavy_modules_after("import archsearch.report.ranking") == []
