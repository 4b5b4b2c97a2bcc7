"""One lock per note file, taken by every writer of that note.

Writers: the vault note's (re-)render (`notes.write_note`), the daily note's link
(`daily.link_daily`), both enrichers (the built-in one's read-modify-write; the agent's whole
run, since the agent edits the file in place, and its restore), and the generated blocks
(`noteblocks.update_note_block`). Each reads, changes and writes the note while holding it, so
no writer's update is lost to another's.

The lock file lives in the vault beside the note, `<folder>/.igs-locks/<note name>.lock`, not in
a temp folder: two containers or two hosts that share the vault see the same file, and hosts
that mount the vault at different paths still agree (the name is the note's, not its path).
filelock takes flock(2) locks: honoured on local filesystems and bind mounts, and on NFS v4
(Linux maps flock to NFS byte-range locks); an SMB mount honours them only where its client
maps them. Obsidian hides dot-folders. Lock files are empty and are left in place: deleting one
while another process waits on it would split the lock in two.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from filelock import FileLock

P = ParamSpec("P")
R = TypeVar("R")

LOCK_DIR = ".igs-locks"


def lock_path(note: Path) -> Path:
    note = Path(note)
    return note.parent / LOCK_DIR / f"{note.name}.lock"


def note_lock(note: Path) -> FileLock:
    """The lock of `note` (a context manager; blocks until the other writers are done). One
    process must not take it twice at once: nest no writer inside another."""
    path = lock_path(note)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path)


def holding_note_lock(write: Callable[P, R]) -> Callable[P, R]:
    """`write(note_path, ...)` run while holding that note's lock, from the first read to the
    last write (the enrichers: the agent's whole run, its restore)."""

    @functools.wraps(write)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with note_lock(args[0] if args else kwargs["note_path"]):  # type: ignore[arg-type]
            return write(*args, **kwargs)

    return locked
