"""Train on the cluster, time on the device: ``latency.placement`` on a Ray cluster of three nodes started here.

The head trains (one CPU); ``target`` and ``doomed`` have no CPU and one unit of a resource each, as a
deployment board joined with ``ray start --num-cpus=0 --resources='{"jetson_orin": 1}'`` would. ``doomed``
is removed in the middle of a study; a fourth node is added, removed and replaced by the last test.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from archsearch.cli.main import main
from archsearch.latency.devices import cpu_name
from archsearch.latency.placement import TimingPlacement
from archsearch.space.sampling import FixedSuggester, load_space, sample
from tests.helpers.paths import FIXTURES

ray = pytest.importorskip("ray")
pytest.importorskip("ray.tune")
from ray.cluster_utils import Cluster  # noqa: E402

from archsearch.search.ray.placement import RaySite, timing_worker  # noqa: E402

TIMING = {"warmup_seconds": 0.0, "min_warmup_iterations": 1, "time_budget_seconds": 0.0, "min_repeats": 1,
          "max_repeats": 2}
TIMEOUT_SECONDS = 3
REMOVAL_SECONDS = 240
TIMING_SECONDS = 2.0  # each network of a pair, in the study whose target leaves


@dataclass(frozen=True)
class Nodes:
    cluster: Cluster
    trainer: str  # node ids
    target: str
    doomed: object  # the doomed node's handle, for cluster.remove_node
    doomed_id: str


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """The three nodes, and this process attached as the driver; shut down whatever a test did."""
    with pytest.MonkeyPatch.context() as patch:  # nodes and their workers inherit the environment at start
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        try:
            target = cluster.add_node(num_cpus=0, resources={"target_device": 1})
            doomed = cluster.add_node(num_cpus=0, resources={"doomed_device": 1})
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.WARNING)
            yield Nodes(cluster, cluster.head_node.node_id, target.node_id, doomed, doomed.node_id)
        finally:
            ray.shutdown()
            cluster.shutdown()


def write_study(tmp_path: Path, placement: dict, *, trials: int = 2, screened: bool = True, **timing) -> Path:
    """The tiny study on valid points, timed against a reference, with screening (the predictor times units)."""
    point = sample(load_space(FIXTURES / "tiny_space.yaml"),
                   FixedSuggester({"width": 16, "pattern": "short", "group_width": 8}))
    (tmp_path / "reference.yaml").write_text(point.spec.to_yaml())
    (tmp_path / "tiny_space.yaml").write_text((FIXTURES / "tiny_space.yaml").read_text())
    study = yaml.safe_load((FIXTURES / "tiny_study.yaml").read_text())
    study.update(trials=trials, fix={"group_width": 8}, latency={**TIMING, **timing, "placement": placement},
                 constraints={"latency_ratio": {"max": 100.0, "reference": "reference.yaml"}},
                 screening={"margin": 100.0} if screened else None)
    path = tmp_path / "placed.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def run(study: Path, run_dir: Path) -> int:
    return main(["run", str(study), "--out", str(run_dir), "--backend", "ray"])


@pytest.mark.slow  # a Ray Tune study of two trials on the cluster (about 20 s on two busy cores)
def test_every_timing_runs_on_the_target_node_and_training_on_another(nodes, tmp_path):
    run_dir = tmp_path / "run"
    assert run(write_study(tmp_path, {"resources": {"target_device": 1}}), run_dir) == 0
    trials = pd.read_csv(run_dir / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE", "COMPLETE"]
    assert (trials["latency_node_id"] == nodes.target).all()  # the point and its reference, in the same rounds
    assert (trials["node_id"] == nodes.trainer).all()  # trained where the trial ran
    assert (trials["latency_host"] == socket.gethostname()).all()
    assert (trials["latency_device"] == cpu_name()).all() and trials["latency_ratio"].notna().all()
    assert trials["latency_predicted_ratio"].notna().all()  # the units were timed (there) too
    with sqlite3.connect(run_dir / "latency.db") as connection:  # the cache is keyed by the device that timed
        stored = connection.execute("SELECT arch_hash, device_name FROM relative_latency").fetchall()
    assert sorted(stored) == sorted((arch_hash, cpu_name()) for arch_hash in set(trials["arch_hash"]))


def test_no_node_offering_the_resources_stops_the_run_before_any_trial(nodes, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(write_study(tmp_path, {"resources": {"jetson_orin": 1}}), run_dir) == 2
    message = capsys.readouterr().err
    assert "latency.placement.resources" in message and "{jetson_orin: 1}" in message
    assert "target_device 1" in message and "CPU 1" in message  # what the cluster's nodes offer
    assert pd.read_csv(run_dir / "trials.csv").empty and not list((run_dir / "weights").iterdir())


@pytest.mark.slow  # three trials, two of which wait out the timeout
def test_a_target_that_leaves_fails_its_trial_after_the_timeout_and_the_study_goes_on(nodes, tmp_path):
    """The doomed node is removed while the second trial times (after a first trial completed there)."""
    run_dir = tmp_path / "run"
    study = write_study(tmp_path, {"resources": {"doomed_device": 1}, "timeout_seconds": TIMEOUT_SECONDS},
                        trials=3, screened=False, time_budget_seconds=TIMING_SECONDS,
                        max_repeats=1_000_000)
    removal = threading.Thread(target=_remove_while_timing, args=(nodes, run_dir), daemon=True)
    removal.start()
    started = time.monotonic()
    code = run(study, run_dir)
    removal.join(timeout=REMOVAL_SECONDS)
    trials = pd.read_csv(run_dir / "trials.csv")
    assert code == 0 and len(trials) == 3, trials.to_dict("records")
    assert set(trials["state"]) == {"COMPLETE", "FAIL"}
    assert trials.loc[0, "state"] == "COMPLETE" and trials.loc[0, "latency_node_id"] == nodes.doomed_id
    failed = trials[trials["state"] == "FAIL"]
    for reason in failed["fail_reason"]:
        assert reason.startswith("TargetLost") and "{doomed_device: 1}" in reason
        assert f"{TIMEOUT_SECONDS} s" in reason
    timed = trials[trials["latency_ms"].notna()]
    assert (timed["latency_node_id"] == nodes.doomed_id).all()  # nothing timed anywhere else
    for number in failed["number"]:
        assert not (run_dir / "weights" / f"trial_{number}.safetensors").exists()
    assert time.monotonic() - started >= TIMEOUT_SECONDS * len(failed)


def test_a_target_that_comes_back_within_the_timeout_runs_the_call_it_lost(nodes):
    """The call running when the node left runs again, to its end, on the node that offers the resource next
    (and a call's own error comes back as it was raised there)."""
    placement = TimingPlacement(resources={"returning_device": 1}, timeout_seconds=REMOVAL_SECONDS)
    first = nodes.cluster.add_node(num_cpus=0, resources={"returning_device": 1})
    nodes.cluster.wait_for_nodes()
    outcome = {}
    with timing_worker(placement):
        site = RaySite(placement)
        assert site.call(time.sleep, 0)[1].node_id == first.node_id
        with pytest.raises(ValueError, match="invalid literal"):  # a timing's own error, as if raised here
            site.call(int, "not a number")
        call = threading.Thread(target=lambda: outcome.update(place=site.call(time.sleep, 2)[1]))
        call.start()
        time.sleep(1)  # the call runs on the first node
        nodes.cluster.remove_node(first)
        second = nodes.cluster.add_node(num_cpus=0, resources={"returning_device": 1})
        call.join(timeout=REMOVAL_SECONDS)
    assert outcome["place"].node_id == second.node_id


def _remove_while_timing(nodes: Nodes, run_dir: Path) -> None:
    """Once the first trial has trained (its weights are written), remove the doomed node while the next one times:
    its point's spec is written just before (the sampler draws another point next), its timing takes twice TIMING_SECONDS."""
    deadline = time.monotonic() + REMOVAL_SECONDS
    while not list(run_dir.glob("weights/trial_*.safetensors")):
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)
    specs = len(list(run_dir.glob("specs/*.yaml")))
    while len(list(run_dir.glob("specs/*.yaml"))) == specs and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(TIMING_SECONDS / 2)
    nodes.cluster.remove_node(nodes.doomed)
