"""`progress.txt` in the worktree: the loop's human-readable log, committed on the branch.

Layout::

    # Progress: <PRD title>
    ## Codebase patterns      <- agents add one-line patterns here; the implementor reads them
    ## Log                    <- one entry per judged attempt / story outcome, appended

Entries carry a key (`<!-- igs:loopId/storyId/attempt-N -->`), so recording the same attempt
twice (a retried judge) adds one entry.
"""

from __future__ import annotations

import re
from pathlib import Path

from igs_dagster.core.fsutil import atomic_write_text

PROGRESS_FILE = "progress.txt"
PATTERNS_HEADING = "## Codebase patterns"
LOG_HEADING = "## Log"
_PLACEHOLDER = "<!-- one line per reusable pattern of this codebase -->"


def progress_path(worktree: Path) -> Path:
    return Path(worktree) / PROGRESS_FILE


def ensure_progress(worktree: Path, title: str, loop_id: str, branch: str) -> Path:
    """Create progress.txt, or add the two sections to one the project already has."""
    path = progress_path(worktree)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    changed = False
    if not text:
        text = f"# Progress: {title}\n\nWritten by the coding loop ({loop_id}, branch {branch}).\n"
        changed = True
    if PATTERNS_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{PATTERNS_HEADING}\n\n{_PLACEHOLDER}\n"
        changed = True
    if LOG_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{LOG_HEADING}\n"
        changed = True
    if changed:
        atomic_write_text(path, text)
    return path


def read_patterns(worktree: Path) -> str:
    """The 'Codebase patterns' section's lines (without the placeholder), or ''."""
    path = progress_path(worktree)
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")
    match = re.search(rf"^{re.escape(PATTERNS_HEADING)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not match:
        return ""
    return match.group(1).replace(_PLACEHOLDER, "").strip()


def _key_marker(key: str) -> str:
    return f"<!-- igs:{key} -->"


def has_entry(worktree: Path, key: str) -> bool:
    path = progress_path(worktree)
    return path.exists() and _key_marker(key) in path.read_text(encoding="utf-8", errors="replace")


def append_entry(worktree: Path, key: str, heading: str, lines: list[str]) -> bool:
    """Append `### heading` + bullet lines once per `key`; False when it was already there."""
    path = progress_path(worktree)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    marker = _key_marker(key)
    if marker in text:
        return False
    body = "\n".join(f"- {line}" for line in lines)
    entry = f"\n### {heading} {marker}\n\n{body}\n"
    atomic_write_text(path, text.rstrip("\n") + "\n" + entry)
    return True
