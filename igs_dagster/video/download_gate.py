"""Polite downloading across runs: a pause for every download from a site that answered "too
many requests", and some time between two download starts from a site that bot-walls.

Each video is its own run (its own process), so yt-dlp's own sleeps can't see the others: its
`sleep_interval` would sleep before every single video and still let parallel runs start
together. The state lives instead in one small JSON file per site under `<data>/download-gate/`,
read and written under a file lock by every run: `paused_until` (set after an HTTP 429, doubled
per further 429 in a row, at most an hour; a success resets the count) and `next_start` (the
earliest time the next download from that site may start).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from filelock import FileLock

from igs_dagster.core import fsutil

MAX_PAUSE_S = 3600.0
WAIT_SLICE_S = 30.0  # a waiting download re-reads the state this often (a pause may grow)
_YOUTUBE_HOSTS = re.compile(r"(^|\.)(youtube\.com|youtu\.be|youtube-nocookie\.com|googlevideo\.com)$")


def site_of(url: str) -> str:
    """`youtube` for every YouTube host, else the URL's host name (lower case)."""
    try:
        host = (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        host = ""
    return "youtube" if _YOUTUBE_HOSTS.search(host) else host or "unknown"


@dataclass
class GateState:
    paused_until: float = 0.0
    reason: str = ""
    strikes: int = 0  # 429s in a row
    next_start: float = 0.0


class DownloadGate:
    """The shared state of downloads from each site, in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, site: str) -> Path:
        return fsutil.inside(self.folder, fsutil.fit_name(site, 100) + ".json")

    def _lock(self, site: str) -> FileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self._path(site)) + ".lock", timeout=60)

    def _read(self, site: str) -> GateState:
        try:
            data = json.loads(self._path(site).read_text("utf-8"))
            return GateState(**{k: data[k] for k in GateState.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError):
            return GateState()

    def _write(self, site: str, state: GateState) -> None:
        fsutil.atomic_write_json(self._path(site), state.__dict__)

    def state(self, site: str) -> GateState:
        return self._read(site)

    def pause(self, site: str, base_s: float, reason: str, at_least_s: float | None = None,
              now: float | None = None) -> float:
        """Pause every download from `site`: `base_s` doubled per earlier 429 in a row (at most
        an hour), or the server's Retry-After when longer. A pause is never shortened. Returns
        the seconds from now until the pause ends."""
        now = time.time() if now is None else now
        with self._lock(site):
            state = self._read(site)
            wait = min(MAX_PAUSE_S, base_s * 2 ** min(state.strikes, 12))
            wait = max(wait, min(MAX_PAUSE_S, at_least_s or 0.0))
            state.strikes += 1
            if now + wait > state.paused_until:
                state.paused_until, state.reason = now + wait, reason
            self._write(site, state)
            return state.paused_until - now

    def succeeded(self, site: str) -> None:
        """A download from `site` worked: the next 429 starts from the base pause again."""
        with self._lock(site):
            state = self._read(site)
            if state.strikes:
                state.strikes = 0
                self._write(site, state)

    def wait_turn(self, site: str, spacing_s: tuple[float, float] = (0.0, 0.0), *,
                  on_wait: Callable[[float, str], None] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until a download from `site` may start (no pause, and `spacing_s` after the
        previous start), then claim the start. Returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock(site):
                state = self._read(site)
                now = time.time()
                if state.paused_until > now:
                    wait, why = state.paused_until - now, f"paused: {state.reason}"
                elif state.next_start > now:
                    wait, why = state.next_start - now, "spacing downloads from this site"
                else:
                    low, high = spacing_s
                    if high > 0:
                        state.next_start = now + random.uniform(low, max(low, high))  # noqa: S311
                        self._write(site, state)
                    return waited
            if on_wait is not None:
                on_wait(wait, why)
            step = min(wait, WAIT_SLICE_S)
            sleep(step)
            waited += step
