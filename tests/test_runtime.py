"""OpenMP's waiting set before torch loads, in every process archsearch starts; the user's and the study's say."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import shutil

import pytest

from archsearch import runtime
from archsearch.cli.main import main
from archsearch.errors import SpecError
from archsearch.latency import LatencySettings
from archsearch.resources import available_cpus, busy_cpus_elsewhere, threads_for_free_cpus
from archsearch.runtime import DEFAULT, RuntimeSettings, resolve
from archsearch.search import load_study
from tests.helpers.paths import FIXTURES, REPOSITORY

OPENMP = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", runtime.MARKER)

PROBE = """
import json, os, sys
import archsearch.cli.main as cli
configure = cli.configure_process
def spy(*arguments, **keywords):
    print(json.dumps({"torch_loaded": "torch" in sys.modules}))
    configure(*arguments, **keywords)
    raise SystemExit(0)  # the command itself is not what is tested (and would import torch: seconds)
cli.configure_process = spy
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps({name: os.environ.get(name) for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "ARCHSEARCH_RUNTIME")}))
"""


@pytest.fixture
def tiny_study(tmp_path):
    for name in ("tiny_study.yaml", "tiny_space.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path / "tiny_study.yaml"


def probe(*arguments: str, **environment: str) -> tuple[dict, dict]:
    """Run the CLI in a fresh process; (what the process knew when the settings were applied, its environment after)."""
    env = {key: value for key, value in os.environ.items() if key not in OPENMP}
    env.update(environment, PYTHONPATH=str(REPOSITORY))
    result = subprocess.run([sys.executable, "-c", PROBE, *arguments], capture_output=True, text=True, env=env,
                            check=True, timeout=300)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return lines[0], lines[-1]


def test_the_cli_sets_the_defaults_before_torch_is_imported():
    at_configure, after = probe("list")
    assert at_configure == {"torch_loaded": False}
    assert after["GOMP_SPINCOUNT"] == str(DEFAULT.spin_count)
    assert json.loads(after[runtime.MARKER])["GOMP_SPINCOUNT"]["source"] == runtime.ARCHSEARCH


def test_the_users_environment_is_respected():
    _, after = probe("list", OMP_WAIT_POLICY="ACTIVE", GOMP_SPINCOUNT="123")
    assert (after["OMP_WAIT_POLICY"], after["GOMP_SPINCOUNT"]) == ("ACTIVE", "123")
    assert json.loads(after[runtime.MARKER])["GOMP_SPINCOUNT"]["source"] == runtime.ENVIRONMENT


def test_a_studys_runtime_section_applies_before_torch_is_imported(tiny_study):
    tiny_study.write_text(tiny_study.read_text() + "runtime: {wait_policy: passive}\n")
    at_configure, after = probe("run", str(tiny_study), "--dry-run", "--set", "runtime.spin_count=77")
    assert at_configure == {"torch_loaded": False}
    assert (after["OMP_WAIT_POLICY"], after["GOMP_SPINCOUNT"]) == ("PASSIVE", "77")
    assert json.loads(after[runtime.MARKER])["OMP_WAIT_POLICY"]["source"] == runtime.STUDY


def test_environment_over_study_over_default():
    study = RuntimeSettings.from_dict({"wait_policy": "passive"})
    effective = resolve(study, {"GOMP_SPINCOUNT": "5"})
    assert effective.values["OMP_WAIT_POLICY"] == "PASSIVE" and effective.sources["OMP_WAIT_POLICY"] == runtime.STUDY
    assert effective.values["GOMP_SPINCOUNT"] == "5" and effective.sources["GOMP_SPINCOUNT"] == runtime.ENVIRONMENT
    assert resolve(None, {}).values["GOMP_SPINCOUNT"] == str(DEFAULT.spin_count)


def test_a_child_keeps_the_source_and_a_study_replaces_an_inherited_default():
    effective = resolve(None, {})  # what configure_process writes into a parent's environment
    parent = {name: value for name, value in effective.values.items() if value is not None}
    parent[runtime.MARKER] = json.dumps(effective.to_dict())
    assert resolve(None, parent).sources["GOMP_SPINCOUNT"] == runtime.ARCHSEARCH
    study = RuntimeSettings.from_dict({"spin_count": 9})
    assert resolve(study, parent).values["GOMP_SPINCOUNT"] == "9"


def test_null_leaves_openmps_own_default():
    settings = RuntimeSettings.from_dict({"spin_count": None})
    assert "GOMP_SPINCOUNT" not in settings.environment()
    assert resolve(settings, {}).timing_key() == "OMP_WAIT_POLICY=openmp default,GOMP_SPINCOUNT=openmp default"


@pytest.mark.parametrize(("section", "path", "allowed"), [
    ({"wait_policy": "sleepy"}, "runtime.wait_policy", "'active' | 'passive'"),
    ({"spin_count": -1}, "runtime.spin_count", "an integer >= 0"),
    ({"spin_count": True}, "runtime.spin_count", "an integer >= 0"),
    ({"spin_count": "10000"}, "runtime.spin_count", "an integer >= 0"),
    ({"threads": 2}, "runtime.threads", "spin_count, wait_policy"),
    ("fast", "runtime", "a mapping"),
])
def test_bad_study_values_name_the_file_key_and_what_is_allowed(tiny_study, section, path, allowed):
    with pytest.raises(SpecError) as caught:
        load_study(tiny_study, [f"runtime={json.dumps(section)}"])
    assert caught.value.path == path and allowed in caught.value.allowed
    assert str(tiny_study) in str(caught.value) or "--set" in str(caught.value)


def test_a_bad_omp_num_threads_is_an_error_naming_the_variable():
    with pytest.raises(SpecError, match="OMP_NUM_THREADS"):
        runtime.training_threads(2, {"OMP_NUM_THREADS": "two"})


def test_the_users_omp_num_threads_replaces_the_studys_thread_count(tiny_study, monkeypatch, capsys):
    assert runtime.training_threads(2, {"OMP_NUM_THREADS": "1"}) == 1
    assert runtime.training_threads(2, {}) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert main(["run", str(tiny_study), "--dry-run", "--set", "training.num_threads=2"]) == 0
    captured = capsys.readouterr()
    assert "num_threads: 1" in captured.out and "OMP_NUM_THREADS in the environment" in captured.err


def test_ray_workers_start_with_the_studys_settings_and_the_users_environment():
    study = RuntimeSettings.from_dict({"wait_policy": "passive"})
    workers = runtime.worker_environment(study, {"GOMP_SPINCOUNT": "10", "OMP_NUM_THREADS": "1", "HOME": "/x"})
    assert {key: workers[key] for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")} == {"OMP_WAIT_POLICY": "PASSIVE",
                                                                                 "GOMP_SPINCOUNT": "10"}
    assert set(workers) == {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", runtime.MARKER}  # Ray sets OMP_NUM_THREADS itself
    sources = json.loads(workers[runtime.MARKER])
    assert sources["OMP_WAIT_POLICY"]["source"] == runtime.STUDY
    assert sources["GOMP_SPINCOUNT"]["source"] == runtime.ENVIRONMENT


def test_the_latency_cache_key_includes_how_openmp_waits(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    passive = LatencySettings(num_threads=2).key()
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert LatencySettings(num_threads=2).key() != passive
    monkeypatch.setenv("GOMP_SPINCOUNT", "1")
    assert "GOMP_SPINCOUNT=1" in LatencySettings().key()
    cuda = LatencySettings(device="cuda").key()
    monkeypatch.setenv("GOMP_SPINCOUNT", "2")
    assert LatencySettings(device="cuda").key() == cuda  # the GPU does not wait on OpenMP's barriers


def test_a_local_ray_starts_its_workers_with_the_studys_settings(tiny_study, monkeypatch):
    from archsearch.search.ray import driver

    started: dict = {}
    monkeypatch.setattr(driver.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(driver.ray, "init", lambda **options: started.update(options))
    monkeypatch.setattr(driver.ray, "shutdown", lambda: None)
    monkeypatch.setattr(driver, "check_resources_fit", lambda config: None)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    with driver.ray_session(None, load_study(tiny_study, ["runtime.spin_count=77"])):
        pass
    assert started["runtime_env"]["env_vars"]["GOMP_SPINCOUNT"] == "77"


def test_a_studys_null_unsets_a_default_an_archsearch_parent_set():
    environ = {"HOME": "/x"}
    runtime.set_variables(resolve(None, environ), environ)  # what the CLI of a parent process leaves
    assert environ["GOMP_SPINCOUNT"] == str(DEFAULT.spin_count)
    runtime.set_variables(resolve(RuntimeSettings.from_dict({"spin_count": None}), environ), environ)
    assert "GOMP_SPINCOUNT" not in environ and environ["HOME"] == "/x"
    user = {"GOMP_SPINCOUNT": "5"}
    runtime.set_variables(resolve(RuntimeSettings.from_dict({"spin_count": None}), user), user)
    assert user["GOMP_SPINCOUNT"] == "5"  # the user's value stays


@pytest.mark.parametrize(("wanted", "busy", "cpus", "expected"), [
    (2, 0.0, 2, 2), (2, 0.4, 2, 2), (2, 0.6, 2, 1), (2, 1.0, 2, 1), (2, 3.0, 2, 1),  # never fewer than one
    (4, 1.0, 8, 4), (8, 2.2, 8, 6), (2, None, 2, 2)])  # None: the kernel did not say, the study's count stands
def test_threads_for_free_cpus_leaves_the_cpus_others_hold(wanted, busy, cpus, expected):
    assert threads_for_free_cpus(wanted, busy, cpus) == expected


def test_busy_cpus_elsewhere_counts_other_processes_not_this_one(monkeypatch):
    """Kernel counters faked: two CPUs over one second (200 ticks), 150 of them busy, 0.7 s of which this process
    used: others held 0.8 of a CPU."""
    from archsearch import resources

    readings = iter([(1000, 5000), (1150, 5200)])
    own = iter([10.0, 10.7])
    monkeypatch.setattr(resources, "_cpu_times", lambda cpus: next(readings))
    monkeypatch.setattr(resources, "_own_cpu_seconds", lambda: next(own))
    monkeypatch.setattr(resources.os, "sysconf", lambda name: 100)
    monkeypatch.setattr(resources.os, "sched_getaffinity", lambda pid: {0, 1})
    assert resources.busy_cpus_elsewhere(window_seconds=0) == pytest.approx(0.8)


def test_busy_cpus_elsewhere_reads_this_machine():
    busy = busy_cpus_elsewhere(window_seconds=0.05)
    assert busy is None or 0.0 <= busy <= available_cpus() + 0.5
