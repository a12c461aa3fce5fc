"""Latency of deploy-form models on a target device, and a cache of measurements.

``measure_latency`` times one model under ``LatencySettings`` and returns a
``LatencyResult`` (median and IQR, never a mean); ``LatencyCache`` and
``cached_latency`` keep results per architecture hash, device and settings, so the
same architecture is timed once per setup.
"""

from archsearch.latency.cache import LatencyCache, cached_latency
from archsearch.latency.devices import device_name
from archsearch.latency.measure import measure_latency
from archsearch.latency.result import LatencyResult
from archsearch.latency.settings import LatencySettings
from archsearch.latency.statistics import TimingSummary, summarize_timings

__all__ = [
    "LatencyCache",
    "LatencyResult",
    "LatencySettings",
    "TimingSummary",
    "cached_latency",
    "device_name",
    "measure_latency",
    "summarize_timings",
]
