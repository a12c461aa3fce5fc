"""The backend seam: backends chosen by name in one place, the trial count and outcome computed once for both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from archsearch.search.backends import SearchBackend, get_backend, register_backend, requested_trials
from archsearch.study.config import BACKENDS

ROOT = Path(__file__).resolve().parents[2]


def test_every_backend_of_the_study_file_is_registered_under_its_name():
    for name in BACKENDS:
        backend = get_backend(name)
        assert isinstance(backend, SearchBackend) and backend.name == name
    with pytest.raises(ValueError, match="unknown backend"):
        get_backend("hyperopt")


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        register_backend("optuna")(type("Another", (SearchBackend,), {}))


def test_a_run_aims_for_the_study_count_or_the_smaller_grid():
    config = SimpleNamespace(trials=10)
    assert requested_trials(config, None) == 10
    assert requested_trials(config, 4) == 4 and requested_trials(config, 40) == 10


def test_the_optuna_backend_imports_no_ray():
    code = ("import json, sys\nfrom archsearch.search.backends import get_backend\nget_backend('optuna')\n"
            "print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0] == 'ray' "
            "or name.startswith('archsearch.search.ray'))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
