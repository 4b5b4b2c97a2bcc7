"""`igs search --reindex`: rebuild the search index from the notes on disk.

Every note under `Resources/videos/` with a `video_id` in its frontmatter is indexed again
from its transcript JSON in the data folder (an unchanged note costs one lookup; a changed one
encodes only the passages it does not have yet). Index entries of this vault whose note file
is gone are dropped: this is the explicit command for that, run only while the vault is there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from igs_dagster.core.errors import PermanentError
from igs_dagster.video.frontmatter import split_frontmatter
from igs_dagster.video.search.index import NoteDoc, SearchIndex
from igs_dagster.video.search.indexer import index_note

NOTES_FOLDER = ("Resources", "videos")


@dataclass
class ReindexResult:
    notes: int = 0
    changed: int = 0
    dropped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<note>: <why>"


def _doc(note: Path, meta: dict) -> NoteDoc:
    url = str(meta.get("source_url") or "")
    return NoteDoc(
        video_id=str(meta["video_id"]), slug=note.stem, title=str(meta.get("title") or note.stem),
        note_path=str(note), channel=str(meta["channel"]) if meta.get("channel") else None,
        day=str(meta.get("published") or meta.get("transcribed") or "") or None,
        source_url=url if url.startswith(("http://", "https://")) else None,
    )


def reindex(index: SearchIndex, vault_dir: Path, media_dir: Path, *, semantic: bool,
            on_progress: Callable[[int, int, str], None] | None = None) -> ReindexResult:
    """Index every note of the vault again; drop this vault's entries without a note file."""
    from igs_dagster.video.transcript import load_transcript

    notes = sorted(Path(vault_dir).joinpath(*NOTES_FOLDER).glob("*.md"))
    result = ReindexResult()
    seen: set[str] = set()
    for n, note in enumerate(notes, 1):
        try:
            meta, _ = split_frontmatter(note.read_text(encoding="utf-8"))
            key = meta.get("video_id")
            if not key:
                raise PermanentError("no video_id in its frontmatter")
            data = load_transcript(Path(media_dir) / str(key) / "transcript.json")
            indexed = index_note(index, _doc(note, meta), data.get("segments") or [], semantic=semantic)
        except (PermanentError, OSError, UnicodeError) as err:
            result.skipped.append(f"{note.name}: {err}")
            continue
        finally:
            if on_progress:
                on_progress(n, len(notes), note.stem)
        seen.add(str(key))
        result.notes += 1
        result.changed += indexed.changed
    for doc in index.notes():
        if doc.video_id not in seen and Path(doc.note_path).is_relative_to(vault_dir) \
                and not Path(doc.note_path).is_file():
            index.remove(doc.video_id)
            result.dropped.append(doc.slug)
    return result
