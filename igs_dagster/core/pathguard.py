"""Local paths someone handed us stay inside the folders the owner configured.

Two fences use it: local media (`IGS_MEDIA_ROOTS`: `igs send FILE`, `transcript.process` with
a file, `file://` URLs) and coding loops (`IGS_LOOP__ROOTS`: projects and PRDs). The rule is
the same for both:

- the configured folders; with none configured, the CLI (run by the owner, who can read those
  files anyway) may use the home folder, and the HTTP API nothing;
- the path is resolved (symlinks followed, `..` folded) before it is compared, and the data
  folder and the vault never qualify (the pipeline writes there);
- everything outside gets one and the same refusal, whether the path exists, is a folder, a
  FIFO, unreadable or in an unreadable folder: no existence oracle, never a traceback;
- a file is opened without following a last-moment symlink and must be a regular file with
  one link: a hard link to a file elsewhere would carry that file's bytes inside the fence.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from igs_dagster.core.errors import PermanentError

if TYPE_CHECKING:
    from igs_dagster.core.settings import Settings

Origin = Literal["cli", "api"]


def roots_for(configured: Sequence[Path], origin: Origin) -> list[Path]:
    """The folders for a request from `origin`: the configured ones; with none, the home
    folder from the CLI and none over HTTP. Resolved."""
    roots = list(configured)
    if not roots and origin == "cli":
        roots = [Path.home()]
    return [_resolve(Path(root)) for root in roots]


def where(roots: Sequence[Path]) -> str:
    """The roots for a refusal line: `/a, /b` or `none configured`."""
    return ", ".join(str(r) for r in roots) or "none configured"


def within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _resolve(path: Path) -> Path:
    """`path` resolved as far as it exists; never raises (an unreadable folder, a link loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(path))


def fenced(path: Path, roots: Sequence[Path], refusal: str,
           forbidden: Sequence[Path] = ()) -> Path:
    """`path` resolved if it lies under one of `roots` and under none of `forbidden`; else
    PermanentError(refusal), the same line whatever is (or isn't) at that path."""
    given = Path(os.path.expanduser(str(path)))
    resolved = _resolve(given if given.is_absolute() else Path.cwd() / given)
    blocked = [_resolve(Path(f)) for f in forbidden]
    if not any(within(resolved, root) for root in roots) or any(
            within(resolved, folder) for folder in blocked):
        raise PermanentError(refusal)
    return resolved


def open_fenced(path: Path, roots: Sequence[Path], refusal: str,
                forbidden: Sequence[Path] = (), what: str = "file") -> int:
    """A read-only descriptor on the regular, singly linked file at `path` inside the fence
    (O_NOFOLLOW: a symlink swapped in after the check is not followed; O_NONBLOCK: a FIFO never
    blocks). Checked again on the open descriptor. The caller closes it."""
    resolved = fenced(path, roots, refusal, forbidden)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(resolved, flags)
    except FileNotFoundError:
        raise PermanentError(f"{what} {resolved} does not exist") from None
    except OSError as err:
        raise PermanentError(f"{what} {resolved} cannot be read ({err.strerror})") from None
    try:
        check_open_file(fd, resolved, what)
        real = _fd_path(fd)
        if real is not None and not any(within(real, root) for root in roots):
            raise PermanentError(refusal)  # a folder on the way was swapped for a link
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_open_file(fd: int, shown: Path, what: str = "file") -> os.stat_result:
    """The descriptor's file must be a regular file with exactly one link."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise PermanentError(f"{what} {shown} is not a regular file")
    if info.st_nlink != 1:
        raise PermanentError(f"{what} {shown} has {info.st_nlink} hard links: a file with more "
                             "than one link is refused (copy it instead)")
    return info


def _fd_path(fd: int) -> Path | None:
    """Where an open descriptor really is (Linux /proc), or None where that is unknown."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


# ---------------------------------------------------------------------------------- local media


def media_roots(settings: Settings, origin: Origin = "cli") -> list[Path]:
    """Folders local media may come from (`IGS_MEDIA_ROOTS`; from the CLI the home folder
    when none are set). The worker checks with the CLI's rule: the API's stricter one was
    applied at intake, and a source in the inbox came through one of the two."""
    return roots_for(settings.media_roots, origin)


def media_refusal(roots: Sequence[Path]) -> str:
    return f"not a media file under the media folders ({where(roots)}; IGS_MEDIA_ROOTS)"


def media_fence(settings: Settings, origin: Origin = "cli") -> Callable[[Path], Path]:
    """`fenced` for local media: the media folders, never the data folder or the vault."""
    roots = media_roots(settings, origin)
    forbidden = (settings.data_dir, settings.vault_dir)
    return lambda path: fenced(path, roots, media_refusal(roots), forbidden)


def open_media(path: Path, settings: Settings) -> int:
    """`open_fenced` for a local media file the worker is about to copy."""
    roots = media_roots(settings)
    return open_fenced(path, roots, media_refusal(roots), (settings.data_dir, settings.vault_dir),
                       what="local file")
