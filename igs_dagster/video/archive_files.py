"""What both archive targets (video/archive_local.py, video/archive_sftp.py) share: the request
checked and its files hashed before any connection is opened (`plan`), the copy loop with its
progress (`copy_each`), the result, and how a copy is judged: its sha256 sidecar
`.{name}.sha256` (`sha256sum` format) holds the hash of the bytes actually written, checked
against the hash taken before (`sent_as_planned`), and `verify_problem` compares the size and
that hash, reading a copy back only when it has no sidecar.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError

ProgressCallback = Callable[[str, int, int], None]

CHUNK = 1024 * 1024
PROGRESS_INTERVAL_S = 0.5
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_YEAR = re.compile(r"^[0-9]{4}$")


@dataclass
class ArchiveResult:
    location: str  # "sftp://user@host:port/root/2026/slug" or the local folder path
    files: list[str] = field(default_factory=list)  # final remote/local paths
    uploaded: int = 0
    skipped: int = 0
    bytes_sent: int = 0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Item:
    path: Path
    name: str
    size: int
    sha256: str


def sha256_file(path: Path, limit: int | None = None) -> str:
    """sha256 hex of `path` (of its first `limit` bytes when given)."""
    return hash_of(path, limit).hexdigest()


def hash_of(path: Path, limit: int | None = None):
    """A sha256 object fed with `path` (its first `limit` bytes), to go on feeding."""
    digest = hashlib.sha256()
    remaining = limit
    with open(path, "rb") as handle:
        while remaining is None or remaining > 0:
            want = CHUNK if remaining is None else min(CHUNK, remaining)
            block = handle.read(want)
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest


def _check_year(year: object) -> str:
    if isinstance(year, bool) or not isinstance(year, int | str) or not _YEAR.match(str(year)):
        raise PermanentError(f"invalid archive year {year!r}: expected 4 digits")
    return str(year)


def plan(files: list[Path], year: object, slug: str) -> tuple[str, str, list[Item]]:
    """Validate the request and hash the local files (before any connection is opened)."""
    year_s = _check_year(year)
    fsutil.safe_name(slug, "archive slug")
    if not files:
        raise PermanentError("nothing to archive: no files given")
    items: list[Item] = []
    seen: set[str] = set()
    for raw in files:
        path = Path(raw)
        name = fsutil.safe_name(path.name, "archive file name")
        if name in seen:
            raise PermanentError(f"two files named {name!r} in one archive request")
        seen.add(name)
        if not path.is_file():
            raise PermanentError(f"cannot archive {path}: no such file")
        items.append(Item(path, name, path.stat().st_size, sha256_file(path)))
    return year_s, slug, items


def sidecar_name(name: str) -> str:
    return f".{name}.sha256"


def sidecar_text(sha: str, name: str) -> str:
    return f"{sha}  {name}\n"


def parse_sidecar(text: str) -> str | None:
    first = text.strip().split(maxsplit=1)
    if first and _HEX64.match(first[0].lower()):
        return first[0].lower()
    return None


class FileChanged(RuntimeError):
    """The local file changed while it was archived (transient: the retry archives it anew)."""


def sent_as_planned(item: Item, digest) -> None:
    if digest.hexdigest() != item.sha256:
        raise FileChanged(f"{item.name} changed while it was archived; will retry")


def verify_problem(item: Item, size: int | None, recorded: str | None,
                    read_back: Callable[[], str], place: str, where: str) -> str | None:
    """What is wrong with an archived copy (None: it matches): its size, then the sha256 of the
    bytes sent (the sidecar); the copy is read back only when there is no sidecar."""
    if size is None:
        return f"{item.name}: missing from {place}"
    if size != item.size:
        return f"{item.name}: {size} bytes {where}, expected {item.size}"
    if (recorded if recorded is not None else read_back()) != item.sha256:
        return f"{item.name}: content {where} differs (SHA-256)"
    return None


class Progress:
    """Calls `callback(name, done, total)` at most every PROGRESS_INTERVAL_S, plus first/last."""

    def __init__(self, callback: ProgressCallback | None, name: str, total: int) -> None:
        self.callback = callback
        self.name = name
        self.total = total
        self.last = 0.0

    def __call__(self, done: int, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if force or done >= self.total or now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            self.callback(self.name, done, self.total)


class ArchiveTarget:
    """An archive tree `{root}/{year}/{slug}/`, local or on the NAS. `archive` and `verify`
    check the request and hash the local files first (`plan`, before any connection is
    opened); the target then copies them (`_copy_all`) or judges its copies (`_problems`)."""

    def archive(self, files: list[Path], year: int, slug: str,
                on_progress: ProgressCallback | None = None) -> ArchiveResult:
        year_s, slug, items = plan(files, year, slug)
        return self._copy_all(items, year_s, slug, on_progress)

    def verify(self, files: list[Path], year: int, slug: str) -> list[str]:
        """Problems with the archived copies: missing, another size, or another SHA-256 than
        the one recorded as they were written (read back only where no sidecar records it);
        [] = all match."""
        year_s, slug, items = plan(files, year, slug)
        return [problem for problem in self._problems(items, year_s, slug) if problem]

    def _copy_all(self, items: list[Item], year: str, slug: str,
                  on_progress: ProgressCallback | None) -> ArchiveResult:
        raise NotImplementedError

    def _problems(self, items: list[Item], year: str, slug: str) -> Iterator[str | None]:
        raise NotImplementedError


def copy_each(items: list[Item], result: ArchiveResult, on_progress: ProgressCallback | None,
              where: Callable[[Item], str], same: Callable[[Item], bool],
              copy: Callable[[Item, Progress], int]) -> ArchiveResult:
    """Each item's final path into `result.files`; skipped when the copy there is the same,
    else copied (`copy` returns the bytes it sent); progress from 0 to its size either way."""
    for item in items:
        result.files.append(where(item))
        progress = Progress(on_progress, item.name, item.size)
        progress(0, force=True)
        if same(item):
            result.skipped += 1
        else:
            result.bytes_sent += copy(item, progress)
            result.uploaded += 1
        progress(item.size, force=True)
    return result
