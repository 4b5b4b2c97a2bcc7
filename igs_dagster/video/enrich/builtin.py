"""The offline enricher: sections from TextRank-ranked transcript sentences.

Deterministic (same inputs, same bytes), so re-running it never churns the vault.
"""

from __future__ import annotations

import bisect
import math
import re
import time
from collections.abc import Callable
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.inert import inert
from igs_dagster.video import noteblocks, notes
from igs_dagster.video.enrich.keyphrases import keyphrase_tags
from igs_dagster.video.enrich.metadata import meta_value, related_links, speaker_context
from igs_dagster.video.enrich.noteedit import (
    SECTIONS,
    note_preview,
    note_section,
    present_sections,
    read_note,
    region_bounds,
    set_frontmatter,
    stamp_md,
)
from igs_dagster.video.enrich.result import EnrichResult
from igs_dagster.video.enrich.text import (
    Sentence,
    clean,
    only_repeats,
    pick_sentences,
    shorten,
    split_sentences,
    textrank,
)
from igs_dagster.video.enrich.verify import transcript_text
from igs_dagster.video.frontmatter import split_frontmatter
from igs_dagster.video.notelock import holding_note_lock

BUILTIN_METHOD = "extractive: TextRank-style sentence ranking (word-overlap graph, PageRank)"
# Left out when the summary already is the whole transcript (a short clip): they could only
# repeat it. The enriched_summary check accepts exactly this omission (`allowed_omissions`).
REPEATING_SECTIONS = ("Key Points", "Notable Quotes")
METHOD_NOTE = (
    "_Extractive summary: transcript sentences ranked by a TextRank-style word-overlap graph, "
    "shown in their original order._"
)


def _summary(ranked: list[Sentence]) -> tuple[list[str], list[Sentence]]:
    """2-3 short paragraphs: the top sentences (<= 45 words) in their original order."""
    n = len(ranked)
    count = 1 if n <= 3 else min(6, max(2, round(n * 0.03)))
    chosen = pick_sentences(ranked, count, max_words=45)  # short sentences first, then any
    chosen += pick_sentences(ranked, count - len(chosen), avoid=chosen)
    chosen = chosen or pick_sentences(ranked, count, min_words=1, min_terms=0)
    chosen.sort(key=lambda s: s.index)
    if not chosen:
        return ["_The transcript is empty; there is nothing to summarize._"], []
    groups = 1 if len(chosen) <= 2 else 2 if len(chosen) <= 4 else 3
    size = math.ceil(len(chosen) / groups)
    paragraphs = [
        " ".join(inert(clean(s.text), "paragraph") for s in chosen[k : k + size])
        for k in range(0, len(chosen), size)
    ]
    return paragraphs, chosen


def _chapters(meta: dict) -> list[tuple[float, str]]:
    """(start, title) of the video's chapters, in time order (yt-dlp's `chapters`)."""
    found = [
        (float(c["start_time"]), str(c.get("title") or ""))
        for c in meta.get("chapters") or []
        if isinstance(c, dict) and isinstance(c.get("start_time"), int | float)
    ]
    return sorted(found)


def _windows(sentences: list[Sentence], meta: dict) -> list[tuple[tuple[float, str] | None, list[Sentence]]]:
    """Parts of the talk for key points, each with its chapter: the chapters (2-8 of them) when
    sentence times are known, else up to 8 equal runs of sentences (no chapter)."""
    chapters = _chapters(meta)
    timed = all(s.start is not None for s in sentences)
    if timed and 2 <= len(chapters) <= 8:
        bounds = [start for start, _ in chapters][1:]
        parts: list[list[Sentence]] = [[] for _ in range(len(bounds) + 1)]
        for s in sentences:
            parts[bisect.bisect_right(bounds, s.start)].append(s)
        return [(chapter, part) for chapter, part in zip(chapters, parts, strict=True) if part]
    count = min(8, max(2, len(sentences) // 10), len(sentences))
    if count == 0:
        return []
    size = len(sentences) / count
    return [(None, sentences[round(k * size) : round((k + 1) * size)]) for k in range(count)]


def _point_line(text: str, start: float | None, timestamp_url: Callable[[int], str | None]) -> str:
    stamp = stamp_md(start, timestamp_url)
    text = inert(clean(shorten(text, 30)), "item")
    return f"- **{stamp}** {text}" if stamp else f"- {text}"


def _chapter_line(chapter: tuple[float, str], timestamp_url: Callable[[int], str | None]) -> str:
    """A chapter's title above its key points (a section break, not a bullet)."""
    stamp = stamp_md(chapter[0], timestamp_url)
    title = inert(clean(chapter[1]), "item") or "Chapter"
    return f"**{title}** · {stamp}" if stamp else f"**{title}**"


def _key_points(
    sentences: list[Sentence],
    scores: list[float],
    summary: list[Sentence],
    meta: dict,
    timestamp_url: Callable[[int], str | None],
) -> tuple[list[str], list[Sentence]]:
    """The best sentence of each part of the talk; never one the summary already says. With
    chapters, each chapter's title opens its points."""
    chosen: list[Sentence] = []
    windows = _windows(sentences, meta)
    per_window = max(1, 8 // len(windows)) if windows else 1
    lines: list[str] = []
    for chapter, window in windows:
        ranked = sorted(window, key=lambda s: (-scores[s.index], s.index))
        picked: list[Sentence] = []
        for _ in range(per_window):
            pick = pick_sentences(ranked, 1, avoid=chosen + picked + summary) or pick_sentences(
                ranked, 1, min_words=3, avoid=chosen + picked + summary
            )
            picked += pick
        picked.sort(key=lambda s: s.index)
        chosen += picked
        if chapter is not None and picked:
            lines += ["", _chapter_line(chapter, timestamp_url)] if lines else [
                _chapter_line(chapter, timestamp_url)]
        lines += [_point_line(s.text, s.start, timestamp_url) for s in picked]
    if not chosen:
        chosen = pick_sentences(
            sorted(sentences, key=lambda s: (-scores[s.index], s.index)),
            1,
            min_words=1,
            min_terms=0,
            avoid=summary,
        )
        lines = [_point_line(s.text, s.start, timestamp_url) for s in chosen]
    chosen.sort(key=lambda s: s.index)
    return lines or ["- _No key points: the transcript is empty._"], chosen


def _quotes(
    ranked: list[Sentence],
    summary: list[Sentence],
    used: list[Sentence],
    timestamp_url: Callable[[int], str | None],
) -> list[str]:
    """Up to 3 verbatim, quotable (8-35 words) sentences, preferring ones not shown yet and
    never one the summary already says."""
    chosen = pick_sentences(ranked, 3, min_words=8, max_words=35, avoid=used)
    if len(chosen) < 2:
        chosen = pick_sentences(
            ranked, 3, min_words=8, max_words=35, avoid=summary
        ) or pick_sentences(ranked, 1, min_words=1, min_terms=0, avoid=summary)
    chosen.sort(key=lambda s: s.index)
    lines = []
    for s in chosen:
        quote = inert(s.text.replace('"', "'"), "callout")
        stamp = stamp_md(s.start, timestamp_url)
        lines.append(f'> "{quote}" — {stamp}' if stamp else f'> "{quote}"')
    # A blank line between quotes: consecutive '>' lines would merge into one blockquote.
    return "\n\n".join(lines).split("\n") if lines else ["_No quotes: the transcript is empty._"]


def _frontmatter_tags(fm: dict) -> list[str]:
    tags = fm.get("tags")
    if isinstance(tags, str):
        return [t for t in re.split(r"[,\s]+", tags) if t]
    if isinstance(tags, list):
        return [str(t) for t in tags if t not in (None, "")]
    return []


def _omissions(summary_md: str, note: str) -> tuple[str, ...]:
    return REPEATING_SECTIONS if only_repeats(transcript_text(note), summary_md) else ()


def allowed_omissions(note: str) -> tuple[str, ...]:
    """Sections a note may lack: the builtin leaves out key points and quotes when its summary
    already is the whole transcript (an 11 s clip: one sentence, said once, not three times).
    Judged from the note itself, with the rule the builtin follows, so the check accepts the
    omission exactly where the builtin makes it; an agent's enrichment (any `enriched_by` but
    `builtin`) promises all six sections and may omit none."""
    fm, _ = split_frontmatter(note)
    if fm.get("enriched_by") != "builtin":
        return ()
    summary = note_section(note, "Executive Summary")
    return _omissions(summary, note) if summary else ()


@holding_note_lock
def builtin_enrich(
    note_path: Path,
    transcript: dict,
    meta: dict,
    *,
    timestamp_url: Callable[[int], str | None],
) -> EnrichResult:
    """Fill the enrichment region offline; deterministic (same inputs, same bytes). Holds the
    note's lock (video/notelock.py) from reading the note to writing it."""
    started = time.monotonic()
    note_path = Path(note_path)
    text = read_note(note_path)
    fm, _body = split_frontmatter(text)
    region_start, region_end = region_bounds(text)
    meta = meta or {}

    sentences = split_sentences(transcript or {})
    scores = textrank(sentences)
    ranked = sorted(sentences, key=lambda s: (-scores[s.index], s.index))
    title = meta_value(meta, fm, "title") or note_path.stem

    paragraphs, summary = _summary(ranked)
    points, point_sentences = _key_points(sentences, scores, summary, meta, timestamp_url)
    keywords = keyphrase_tags(sentences, title)
    blocks = {
        "Executive Summary": ["\n\n".join(paragraphs)] + (["", METHOD_NOTE] if summary else []),
        "Key Points": points,
        "Speaker Context": speaker_context(meta, fm, sentences, timestamp_url),
        "Notable Quotes": _quotes(ranked, summary, summary + point_sentences, timestamp_url),
        "Related": related_links(meta, fm, title),
        "Tags": [" ".join(f"#{k}" for k in keywords) or "_No keywords found._"],
    }
    omit = _omissions("\n".join(blocks["Executive Summary"]), text)
    parts = ["\n" + "\n".join(blocks["Executive Summary"]) + "\n"]
    for name in (n for n in SECTIONS[1:] if n not in omit):
        parts.append(f"\n## {name}\n\n" + "\n".join(blocks[name]) + "\n")
    region = "".join(parts) + "\n"

    new_text = noteblocks.keep_blocks(text, text[:region_start] + region + text[region_end:])
    tags = list(dict.fromkeys(_frontmatter_tags(fm) + keywords))
    new_text = set_frontmatter(new_text, {"enriched_by": "builtin", "tags": tags})
    if notes.transcript_block(new_text) != notes.transcript_block(text):  # invariant
        raise RuntimeError("builtin enrichment would change the transcript block")
    if new_text != text:
        fsutil.atomic_write_text(note_path, new_text)
    return EnrichResult(
        enricher="builtin",
        method=BUILTIN_METHOD,
        duration_s=time.monotonic() - started,
        note_path=note_path,
        preview=note_preview(new_text),
        sections=present_sections(new_text),
    )
