"""The latency predictor: every unit counted once at its real shapes, the table's reuse, and a real-timer check."""

from __future__ import annotations


import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archsearch import build, deploy
from archsearch.arch.analyze import count_macs, count_parameters
from archsearch.errors import SpecError
from archsearch.latency import LatencyResult, LatencySettings, device_name, measure_latency
from archsearch.latency.predictor import LatencyPredictor
from archsearch.latency.unit_table import CalibrationTable, UnitLatencyTable
from archsearch.space.sampling import FixedSuggester, load_space, sample
from tests.helpers.paths import FIXTURES, SPACES

SETTINGS = LatencySettings(input_size=(32, 64), warmup_seconds=0.0, min_warmup_iterations=1,
                           time_budget_seconds=0.0, min_repeats=3)


@pytest.fixture(autouse=True)
def one_thread():
    """The test machine's cores are shared: two OpenMP threads there can wait on each other for seconds."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_spec():
    return sample(load_space(FIXTURES / "tiny_space.yaml"),
                  FixedSuggester({"width": 32, "pattern": "long", "group_width": 8})).spec


def three_branch_spec():
    """RDRNet-like, narrow and shallow: three branches, fusions, stage input activations, RPPM, an aux head."""
    values = {"width": 8, "stage2_depth": 1, "stage3_depth": 1, "detail_depth": 1, "semantic_depth": 1,
              "branches": 3, "rep_branches": "rdrnet", "head_channels": 2, "context_channels": 64,
              "fusion": "bilateral", "context": "rppm"}
    return sample(load_space(SPACES / "rdrnet.yaml"), FixedSuggester(values)).spec


class CountingTimer:
    """A stand-in for measure_together: 'latency' is MACs plus parameters/1000, so sums can be checked exactly."""

    def __init__(self) -> None:
        self.calls = 0
        self.models = 0

    def __call__(self, models: list[nn.Module], settings: LatencySettings) -> list[LatencyResult]:
        self.calls += 1
        self.models += len(models)
        return [fake_result(cost(model, settings), settings) for model in models]


def cost(model: nn.Module, settings: LatencySettings) -> float:
    images = torch.zeros(settings.batch_size, settings.input_channels, *settings.input_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(images)
    return counter.get_total_flops() / 2 + count_parameters(model) / 1000


def fake_result(median_ms: float, settings: LatencySettings) -> LatencyResult:
    return LatencyResult(median_ms=median_ms, iqr_ms=0.0, q1_ms=median_ms, q3_ms=median_ms, min_ms=median_ms,
                         repeats=1, device_name=device_name(settings), settings=settings, backend="eager")


@pytest.mark.parametrize("make_spec", [three_branch_spec, tiny_spec])
def test_the_units_add_up_to_the_whole_network(tmp_path, make_spec):
    """Branches, fusions, context and an aux head (dropped in deploy); a top-down head that reads feature maps."""
    spec = make_spec()
    predictor = LatencyPredictor(UnitLatencyTable(tmp_path / "units.db"), SETTINGS, measure=CountingTimer())
    prediction = predictor.predict(spec, num_classes=7)
    whole = deploy(build(spec, num_classes=7))
    macs = count_macs(whole, SETTINGS.input_size)
    assert prediction.median_ms == pytest.approx(macs + count_parameters(whole) / 1000, rel=1e-9)
    labels = [label for label, _ in prediction.units]
    assert labels[-1].startswith("tail")
    if make_spec is three_branch_spec:
        assert {"stages[1].fusion", "context", "stages[1].input_activation[1]"} <= set(labels)


def test_a_second_prediction_measures_nothing(tmp_path):
    timer = CountingTimer()
    spec = tiny_spec()
    first = LatencyPredictor(UnitLatencyTable(tmp_path / "units.db"), SETTINGS, measure=timer).predict(spec)
    assert first.timed_units == timer.models == len(first.units) and timer.calls == 1  # all units together

    def no_timing(models, settings):
        raise AssertionError("a unit in the table was timed again")

    again = LatencyPredictor(UnitLatencyTable(tmp_path / "units.db"), SETTINGS, measure=no_timing).predict(spec)
    assert again.median_ms == first.median_ms and again.timed_units == 0 and again.units == first.units


def test_other_settings_or_shapes_are_other_entries(tmp_path):
    table = UnitLatencyTable(tmp_path / "units.db")
    timer = CountingTimer()
    spec = tiny_spec()
    LatencyPredictor(table, SETTINGS, measure=timer).predict(spec)
    entries = len(table)
    # The image size changes every unit's shapes; the batch size is part of every unit's settings.
    for changed in (LatencySettings(**{**SETTINGS.to_dict(), "input_size": (64, 64)}),
                    LatencySettings(**{**SETTINGS.to_dict(), "batch_size": 2})):
        prediction = LatencyPredictor(table, changed, measure=timer).predict(spec)
        assert prediction.timed_units == entries
    assert len(table) == 3 * entries
    # The class count changes the tail only.
    assert LatencyPredictor(table, SETTINGS, measure=timer).predict(spec, num_classes=3).timed_units == 1


def test_measured_networks_calibrate_later_predictions(tmp_path):
    """The sum of units times the median measured / sum ratio, once enough networks on this device are known."""
    table, calibration = UnitLatencyTable(tmp_path / "units.db"), CalibrationTable(tmp_path / "run.db")
    predictor = LatencyPredictor(table, SETTINGS, calibration=calibration, measure=CountingTimer())
    spec = tiny_spec()
    uncalibrated = predictor.predict(spec)
    assert uncalibrated.calibration == 1.0 and uncalibrated.median_ms == uncalibrated.sum_ms
    for index, ratio in enumerate((1.2, 1.3, 2.0)):
        assert predictor.predict(spec).calibration == 1.0  # fewer than three networks: the sum stands
        predictor.calibrate(f"network-{index}", uncalibrated, uncalibrated.sum_ms * ratio)
    calibrated = predictor.predict(spec)
    assert calibrated.calibration == pytest.approx(1.3)
    assert calibrated.median_ms == pytest.approx(1.3 * uncalibrated.sum_ms) and calibrated.sum_ms == uncalibrated.sum_ms
    # Calibration belongs to its settings: another image size starts uncalibrated.
    other = LatencySettings(**{**SETTINGS.to_dict(), "input_size": (64, 64)})
    assert LatencyPredictor(table, other, calibration=calibration,
                            measure=CountingTimer()).predict(spec).calibration == 1.0
    assert LatencyPredictor(table, SETTINGS, measure=CountingTimer()).predict(spec).calibration == 1.0  # no table


def test_only_the_eager_backend_is_predicted(tmp_path):
    with pytest.raises(SpecError, match=r"backend: the latency predictor .*\(got 'onnxruntime'\)"):
        LatencyPredictor(UnitLatencyTable(tmp_path / "units.db"),
                         LatencySettings(backend="onnxruntime"))


def test_a_real_prediction_is_near_a_real_measurement(tmp_path):
    """Units timed for real add up to the order of the whole network's time.

    The bounds are wide and taken from the best and the upper-quartile runs, because a busy test
    machine slows some runs severalfold; benchmarks/latency_predictor.py measures the accuracy.
    """
    spec = tiny_spec()
    settings = LatencySettings(input_size=(32, 64), warmup_seconds=0.05, time_budget_seconds=0.1, min_repeats=20)
    prediction = LatencyPredictor(UnitLatencyTable(tmp_path / "units.db"), settings).predict(spec)
    measured = measure_latency(deploy(build(spec)), settings)
    assert prediction.timed_units == len(prediction.units) and all(ms > 0 for _, ms in prediction.units)
    assert measured.min_ms / 5 < prediction.median_ms < measured.q3_ms * 5


def test_several_networks_share_one_timing_of_their_missing_units(tmp_path):
    """predict_many times the units all networks lack in one go, each once, and sums as predict does."""
    timer = CountingTimer()
    specs = [tiny_spec(), three_branch_spec(), tiny_spec()]
    table = UnitLatencyTable(tmp_path / "together.db")
    together = LatencyPredictor(table, SETTINGS, measure=timer).predict_many(specs)
    assert timer.calls == 1 and timer.models == len(table)
    assert together[0].units == together[2].units and together[0].timed_units == together[2].timed_units > 0
    alone = [LatencyPredictor(UnitLatencyTable(tmp_path / f"alone-{index}.db"), SETTINGS,
                              measure=CountingTimer()).predict(spec) for index, spec in enumerate(specs)]
    assert [prediction.sum_ms for prediction in together] == pytest.approx([prediction.sum_ms for prediction in alone])
