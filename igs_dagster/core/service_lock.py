"""One service (`igs dev`) per data folder: a lock held for the service's whole life.

Two stacks on one data folder ran two daemons on one instance (Dagster then warns that several
sensor daemons send heartbeats), and the second one's stop removed the first one's webserver
record. `<data>/service.lock` is flock'ed by the running service (the kernel drops the lock
when the process dies, however it dies) and holds what the refusal and `igs status` show: its
pid, its webserver's URL, when it started, and after a clean stop when it stopped (a daemon
tick from before that moment is not a sign of life). Standard library only: the `igs dev`
supervisor never imports Dagster.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from igs_dagster.core.errors import IgsError

LOCK_FILE = "service.lock"
TRIES = 20


class ServiceRunning(IgsError):
    """Another service holds this data folder."""


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_FILE


def _read(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 64 * 1024, 0) or b"{}")
    except ValueError:  # being rewritten, or not ours
        return {}
    return data if isinstance(data, dict) else {}


def describe(info: dict, data_dir: Path) -> str:
    started = info.get("started")
    when = time.strftime(" since %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else ""
    where = f", {info['url']}" if info.get("url") else ""
    return (f"igs dev is already running on this data folder ({data_dir}): pid {info.get('pid', '?')}"
            f"{where}{when}; stop it first (or give this one another IGS_DATA_DIR)")


class ServiceLock:
    """The lock of one data folder, taken by `acquire` and kept until `release` or exit."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.fd: int | None = None

    def acquire(self, url: str | None = None, inheritable: bool = False) -> None:
        """Take the lock or raise ServiceRunning naming the holder. `inheritable`: the lock
        survives an exec of this process (`igs dev --reload` becomes `dagster dev`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path(self.data_dir), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        for attempt in range(TRIES):  # a reader (`holder`) holds a shared lock for microseconds
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt + 1 < TRIES:
                    time.sleep(0.05)
                    continue
                info = _read(fd)
                os.close(fd)
                raise ServiceRunning(describe(info, self.data_dir)) from None
        os.set_inheritable(fd, inheritable)
        self.fd = fd
        self._write({"pid": os.getpid(), "url": url, "started": time.time()})

    def update(self, **fields: object) -> None:
        if self.fd is not None:
            self._write({**_read(self.fd), **fields})

    def _write(self, info: dict) -> None:
        data = (json.dumps(info) + "\n").encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        """A clean stop: record when, then let go."""
        if self.fd is None:
            return
        self.update(stopped=time.time())
        os.close(self.fd)  # closing drops the flock
        self.fd = None


def holder(data_dir: Path) -> dict | None:
    """The running service's record ({pid, url, started}), or None when none holds the lock."""
    try:
        fd = os.open(lock_path(data_dir), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or {"pid": None}
        return None
    finally:
        os.close(fd)  # also drops a shared lock we took


def stopped_at(data_dir: Path) -> float | None:
    """When the last service on this data folder stopped cleanly (None: running, never
    stopped cleanly, or never ran)."""
    if holder(data_dir) is not None:
        return None
    try:
        info = json.loads(lock_path(data_dir).read_text())
    except (OSError, ValueError):
        return None
    value = info.get("stopped") if isinstance(info, dict) else None
    return float(value) if isinstance(value, (int, float)) else None
