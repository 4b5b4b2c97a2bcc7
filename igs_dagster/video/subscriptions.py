"""Followed feeds (`igs follow`) and their polling, in one SQLite file in the data folder.

Per feed: what to poll, its own interval, the HTTP validators (ETag / Last-Modified) of the
last answer, and the set of entry ids already seen (the feed's cursor). A poll cycle fetches
the due feeds concurrently, queues the unseen entries through the inbox and then records
them as seen. If the process dies between the two, the next poll finds those entries unseen
again, but their keys are already known to the inbox, so nothing is queued twice and nothing
is missed.
"""

from __future__ import annotations

import contextvars
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.inbox import EventQueue
from igs_dagster.core.settings import YtdlpSettings
from igs_dagster.core.sqlite import open_db
from igs_dagster.core.text import one_line
from igs_dagster.video import feeds

DEFAULT_INTERVAL_S = 900
MIN_INTERVAL_S = 5
MAX_BACKOFF_S = 6 * 3600
POLL_WORKERS = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL UNIQUE,      -- what the user followed
    poll_url TEXT NOT NULL,        -- the feed (or playlist) actually polled
    kind TEXT NOT NULL,            -- feed | playlist
    title TEXT,
    interval_s INTEGER NOT NULL,
    etag TEXT,
    modified TEXT,
    next_poll REAL NOT NULL,
    last_poll REAL,
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    uid TEXT NOT NULL,
    PRIMARY KEY (feed_id, uid)
);
CREATE TABLE IF NOT EXISTS queued (at REAL NOT NULL);  -- one row per entry polling queued
"""
HOUR_S = 3600


@dataclass(frozen=True)
class Feed:
    id: int
    url: str
    poll_url: str
    kind: str
    title: str | None
    interval_s: int
    etag: str | None
    modified: str | None
    next_poll: float
    last_poll: float | None
    last_error: str | None
    failures: int
    added_at: str

    def to_json(self) -> dict:
        return {
            "url": self.url, "poll_url": self.poll_url, "kind": self.kind, "title": self.title,
            "interval_s": self.interval_s, "last_poll": _iso(self.last_poll),
            "next_poll": _iso(self.next_poll), "last_error": self.last_error,
        }


def _iso(stamp: float | None) -> str | None:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds") if stamp else None


@dataclass
class PollResult:
    feed: Feed
    status: str  # new | unchanged | not-modified | error
    queued: list[str] = field(default_factory=list)  # keys queued this time
    error: str | None = None
    deferred: int = 0  # new entries left for a later poll by the per-hour cap


class Subscriptions:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return open_db(self.path, _SCHEMA, "synchronous=NORMAL", "foreign_keys=ON")

    def list(self) -> list[Feed]:
        if not self.path.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM feeds ORDER BY id").fetchall()
        return [Feed(*row) for row in rows]

    def get(self, url: str) -> Feed | None:
        if not self.path.exists():
            return None
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM feeds WHERE url = ? OR poll_url = ?", (url, url)
            ).fetchone()
        return Feed(*row) if row else None

    def add(self, url: str, poll_url: str, kind: str, title: str | None, interval_s: int,
            seen: list[str], etag: str | None = None, modified: str | None = None) -> Feed:
        now = time.time()
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    "INSERT INTO feeds (url, poll_url, kind, title, interval_s, etag, modified, "
                    "next_poll, last_poll, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (url, poll_url, kind, title, interval_s, etag, modified, now + interval_s,
                     now, _iso(now)),
                )
                conn.executemany("INSERT OR IGNORE INTO seen (feed_id, uid) VALUES (?, ?)",
                                 [(cur.lastrowid, uid) for uid in seen])
                conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                raise PermanentError(f"already following {url}") from None
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        feed = self.get(url)
        if feed is None:  # removed by another process at once
            raise PermanentError(f"{url} was unfollowed while it was being followed")
        return feed

    def remove(self, url: str) -> Feed:
        feed = self.get(url)
        if feed is None:
            raise PermanentError(f"not following {url} (see `igs following`)")
        with self._connect() as conn:
            conn.execute("DELETE FROM feeds WHERE id = ?", (feed.id,))
        return feed

    def due(self, now: float) -> list[Feed]:
        if not self.path.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM feeds WHERE next_poll <= ? ORDER BY next_poll", (now,)
            ).fetchall()
        return [Feed(*row) for row in rows]

    def seen(self, feed_id: int) -> set[str]:
        with self._connect() as conn:
            return {r[0] for r in conn.execute("SELECT uid FROM seen WHERE feed_id = ?", (feed_id,))}

    def queued_since(self, since: float) -> int:
        """How many entries polling queued after `since` (the per-hour cap's count)."""
        if not self.path.exists():
            return 0
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM queued WHERE at > ?", (since,)).fetchone()[0])

    def record(self, updates: list[tuple[Feed, feeds.FeedPage | None, str | None]], now: float,
               deferred: dict[int, set[str]] | None = None, queued: int = 0) -> None:
        """After a poll cycle, in one transaction: validators, next poll time, errors, seen.
        Entries `deferred` by the per-hour cap stay unseen, and their feed's validators are
        dropped so the next poll reads it in full; `queued` entries count toward the cap."""
        deferred = deferred or {}
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for feed, page, error in updates:
                    if error is not None or page is None:  # the read failed: back off
                        error = error or "nothing was read"
                        failures = feed.failures + 1
                        wait = min(feed.interval_s * 2 ** min(failures - 1, 10), MAX_BACKOFF_S)
                        conn.execute(
                            "UPDATE feeds SET last_poll=?, next_poll=?, last_error=?, failures=? "
                            "WHERE id=?", (now, now + max(wait, feed.interval_s), error, failures, feed.id),
                        )
                        continue
                    later = deferred.get(feed.id, set())
                    conn.execute(
                        "UPDATE feeds SET last_poll=?, next_poll=?, last_error=NULL, failures=0, "
                        "etag=?, modified=?, title=COALESCE(title, ?) WHERE id=?",
                        (now, now + feed.interval_s, None if later else page.etag,
                         None if later else page.modified, page.title, feed.id),
                    )
                    conn.executemany("INSERT OR IGNORE INTO seen (feed_id, uid) VALUES (?, ?)",
                                     [(feed.id, e.uid) for e in page.entries if e.uid not in later])
                conn.executemany("INSERT INTO queued (at) VALUES (?)", [(now,)] * queued)
                conn.execute("DELETE FROM queued WHERE at <= ?", (now - HOUR_S,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


_COLUMNS = ("id, url, poll_url, kind, title, interval_s, etag, modified, next_poll, last_poll, "
            "last_error, failures, added_at")


def read(feed: Feed | None, url: str, kind: str, timeout: float = feeds.FETCH_TIMEOUT_S,
         ytdlp_settings: YtdlpSettings | None = None) -> feeds.FeedPage:
    """One conditional read of a subscription (a feed over HTTP, or a playlist via yt-dlp)."""
    if kind == "playlist":
        return feeds.read_playlist(url, ytdlp_settings=ytdlp_settings)
    return feeds.read_feed(url, feed.etag if feed else None, feed.modified if feed else None, timeout)


def poll_due(store: Subscriptions, queue: EventQueue, data_dir: Path, *, now: float | None = None,
             workers: int = POLL_WORKERS, timeout: float = feeds.FETCH_TIMEOUT_S,
             max_per_hour: int = 0, ytdlp_settings: YtdlpSettings | None = None) -> list[PollResult]:
    """One poll cycle: every due feed read (concurrently), unseen entries queued oldest first,
    then recorded as seen. A feed that fails (HTTP error, garbage) backs off and is retried.
    `max_per_hour` (0: none) caps the entries polling queues in any hour, across all feeds:
    the rest stay unseen and are queued by later polls. The reads run in copies of the
    caller's context: an address fence the caller holds (core/netguard) holds in them too."""
    now = time.time() if now is None else now
    due = store.due(now)
    if not due:
        return []

    def one(feed: Feed) -> tuple[Feed, feeds.FeedPage | None, str | None]:
        try:
            return feed, read(feed, feed.poll_url, feed.kind, timeout, ytdlp_settings), None
        except PermanentError as err:
            return feed, None, one_line(str(err), 300)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(due)))) as pool:
        caller = contextvars.copy_context()
        fetched = list(pool.map(lambda feed: caller.copy().run(one, feed), due))

    allowance = max_per_hour - store.queued_since(now - HOUR_S) if max_per_hour else None
    results: list[PollResult] = []
    deferred: dict[int, set[str]] = {}
    total = 0
    for feed, page, error in fetched:
        if error is not None or page is None:
            results.append(PollResult(feed, "error", error=error or "nothing was read"))
        elif page.not_modified:
            results.append(PollResult(feed, "not-modified"))
        else:
            known = store.seen(feed.id)
            fresh = feeds.newest([e for e in page.entries if e.uid not in known], None)
            if allowance is not None:
                taken, later = _within(fresh, max(0, allowance - total), queue)
                fresh = taken
                if later:
                    deferred[feed.id] = {e.uid for e in later}
            queued = feeds.queue_entries(fresh, queue, data_dir)
            keys = [q.key for q in queued if q.event_id is not None]
            total += len(keys)
            results.append(PollResult(feed, "new" if keys else "unchanged", keys,
                                      deferred=len(deferred.get(feed.id, ()))))
    store.record(fetched, now, deferred, total)
    return results


def _within(entries: list[feeds.Entry], room: int,
            queue: EventQueue) -> tuple[list[feeds.Entry], list[feeds.Entry]]:
    """(entries to queue now, entries for later): `room` new ones, oldest first; entries whose
    key is known already cost nothing and go now (they are only marked seen)."""
    plan = feeds.plan_entries(entries, queue)
    new = {id(q.entry) for q in plan if q.event_id is not None}
    now, later = [], []
    for entry in entries:
        if id(entry) not in new:
            now.append(entry)
        elif room > 0:
            now.append(entry)
            room -= 1
        else:
            later.append(entry)
    return now, later


def follow(store: Subscriptions, queue: EventQueue, data_dir: Path, url: str, *,
           newest: int | None = 3, interval_s: int = DEFAULT_INTERVAL_S) -> tuple[Feed, list[feeds.Queued]]:
    """Subscribe to `url`: read it now, queue its `newest` entries (None = all) and mark every
    entry seen, so later polls queue only what is published after today."""
    url = url.strip()
    if interval_s < MIN_INTERVAL_S:
        raise PermanentError(f"interval must be at least {MIN_INTERVAL_S} s")
    if store.get(url) is not None:
        raise PermanentError(f"already following {url}")
    poll_url, kind = feeds.resolve_follow(url)
    if poll_url != url and store.get(poll_url) is not None:
        raise PermanentError(f"already following {poll_url}")
    page = read(None, poll_url, kind)
    if not page.entries and kind == "feed" and not page.title:
        raise PermanentError(f"{url}: the feed has no entries with audio or video")
    queued = feeds.queue_entries(feeds.newest(page.entries, newest), queue, data_dir)
    feed = store.add(url, poll_url, kind, page.title, interval_s,
                     [e.uid for e in page.entries], page.etag, page.modified)
    return feed, queued
