"""A candidate's latency relative to a reference network timed in the same rounds.

A machine's speed drifts (a neighbour's load, frequency scaling), and the same network can
time 2x slower an hour later; a ratio to a reference timed alongside, round by round,
cancels most of that. The estimator and the number of rounds are ``protocol``'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from archsearch.errors import SpecError
from archsearch.latency.measure import measure_in_rounds
from archsearch.latency.protocol import ROUNDS, ratio_and_noise
from archsearch.latency.result import LatencyResult
from archsearch.latency.settings import LatencySettings
from archsearch.latency.statistics import summarize_timings


Rounds = tuple[tuple[float, ...], ...]
"""Per-iteration times (ms) of one network, ``[round][iteration]``."""


@dataclass(frozen=True)
class RelativeLatency:
    """A candidate and its reference timed in the same interleaved rounds, on one device under one settings.

    ``ratio`` is the candidate's latency over the reference's and ``noise`` its relative noise
    band, both by ``protocol.ratio_and_noise`` from the per-round ratios. The samples are kept,
    so that a re-timing pools with the first timing exactly.
    """

    candidate_rounds: Rounds
    reference_rounds: Rounds
    device_name: str
    settings: LatencySettings
    backend: str
    reference_name: str

    def __post_init__(self) -> None:
        if len(self.candidate_rounds) != len(self.reference_rounds) or not self.candidate_rounds \
                or not all(self.candidate_rounds) or not all(self.reference_rounds):
            raise ValueError("candidate and reference need the same, non-zero number of non-empty rounds")

    @property
    def round_ratios(self) -> tuple[float, ...]:
        return tuple(summarize_timings(mine).median_ms / summarize_timings(theirs).median_ms
                     for mine, theirs in zip(self.candidate_rounds, self.reference_rounds))

    @property
    def ratio(self) -> float:
        return ratio_and_noise(self.round_ratios)[0]

    @property
    def noise(self) -> float:
        return ratio_and_noise(self.round_ratios)[1]

    @property
    def candidate(self) -> LatencyResult:
        """The candidate's samples over all rounds, summarized (absolute ms)."""
        return self._result(self.candidate_rounds)

    @property
    def reference(self) -> LatencyResult:
        return self._result(self.reference_rounds)

    def pooled(self, again: "RelativeLatency") -> "RelativeLatency":
        """This timing and a re-timing of the same pair as one: all their rounds."""
        return dataclasses.replace(self, candidate_rounds=self.candidate_rounds + again.candidate_rounds,
                                   reference_rounds=self.reference_rounds + again.reference_rounds)

    def _result(self, rounds: Rounds) -> LatencyResult:
        samples = [value for round_ in rounds for value in round_]
        return LatencyResult.from_summary(summarize_timings(samples), device_name=self.device_name,
                                          settings=self.settings, backend=self.backend)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["settings"] = self.settings.to_dict()
        data["candidate_rounds"] = [list(round_) for round_ in self.candidate_rounds]
        data["reference_rounds"] = [list(round_) for round_ in self.reference_rounds]
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str) -> "RelativeLatency":
        names = [field.name for field in dataclasses.fields(cls)]
        if not isinstance(data, Mapping) or sorted(data) != sorted(names):
            raise SpecError("not a stored relative latency", value=data,
                            allowed=f"a mapping with keys {', '.join(names)}", source=source)
        fields = dict(data)
        fields["settings"] = LatencySettings.from_dict(data["settings"], source)
        for name in ("candidate_rounds", "reference_rounds"):
            fields[name] = tuple(tuple(float(value) for value in round_) for round_ in data[name])
        return cls(**fields)


def measure_relative(candidate: nn.Module, reference: nn.Module, settings: LatencySettings, *,
                     reference_name: str) -> RelativeLatency:
    """Time ``candidate`` and ``reference`` (deploy forms) in ``protocol.ROUNDS`` interleaved rounds.

    Each network gets ``settings.time_budget_seconds`` of timing in all, spread over the rounds.
    """
    measured = measure_in_rounds([candidate, reference], settings, ROUNDS)
    candidate_rounds, reference_rounds = (tuple(tuple(round_) for round_ in rounds) for rounds in measured.samples)
    return RelativeLatency(candidate_rounds=candidate_rounds, reference_rounds=reference_rounds,
                           device_name=measured.device_name, settings=settings, backend=measured.backends[0],
                           reference_name=reference_name)
