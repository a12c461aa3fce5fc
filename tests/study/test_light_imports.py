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



def test_the_checks_of_sizes_and_synthetic_data_import_no_torch():
    """The first checks of a run or a dry run know each dataset's classes (data/classes.py) and write nothing
    that needs network code (run/directory.py), so they load no torch either."""
    study = ROOT / "studies" / "rdrnet_width.yaml"
    loaded = heavy_modules_after("from archsearch.study.config import load_study\n"
                                 "from archsearch.run.preflight import check_sizes_fit, check_synthetic_data\n"
                                 "import archsearch.run.directory\n"
                                 f"config = load_study({str(study)!r})\n"
                                 "check_sizes_fit(config)\ncheck_synthetic_data(config)")
    assert [name for name in loaded if name.split(".")[0] == "torch"] == []
