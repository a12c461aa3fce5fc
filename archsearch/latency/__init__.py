"""Latency of deploy-form models on a target device, and a cache of measurements.

``measure_latency`` times one model under ``LatencySettings`` and returns a
``LatencyResult`` (median and IQR, never a mean); ``measure_relative`` times a model
against a reference in interleaved rounds and returns a ``RelativeLatency`` (their ratio,
which a machine's drift does not move, and its noise band); ``LatencyCache`` and
``cached_latency`` keep results per architecture hash, device and settings, so the
same architecture is timed once per setup.

Names are loaded on first use, so that reading a study's latency section (``LatencySettings``)
imports no torch.
"""

from archsearch.lazy import lazy_exports

_EXPORTS = {
    "LatencyCache": "archsearch.latency.cache",
    "cached_latency": "archsearch.latency.cache",
    "device_name": "archsearch.latency.devices",
    "measure_latency": "archsearch.latency.measure",
    "RelativeLatency": "archsearch.latency.relative",
    "measure_relative": "archsearch.latency.relative",
    "LatencyResult": "archsearch.latency.result",
    "LatencySettings": "archsearch.latency.settings",
    "TimingSummary": "archsearch.latency.statistics",
    "summarize_timings": "archsearch.latency.statistics",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
