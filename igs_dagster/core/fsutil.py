"""Atomic file writes, private folders, bounded reads and path guards.

Every file the pipeline produces is written to a temporary name in the same folder and
renamed into place, so a crash never leaves a half-written file under its final name.
Temporary names share one prefix so a retried step can sweep what a killed one left.
Files we write are 0600 and the folders we create 0700: notes, transcripts and logs are
private. `read_regular_file` is the one way to read a path someone handed us: it never blocks
on a FIFO or device and never reads more than a cap.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from igs_dagster.core.errors import PermanentError

TEMP_PREFIX = ".igs-tmp-"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(folder: Path) -> Path:
    """Create `folder` and any missing parents as 0700 (existing folders are left as they are)."""
    folder = Path(folder)
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask
    return folder


PRIVATE_UMASK = 0o077


def private_umask() -> int:
    """Make this process (and what it starts: `igs dev`'s daemon, webserver, run workers) create
    files 0600 and folders 0700 whatever the user's umask, SQLite databases, their WAL/SHM files
    and Dagster's own files included. Returns the umask it replaced."""
    return os.umask(PRIVATE_UMASK)


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 if it does not exist (before SQLite opens it: its WAL and SHM
    files take the database's mode); its folder is made private."""
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def tighten_dir(folder: Path) -> None:
    """Take group and other access away from an existing folder we own (a data folder made by
    an older version under umask 022); a missing one is left to be made 0700 when needed."""
    try:
        info = os.stat(folder)
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
        os.chmod(folder, stat.S_IMODE(info.st_mode) & 0o700)


def read_regular_file(path: Path, max_bytes: int, label: str | None = None) -> bytes:
    """The bytes of `path` if it is a regular file of at most `max_bytes`.

    Opened with O_NONBLOCK (a FIFO never blocks), checked with fstat on the open descriptor
    (no race with a swap), read to the cap only (/dev/zero never fills memory). Every refusal
    is one PermanentError line that does not say whether the path exists.
    """
    refusal = PermanentError(
        f"{label or Path(path).name}: not a readable regular file of at most {max_bytes} bytes"
    )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError):
        raise refusal from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            raise refusal
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            try:
                chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            except OSError:  # EAGAIN (a FIFO swapped in), EISDIR, EIO
                raise refusal from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise refusal
        return b"".join(chunks)
    finally:
        os.close(fd)


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
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
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


# Names Windows reserves for devices, in any case and with any extension (`con.md`, `Nul.tar.gz`,
# `COM1`): a note or folder named so can't be opened there, and sync tools choke on it.
_WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?")


def windows_reserved(name: str) -> bool:
    """True for a device name Windows reserves (`con`, `NUL.txt`, `com1.tar.gz`, ...)."""
    return _WINDOWS_RESERVED.fullmatch(name.rstrip(". ")) is not None


def unreserved(name: str) -> str:
    """`name`, or with `_` after its stem when Windows reserves it (`con` -> `con_`,
    `nul.txt` -> `nul_.txt`)."""
    if not windows_reserved(name):
        return name
    stem, dot, rest = name.partition(".")
    return f"{stem}_{dot}{rest}"


def safe_name(name: str, what: str = "name") -> str:
    """Return `name` if it is safe as a single file-name component on every system we sync to,
    else raise PermanentError."""
    if (not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name
            or name.endswith(".")):
        raise PermanentError(f"invalid {what} {name!r}: use letters, digits, '.', '_' or '-' (max 128)")
    if windows_reserved(name):
        raise PermanentError(f"invalid {what} {name!r}: a device name Windows reserves")
    return name


def fit_name(name: str, max_len: int = 128) -> str:
    """`name` if it is a safe file name that fits, else a shortened safe form plus a short hash
    of the whole name (`long-title-3f2a9c1d`): distinct inputs stay distinct, never too long."""
    if (_SAFE_NAME.match(name) and ".." not in name and not name.endswith(".")
            and len(name) <= max_len):
        return unreserved(name)
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).replace("..", "-").strip("-.")
    base = base[: max_len - len(digest) - 1].rstrip("-.")
    return safe_name(f"{base}-{digest}" if base else f"n-{digest}", "name")


def inside(root: Path, *parts: str) -> Path:
    """Join `parts` under `root` and refuse any result that escapes it (`..`, absolute, links)."""
    root_resolved = Path(root).resolve()
    candidate = root_resolved.joinpath(*parts).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise PermanentError(f"path {'/'.join(parts)!r} escapes {root}")
    return candidate
