"""A SQLite table of unit latencies (the latency predictor's lookup table), kept across runs.

Keyed by (unit key, device name, settings key), like the whole-network ``LatencyCache``: a
unit timed on other hardware or under other settings is another entry. Each entry also holds
the unit's output shapes, so a prediction walks a network from the table alone. WAL mode and
one transaction per write let several processes share the file.
"""

from __future__ import annotations

import json
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from archsearch.latency.sqlite_table import SqliteTable
from archsearch.latency.units import Shape

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS unit_latency (
    unit_key TEXT NOT NULL,
    device_name TEXT NOT NULL,
    settings_key TEXT NOT NULL,
    median_ms REAL NOT NULL,
    iqr_ms REAL NOT NULL,
    repeats INTEGER NOT NULL,
    output_shapes TEXT NOT NULL,
    measured_at REAL NOT NULL,
    PRIMARY KEY (unit_key, device_name, settings_key)
)
"""


_CREATE_CALIBRATION = """
CREATE TABLE IF NOT EXISTS calibration (
    arch_hash TEXT NOT NULL,
    device_name TEXT NOT NULL,
    settings_key TEXT NOT NULL,
    predicted_ms REAL NOT NULL,
    measured_ms REAL NOT NULL,
    measured_at REAL NOT NULL,
    PRIMARY KEY (arch_hash, device_name, settings_key)
)
"""


@dataclass(frozen=True)
class UnitTiming:
    """One unit's measured latency (ms) and the shapes of its outputs."""

    median_ms: float
    iqr_ms: float
    repeats: int
    output_shapes: tuple[Shape, ...]


class UnitLatencyTable(SqliteTable):
    """Unit timings per (unit, device, settings), in one SQLite file on a local disk (see SqliteTable)."""

    def __init__(self, path: str | Path, *, timeout_seconds: float = 60.0) -> None:
        super().__init__(path, _CREATE_TABLE, timeout_seconds=timeout_seconds)

    def get(self, unit_key: str, device_name: str, settings_key: str) -> UnitTiming | None:
        """The stored timing, or None if this unit was never timed on this device under these settings."""
        with closing(self._connect()) as connection:
            row = connection.execute(
                "SELECT median_ms, iqr_ms, repeats, output_shapes FROM unit_latency "
                "WHERE unit_key = ? AND device_name = ? AND settings_key = ?",
                (unit_key, device_name, settings_key)).fetchone()
        if row is None:
            return None
        shapes = tuple(tuple(shape) for shape in json.loads(row[3]))
        return UnitTiming(median_ms=float(row[0]), iqr_ms=float(row[1]), repeats=int(row[2]), output_shapes=shapes)

    def put(self, unit_key: str, device_name: str, settings_key: str, timing: UnitTiming) -> None:
        """Store one timing, replacing an older one of the same unit, device and settings."""
        with self._write_transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO unit_latency (unit_key, device_name, settings_key, median_ms, iqr_ms, "
                "repeats, output_shapes, measured_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (unit_key, device_name, settings_key, timing.median_ms, timing.iqr_ms, timing.repeats,
                 json.dumps([list(shape) for shape in timing.output_shapes]), time.time()))

    def __len__(self) -> int:
        with closing(self._connect()) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM unit_latency").fetchone()[0])


class CalibrationTable(SqliteTable):
    """Measured networks against their sums of units, per device and settings.

    Kept with a study (in its run's latency.db) rather than with the unit table: how far a sum
    of units is off depends on the kind of network as well as on the device, and one study's
    networks come from one space.
    """

    def __init__(self, path: str | Path, *, timeout_seconds: float = 60.0) -> None:
        super().__init__(path, _CREATE_CALIBRATION, timeout_seconds=timeout_seconds)

    def add(self, arch_hash: str, device_name: str, settings_key: str, predicted_ms: float,
                        measured_ms: float) -> None:
        """Keep one network's sum of unit latencies next to its measured latency (the newest pair per network)."""
        with self._write_transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO calibration (arch_hash, device_name, settings_key, predicted_ms, measured_ms, "
                "measured_at) VALUES (?, ?, ?, ?, ?, ?)",
                (arch_hash, device_name, settings_key, predicted_ms, measured_ms, time.time()))

    def ratios(self, device_name: str, settings_key: str) -> list[float]:
        """measured / predicted of every network calibrated on this device under these settings."""
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT measured_ms / predicted_ms FROM calibration WHERE device_name = ? AND settings_key = ? "
                "AND predicted_ms > 0", (device_name, settings_key)).fetchall()
        return [float(row[0]) for row in rows]
