"""One table in a SQLite file that several processes share: WAL mode, a busy timeout, explicit transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from archsearch.io import create_shareable_file


class SqliteTable:
    """Opens a connection per call, so an instance can be handed to worker processes.

    The file must be on a local disk (WAL does not work over NFS). ``create_sql`` makes the
    tables the file lacks, one statement each.
    """

    def __init__(self, path: str | Path, *create_sql: str, timeout_seconds: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout_seconds = timeout_seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create_shareable_file(self.path)
        with closing(self._connect()) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
        with self._write_transaction() as connection:
            for statement in create_sql:
                connection.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are begun explicitly in _write_transaction.
        return sqlite3.connect(self.path, timeout=self.timeout_seconds, isolation_level=None)

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the write lock from the start (BEGIN IMMEDIATE), so a busy file waits, not fails."""
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
