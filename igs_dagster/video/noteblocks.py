"""Generated blocks in a note, each between `<!-- igs:NAME -->` and `<!-- /igs:NAME -->`.

Related notes and screenshots are kept outside the enrichment's sections: each lives in its own
block just above the transcript marker, replaced as a whole by the step that owns it, so
updating one never rewrites the summary, the other blocks or the transcript. The enrichers
rewrite the region around them and put every block back as it was (`keep_blocks`), so a
re-summary (`igs summarize` runs the enricher alone) never loses what other steps wrote.
"""

from __future__ import annotations

import re
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.video import notes
from igs_dagster.video.notelock import note_lock

ORDER = ("screenshots", "related")  # top to bottom, above the transcript marker


def _open(name: str) -> str:
    return f"<!-- igs:{name} -->"


def _close(name: str) -> str:
    return f"<!-- /igs:{name} -->"


def _pattern(name: str) -> re.Pattern:
    return re.compile(
        rf"^{re.escape(_open(name))}[ \t]*\n.*?^{re.escape(_close(name))}[ \t]*\n\n?",
        re.MULTILINE | re.DOTALL,
    )


def get_block(text: str, name: str) -> str | None:
    """The block's body (between its marker lines), or None."""
    head = text[: len(text) - len(notes.transcript_block(text))]
    m = _pattern(name).search(head)
    if not m:
        return None
    return m.group(0).split("\n", 1)[1].rsplit(_close(name), 1)[0]


def set_block(text: str, name: str, body: str | None) -> str:
    """Text with the block replaced (or added above the transcript marker, in ORDER), or
    removed when `body` is None/empty. Only that block's bytes change."""
    marker = len(text) - len(notes.transcript_block(text))
    if not notes.transcript_block(text):
        raise PermanentError(f"note has no '{notes.TRANSCRIPT_MARKER}' marker")
    head, tail = text[:marker], text[marker:]
    rendered = "" if not body else f"{_open(name)}\n{body.rstrip()}\n{_close(name)}\n\n"
    m = _pattern(name).search(head)
    if m:
        return head[: m.start()] + rendered + head[m.end():] + tail
    if not rendered:
        return text
    # before the first block that comes after this one in ORDER, else just above the marker
    insert = len(head)
    for later in ORDER[ORDER.index(name) + 1:] if name in ORDER else ():
        other = _pattern(later).search(head)
        if other:
            insert = min(insert, other.start())
    before = head[:insert]
    if before and not before.endswith("\n\n"):
        before = before.rstrip("\n") + "\n\n"
    return before + rendered + head[insert:] + tail


def keep_blocks(old: str, new: str) -> str:
    """`new` with every block of `old` present once, as it was in `old` (an enricher rewrote
    the region they live in): the steps that own them are not re-run by a re-summary."""
    for name in ORDER:
        body = get_block(old, name)
        if body is not None and get_block(new, name) != body:
            new = set_block(new, name, body)
    return new


def update_note_block(path: Path, name: str, body: str | None) -> bool:
    """Read-modify-write one block of a note atomically; False when nothing changed."""
    path = Path(path)
    with note_lock(path):
        text = path.read_text(encoding="utf-8")
        new = set_block(text, name, body)
        if new == text:
            return False
        fsutil.atomic_write_text(path, new)
        return True
