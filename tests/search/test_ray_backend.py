"""The Ray Tune backend: the Optuna backend's run directory, resumable, spread over a cluster's nodes."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from archsearch import load_spec
from archsearch.cli.main import main
from archsearch.errors import SpecError
from archsearch.report.write import write_report
from archsearch.search import RunDirectory, load_study
from archsearch.run.trials_table import COLUMN_NAMES as TRIAL_COLUMNS

ray = pytest.importorskip("ray")
pytest.importorskip("ray.tune")

from archsearch.search.ray.driver import check_reachable, check_resources_fit, run_ray  # noqa: E402
from archsearch.search.ray.scheduler import asha_settings  # noqa: E402

START_SECONDS = 90
STOP_SECONDS = 60
# Long enough that the first trial still runs when the second node's worker has started;
# otherwise Ray Tune hands the second trial to the first trial's idle worker.
CLUSTER_TRIAL_ITERATIONS = 80


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray with 2 CPUs for the single-machine tests; ``run_ray`` uses a Ray already started.

    Its workers inherit the environment at start, so the per-session cache is set here too.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
        try:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        except Exception as error:  # Ray is installed, so a Ray that cannot start is a failure, with its reason
            pytest.fail(f"Ray is installed but cannot start here: {type(error).__name__}: {error}", pytrace=False)
        yield
        ray.shutdown()


def run(study, run_dir, *extra) -> int:
    return main(["run", str(study), "--out", str(run_dir), "--backend", "ray", *extra])


def trials(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "trials.csv")


def user_attrs(run_dir, study_name: str = "tiny_study") -> list[dict]:
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{run_dir / 'study.db'}")
    return [trial.user_attrs for trial in study.get_trials()]


def test_a_study_runs_on_ray_into_the_optuna_backends_run_directory(tiny_study, tmp_path, local_ray):
    run_dir = tmp_path / "ray_run"
    assert run(tiny_study, run_dir) == 0
    frame = trials(run_dir)
    assert list(frame["number"]) == [0, 1, 2, 3]
    assert list(frame.columns[:len(TRIAL_COLUMNS)]) == list(TRIAL_COLUMNS)
    assert {"param.width", "param.pattern", "param.group_width"} <= set(frame.columns)
    assert set(frame["state"]) <= {"COMPLETE", "FAIL"}
    complete = frame[frame["state"] == "COMPLETE"]
    assert len(complete) >= 1
    for _, row in complete.iterrows():
        assert load_spec(run_dir / "specs" / f"{row['arch_hash']}.yaml").arch_hash == row["arch_hash"]
        assert (run_dir / "weights" / f"trial_{row['number']}.safetensors").is_file()
        assert 0.0 <= row["miou"] <= 1.0 and row["params_train"] > 0 and row["macs"] > 0
    for _, row in frame[frame["state"] == "FAIL"].iterrows():
        assert row["fail_reason"].startswith("InvalidPoint") and "group_width" in row["fail_reason"]
        assert not (run_dir / "weights" / f"trial_{row['number']}.safetensors").exists()
    assert all(attrs["node_id"] and attrs["seed"] == 0 for attrs in user_attrs(run_dir))
    files = write_report(run_dir)
    assert "tiny_study" in files.markdown.read_text(encoding="utf-8") and files.plot.is_file()

    optuna_dir = tmp_path / "optuna_run"
    assert main(["run", str(tiny_study), "--out", str(optuna_dir), "--backend", "optuna"]) == 0
    optuna_frame = trials(optuna_dir)
    assert list(optuna_frame.columns) == list(frame.columns)
    same = ["number", "state", "arch_hash", "miou", "param.width", "param.pattern", "param.group_width"]
    assert optuna_frame[same].equals(frame[same])  # trial n samples and trains alike on either backend


def test_a_search_on_a_proxy_trains_nothing_on_ray_too(tiny_study, tmp_path, local_ray):
    data = yaml.safe_load(tiny_study.read_text())
    data.update(proxies=["synflow"], training="none", trials=2,
                objectives=[{"metric": "proxy.synflow", "direction": "maximize"}])
    tiny_study.write_text(yaml.safe_dump(data))
    run_dir = tmp_path / "ray_run"
    assert run(tiny_study, run_dir) == 0
    complete = trials(run_dir).query("state == 'COMPLETE'")
    assert len(complete) >= 1 and complete["miou"].isna().all() and (complete["proxy.synflow"] > 0).all()
    assert not list((run_dir / "weights").iterdir())


def test_a_point_drawn_again_reuses_its_trained_twin(tiny_study, tmp_path, local_ray):
    run_dir = tmp_path / "run"
    one_point = ["fix={group_width: 8, width: 32}", "parameters.pattern={choice: {short: '[[1],[1,2]]'}}"]
    assert run(tiny_study, run_dir, *[f"--set={change}" for change in one_point], "--trials", "3") == 0
    frame = trials(run_dir)
    assert list(frame["state"]) == ["COMPLETE"] * 3 and frame["miou"].nunique() == 1
    repeats = frame[frame["duplicate_of"].notna()]
    assert len(repeats) >= 1  # at most two run at once, so the third finds a twin
    for _, row in repeats.iterrows():
        twin = frame[frame["number"] == row["duplicate_of"]].iloc[0]
        assert pd.isna(twin["duplicate_of"]) and twin["seed"] == row["seed"]
        assert ((run_dir / "weights" / f"trial_{row['number']}.safetensors").read_bytes()
                == (run_dir / "weights" / f"trial_{int(twin['number'])}.safetensors").read_bytes())


def test_running_again_adds_nothing_and_more_trials_extend(tiny_study, tmp_path, local_ray):
    run_dir = tmp_path / "run"
    fixed = ("--set", "fix={group_width: 8}")
    assert run(tiny_study, run_dir, "--trials", "2", *fixed) == 0
    first = trials(run_dir)
    weights = {path.name: path.stat().st_mtime_ns for path in (run_dir / "weights").iterdir()}
    assert run(tiny_study, run_dir, "--trials", "2", *fixed) == 0
    assert trials(run_dir).equals(first)
    assert [path.name for path in (run_dir / "ray").iterdir()] == ["tune-001"]
    assert run(tiny_study, run_dir, "--trials", "3", *fixed) == 0
    extended = trials(run_dir)
    assert len(extended) == 3 and extended.iloc[:2].equals(first)
    assert sorted(path.name for path in (run_dir / "ray").iterdir()) == ["tune-001", "tune-002"]
    for path in (run_dir / "weights").iterdir():
        if path.name in weights:
            assert path.stat().st_mtime_ns == weights[path.name]


def test_constraints_seeds_and_asha_give_the_optuna_backends_states(tiny_study, tmp_path, local_ray):
    run_dir = tmp_path / "run"
    assert run(tiny_study, run_dir, "--trials", "8", "--set", "fix={group_width: 8}",
               "--set", "constraints={macs: {max: 1100000}}", "--set", "seeds=[0, 1]",
               "--set", "training.iterations=4", "--set", "training.eval_every=1",
               "--set", "pruner={name: successive_halving, min_resource: 1, reduction_factor: 2}") in (0, 1)
    frame = trials(run_dir)
    assert list(frame["number"]) == list(range(8))
    assert set(frame["state"]) <= {"COMPLETE", "PRUNED", "INFEASIBLE"}
    infeasible = frame[frame["state"] == "INFEASIBLE"]
    assert (infeasible["macs"] > 1_100_000).all() and infeasible["miou"].isna().all()
    assert (frame.loc[frame["state"] != "INFEASIBLE", "macs"] <= 1_100_000).all()
    for _, row in frame[frame["state"] == "PRUNED"].iterrows():
        assert row["fail_reason"].startswith("pruned at step") and pd.isna(row["miou"])
        assert not (run_dir / "weights" / f"trial_{row['number']}.safetensors").exists()
    seeds = frame.groupby(["param.width", "param.pattern"])["seed"]
    assert seeds.apply(lambda column: (column == 0).sum() == (column == 1).sum()).all()  # each point with both


@pytest.mark.slow  # a Ray Tune experiment of 4 to 6 short trials: the one racing test on Ray
def test_a_racing_grid_study_on_ray_gives_seeds_by_the_race_and_stops_with_it(tiny_study, tmp_path, local_ray):
    from archsearch.search.optuna_driver import open_study
    from archsearch.search.racing import race_over

    run_dir = tmp_path / "run"
    changes = ["parameters.pattern={choice: {short: '[[1],[1,2]]'}}", "parameters.group_width={choice: [8]}",
               "parameters.width={choice: [16, 32]}", "sampler=grid", "trials=20", "seeds={race: {min: 2, max: 3}}"]
    assert run(tiny_study, run_dir, *(f"--set={change}" for change in changes)) == 0
    frame = trials(run_dir)
    seeds = frame.groupby("param.width")["seed"].apply(sorted).to_dict()
    assert all(found[:2] == [0, 1] and found in ([0, 1], [0, 1, 2]) for found in seeds.values()), seeds
    config = load_study(tiny_study, changes)
    assert race_over(open_study(config, RunDirectory(run_dir)), config)  # the storage says the race is over
    assert run(tiny_study, run_dir, *(f"--set={change}" for change in changes)) == 0
    assert len(trials(run_dir)) == len(frame)  # and running again trains nothing more


def test_a_node_without_the_run_directory_stops_the_study_as_bad_input(tiny_study, tmp_path, local_ray):
    run_dir = RunDirectory(tmp_path / "run").create()
    shutil.rmtree(run_dir.root / "specs")  # what a worker sees when the run directory is not on a shared disk
    with pytest.raises(SpecError, match="stopped the study") as caught:
        run_ray(load_study(tiny_study, ["fix={group_width: 8}"]), run_dir)
    assert "not visible" in str(caught.value)
    frame = trials(run_dir.root)
    assert set(frame["state"]) == {"FAIL"} and len(frame) < 4  # no trial started after the first failure ended
    assert frame["fail_reason"].str.startswith("SpecError").all()


def test_an_unreachable_address_is_refused_at_once(tiny_study):
    for address, message in (("127.0.0.1:1", "nothing answers"), ("no-port", "expected host:port")):
        with pytest.raises(SpecError, match=message) as caught:
            check_reachable(address, "--ray-address")
        assert caught.value.path == "--ray-address" and caught.value.value == address


def test_an_interrupted_run_is_restored_and_finishes(tiny_study, tmp_path, local_ray):
    """Ctrl-C on the driver, then the same command: every number once, none trained twice, all finished."""
    run_dir = tmp_path / "run"
    arguments = ["--trials", "4", "--set", "fix={group_width: 8}", "--set", "training.iterations=16"]
    log = tmp_path / "driver.log"
    with open(log, "w") as output:
        driver = subprocess.Popen([sys.executable, "-m", "archsearch.cli.main", "run", str(tiny_study), "--out",
                                   str(run_dir), "--backend", "ray", *arguments], stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + START_SECONDS + 60
        while not _has_complete_trial(run_dir) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
        driver.send_signal(signal.SIGINT)
        driver.wait(timeout=STOP_SECONDS)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    interrupted = trials(run_dir)
    assert 1 <= (interrupted["state"] == "COMPLETE").sum() < 4, log.read_text()[-3000:]
    done = interrupted.loc[interrupted["state"] == "COMPLETE", "number"]
    weights = {number: (run_dir / "weights" / f"trial_{number}.safetensors").stat().st_mtime_ns for number in done}
    assert run(tiny_study, run_dir, *arguments) == 0
    frame = trials(run_dir)
    assert list(frame["number"]) == [0, 1, 2, 3] and set(frame["state"]) == {"COMPLETE"}
    for _, row in interrupted[interrupted["state"] == "COMPLETE"].iterrows():
        assert frame.loc[row["number"], "miou"] == row["miou"]
    for number, modified in weights.items():  # a trial recorded before Ctrl-C is not trained again
        assert (run_dir / "weights" / f"trial_{number}.safetensors").stat().st_mtime_ns == modified
    # Ctrl-C lets Ray Tune save its state, so trials it left running resume under their numbers.
    assert [path.name for path in (run_dir / "ray").iterdir()] == ["tune-001"]
    for number in frame["number"]:
        assert (run_dir / "weights" / f"trial_{number}.safetensors").is_file()


def _has_complete_trial(run_dir: Path) -> bool:
    try:
        return (trials(run_dir)["state"] == "COMPLETE").any()
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoopbackCluster:
    """Two Ray nodes of one CPU each on 127.0.0.1, each a ``ray start --block`` process of its own.

    They are stopped by signalling those two processes (never ``ray stop``, which stops every
    Ray on the machine); each one ends the Ray processes it started.
    """

    def __init__(self, root: Path, environment: dict[str, str]) -> None:
        self.root = root
        self.environment = environment
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []

    def start(self) -> None:
        common = ["--block", "--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
        self._start_node("head", ["--head", f"--port={self.port}", "--include-dashboard=false", *common])
        self._start_node("worker", [f"--address={self.address}", *common])

    def _start_node(self, name: str, arguments: list[str]) -> None:
        temp_dir = self.root / name
        temp_dir.mkdir(parents=True)
        log = self.root / f"{name}.log"
        with open(log, "w") as output:
            self.nodes.append(subprocess.Popen(
                [str(Path(sys.executable).with_name("ray")), "start", f"--temp-dir={temp_dir}", *arguments],
                stdout=output, stderr=subprocess.STDOUT, env=self.environment))
        deadline = time.monotonic() + START_SECONDS
        while "Ray runtime started" not in log.read_text():
            if self.nodes[-1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {name} node did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.terminate()
        for node in self.nodes:
            try:
                node.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()


def test_trials_spread_over_a_two_node_cluster(tiny_study, tmp_path):
    assert shutil.which("ray", path=str(Path(sys.executable).parent)), \
        "Ray is installed but its ray command is not beside this Python"
    environment = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a loopback cluster; no token needed
    # Ray's socket paths must stay under 108 bytes, which pytest's tmp_path can exceed.
    cluster = LoopbackCluster(Path(tempfile.mkdtemp(prefix="archsearch-ray-", dir="/tmp")), environment)
    try:
        try:
            cluster.start()
        except RuntimeError as error:
            pytest.fail(f"Ray is installed but a Ray cluster cannot start here: {error}", pytrace=False)
        run_dir = tmp_path / "run"
        driver = subprocess.run(
            [sys.executable, "-m", "archsearch.cli.main", "run", str(tiny_study), "--out", str(run_dir), "--backend", "ray",
             "--ray-address", cluster.address, "--trials", "2", "--set", "fix={group_width: 8}",
             "--set", f"training.iterations={CLUSTER_TRIAL_ITERATIONS}", "--set", "resources={cpu: 1}"],
            capture_output=True, text=True, env=environment, timeout=300)
        assert driver.returncode == 0, driver.stderr[-3000:]
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
    frame = trials(run_dir)
    assert list(frame["state"]) == ["COMPLETE"] * 2
    assert len({attrs["node_id"] for attrs in user_attrs(run_dir)}) == 2, driver.stderr[-3000:]
    for _, row in frame.iterrows():
        assert (run_dir / "weights" / f"trial_{row['number']}.safetensors").is_file()


def test_asha_settings_come_from_the_pruner_and_bad_ones_name_their_key(tiny_study):
    settings = asha_settings(load_study(tiny_study, ["training.eval_every=1",
                                                     "pruner={name: hyperband, reduction_factor: 3}"]))
    assert (settings.grace_period, settings.reduction_factor, settings.max_t) == (1, 3, 2)
    assert asha_settings(load_study(tiny_study)) is None
    bad = [(["pruner=median"], "pruner.name"),
           (["pruner={name: successive_halving, bootstrap_count: 2}"], "pruner.bootstrap_count"),
           (["pruner={name: hyperband, min_resource: 5}"], "pruner.min_resource"),
           (["pruner={name: hyperband, reduction_factor: 1}"], "pruner.reduction_factor"),
           (["pruner=hyperband", "training={epochs: 1, batch_size: 4}"], "pruner.max_resource")]
    for overrides, path in bad:
        with pytest.raises(SpecError) as caught:
            asha_settings(load_study(tiny_study, overrides))
        assert caught.value.path == path and caught.value.source.endswith("tiny_study.yaml")


def test_a_trial_larger_than_the_machine_is_refused_before_it_waits_forever(tiny_study, local_ray):
    with pytest.raises(SpecError) as caught:
        check_resources_fit(load_study(tiny_study, ["resources={cpu: 64}"]))
    assert caught.value.path == "resources.cpu" and "at most 2" in caught.value.allowed


def test_a_supernet_study_trains_its_supernet_in_a_ray_task_and_ranks_subnets_in_trials(tiny_study, tmp_path,
                                                                                        local_ray, monkeypatch):
    def trained_here(*arguments, **keywords):
        raise AssertionError("the driver trained the supernet: it belongs in a Ray worker")

    monkeypatch.setattr("archsearch.search.trial.train_supernet", trained_here)  # the driver's module only
    run_dir = tmp_path / "run"
    changes = ["fix={group_width: 8}", "trials=2", "objectives=[{metric: supernet_miou, direction: maximize}]",
               "supernet={iterations: 2, calibration_batches: 1, coverage: 2, retrain_top: 1}"]
    assert run(tiny_study, run_dir, *(f"--set={change}" for change in changes)) == 0
    from archsearch.supernet.training import checkpoint_step
    assert checkpoint_step(run_dir / "supernet" / "checkpoint.pt") == 2
    frame = trials(run_dir)
    assert list(frame["state"]) == ["COMPLETE", "COMPLETE"] and frame["miou"].isna().all()
    assert frame["supernet_miou"].between(0.0, 1.0).all()
    retrained = pd.read_csv(run_dir / "supernet" / "retrained.csv")
    best = frame.sort_values(["supernet_miou", "number"], ascending=[False, True]).iloc[0]
    assert list(retrained["arch_hash"]) == [best["arch_hash"]] and retrained["miou"].between(0.0, 1.0).all()
