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


DRY_RUN_PROBE = """
import sys, types
stand_in = types.ModuleType("archsearch.cli.dry_run")  # stops the dry run where it would build its first network
def print_dry_run(config, num_classes):
    print("torch loaded" if "torch" in sys.modules else "no torch")
    return 0
stand_in.print_dry_run = print_dry_run
sys.modules["archsearch.cli.dry_run"] = stand_in
from archsearch.cli.main import main
sys.exit(main(["run", {study!r}, "--dry-run"{extra}]))
"""


@pytest.mark.parametrize(("study", "extra"), [
    (ROOT / "studies" / "rdrnet_width.yaml", []),  # a grid (walked to be counted) with raced seeds
    (ROOT / "studies" / "latency_constrained.yaml", []),
    (ROOT / "studies" / "rdrnet_width.yaml", ["--set", "sampler=tpe"]),
], ids=["grid_raced", "latency_constrained", "tpe"])
def test_a_dry_run_loads_no_torch_before_its_first_network(study, extra):
    """``run --dry-run`` reads the study, checks sizes, data caps and the backend's options (the grid's walk
    included) without torch; torch comes with the first network the dry run builds, not before."""
    extra_arguments = "".join(f", {argument!r}" for argument in extra)
    code = DRY_RUN_PROBE.format(study=str(study), extra=extra_arguments)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "no torch"
