"""Time a study's points against its reference network: one call per point, cached, decided near the budget."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from torch import nn

from archsearch.arch.build import build, resolve_spec
from archsearch.arch.deploy import deploy
from archsearch.arch.spec import ArchSpec
from archsearch.latency.budget import RatioDecision, decide_ratio
from archsearch.latency.cache import LatencyCache
from archsearch.latency.devices import device_name
from archsearch.latency.placement import RunTiming, call_here
from archsearch.latency.relative import RelativeLatency, measure_relative
from archsearch.latency.settings import LatencySettings


def reference_label(reference: str | ArchSpec) -> str:
    """How a reference is named in results: the preset name or file as written, or the spec's name."""
    return reference if isinstance(reference, str) else reference.name


class ReferenceTiming:
    """Times candidates against ``reference`` (a preset name, a spec file, or a spec) under ``settings``.

    The reference is built once (deploy form, ``num_classes`` outputs) and timed again with every
    candidate, in the same interleaved rounds, so each ratio sees one state of the machine.
    Results are kept in ``cache`` per (architecture, reference, device, settings). The pair is timed
    through ``run`` (see latency.placement) on the device named ``device`` (by default this machine's).
    """

    def __init__(self, reference: str | ArchSpec, settings: LatencySettings, cache: LatencyCache, *,
                 num_classes: int, maximum: float | None,
                 timer: Callable[[nn.Module, nn.Module], RelativeLatency] | None = None,
                 run: RunTiming = call_here, device: str | None = None) -> None:
        self.spec = resolve_spec(reference)
        self.name = reference_label(reference)
        self.settings = settings
        self.cache = cache
        self.num_classes = num_classes
        self.maximum = maximum
        self.device = device
        self.timer = timer or (lambda candidate, reference_model: run(
            measure_relative, candidate, reference_model, settings, reference_name=self.name))

    @cached_property
    def model(self) -> nn.Module:
        return deploy(build(self.spec, num_classes=self.num_classes))

    def decide(self, arch_hash: str, candidate_factory: Callable[[], nn.Module]) -> tuple[RatioDecision, bool]:
        """(the decision, whether its first timing came from the cache) for one architecture.

        Without a maximum the ratio is measured and nothing is re-timed (``maximum`` inf).
        """
        device = self.device or device_name(self.settings)
        cached = self.cache.get_relative(arch_hash, self.spec.arch_hash, device, self.settings)
        candidate: nn.Module | None = None

        def time_pair() -> RelativeLatency:
            nonlocal candidate
            if candidate is None:
                candidate = candidate_factory()
            return self.timer(candidate, self.model)

        maximum = self.maximum if self.maximum is not None else float("inf")
        decision = decide_ratio(time_pair, maximum, first=cached)
        if cached is None or decision.retimes:
            self.cache.put_relative(arch_hash, self.spec.arch_hash, decision.measurement)
        return decision, cached is not None
