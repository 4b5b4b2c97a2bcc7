"""Put one note's transcript into the search index (called by the `search_index` asset)."""

from __future__ import annotations

from dataclasses import dataclass

from igs_dagster.video.search.embed import MODEL_NAME
from igs_dagster.video.search.index import NoteDoc, SearchIndex, digest_of
from igs_dagster.video.search.passages import passages


@dataclass(frozen=True)
class IndexResult:
    passages: int
    changed: bool
    embedded: bool


def index_note(index: SearchIndex, doc: NoteDoc, segments: list[dict], encoder=None,
               *, semantic: bool = True) -> IndexResult:
    """Index (or re-index) a note; an unchanged note costs one lookup. `semantic=False` keeps
    the text index only (no model needed)."""
    parts = passages(segments)
    digest = digest_of(doc, parts, MODEL_NAME if semantic else "text")
    if index.current_digest(doc.video_id) == digest:
        return IndexResult(len(parts), False, semantic)
    vectors = None
    if semantic and parts:
        if encoder is None:
            from igs_dagster.video.search.embed import encoder as default_encoder

            encoder = default_encoder()
        vectors = encoder.encode([p.text for p in parts])
    index.upsert(doc, parts, vectors, digest)
    return IndexResult(len(parts), True, semantic)
