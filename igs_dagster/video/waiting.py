"""Videos that are not a failure but not ready: a live stream or premiere that has not ended.

`live_wait` turns what yt-dlp reports (`live_status`, `release_timestamp`, `duration`) into the
time to try again and one line for the user. `WaitingVideos` (one SQLite file in the data
folder) remembers each waiting partition and that time: the `waiting_videos` sensor queues
the video again once it is due, and `igs videos` / `igs send --wait` show it as waiting.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from igs_dagster.core.sqlite import open_db

RECHECK_LIVE_S = 30 * 60  # a stream that is live (or still being processed): look again then
AFTER_START_S = 60 * 60  # an upcoming stream of unknown length: look again an hour after start
AFTER_END_S = 15 * 60  # a premiere of known length: after its end, plus this


def _clock(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def live_wait(info: dict, now: float | None = None) -> tuple[float, str]:
    """(when to try again, epoch seconds; why, one line) for a live or upcoming video."""
    now = time.time() if now is None else now
    status = info.get("live_status") or ("is_live" if info.get("is_live") else "is_upcoming")
    start = info.get("release_timestamp")
    start = float(start) if isinstance(start, int | float) else None
    if status == "is_upcoming" and start is not None and start > now:
        length = info.get("duration")
        after = (float(length) + AFTER_END_S) if isinstance(length, int | float) and length > 0 \
            else AFTER_START_S
        until = start + after
        what = f"the live stream or premiere starts {_clock(start)}"
    elif status == "is_upcoming":
        until = now + RECHECK_LIVE_S
        what = "the live stream or premiere has not started yet" + (
            f" (announced for {_clock(start)})" if start else "")
    elif status == "post_live":
        until, what = now + RECHECK_LIVE_S, "the live stream has ended and is being processed"
    else:
        until, what = now + RECHECK_LIVE_S, "the video is live now"
    return until, f"waiting: {what}; igs tries again after it ends (from {_clock(until)})"


@dataclass(frozen=True)
class Waiting:
    key: str
    until: float
    reason: str

    def to_json(self) -> dict:
        return {"key": self.key, "until": _clock(self.until), "reason": self.reason}


class WaitingVideos:
    """partition key -> (when to try again, why), in `<data>/waiting.sqlite3`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return open_db(self.path, "CREATE TABLE IF NOT EXISTS waiting "
                                  "(key TEXT PRIMARY KEY, until REAL NOT NULL, reason TEXT NOT NULL);")

    def put(self, key: str, until: float, reason: str) -> None:
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO waiting (key, until, reason) VALUES (?, ?, ?)",
                         (key, until, reason))

    def get(self, key: str) -> Waiting | None:
        if not self.path.exists():
            return None
        with self._connect() as conn:
            row = conn.execute("SELECT key, until, reason FROM waiting WHERE key = ?",
                               (key,)).fetchone()
        return Waiting(*row) if row else None

    def remove(self, key: str) -> None:
        if self.path.exists():
            with self._connect() as conn:
                conn.execute("DELETE FROM waiting WHERE key = ?", (key,))

    def due(self, now: float | None = None) -> list[Waiting]:
        if not self.path.exists():
            return []
        now = time.time() if now is None else now
        with self._connect() as conn:
            rows = conn.execute("SELECT key, until, reason FROM waiting WHERE until <= ? "
                                "ORDER BY until", (now,)).fetchall()
        return [Waiting(*row) for row in rows]
