"""The one way our small SQLite stores (inbox, feeds, notifications) open: autocommit (callers
BEGIN IMMEDIATE for a transaction), WAL so readers never block the writer, a 30 s wait on a
busy database, the schema applied (idempotent CREATE ... IF NOT EXISTS), a private folder and a
0600 file whatever the umask."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from igs_dagster.core.fsutil import private_file


@contextmanager
def open_db(path: Path, schema: str, *pragmas: str) -> Iterator[sqlite3.Connection]:
    """A connection to `path` with `schema` applied; extra `pragmas` like "foreign_keys=ON"."""
    private_file(Path(path))  # 0600 before SQLite opens it: the WAL and SHM files follow it
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(schema)
        yield conn
    finally:
        conn.close()
