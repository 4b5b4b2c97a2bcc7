"""One append-only system log (`<vault>/system/system-log.jsonl`, `Settings.system_log`).

Every line is one canonical JSON object, keys in this order, null optional keys omitted:
`{"timestamp", "action", "tool", "detail", "reason"?, "run_id"?, "partition"?, "key"?}`
with a UTC ISO timestamp (`2026-11-24T22:50:01.123Z`).

Many processes write it at once (Dagster runs, sensors, the CLI). Each writer opens the file
with O_APPEND, takes an exclusive `flock` on it, writes the whole line with one `os.write`
(continuing only if the kernel wrote less), fsyncs and unlocks: lines never interleave or
get lost, whatever their length. `dedupe_key` makes a write happen once: the key is stored in
the line (`"key"`) and the last `DEDUPE_WINDOW` lines are checked under the same lock.
Secret values (see `igs_dagster.core.redact`) never reach the file.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.inert import clean, clean_line, json_printable, printable
from igs_dagster.core.redact import redactor

DEDUPE_WINDOW = 2000  # lines checked for an existing dedupe_key
DEDUPE_MAX_BYTES = 16 * 1024 * 1024  # and never more than this many bytes
MAX_DETAIL_CHARS = 32 * 1024
MAX_NAME_CHARS = 200
FOLLOW_POLL_S = 0.25
_CHUNK = 64 * 1024


@dataclass
class LogEntry:
    timestamp: str
    action: str
    tool: str
    detail: str
    reason: str | None = None
    run_id: str | None = None
    partition: str | None = None
    key: str | None = None  # the dedupe_key it was written with

    def to_json(self) -> dict[str, str]:
        """Canonical dict: fixed key order, null optional keys left out."""
        data = {
            "timestamp": self.timestamp,
            "action": self.action,
            "tool": self.tool,
            "detail": self.detail,
        }
        for name in ("reason", "run_id", "partition", "key"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    def to_line(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogEntry:
        def opt(name: str) -> str | None:
            value = data.get(name)
            return None if value is None else str(value)

        return cls(
            timestamp=str(data["timestamp"]),
            action=str(data["action"]),
            tool=str(data["tool"]),
            detail=str(data.get("detail", "")),
            reason=opt("reason"),
            run_id=opt("run_id"),
            partition=opt("partition"),
            key=opt("key"),
        )


def _utc_now(at: float | None = None) -> str:
    when = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PermanentError(f"system log {what} must be a non-empty string")
    if "\n" in value or "\r" in value:
        raise PermanentError(f"system log {what} must be one line: {value[:60]!r}")
    if len(value) > MAX_NAME_CHARS:
        raise PermanentError(f"system log {what} is longer than {MAX_NAME_CHARS} characters")
    return value


def _check_optional(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PermanentError(f"system log {what} must be a string")
    return value


def _clip(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f" … [truncated {len(text) - limit} chars]"


def _read_back(fd: int, size: int, max_lines: int, max_bytes: int) -> bytes:
    """The last `max_lines` lines (at most `max_bytes`) of the file open as `fd`."""
    pos = size
    chunks: list[bytes] = []
    newlines = 0
    read = 0
    while pos > 0 and newlines <= max_lines and read < max_bytes:
        step = min(_CHUNK, pos)
        pos -= step
        chunk = os.pread(fd, step, pos)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
        read += step
    return b"".join(reversed(chunks))


def _already_written(fd: int, size: int, key: str) -> bool:
    if size == 0:
        return False
    data = _read_back(fd, size, DEDUPE_WINDOW, DEDUPE_MAX_BYTES)
    needle = ('"key":' + json.dumps(key, ensure_ascii=False)).encode("utf-8")
    if needle not in data:
        return False
    for raw in data.split(b"\n")[-(DEDUPE_WINDOW + 1) :]:
        if needle in raw:
            try:
                if json.loads(raw).get("key") == key:
                    return True
            except ValueError:
                continue
    return False


def check_entry(action: object, tool: object, detail: object, reason: object = None) -> None:
    """Refuse (PermanentError) what `write_entry` would refuse, before anything is written:
    the intake checks a `system.log` event before it makes the vault ready."""
    _check_name(action, "action")
    _check_name(tool, "tool")
    if not isinstance(detail, str):
        raise PermanentError("system log detail must be a string")
    _check_optional(reason, "reason")


def write_entry(
    path: Path,
    action: str,
    tool: str,
    detail: str,
    *,
    reason: str | None = None,
    run_id: str | None = None,
    partition: str | None = None,
    dedupe_key: str | None = None,
    at: float | None = None,
) -> bool:
    """Append one entry. Returns False (and writes nothing) if `dedupe_key` was already used.

    `at` (epoch seconds): when it happened, for entries written after the fact (a run's stage
    lines carry each step's own time, not the time the logging sensor ran)."""
    check_entry(action, tool, detail, reason)
    run_id = _check_optional(run_id, "run_id")
    partition = _check_optional(partition, "partition")
    if dedupe_key is not None:
        dedupe_key = _check_name(dedupe_key, "dedupe_key")
    redact = redactor()
    # titles and tool output reach this log: no terminal escapes or bidi tricks are stored
    entry = LogEntry(
        timestamp="",  # stamped under the lock: file order == timestamp order
        action=redact(clean_line(action)),
        tool=redact(clean_line(tool)),
        detail=_clip(redact(clean(detail, keep_newlines=True))),
        reason=_clip(redact(clean(reason, keep_newlines=True))) if reason is not None else None,
        run_id=redact(clean_line(run_id)) if run_id is not None else None,
        partition=redact(clean_line(partition)) if partition is not None else None,
        key=dedupe_key,
    )

    path = Path(path)
    fsutil.private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if dedupe_key is not None and _already_written(fd, size, dedupe_key):
            return False
        entry.timestamp = _utc_now(at)
        line = (entry.to_line() + "\n").encode("utf-8")
        if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a writer died mid-line: never glue onto its fragment
        written = os.write(fd, line)
        while written < len(line):  # short write (disk full, signal): finish under the lock
            written += os.write(fd, line[written:])
        os.fsync(fd)
        return True
    finally:
        os.close(fd)  # closing releases the lock


def _parse(raw: bytes) -> LogEntry | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return LogEntry.from_json(data) if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError):
        return None  # a fragment left by a writer that died mid-line


def _read_entries(path: Path, n: int | None, limit: int | None = None) -> list[LogEntry]:
    """Entries in the first `limit` bytes (default: all) of the file; the last `n` if given."""
    if n is not None and n <= 0:
        return []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        size = os.fstat(fd).st_size
        if limit is not None:
            size = min(size, limit)
        if n is None:
            data = os.pread(fd, size, 0) if size else b""
        else:
            # A few extra lines: fragments and blank lines don't count towards n.
            data = _read_back(fd, size, n + 16, sys.maxsize)
            if len(data) < size:
                data = data[data.find(b"\n") + 1 :]  # drop the partial first line
    finally:
        os.close(fd)
    entries = [e for e in (_parse(raw) for raw in data.split(b"\n")) if e is not None]
    return entries if n is None else entries[-n:]


def read_entries(path: Path, n: int | None = None) -> list[LogEntry]:
    """All entries, or the last `n`, in file order; unreadable lines are skipped."""
    return _read_entries(Path(path), n)


def _short_time(timestamp: str) -> str:
    try:
        parsed = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def format_entry(entry: LogEntry) -> str:
    """Human one-liner: `2026-11-24 22:50:01  video.download  yt-dlp  <detail> [run abc123 · partition X]`."""
    detail = " ⏎ ".join(entry.detail.splitlines()) if entry.detail else ""
    text = f"{_short_time(entry.timestamp)}  {entry.action}  {entry.tool}  {detail}".rstrip()
    if entry.reason:
        text += f" (reason: {' ⏎ '.join(entry.reason.splitlines())})"
    tags = []
    if entry.run_id:
        tags.append(f"run {entry.run_id[:8]}")
    if entry.partition:
        tags.append(f"partition {entry.partition}")
    if tags:
        text += f" [{' · '.join(tags)}]"
    return text


def _render(entry: LogEntry, as_json: bool) -> str:
    """What a terminal gets: nothing non-printable, even from entries written before cleaning."""
    if as_json:
        return json_printable(entry.to_line())
    return printable(format_entry(entry))


def _follow_lines(
    path: Path, start: int, inode: int | None, stop: Callable[[], bool]
) -> Iterator[LogEntry]:
    """New entries appended after byte `start`, until `stop()`; survives truncation/replacement."""
    pos = start
    partial = b""
    while not stop():
        try:
            st = path.stat()
        except FileNotFoundError:
            time.sleep(FOLLOW_POLL_S)
            continue
        if inode is not None and st.st_ino != inode:
            pos, partial = 0, b""  # replaced (e.g. by a sync tool): read the new file whole
        elif st.st_size < pos:
            pos, partial = 0, b""  # truncated
        inode = st.st_ino
        if st.st_size > pos:
            with open(path, "rb") as handle:
                handle.seek(pos)
                data = handle.read(st.st_size - pos)
            pos += len(data)
            lines = (partial + data).split(b"\n")
            partial = lines.pop()
            for raw in lines:
                entry = _parse(raw)
                if entry is not None:
                    yield entry
            continue
        time.sleep(FOLLOW_POLL_S)


def tail(
    path: Path,
    n: int = 20,
    *,
    follow: bool = False,
    as_json: bool = False,
    out: TextIO = sys.stdout,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Print the last `n` entries; with `follow`, keep printing new ones until `stop()` is
    True or KeyboardInterrupt. `as_json` prints canonical JSON lines instead of one-liners."""
    path = Path(path)
    try:
        st = path.stat()
        start, inode = st.st_size, st.st_ino
    except FileNotFoundError:
        start, inode = 0, None
    # Entries up to `start` only: follow picks up exactly where this ends.
    for entry in _read_entries(path, n, limit=start) if n > 0 and start else []:
        out.write(_render(entry, as_json) + "\n")
    out.flush()
    if not follow:
        return
    try:
        for entry in _follow_lines(path, start, inode, stop or (lambda: False)):
            out.write(_render(entry, as_json) + "\n")
            out.flush()
    except KeyboardInterrupt:
        return
