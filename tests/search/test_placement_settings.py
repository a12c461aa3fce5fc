"""``latency.placement``: read through the study's schema, in the study's fingerprint, refused where it cannot run,
and every timing of a point sent through the timing site (here a fake one that runs them in this process)."""

from __future__ import annotations

import socket

import pytest

from archsearch.cli.main import main
from archsearch.errors import SpecError
from archsearch.latency import LatencySettings, device_name
from archsearch.latency.placement import LocalSite, TimingPlace, TimingPlacement
from archsearch.latency.point import LatencyBudget, PointTiming
from archsearch.run.preflight import check_before_run
from archsearch.space.sampling import FixedSuggester, load_space, sample
from archsearch.study.config import load_study
from archsearch.study.identity import StudyIdentity
from tests.helpers.paths import FIXTURES

PLACED = "latency={placement: {resources: {jetson_orin: 1}, timeout_seconds: 30}}"
TIMING = LatencySettings(input_size=(32, 64), warmup_seconds=0.0, min_warmup_iterations=1, time_budget_seconds=0.0,
                         min_repeats=1, max_repeats=2)


def test_placement_is_read_beside_the_latency_settings_and_changes_the_fingerprint(tiny_study):
    config = load_study(tiny_study, [PLACED, "latency.dtype=fp32"])
    assert config.placement == TimingPlacement(resources={"jetson_orin": 1.0}, timeout_seconds=30.0)
    assert config.latency == LatencySettings(input_size=(32, 64))  # the settings alone: a timing's cache key
    unplaced = load_study(tiny_study, ["latency={dtype: fp32}"])
    assert unplaced.placement is None
    recipe = StudyIdentity.of(config).recipe
    assert recipe != StudyIdentity.of(unplaced).recipe  # timed on another device: other figures
    assert StudyIdentity.of(load_study(tiny_study, [PLACED, "latency.placement.timeout_seconds=5"])).recipe == recipe
    assert "placement" not in StudyIdentity.of(unplaced).settings  # studies without one keep their fingerprints


@pytest.mark.parametrize(("change", "path", "allowed"), [
    ("latency.placement.resources={}", "latency.placement.resources", "e.g. {jetson_orin: 1}"),
    ("latency.placement.resources={jetson_orin: 0}", "latency.placement.resources.jetson_orin", "> 0"),
    ("latency.placement.resources={memory: 1}", "latency.placement.resources.memory", "CPU, GPU"),
    ("latency.placement.timeout_seconds=-1", "latency.placement.timeout_seconds", "> 0"),
    ("latency.placement.timeout=5", "latency.placement.timeout", "resources, timeout_seconds"),
    ("latency.placment={resources: {x: 1}}", "latency.placment", "placement"),
    ("latency.placement=3", "latency.placement", "resources, timeout_seconds"),
])
def test_a_bad_placement_names_its_key_and_what_is_allowed(tiny_study, change, path, allowed):
    with pytest.raises(SpecError) as caught:
        load_study(tiny_study, [PLACED, change])
    assert caught.value.path == path and allowed in caught.value.allowed and tiny_study.name in caught.value.source


def test_the_optuna_backend_refuses_a_placement_before_a_run_directory(tiny_study, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", str(tiny_study), "--out", str(run_dir), "--set", PLACED]) == 2
    message = capsys.readouterr().err
    assert "latency.placement" in message and "backend: ray" in message and not run_dir.exists()


def test_a_placed_study_leaves_the_timing_threads_to_the_target(tiny_study):
    many = "latency.num_threads=100000"
    check_before_run(load_study(tiny_study, [PLACED, many]), read_data=False)  # the target's CPUs, not these
    with pytest.raises(SpecError, match="latency.num_threads"):
        check_before_run(load_study(tiny_study, ["latency={}", many]), read_data=False)


class FakeBoard:
    """Runs timings in this process as if on a node ``node-7`` of host ``board``, and lists what it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def call(self, function, *args, **kwargs):
        self.ran.append(function.__name__)
        return function(*args, **kwargs), TimingPlace(node_id="node-7", host="board")


def point(width: int):
    return sample(load_space(FIXTURES / "tiny_space.yaml"),
                  FixedSuggester({"width": width, "pattern": "short", "group_width": 8})).spec


def test_every_timing_of_a_point_goes_through_its_site_and_records_the_place(tmp_path):
    from archsearch.arch.build import build
    from archsearch.arch.deploy import deploy

    reference = tmp_path / "reference.yaml"
    reference.write_text(point(32).to_yaml())
    board = FakeBoard()
    budget = LatencyBudget(maximum_ratio=100.0, reference=str(reference), screening_margin=100.0)
    timing = PointTiming(TIMING, budget, tmp_path / "latency.db", num_classes=5, site=board,
                         unit_table_path=tmp_path / "units.db")
    spec = point(16)
    measured = timing.measure(spec, lambda: deploy(build(spec, num_classes=5)))
    # The device's name (the caches' key), the units (screening) and the point with its reference, all there.
    assert board.ran == ["device_name", "_measure_in_rounds", "measure_relative"]
    assert (measured.latency_node_id, measured.latency_host) == ("node-7", "board")
    assert measured.latency_ratio > 0 and measured.latency_predicted_ratio > 0
    again = timing.measure(spec, lambda: deploy(build(spec, num_classes=5)))
    assert again.latency_cached and again.latency_node_id is None and board.ran[3:] == []  # nothing timed again


def test_a_trials_figures_of_the_latency_device_are_taken_there(tiny_study, tmp_path):
    """The point's memory estimate before it is timed and its memory_mb go to the site, as its timings do."""
    from archsearch.run.directory import RunDirectory
    from archsearch.search.trial import TrialRunner

    config = load_study(tiny_study, [f"latency={TIMING.to_dict()}", "constraints={memory_mb: {max: 1000}}"])
    board = FakeBoard()
    runner = TrialRunner(config, RunDirectory(tmp_path / "run").create(), timing_site=board)
    spec = point(16)
    metrics = runner.measure(spec, runner.analyze_point(spec, seed=0))
    assert board.ran == ["compute_metric", "device_name", "check_fits_inference", "measure_latency"]
    assert metrics.computed["memory_mb"] > 0
    assert metrics.latency_node_id == "node-7" and not metrics.infeasible


def test_without_a_placement_timings_run_here():
    (name, place) = LocalSite().call(device_name, TIMING)
    assert name == device_name(TIMING) and place == TimingPlace(node_id=None, host=socket.gethostname())
