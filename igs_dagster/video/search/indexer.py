"""Put one note's transcript into the search index (called by the `search_index` asset)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
        known = _known_vectors(index, doc.video_id)
        todo = list(dict.fromkeys(p.text for p in parts if p.text not in known))
        if todo:
            if encoder is None:
                from igs_dagster.video.search.embed import encoder as default_encoder

                encoder = default_encoder()
            known.update(zip(todo, encoder.encode(todo), strict=True))
        vectors = np.stack([known[p.text] for p in parts])
    index.upsert(doc, parts, vectors, digest)
    return IndexResult(len(parts), True, semantic)


def _known_vectors(index: SearchIndex, video_id: str) -> dict[str, np.ndarray]:
    """The note's vectors already in the index, by passage text: a re-materialize with a new
    title, or a transcript edited in a few places, encodes only the passages that changed.
    (The vectors stored are MODEL_NAME's, the only model this index has known.)"""
    old = index.note_vectors(video_id)
    if old is None:
        return {}
    rows = index.passages_of(video_id)
    if len(rows) != len(old):
        return {}
    return {text: vec for (_, _, text), vec in zip(rows, old, strict=True)}
