"""Related notes: which other notes of the vault talk about the same things, and why.

Similarity between two notes is the mean, over this note's passages, of each one's best match
among the other note's passages (cosine of MiniLM vectors), so one shared topic in a long talk
counts, but a single stray sentence doesn't. Only notes at or above THRESHOLD are listed:
better none than noise. The reason shown is the best-matching pair of passages, and the
shared keywords of the two notes when they have some.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from igs_dagster.core.inert import inert, link_target
from igs_dagster.video.notes import format_duration
from igs_dagster.video.search.embed import one_blas_thread
from igs_dagster.video.search.index import NoteDoc, SearchIndex

THRESHOLD = 0.45
MAX_RELATED = 5
TOP_PASSAGES = 3  # a note's score: mean of its best 3 passage matches
_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_COMMON = frozenset(
    "about after again also another because been before being between both could does doing "
    "down during each even every from further going have having here into just know like more "
    "most much must need only other over really right same should some such than that their "
    "them then there these they thing things think this those through time today very want "
    "well were what when where which while will with would your yeah okay actually people "
    "something said says make made first last years year".split()
)


@dataclass(frozen=True)
class Related:
    note: NoteDoc
    score: float
    passage: str  # the other note's passage that matched best
    start: float | None
    shared: tuple[str, ...]


def _keywords(texts: list[str], limit: int = 12) -> list[str]:
    counts: dict[str, int] = {}
    for text in texts:
        for w in _WORD.findall(text.lower()):
            if w not in _COMMON:
                counts[w] = counts.get(w, 0) + 1
    return [w for w, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= 2][:limit]


def related_notes(index: SearchIndex, video_id: str, *, threshold: float = THRESHOLD,
                  limit: int = MAX_RELATED) -> list[Related]:
    mine = index.note_vectors(video_id)
    if mine is None or not len(mine):
        return []
    pid, mat, owners = index.matrix()
    if not len(pid):
        return []
    with one_blas_thread():  # see query.semantic_ranking
        sims = mine @ mat.T  # (my passages, all passages)
    # each note's passages are one run of columns (the matrix is in note order): per-note
    # maxima in one reduceat instead of a pass over all owners per note (2 s at 1,000 notes)
    starts = [0] + [i for i in range(1, len(owners)) if owners[i] != owners[i - 1]]
    ends = [*starts[1:], len(owners)]
    best = np.maximum.reduceat(sims, starts, axis=1)  # (my passages, notes)
    k = min(TOP_PASSAGES, best.shape[0])
    scores = np.sort(best, axis=0)[-k:].mean(axis=0)
    scored: list[tuple[float, str, int]] = []
    for col in np.nonzero(scores >= threshold)[0]:
        other = owners[starts[col]]
        if other == video_id:
            continue
        block = sims[:, starts[col]:ends[col]]
        _, j = np.unravel_index(int(block.argmax()), block.shape)
        scored.append((float(scores[col]), other, int(pid[starts[col] + j])))
    scored.sort(reverse=True)
    my_words = set(_keywords([t for _, _, t in index.passages_of(video_id)]))
    out = []
    for score, other, best_pid in scored[:limit]:
        doc = index.note(other)
        row = index.execute("SELECT start, text FROM passages WHERE id = ?", (best_pid,))
        if doc is None or not row:
            continue
        theirs = _keywords([t for _, _, t in index.passages_of(other)])
        shared = tuple(w for w in theirs if w in my_words)[:4]
        out.append(Related(doc, round(score, 3), row[0][1], row[0][0], shared))
    return out


def _short(text: str, words: int = 30) -> str:
    """The passage's first `words` words, inert (it is transcript text: anyone's words)."""
    parts = text.split()
    return inert(" ".join(parts[:words]) + ("…" if len(parts) > words else ""), "item")


def render_block(items: list[Related], timestamp_url=None) -> str | None:
    """The `## Related in the vault` section, or None when nothing qualifies."""
    if not items:
        return None
    lines = ["## Related in the vault", ""]
    for r in items:
        why = f"shared: {', '.join(r.shared)}; " if r.shared else ""
        at = ""
        if r.start is not None:
            label = format_duration(int(r.start))
            url = timestamp_url(r.note, int(r.start)) if timestamp_url else None
            at = f" at [{label}]({link_target(url)})" if url else f" at {label}"
        lines.append(f"- [[{r.note.slug}]] {inert(r.note.title, 'item')} ({r.score:.2f}) — "
                     f"{why}they say{at}: “{_short(r.passage)}”")
    return "\n".join(lines) + "\n"


def prompt_context(items: list[Related]) -> str:
    """For the enrichment prompt: the related notes' titles, links and a passage each."""
    if not items:
        return ""
    lines = ["## Related notes already in the vault", "",
             "For context only (do not edit those notes). Where one clearly connects, you may "
             "mention it in **Related** as an Obsidian wikilink, written exactly as given:", ""]
    for r in items:  # titles and passages are other people's words: inert, fenced by the caller
        lines.append(f"- [[{r.note.slug}]] “{inert(r.note.title, 'item')}” "
                     f"(similarity {r.score:.2f}): “{_short(r.passage, 45)}”")
    return "\n".join(lines) + "\n"
