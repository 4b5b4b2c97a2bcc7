"""The Obsidian vault note for a video: rendered, re-rendered keeping its enrichment, written
atomically under its lock (no Dagster here).

The note format is a contract shared with the enricher:

    ---
    type: video
    title: "..."
    source: youtube
    source_url: "https://..."      # or null
    video_id: "..."                # the partition key
    channel: "..."                 # or null
    published: 2026-01-20          # or null
    duration: "0:11"               # null when unknown (0)
    duration_seconds: 11           # null when unknown (0)
    language: en                   # the spoken language Whisper found (or was told); or null
    transcript_source: captions    # only when the creator's captions are the transcript
    archive_path: "..."            # or null
    transcribed: 2026-11-24
    enriched_by: null              # set by the enricher: builtin | pi | claude | codex
    tags: [video, youtube]
    ---

    # {title}

    > [!info] Source
    > [{title}]({source_url}) · {channel} · {published} · {duration}

    ## Executive Summary

    _Pending enrichment._

    <!-- igs:transcript -->
    ## Chapters                     # only when the video has chapters

    - [0:00](https://www.youtube.com/watch?v=ID&t=0s) Intro

    ## Transcript

    > [!note]- Transcript ({duration})
    > **[0:00](https://www.youtube.com/watch?v=ID&t=0s)** And so my fellow Americans ...
    >
    > **[2:03](...&t=123s)** ...

Everything between the `## Executive Summary` line and the (last) `<!-- igs:transcript -->` line
is the enrichment region: the enricher replaces it, and re-rendering keeps it. Frontmatter keys
other than the ones above (added by the enricher or the user) are kept too.
Notes live only under `<vault>/Resources/videos/` and `<vault>/Daily/`. The frontmatter's
reading and writing is video/frontmatter.py, a note's file name video/note_slugs.py, its line
in the daily note video/daily.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.inert import clean, clean_line, inert, link_target
from igs_dagster.video.frontmatter import (
    OMIT_IF_UNKNOWN,
    check_day,
    dump_frontmatter,
    split_frontmatter,
)
from igs_dagster.video.notelock import note_lock

VIDEOS_DIR = ("Resources", "videos")
SUMMARY_HEADING = "## Executive Summary"
TRANSCRIPT_MARKER = "<!-- igs:transcript -->"
PENDING_REGION = "\n_Pending enrichment._\n\n"
PARAGRAPH_SECONDS = 120  # a new timestamped transcript paragraph at most every 2 minutes


@dataclass
class NoteInput:
    video_id: str
    title: str
    source_label: str
    source_url: str | None
    channel: str | None
    published: str | None  # YYYY-MM-DD (YYYYMMDD is accepted) or None
    duration: float  # seconds; 0 = unknown
    archive_path: str | None
    transcribed: str  # YYYY-MM-DD
    tags: list[str]
    timestamp_url: Callable[[int], str | None]
    description: str | None = None  # a podcast episode's description (plain text)
    language: str | None = None  # the transcript's spoken language (en, es, ...)
    transcript_source: str | None = None  # "captions" when the creator's captions are the transcript
    chapters: list[dict] = field(default_factory=list)  # yt-dlp's chapters: start_time, title



def format_duration(seconds: float) -> str:
    """0:11, 12:05, 1:02:03 (rounded to whole seconds; negative/NaN -> 0:00)."""
    try:
        total = max(0, int(round(float(seconds))))
    except (TypeError, ValueError, OverflowError):
        total = 0
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"



def note_path(vault: Path, slug: str) -> Path:
    fsutil.safe_name(slug, "note slug")
    return fsutil.inside(Path(vault), *VIDEOS_DIR, f"{slug}.md")



# --------------------------------------------------------------------------- regions


def _summary_start(text: str) -> int | None:
    """Index just after the `## Executive Summary` line, or None."""
    match = re.search(rf"^{re.escape(SUMMARY_HEADING)}[ \t]*\n", text, re.MULTILINE)
    return match.end() if match else None


def _marker_start(text: str) -> int | None:
    """Index of the last line that is exactly the transcript marker, or None."""
    matches = list(re.finditer(rf"^{re.escape(TRANSCRIPT_MARKER)}[ \t]*$", text, re.MULTILINE))
    return matches[-1].start() if matches else None


def enrichment_region(text: str) -> str | None:
    """The text between the `## Executive Summary` line and the transcript marker, or None."""
    start, end = _summary_start(text), _marker_start(text)
    if start is None or end is None or end < start:
        return None
    return text[start:end]


def transcript_block(text: str) -> str:
    """From the transcript marker to the end of the note ('' when the marker is missing)."""
    start = _marker_start(text)
    return "" if start is None else text[start:]


# --------------------------------------------------------------------------- rendering


def _archive_url(location: str) -> str:
    """A link to the archived copy: `sftp://…` as is, a local path as a `file://` URL."""
    location = clean_line(location)
    if location.startswith("/"):
        return link_target(Path(location).as_uri())
    return link_target(location)


def _stamp(seconds: int, timestamp_url: Callable[[int], str | None]) -> str:
    label = format_duration(seconds)
    url = timestamp_url(seconds)
    return f"**[{label}]({link_target(url)})**" if url else f"**{label}**"


def _transcript_paragraphs(
    segments: list[dict], timestamp_url: Callable[[int], str | None]
) -> Iterator[str]:
    """Timed segments are grouped into paragraphs that each open with a timestamp; a new one
    starts at the first segment beginning >= 120 s after the previous marker. Untimed segments
    (pasted transcripts) are paragraphs of their own, without a timestamp."""
    parts: list[str] = []
    marker: float | None = None
    for seg in segments:
        text = inert(seg.get("text"), "transcript")  # spoken or pasted by anyone
        start = seg.get("start")
        if not isinstance(start, int | float):
            if parts:
                yield " ".join(parts)
                parts = []
            marker = None
            if text:
                yield text
            continue
        if not text:
            continue
        if marker is None or start >= marker + PARAGRAPH_SECONDS:
            if parts:
                yield " ".join(parts)
            marker = float(start)
            parts = [_stamp(int(start), timestamp_url), text]
        else:
            parts.append(text)
    if parts:
        yield " ".join(parts)


MAX_CHAPTERS = 200


def _chapter_lines(chapters: list[dict], timestamp_url: Callable[[int], str | None]) -> list[str]:
    """`## Chapters` with one linked timestamp per chapter, in time order ([] without any)."""
    found = sorted(
        (float(c["start_time"]), clean_line(c.get("title")))
        for c in chapters or []
        if isinstance(c, dict) and isinstance(c.get("start_time"), int | float)
        and c["start_time"] >= 0 and clean_line(c.get("title"))
    )[:MAX_CHAPTERS]
    if not found:
        return []
    lines = ["## Chapters", ""]
    for start, title in found:
        label, url = format_duration(start), timestamp_url(int(start))
        stamp = f"[{label}]({link_target(url)})" if url else f"**{label}**"
        lines.append(f"- {stamp} {inert(title, 'item')}")
    return [*lines, ""]


def _frontmatter_for(inp: NoteInput, old: dict | None) -> dict:
    tags: list[str] = []
    for tag in [*inp.tags, *((old or {}).get("tags") or [])]:
        tag = "-".join(str(tag).strip().lstrip("#").split())  # Obsidian tags have no spaces
        if tag and tag not in tags:
            tags.append(tag)
    published = inp.published
    if published and re.fullmatch(r"\d{8}", published):
        published = f"{published[:4]}-{published[4:6]}-{published[6:]}"
    known = inp.duration is not None and inp.duration > 0
    meta: dict[str, Any] = {
        "type": "video",
        "title": inert(inp.title, "frontmatter"),
        "source": inp.source_label,
        "source_url": clean(inp.source_url) or None,
        "video_id": inp.video_id,
        "channel": inert(inp.channel, "frontmatter") or None,
        "published": published or None,
        "duration": format_duration(inp.duration) if known else None,
        "duration_seconds": int(round(inp.duration)) if known else None,
        "language": inp.language or None,
        "transcript_source": inp.transcript_source or None,
        "archive_path": inp.archive_path or None,
        "transcribed": check_day(inp.transcribed, "transcribed date"),
        "enriched_by": (old or {}).get("enriched_by"),
        "tags": tags,
    }
    for key, value in (old or {}).items():
        if key not in meta:
            meta[key] = value
    # what is unknown is left out, not written as `null` (a note from a local file has no channel)
    return {k: v for k, v in meta.items() if not (k in OMIT_IF_UNKNOWN and v is None)}


def render_note(inp: NoteInput, transcript: dict, existing: str | None = None) -> str:
    """The full note text. With `existing` (the current note), its enrichment region,
    `enriched_by`, extra frontmatter keys and tags (merged after `inp.tags`) are kept.

    An existing note whose frontmatter or region markers were broken -> PermanentError
    (never silently drop what the enricher or the user wrote).
    """
    old_meta: dict | None = None
    region = PENDING_REGION
    if existing is not None:
        old_meta, _ = split_frontmatter(existing)
        old_id = old_meta.get("video_id")
        if old_id is not None and str(old_id) != inp.video_id:
            raise PermanentError(
                f"note belongs to video {old_id!r}, not {inp.video_id!r}: refusing to overwrite"
            )
        kept = enrichment_region(existing)
        if kept is None:
            raise PermanentError(
                f"note for {inp.video_id} lost its '{SUMMARY_HEADING}' heading or "
                f"'{TRANSCRIPT_MARKER}' marker: fix or delete it"
            )
        region = kept

    meta = _frontmatter_for(inp, old_meta)
    title = inert(clean_line(inp.title) or inp.video_id, "heading")
    duration = meta.get("duration")

    source_parts = [
        f"[{inert(inp.title, 'link_label')}]({link_target(inp.source_url)})" if inp.source_url
        else inert(clean_line(inp.title) or inp.video_id, "callout")
    ]
    source_parts += [inert(x, "callout") for x in (inp.channel, meta.get("published"), duration)
                     if clean_line(x)]
    lines = [
        f"# {title}",
        "",
        "> [!info] Source",
        "> " + " · ".join(source_parts),
        *[f"> {inert(line, 'callout')}" for line in (inp.description or "").splitlines()
          if clean_line(line)],
        *([f"> Archived copy: [{inert(inp.archive_path, 'link_label')}]({_archive_url(inp.archive_path)})"]
          if inp.archive_path else []),
        "",
    ]
    head = "\n".join(lines) + "\n" + SUMMARY_HEADING + "\n" + region

    paragraphs = list(_transcript_paragraphs(transcript.get("segments") or [], inp.timestamp_url))
    callout = f"> [!note]- Transcript ({duration})" if duration else "> [!note]- Transcript"
    body_lines = [TRANSCRIPT_MARKER, *_chapter_lines(inp.chapters, inp.timestamp_url),
                  "## Transcript", "", callout]
    if paragraphs:
        for index, paragraph in enumerate(paragraphs):
            if index:
                body_lines.append(">")
            body_lines.append(f"> {paragraph}")
    else:
        body_lines.append("> _No speech detected._")
    return dump_frontmatter(meta) + "\n" + head + "\n".join(body_lines) + "\n"


def write_note(vault: Path, slug: str, inp: NoteInput, transcript: dict) -> Path:
    """Write (or re-render) `<vault>/Resources/videos/<slug>.md` atomically.

    Idempotent: the same inputs give the same bytes, and an unchanged note is not rewritten.
    """
    path = note_path(vault, slug)
    with note_lock(path):  # the enrichers and the block steps write this file too
        existing = path.read_text(encoding="utf-8") if path.exists() else None
        text = render_note(inp, transcript, existing)
        if text != existing:
            fsutil.atomic_write_text(path, text)
    return path

