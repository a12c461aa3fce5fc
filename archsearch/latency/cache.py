"""A SQLite cache of latency results, shared by the parallel workers of a study.

Keyed by (architecture hash, device name, settings key): the same architecture timed
on other hardware or under any other setting is another entry. WAL mode plus a busy
timeout let several processes read and write one file at once; each write is one
transaction, so an entry is either fully there or absent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from torch import nn

from archsearch.latency.devices import device_name
from archsearch.latency.measure import measure_latency
from archsearch.latency.placement import RunTiming, call_here
from archsearch.latency.relative import RelativeLatency
from archsearch.latency.result import LatencyResult
from archsearch.latency.settings import LatencySettings
from archsearch.latency.sqlite_table import SqliteTable

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS latency (
    arch_hash TEXT NOT NULL,
    device_name TEXT NOT NULL,
    settings_key TEXT NOT NULL,
    result_json TEXT NOT NULL,
    measured_at REAL NOT NULL,
    PRIMARY KEY (arch_hash, device_name, settings_key)
)
"""


_CREATE_RELATIVE_TABLE = """
CREATE TABLE IF NOT EXISTS relative_latency (
    arch_hash TEXT NOT NULL,
    reference_hash TEXT NOT NULL,
    device_name TEXT NOT NULL,
    settings_key TEXT NOT NULL,
    relative_json TEXT NOT NULL,
    measured_at REAL NOT NULL,
    PRIMARY KEY (arch_hash, reference_hash, device_name, settings_key)
)
"""


class LatencyCache(SqliteTable):
    """Latency results stored in one SQLite file, safe for concurrent processes (see SqliteTable)."""

    def __init__(self, path: str | Path, *, timeout_seconds: float = 60.0) -> None:
        super().__init__(path, _CREATE_TABLE, _CREATE_RELATIVE_TABLE, timeout_seconds=timeout_seconds)

    def get(self, arch_hash: str, device_name: str, settings: LatencySettings) -> LatencyResult | None:
        """The stored result for this architecture, device and settings, or None."""
        with closing(self._connect()) as connection:
            row = connection.execute(
                "SELECT result_json FROM latency WHERE arch_hash = ? AND device_name = ? AND settings_key = ?",
                (arch_hash, device_name, settings.key())).fetchone()
        if row is None:
            return None
        return LatencyResult.from_dict(json.loads(row[0]), source=f"latency cache {self.path}")

    def results(self, arch_hash: str) -> list[LatencyResult]:
        """Every stored result for this architecture, on any device and under any settings, oldest first."""
        with closing(self._connect()) as connection:
            rows = connection.execute("SELECT result_json FROM latency WHERE arch_hash = ? ORDER BY measured_at",
                                      (arch_hash,)).fetchall()
        return [LatencyResult.from_dict(json.loads(row[0]), source=f"latency cache {self.path}") for row in rows]

    def put(self, arch_hash: str, result: LatencyResult) -> None:
        """Store ``result`` under its device and settings, replacing an older entry."""
        with self._write_transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO latency "
                "(arch_hash, device_name, settings_key, result_json, measured_at) VALUES (?, ?, ?, ?, ?)",
                (arch_hash, result.device_name, result.settings.key(),
                 json.dumps(result.to_dict(), sort_keys=True), time.time()))


    def get_relative(self, arch_hash: str, reference_hash: str, device_name: str,
                     settings: LatencySettings) -> RelativeLatency | None:
        """The stored timing of this architecture against this reference, device and settings, or None."""
        with closing(self._connect()) as connection:
            row = connection.execute(
                "SELECT relative_json FROM relative_latency WHERE arch_hash = ? AND reference_hash = ? "
                "AND device_name = ? AND settings_key = ?",
                (arch_hash, reference_hash, device_name, settings.key())).fetchone()
        if row is None:
            return None
        return RelativeLatency.from_dict(json.loads(row[0]), source=f"latency cache {self.path}")

    def put_relative(self, arch_hash: str, reference_hash: str, measurement: RelativeLatency) -> None:
        """Store a relative timing, replacing an older one of the same pair, device and settings."""
        with self._write_transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO relative_latency (arch_hash, reference_hash, device_name, settings_key, "
                "relative_json, measured_at) VALUES (?, ?, ?, ?, ?, ?)",
                (arch_hash, reference_hash, measurement.device_name, measurement.settings.key(),
                 json.dumps(measurement.to_dict(), sort_keys=True), time.time()))


def cached_latency(cache: LatencyCache, arch_hash: str, model_factory: Callable[[], nn.Module],
                   settings: LatencySettings, *, device: str | None = None,
                   run: RunTiming = call_here) -> tuple[LatencyResult, bool]:
    """Return (result, True) from the cache, or build, time and store it: (result, False).

    ``model_factory`` builds the deploy-form model and is called only on a miss, so a
    cached architecture costs neither construction nor timing. The timing is called through
    ``run`` (see latency.placement), on the device named ``device`` (by default this machine's).
    """
    cached = cache.get(arch_hash, device or device_name(settings), settings)
    if cached is not None:
        return cached, True
    result = run(measure_latency, model_factory(), settings)
    cache.put(arch_hash, result)
    return result, False
