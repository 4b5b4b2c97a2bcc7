"""The durable inbox: events and known sources in one SQLite file in the data folder.

`igs send` and the HTTP API append here whether or not Dagster is running; sensors read
everything after their cursor (the last event id they handled), so each event is handled
once even if the daemon restarts mid-batch. `sources` maps a partition key to where its
media comes from, so any later run of that partition (UI, backfill) knows what to fetch.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from igs_dagster.core.events import Event, parse_event
from igs_dagster.core.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    key TEXT,                    -- partition key decided at intake (NULL if none)
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,          -- youtube | url | file | text
    location TEXT NOT NULL,      -- URL, absolute file path, or stored text file path
    label TEXT NOT NULL,         -- youtube, web, podcast, manual, meeting, ...
    title TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS retries (
    event_id INTEGER PRIMARY KEY, -- the queued copy that asks for a new run
    key TEXT NOT NULL,
    n INTEGER NOT NULL            -- 1, 2, ... per key: the run key `ingest:<key>:retry-<n>`
);
"""


@dataclass(frozen=True)
class QueuedEvent:
    id: int
    key: str | None
    event: Event
    created_at: str


@dataclass(frozen=True)
class Source:
    key: str
    kind: str
    location: str
    label: str
    title: str | None


@dataclass(frozen=True)
class Accepted:
    """What an intake (the router in intake.py, video/intake.py, loop/intake.py) answers for an
    event it took: the inbox row, the partition or loop key, one line for the user."""

    event_id: int | None  # None: handled at once (system.log)
    name: str
    key: str | None
    message: str
    known: bool = False  # the key had been queued before: the sensor starts no second run

    def to_json(self) -> dict:
        return {"event_id": self.event_id, "name": self.name, "key": self.key,
                "message": self.message, "known": self.known}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class EventQueue:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return open_db(self.path, _SCHEMA)

    def put(self, event: Event, *, source: Source | None = None, key: str | None = None) -> int:
        """Append `event` (and register its source) in one transaction; return its id."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if source is not None:
                    self._upsert_source(conn, source)
                cur = conn.execute(
                    "INSERT INTO events (name, key, data, created_at) VALUES (?, ?, ?, ?)",
                    (event.name, key, event.data.model_dump_json(), _now()),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(cur.lastrowid)

    def put_many(self, items: list[tuple[Event, Source | None, str | None]]) -> list[int]:
        """Append (event, source, key) items in one transaction (a playlist, a feed poll);
        return their ids in order."""
        if not items:
            return []
        ids: list[int] = []
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = _now()
                for event, source, key in items:
                    if source is not None:
                        self._upsert_source(conn, source)
                    cur = conn.execute(
                        "INSERT INTO events (name, key, data, created_at) VALUES (?, ?, ?, ?)",
                        (event.name, key, event.data.model_dump_json(), now),
                    )
                    ids.append(int(cur.lastrowid))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return ids

    def requeue(self, key: str, names: tuple[str, ...]) -> tuple[int, int] | None:
        """Queue again the last event of `key` (one of `names`) as retry number n: the sensor
        gives it a run key of its own (a run key is deduplicated forever). Return (event id, n),
        or None if `key` was never queued with one of those names."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    f"SELECT name, data FROM events WHERE key = ? AND name IN ({','.join('?' * len(names))}) "
                    "ORDER BY id DESC LIMIT 1", (key, *names),
                ).fetchone()
                if row is None:
                    conn.execute("ROLLBACK")
                    return None
                n = 1 + int(conn.execute(
                    "SELECT COALESCE(MAX(n), 0) FROM retries WHERE key = ?", (key,)).fetchone()[0])
                cur = conn.execute(
                    "INSERT INTO events (name, key, data, created_at) VALUES (?, ?, ?, ?)",
                    (row[0], key, row[1], _now()),
                )
                conn.execute("INSERT INTO retries (event_id, key, n) VALUES (?, ?, ?)",
                             (cur.lastrowid, key, n))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(cur.lastrowid), n

    def retry_numbers(self, event_ids: list[int]) -> dict[int, int]:
        """event id -> retry number, for the events among `event_ids` that are retries."""
        if not event_ids:
            return {}
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT event_id, n FROM retries WHERE event_id BETWEEN ? AND ?",
                (min(event_ids), max(event_ids)),
            ).fetchall()
        return {int(i): int(n) for i, n in rows}

    def after(self, cursor: int, limit: int = 1000, names: tuple[str, ...] | None = None) -> list[QueuedEvent]:
        """Events with id > cursor, oldest first (optionally only some names)."""
        query = "SELECT id, key, name, data, created_at FROM events WHERE id > ?"
        params: list[object] = [cursor]
        if names:
            query += f" AND name IN ({','.join('?' * len(names))})"
            params.extend(names)
        query += " ORDER BY id LIMIT ?"
        params.append(limit)
        with self._connect() as conn:
            rows = conn.execute(query, params).fetchall()
        return [
            QueuedEvent(row[0], row[1], parse_event({"name": row[2], "data": json.loads(row[3])}), row[4])
            for row in rows
        ]

    def last_id(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])

    @staticmethod
    def _upsert_source(conn: sqlite3.Connection, source: Source, replace: bool = False) -> None:
        on_conflict = (
            "DO UPDATE SET kind=excluded.kind, location=excluded.location, "
            "label=excluded.label, title=excluded.title" if replace else "DO NOTHING"
        )
        conn.execute(
            "INSERT INTO sources (key, kind, location, label, title, created_at) "
            f"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) {on_conflict}",
            (source.key, source.kind, source.location, source.label, source.title, _now()),
        )

    def register_source(self, source: Source, *, replace: bool = False) -> None:
        """Remember where a partition's media comes from (`replace` updates a known key)."""
        with self._connect() as conn:
            self._upsert_source(conn, source, replace)

    def known_keys(self, keys: list[str]) -> set[str]:
        """Which of `keys` have a registered source (one connection for a whole playlist)."""
        found: set[str] = set()
        with self._connect() as conn:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                found.update(r[0] for r in conn.execute(
                    f"SELECT key FROM sources WHERE key IN ({','.join('?' * len(chunk))})", chunk))
        return found

    def get_source(self, key: str) -> Source | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT key, kind, location, label, title FROM sources WHERE key = ?", (key,)
            ).fetchone()
        return Source(*row) if row else None
