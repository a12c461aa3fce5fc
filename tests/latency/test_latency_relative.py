"""Relative latency: the ratio from interleaved rounds, its noise band, re-timings pooled, storage."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from archsearch.errors import SpecError
from archsearch.latency import LatencySettings
from archsearch.latency.protocol import ROUNDS, ratio_and_noise
from archsearch.latency.relative import RelativeLatency, measure_relative

SETTINGS = LatencySettings(input_size=(16, 24), warmup_seconds=0.0, min_warmup_iterations=1,
                           time_budget_seconds=0.0, min_repeats=ROUNDS, max_repeats=ROUNDS)


def relative(candidate_rounds, reference_rounds) -> RelativeLatency:
    return RelativeLatency(candidate_rounds=tuple(map(tuple, candidate_rounds)),
                           reference_rounds=tuple(map(tuple, reference_rounds)), device_name="test CPU",
                           settings=SETTINGS, backend="eager", reference_name="ref")


def test_the_ratio_is_the_median_of_per_round_ratios() -> None:
    # Round medians: candidate 5, 6, 30 (a burst of load in round 3); reference 10, 10, 10.
    measured = relative([[4, 5, 6], [6, 6, 6], [30, 30, 31]], [[10, 10, 10], [9, 10, 11], [10, 10, 10]])
    assert measured.round_ratios == (0.5, 0.6, 3.0)
    assert measured.ratio == 0.6  # the burst of round 3 does not move it
    q1, q3 = 0.55, 1.8  # numpy's linear interpolation over 0.5, 0.6, 3.0
    standard_error = 1.2533 * (q3 - q1) / 1.349 / 3 ** 0.5  # of a median of 3, from the IQR
    assert measured.noise == pytest.approx(2 * standard_error / 0.6, rel=1e-4)
    assert measured.candidate.median_ms == 6.0 and measured.candidate.repeats == 9
    assert measured.reference.median_ms == 10.0


def test_a_machine_that_slows_down_moves_the_milliseconds_but_not_the_ratio() -> None:
    quiet = relative([[5.0]] * 4, [[10.0]] * 4)
    busy = relative([[11.0], [10.0], [9.0], [10.0]], [[22.0], [20.0], [18.0], [20.0]])
    assert busy.candidate.median_ms == 2 * quiet.candidate.median_ms
    assert busy.ratio == quiet.ratio == 0.5 and busy.noise == 0.0


def test_pooling_a_retiming_keeps_every_round_and_narrows_the_band() -> None:
    first = relative([[5.0], [6.0]], [[10.0], [10.0]])
    again = relative([[7.0], [8.0]], [[10.0], [10.0]])
    pooled = first.pooled(again)
    assert pooled.round_ratios == (0.5, 0.6, 0.7, 0.8)
    assert pooled.ratio == pytest.approx(0.65)
    assert pooled.candidate.repeats == 4
    four = relative([[5.0], [5.5], [6.0], [6.5]], [[10.0]] * 4)
    same_again = four.pooled(four)  # the same spread over twice the rounds
    assert same_again.ratio == four.ratio and same_again.noise == pytest.approx(four.noise / 2 ** 0.5)


def test_stored_and_read_back_equal() -> None:
    measured = relative([[4.0, 5.0], [6.0]], [[10.0], [9.0, 11.0]])
    assert RelativeLatency.from_dict(measured.to_dict(), source="test") == measured
    with pytest.raises(SpecError, match="not a stored relative latency"):
        RelativeLatency.from_dict({"candidate_rounds": []}, source="test")


def test_rounds_must_pair_up() -> None:
    with pytest.raises(ValueError):
        relative([[1.0]], [[1.0], [2.0]])
    with pytest.raises(ValueError):
        relative([[]], [[1.0]])


def test_ratio_and_noise_need_rounds() -> None:
    with pytest.raises(ValueError):
        ratio_and_noise([])


def test_measure_relative_times_both_networks_in_every_round() -> None:
    small = nn.Conv2d(3, 4, 3, padding=1)
    large = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1))
    measured = measure_relative(small, large, SETTINGS, reference_name="large")
    assert len(measured.candidate_rounds) == len(measured.reference_rounds) == ROUNDS
    assert all(len(round_) == 1 for round_ in measured.candidate_rounds + measured.reference_rounds)
    assert measured.reference_name == "large" and measured.backend == "eager"
    assert measured.ratio > 0 and measured.settings == SETTINGS
    assert dataclasses.asdict(measured.candidate.settings) == dataclasses.asdict(SETTINGS)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_ratio_is_timed_with_events_in_interleaved_rounds(monkeypatch) -> None:
    """The same relative protocol on the GPU: every iteration bracketed by CUDA events, rounds interleaved."""
    import archsearch.latency.measure as measure_module

    event_timers = []
    real_cuda_event_timer = measure_module.cuda_event_timer

    def counting_cuda_event_timer(step, device):
        event_timers.append(device)
        return real_cuda_event_timer(step, device)

    monkeypatch.setattr(measure_module, "cuda_event_timer", counting_cuda_event_timer)
    small = nn.Conv2d(3, 4, 3, padding=1)
    large = nn.Sequential(nn.Conv2d(3, 256, 3, padding=1), nn.Conv2d(256, 256, 3, padding=1))
    measured = measure_relative(small, large, dataclasses.replace(SETTINGS, device="cuda", input_size=(256, 256)),
                                reference_name="large")
    assert len(event_timers) == 2 and all(device.type == "cuda" for device in event_timers)
    assert len(measured.round_ratios) == ROUNDS
    assert measured.device_name == torch.cuda.get_device_name(0)
    assert 0 < measured.ratio < 1  # one small conv against two wide ones
