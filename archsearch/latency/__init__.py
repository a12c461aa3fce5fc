"""Latency of deploy-form models on a target device, and a cache of measurements.

``measure_latency`` times one model under ``LatencySettings`` and returns a
``LatencyResult`` (median and IQR, never a mean); ``measure_relative`` times a model
against a reference in interleaved rounds and returns a ``RelativeLatency`` (their ratio,
which a machine's drift does not move, and its noise band); ``LatencyCache`` and
``cached_latency`` keep results per architecture hash, device and settings, so the
same architecture is timed once per setup.
"""

from archsearch.latency.cache import LatencyCache, cached_latency
from archsearch.latency.devices import device_name
from archsearch.latency.measure import measure_latency
from archsearch.latency.relative import RelativeLatency, measure_relative
from archsearch.latency.result import LatencyResult
from archsearch.latency.settings import LatencySettings
from archsearch.latency.statistics import TimingSummary, summarize_timings

__all__ = [
    "LatencyCache",
    "LatencyResult",
    "LatencySettings",
    "RelativeLatency",
    "TimingSummary",
    "cached_latency",
    "device_name",
    "measure_latency",
    "measure_relative",
    "summarize_timings",
]
