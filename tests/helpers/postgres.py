"""A real PostgreSQL server for tests, from the `pgserver` package (PostgreSQL binaries in a wheel).

The server runs from a temporary data directory and listens on a Unix socket only; every
caller gets a database of its own. Where the package, the driver or the server is missing
(or the server cannot start here), the test is skipped with the reason.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_NAMES = itertools.count()


@contextmanager
def postgres_server() -> Iterator[object]:
    """Start a server and stop (and delete) it afterwards; skip the test if that is not possible.

    Its data directory is a fresh one in the system's temporary folder: a short path (the Unix
    socket lives there, and socket paths are limited to about 100 bytes) that a server run as
    another user can reach (pgserver drops root to its own user; pytest's tmp_path is private).
    """
    try:
        import pgserver
        import psycopg  # noqa: F401 - SQLAlchemy's default driver for postgresql:// URLs
    except ImportError as error:
        pytest.skip(f"PostgreSQL tests need the dev extra (pgserver, psycopg): {error}")
    with tempfile.TemporaryDirectory(prefix="archsearch-pg-") as directory:
        try:
            server = pgserver.get_server(Path(directory), cleanup_mode="stop")
        except Exception as error:  # noqa: BLE001 - any reason the server cannot start here is a reason to skip
            pytest.skip(f"a PostgreSQL server cannot start here: {type(error).__name__}: {error}")
        try:
            yield server
        finally:
            server.cleanup()


def new_database(server) -> str:
    """Create an empty database on ``server`` and return its SQLAlchemy URL."""
    name = f"archsearch_{next(_NAMES)}"
    server.psql(f"CREATE DATABASE {name};")
    return server.get_uri(name)
