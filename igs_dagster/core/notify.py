"""Tell the user when work is done, through Apprise (ntfy, Telegram, Slack, e-mail, webhooks...).

`Notifier.send(key, ...)` sends each event once: the key is claimed in a small ledger in the
data folder (SQLite, `Settings.notify_db`) before sending, so a re-evaluated sensor tick, a
second sensor or a restarted daemon finds it there and sends nothing. A failing service never
raises: each try is bounded by `timeout_s`, it is retried `retries` times, then the failure is
recorded and logged; after a failure the service is skipped for `COOL_OFF_S`, so a dead
service costs one bounded wait, not one per event.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from igs_dagster.core.settings import NotifySettings
from igs_dagster.core.sqlite import open_db
from igs_dagster.core.text import one_line

log = logging.getLogger(__name__)

COOL_OFF_S = 60.0
RETRY_PAUSE_S = 0.5
MAX_BODY = 2000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    key TEXT PRIMARY KEY,         -- one event: run id / loop id / story and outcome
    event TEXT NOT NULL,
    status TEXT NOT NULL,         -- sending | sent | failed
    title TEXT NOT NULL,
    at TEXT NOT NULL,
    error TEXT
);
"""
_down_until: dict[str, float] = {}
_down_lock = threading.Lock()


@dataclass(frozen=True)
class Message:
    event: str  # note.ready | video.failed | loop.story | loop.finished
    title: str
    body: str
    kind: str = "info"  # info | success | warning | failure (Apprise notify types)


def obsidian_link(vault: Path, note: Path) -> str:
    """`obsidian://open?vault=NAME&file=PATH` for a note inside the vault."""
    rel = Path(note).resolve().relative_to(Path(vault).resolve()).as_posix()
    return (f"obsidian://open?vault={quote(Path(vault).name, safe='')}"
            f"&file={quote(rel.removesuffix('.md'), safe='')}")


class Notifier:
    def __init__(self, settings: NotifySettings, ledger: Path):
        self.settings = settings
        self.ledger = Path(ledger)

    @property
    def enabled(self) -> bool:
        return bool(self.settings.urls and self.settings.urls.get_secret_value().strip())

    def wants(self, event: str) -> bool:
        return self.enabled and event in self.settings.events

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return open_db(self.ledger, _SCHEMA)

    def _claim(self, key: str, message: Message) -> bool:
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO sent (key, event, status, title, at) VALUES (?, ?, ?, ?, ?)",
                (key, message.event, "sending", message.title[:300], _now()),
            )
            return cur.rowcount == 1

    def _finish(self, key: str, status: str, error: str | None = None) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE sent SET status=?, error=?, at=? WHERE key=?",
                         (status, error, _now(), key))

    def status(self, key: str) -> str | None:
        if not self.ledger.exists():
            return None
        with self._connect() as conn:
            row = conn.execute("SELECT status FROM sent WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def send(self, key: str, message: Message) -> str:
        """Send `message` once for `key`: "sent", "failed", "duplicate" or "off" (not wanted).
        Never raises for the service's sake."""
        if not self.wants(message.event):
            return "off"
        if not self._claim(key, message):
            return "duplicate"
        error = self._deliver(message)
        self._finish(key, "failed" if error else "sent", error)
        if error:
            log.warning("notification %s (%s) not delivered: %s", key, message.event, error)
        return "failed" if error else "sent"

    def _deliver(self, message: Message) -> str | None:
        import apprise

        urls = self.settings.urls.get_secret_value() if self.settings.urls else ""
        with _down_lock:
            if _down_until.get(urls, 0) > time.monotonic():
                return "service failed recently; not retried yet"
        client = apprise.Apprise()
        if not client.add(urls):
            return "no valid Apprise URL in IGS_NOTIFY__URLS"
        for server in client:
            server.socket_connect_timeout = self.settings.timeout_s
            server.socket_read_timeout = self.settings.timeout_s
        notify_type = {
            "success": apprise.NotifyType.SUCCESS, "warning": apprise.NotifyType.WARNING,
            "failure": apprise.NotifyType.FAILURE,
        }.get(message.kind, apprise.NotifyType.INFO)
        for attempt in range(self.settings.retries + 1):
            if attempt:
                time.sleep(RETRY_PAUSE_S * attempt)
            try:
                if client.notify(title=message.title, body=message.body[:MAX_BODY],
                                 notify_type=notify_type):
                    return None
            except Exception as err:  # noqa: BLE001 - a plug-in's bug must not reach a sensor
                log.info("notification try %d raised: %s", attempt + 1, one_line(err, 200))
        with _down_lock:
            _down_until[urls] = time.monotonic() + COOL_OFF_S
        return f"not delivered after {self.settings.retries + 1} tries"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
