"""Atomic file writes and path guards.

Every file the pipeline produces is written to a temporary name in the same folder and
renamed into place, so a crash never leaves a half-written file under its final name.
Temporary names share one prefix so a retried step can sweep what a killed one left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from igs_dagster.core.errors import PermanentError

TEMP_PREFIX = ".igs-tmp-"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_FILE_MODE = 0o666 & ~_umask()  # mkstemp creates 0600; finished files get the usual mode


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temp file beside `path` that replaces `path` when the
    block ends without error; on any error the temp file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` via a temp file + rename (readers see old or new, never half)."""
    with atomic_writer(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def atomic_copy(src: Path, dst: Path) -> Path:
    """Copy `src` to `dst` through a temp file in dst's folder, then rename."""
    with atomic_writer(dst) as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out, 1024 * 1024)
    return Path(dst)


def sweep_temp_files(folder: Path) -> list[Path]:
    """Remove temp files a killed process left in `folder` (ours and yt-dlp's `.part`)."""
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if entry.is_file() and (
            entry.name.startswith(TEMP_PREFIX) or entry.name.endswith((".part", ".ytdl"))
        ):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def safe_name(name: str, what: str = "name") -> str:
    """Return `name` if it is safe as a single file-name component, else raise PermanentError."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise PermanentError(f"invalid {what} {name!r}: use letters, digits, '.', '_' or '-' (max 128)")
    return name


def inside(root: Path, *parts: str) -> Path:
    """Join `parts` under `root` and refuse any result that escapes it (`..`, absolute, links)."""
    root_resolved = Path(root).resolve()
    candidate = root_resolved.joinpath(*parts).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise PermanentError(f"path {'/'.join(parts)!r} escapes {root}")
    return candidate
