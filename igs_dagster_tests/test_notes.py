"""The vault note contract: rendering, frontmatter round-trips, re-rendering, daily links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.fsutil import TEMP_PREFIX
from igs_dagster.core.inert import inert
from igs_dagster.video.daily import link_daily
from igs_dagster.video.frontmatter import dump_frontmatter, split_frontmatter
from igs_dagster.video.note_slugs import note_slug
from igs_dagster.video.notes import (
    NoteInput,
    enrichment_region,
    format_duration,
    render_note,
    transcript_block,
    write_note,
)

VIDEO_ID = "xJFKask_0-"
JFK_TRANSCRIPT = {
    "text": "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country.",
    "segments": [
        {
            "start": 0.0,
            "end": 8.0,
            "text": "And so my fellow Americans, ask not what your country can do for you,",
        },
        {"start": 8.0, "end": 11.0, "text": "ask what you can do for your country."},
    ],
    "language": "en",
    "model": "tiny.en",
    "backend": "faster-whisper",
    "duration": 11.0,
}


def yt_url(seconds: int) -> str:
    return f"https://www.youtube.com/watch?v={VIDEO_ID}&t={seconds}s"


# what a pasted transcript's note knows about its source: nothing
UNKNOWN_SOURCE = {"source_url": None, "channel": None, "published": None, "duration": 0.0,
                  "archive_path": None, "language": None}


def make_input(**changes) -> NoteInput:
    base = {
        "video_id": VIDEO_ID,
        "title": "JFK Inaugural Address",
        "source_label": "youtube",
        "source_url": f"https://www.youtube.com/watch?v={VIDEO_ID}",
        "channel": "History Channel",
        "published": "2026-01-20",
        "duration": 11.0,
        "archive_path": "/volume1/videos/xJFKask_0-.mp4",
        "transcribed": "2026-11-24",
        "tags": ["video", "youtube"],
        "timestamp_url": yt_url,
        "language": "en",
    }
    base.update(changes)
    return NoteInput(**base)


EXPECTED_JFK = f"""---
type: video
title: "JFK Inaugural Address"
source: youtube
source_url: "https://www.youtube.com/watch?v={VIDEO_ID}"
video_id: "{VIDEO_ID}"
channel: "History Channel"
published: 2026-01-20
duration: "0:11"
duration_seconds: 11
language: en
archive_path: "/volume1/videos/xJFKask_0-.mp4"
transcribed: 2026-11-24
enriched_by: null
tags: [video, youtube]
---

# JFK Inaugural Address

> [!info] Source
> [JFK Inaugural Address](https://www.youtube.com/watch?v={VIDEO_ID}) · History Channel · 2026-01-20 · 0:11
> Archived copy: [/volume1/videos/xJFKask\\_0-.mp4](file:///volume1/videos/xJFKask_0-.mp4)

## Executive Summary

_Pending enrichment._

<!-- igs:transcript -->
## Transcript

> [!note]- Transcript (0:11)
> **[0:00](https://www.youtube.com/watch?v={VIDEO_ID}&t=0s)** And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.
"""


def long_transcript(minutes: int = 30) -> dict:
    """~30 min of segments of 4-9 s, like a real talk (irregular lengths, a few gaps)."""
    segments, t, i = [], 0.0, 0
    while t < minutes * 60:
        length = 4.0 + (i * 7 % 11) * 0.5
        segments.append({"start": round(t, 2), "end": round(t + length, 2), "text": f"Line {i}."})
        t += length + (3.0 if i % 17 == 0 else 0.0)
        i += 1
    return {"text": " ".join(s["text"] for s in segments), "segments": segments}


# --------------------------------------------------------------------------- rendering


def test_render_jfk_exact_contract() -> None:
    assert render_note(make_input(), JFK_TRANSCRIPT) == EXPECTED_JFK


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00"),
        (11, "0:11"),
        (10.6, "0:11"),
        (59.4, "0:59"),
        (725, "12:05"),
        (3723, "1:02:03"),
        (36000, "10:00:00"),
        (-3, "0:00"),
        (float("nan"), "0:00"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_long_transcript_markers_every_two_minutes() -> None:
    transcript = long_transcript(30)
    note = render_note(make_input(duration=1800.0), transcript)
    block = transcript_block(note)
    assert "> [!note]- Transcript (30:00)" in block
    paragraphs = [line for line in block.splitlines() if line.startswith("> **")]
    pattern = re.compile(
        r"^> \*\*\[([0-9:]+)\]\(https://www\.youtube\.com/watch\?v="
        + re.escape(VIDEO_ID)
        + r"&t=(\d+)s\)\*\* "
    )
    markers = []
    for paragraph in paragraphs:
        match = pattern.match(paragraph)
        assert match, paragraph[:80]
        markers.append((match.group(1), int(match.group(2))))
    assert 14 <= len(markers) <= 16  # one per ~2 minutes of 30
    assert markers[0] == ("0:00", 0)
    for label, seconds in markers:
        assert label == format_duration(seconds)
    starts = [s["start"] for s in transcript["segments"]]
    expected, last = [], None
    for start in starts:  # first segment starting >= 120 s after the previous marker
        if last is None or start >= last + 120:
            expected.append(int(start))
            last = start
    assert [s for _, s in markers] == expected
    gaps = [b - a for (_, a), (_, b) in zip(markers, markers[1:], strict=False)]
    assert all(120 <= gap < 130 for gap in gaps)
    # paragraphs are separated by a blank callout line; every segment appears once, in order
    lines = block.splitlines()[4:]
    assert all(line == ">" for line in lines[1::2])
    rendered = " ".join(lines[0::2])
    positions = [rendered.index(f" {s['text']}") for s in transcript["segments"]]
    assert positions == sorted(positions)


def test_timestamps_without_urls_are_plain_bold() -> None:
    note = render_note(
        make_input(timestamp_url=lambda s: None, duration=1800.0), long_transcript(5)
    )
    block = transcript_block(note)
    assert "](" not in block
    labels = re.findall(r"^> \*\*([0-9:]+)\*\* ", block, re.MULTILINE)
    assert len(labels) == 3 and labels[0] == "0:00"
    assert all(label.startswith(("2:", "4:")) for label in labels[1:])


def test_pasted_transcript_has_no_timestamps() -> None:
    transcript = {
        "text": "First paragraph. Second paragraph <b>bold</b>.",
        "segments": [
            {"start": None, "end": None, "text": "First paragraph."},
            {"start": None, "end": None, "text": "Second paragraph <!-- not a comment -->."},
        ],
    }
    inp = make_input(source_label="manual", **UNKNOWN_SOURCE)
    note = render_note(inp, transcript)
    meta, body = split_frontmatter(note)
    # unknowns are left out, never written as null
    assert not {"source_url", "channel", "published", "duration", "duration_seconds",
                "archive_path"} & set(meta)
    assert "null" not in note.split("---")[1].replace("enriched_by: null", "")
    assert meta["source"] == "manual" and "language" not in meta
    assert "> [!info] Source\n> JFK Inaugural Address\n" in body
    assert transcript_block(note) == (
        "<!-- igs:transcript -->\n## Transcript\n\n> [!note]- Transcript\n"
        "> First paragraph.\n>\n> Second paragraph \\<\\!-- not a comment --\\>.\n"
    )


def test_empty_transcript() -> None:
    note = render_note(make_input(), {"text": "", "segments": []})
    assert note.endswith("> [!note]- Transcript (0:11)\n> _No speech detected._\n")


def test_regions() -> None:
    note = render_note(make_input(), JFK_TRANSCRIPT)
    assert enrichment_region(note) == "\n_Pending enrichment._\n\n"
    assert transcript_block(note).startswith("<!-- igs:transcript -->\n## Transcript\n")
    assert note.endswith(transcript_block(note))
    assert enrichment_region("# no markers\n") is None
    assert transcript_block("# no markers\n") == ""


# --------------------------------------------------------------------------- frontmatter

NASTY_TITLES = [
    'He said "ask not": the speech',
    "--- dashes --- at the start",
    "---",
    "line one\nline two\n---\nline four",
    "colon: value # not a comment",
    "'single' quotes and a backslash \\ end\\",
    "[Official Video] {braces} & *stars* `ticks` | pipes",
    "null",
    "yes",
    "2026-01-20",
    "12:30",
    "@mention %percent !bang",
    "Émoji 🎉 ünïcödé 日本語のタイトル",
    "tab\there and trailing space ",
    "<!-- igs:transcript -->",
    "## Executive Summary",
]


@pytest.mark.parametrize("title", NASTY_TITLES)
def test_frontmatter_round_trip_nasty_titles(title: str) -> None:
    inp = make_input(title=title, channel=f"Chan: {title}", archive_path=f"/x/{title}.mp4")
    note = render_note(inp, JFK_TRANSCRIPT)
    meta, body = split_frontmatter(note)
    # one line, markup broken where Obsidian and Dataview would make it live (issues 10, 23)
    assert meta["title"] == inert(title, "frontmatter")
    assert meta["channel"] == inert(f"Chan: {title}", "frontmatter")
    assert meta["archive_path"] == f"/x/{title}.mp4"
    assert meta["video_id"] == VIDEO_ID and meta["tags"] == ["video", "youtube"]
    heading = body.splitlines()[1]
    assert heading.startswith("# ") and "\n" not in heading
    # the regions are found despite the title
    assert enrichment_region(note) == "\n_Pending enrichment._\n\n"
    assert transcript_block(note).startswith("<!-- igs:transcript -->\n## Transcript\n\n> [!note]-")
    # re-dumping the parsed frontmatter gives the same bytes
    frontmatter = note[: len(note) - len(body)]
    assert dump_frontmatter(meta) == frontmatter
    # re-rendering over itself changes nothing
    assert render_note(inp, JFK_TRANSCRIPT, existing=note) == note


def test_tags_merged_and_cleaned() -> None:
    inp = make_input(tags=["video", "#youtube", " topic a ", "video", ""])
    meta, _ = split_frontmatter(render_note(inp, JFK_TRANSCRIPT))
    assert meta["tags"] == ["video", "youtube", "topic-a"]


def test_frontmatter_types() -> None:
    meta, _ = split_frontmatter(render_note(make_input(published="20260120"), JFK_TRANSCRIPT))
    assert meta["published"] == "2026-01-20" and meta["transcribed"] == "2026-11-24"
    assert meta["duration"] == "0:11" and meta["duration_seconds"] == 11
    assert meta["enriched_by"] is None and meta["type"] == "video"
    assert list(meta) == ["type", "title", "source", "source_url", "video_id", "channel", "published",
                          "duration", "duration_seconds", "language", "archive_path", "transcribed",
                          "enriched_by", "tags"]


@pytest.mark.parametrize(
    "text",
    ["no frontmatter\n", "---\ntitle: x\n", "---\ntitle: [unclosed\n---\n", "---\n- a list\n---\n"],
    ids=["missing", "unclosed", "bad-yaml", "not-a-mapping"],
)
def test_split_frontmatter_errors(text: str) -> None:
    with pytest.raises(PermanentError, match="frontmatter"):
        split_frontmatter(text)


def test_invalid_transcribed_date() -> None:
    with pytest.raises(PermanentError, match="transcribed date"):
        render_note(make_input(transcribed="24/11/2026"), JFK_TRANSCRIPT)


# --------------------------------------------------------------------------- re-rendering


def _enrich(note: str) -> str:
    """What the enricher does: replace the region, set enriched_by, add tags and a key."""
    meta, _ = split_frontmatter(note)
    meta["enriched_by"] = "claude"
    meta["tags"] = [*meta["tags"], "politics", "speech"]
    meta["topics"] = ["civic duty"]
    region = enrichment_region(note)
    body = note.split("\n---\n", 1)[1]
    new_region = (
        "\nKennedy asks citizens to serve their country.\n\n"
        "## Key Points\n\n- Civic duty [0:05](https://www.youtube.com/watch?v=x&t=5s)\n\n"
    )
    body = body.replace("## Executive Summary\n" + region, "## Executive Summary\n" + new_region, 1)
    return dump_frontmatter(meta) + body


def test_rerender_keeps_enrichment(tmp_path: Path) -> None:
    enriched = _enrich(render_note(make_input(), JFK_TRANSCRIPT))
    region = enrichment_region(enriched)
    assert "Key Points" in region
    # a new run with a new title, more tags and an updated transcript
    inp = make_input(title="JFK: Inaugural Address (HD)", tags=["video", "youtube", "history"])
    transcript = {
        **JFK_TRANSCRIPT,
        "segments": [
            *JFK_TRANSCRIPT["segments"],
            {"start": 11.0, "end": 12.0, "text": "Applause."},
        ],
    }
    again = render_note(inp, transcript, existing=enriched)
    assert enrichment_region(again) == region
    meta, _ = split_frontmatter(again)
    assert meta["enriched_by"] == "claude"
    assert meta["tags"] == ["video", "youtube", "history", "politics", "speech"]
    assert meta["topics"] == ["civic duty"]
    assert meta["title"] == "JFK: Inaugural Address (HD)"
    assert "Applause." in transcript_block(again)
    assert render_note(inp, transcript, existing=again) == again  # stable


def test_rerender_refuses_broken_or_foreign_note() -> None:
    note = render_note(make_input(), JFK_TRANSCRIPT)
    broken = note.replace("<!-- igs:transcript -->\n", "")
    with pytest.raises(PermanentError, match="fix or delete it"):
        render_note(make_input(), JFK_TRANSCRIPT, existing=broken)
    with pytest.raises(PermanentError, match="frontmatter"):
        render_note(make_input(), JFK_TRANSCRIPT, existing="just text\n")
    with pytest.raises(PermanentError, match="belongs to video"):
        render_note(make_input(video_id="other1"), JFK_TRANSCRIPT, existing=note)


# --------------------------------------------------------------------------- vault files


def _all_files(root: Path) -> list[str]:
    return (
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        if root.exists()
        else []
    )


def test_write_note_idempotent(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    slug = note_slug("JFK Inaugural Address", VIDEO_ID, vault)
    assert slug == "jfk-inaugural-address"
    path = write_note(vault, slug, make_input(), JFK_TRANSCRIPT)
    assert path == (vault / "Resources" / "videos" / "jfk-inaugural-address.md").resolve()
    first = path.read_bytes()
    assert first.decode() == EXPECTED_JFK
    stat = path.stat()
    assert write_note(vault, slug, make_input(), JFK_TRANSCRIPT) == path
    assert path.read_bytes() == first
    assert path.stat().st_ino == stat.st_ino  # unchanged note: not rewritten
    assert _all_files(vault) == [  # the note and its writers' lock (video/notelock.py)
        "Resources/videos/.igs-locks/jfk-inaugural-address.md.lock",
        "Resources/videos/jfk-inaugural-address.md",
    ]
    # the same slug again for the same video
    assert note_slug("JFK Inaugural Address", VIDEO_ID, vault) == slug
    # enriched note, re-written: the enrichment survives and the bytes are stable
    path.write_text(_enrich(first.decode()))
    enriched = path.read_bytes()
    write_note(vault, slug, make_input(), JFK_TRANSCRIPT)
    assert path.read_bytes() == enriched
    assert not any(p.name.startswith(TEMP_PREFIX) for p in path.parent.iterdir())


def test_note_slug_collision_and_fallbacks(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    write_note(vault, "jfk-inaugural-address", make_input(), JFK_TRANSCRIPT)
    assert (
        note_slug("JFK Inaugural Address", "other-id1", vault) == "jfk-inaugural-address-other-id1"
    )
    assert note_slug("日本語のタイトル", "abcDEF12345", vault) == "video-abcdef12345"
    assert note_slug("Ça va? Très bien!", "id1", vault) == "ca-va-tres-bien"
    long = note_slug("word " * 60, "id1", vault)
    assert len(long) <= 80 and not long.endswith("-")
    # a note that is not ours and cannot be parsed counts as taken
    (vault / "Resources" / "videos" / "hand-written.md").write_text("no frontmatter here\n")
    assert note_slug("Hand Written", "id9", vault) == "hand-written-id9"
    with pytest.raises(PermanentError, match="belongs to video"):
        write_note(vault, "jfk-inaugural-address", make_input(video_id="other-id1"), JFK_TRANSCRIPT)


@pytest.mark.parametrize(
    "slug", ["../evil", "a/b", "", ".hidden", "-dash", "x" * 200, "a..b", "sp ace"]
)
def test_invalid_slug_refused(tmp_path: Path, slug: str) -> None:
    vault = tmp_path / "vault"
    with pytest.raises(PermanentError):
        write_note(vault, slug, make_input(), JFK_TRANSCRIPT)
    with pytest.raises(PermanentError):
        link_daily(vault, "2026-11-24", slug, "t", None, 1.0)
    assert _all_files(tmp_path) == []


@pytest.mark.parametrize(
    "day", ["2026-13-01", "2026-02-30", "2026-1-1", "../2026-11-24", "today", "2026-11-24.md", ""]
)
def test_invalid_day_refused(tmp_path: Path, day: str) -> None:
    with pytest.raises(PermanentError, match="invalid day"):
        link_daily(tmp_path / "vault", day, "jfk", "JFK", None, 11.0)
    assert _all_files(tmp_path) == []


# --------------------------------------------------------------------------- daily note


def test_link_daily_creates_and_adds_once(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    results = [
        link_daily(
            vault, "2026-11-24", "jfk-inaugural-address", "JFK Inaugural Address", "History", 11.0
        )
        for _ in range(3)
    ]
    assert results == [True, False, False]
    daily = vault / "Daily" / "2026-11-24.md"
    assert daily.read_text() == (
        "# 2026-11-24\n\n## Videos\n\n"
        "- [[jfk-inaugural-address]] — JFK Inaugural Address by History · 0:11\n"
    )
    assert link_daily(vault, "2026-11-24", "second", "Second\nvideo", None, 3723) is True
    assert daily.read_text().endswith(
        "- [[jfk-inaugural-address]] — JFK Inaugural Address by History · 0:11\n"
        "- [[second]] — Second video · 1:02:03\n"
    )


def test_link_daily_keeps_existing_content(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    daily = vault / "Daily" / "2026-11-24.md"
    daily.parent.mkdir(parents=True)
    before = (
        "---\nmood: good\n---\n# Monday\n\nMorning notes.\n\n"
        "## Videos\n\n- [[older-video|Older]] — watched earlier\n\n"
        "## Tasks\n\n- [ ] call mom\n\n### Later\n\ntext\n"
    )
    daily.write_text(before)
    for _ in range(3):
        link_daily(vault, "2026-11-24", "jfk", "JFK", "History", 11.0)
    assert daily.read_text() == before.replace(
        "- [[older-video|Older]] — watched earlier\n",
        "- [[older-video|Older]] — watched earlier\n- [[jfk]] — JFK by History · 0:11\n",
    )
    # already linked elsewhere (with an alias): nothing added
    assert link_daily(vault, "2026-11-24", "older-video", "Older", None, 5) is False


def test_link_daily_adds_section_when_missing(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    daily = vault / "Daily" / "2026-11-24.md"
    daily.parent.mkdir(parents=True)
    daily.write_text("# Monday\n\nJust a journal entry.\n\n\n")
    assert link_daily(vault, "2026-11-24", "jfk", "JFK", None, 0) is True
    assert (
        daily.read_text() == "# Monday\n\nJust a journal entry.\n\n## Videos\n\n- [[jfk]] — JFK\n"
    )
    # an empty Videos section followed by another heading
    daily.write_text("# Monday\n## Videos\n## Notes\nx")
    assert link_daily(vault, "2026-11-24", "jfk", "JFK", None, 0) is True
    assert daily.read_text() == "# Monday\n## Videos\n\n- [[jfk]] — JFK\n\n## Notes\nx\n"


def test_link_daily_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    import threading

    vault = tmp_path / "vault"
    slugs = [f"video-{i}" for i in range(8)]
    threads = [
        threading.Thread(target=link_daily, args=(vault, "2026-11-24", s, s, None, 60))
        for s in slugs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = (vault / "Daily" / "2026-11-24.md").read_text()
    assert sorted(re.findall(r"\[\[(video-\d)\]\]", text)) == slugs
    assert text.count("## Videos") == 1


def test_plain_modules_do_not_import_dagster() -> None:
    import subprocess
    import sys

    code = (
        "import sys, igs_dagster.video.notes, igs_dagster.video.transcribe; "
        "sys.exit(1 if any(m == 'dagster' or m.startswith('dagster.') for m in sys.modules) else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False)  # noqa: S603
    assert result.returncode == 0


def test_daily_line_does_not_repeat_a_title_that_is_the_note_name(tmp_path: Path) -> None:
    link_daily(tmp_path, "2026-11-24", "jfk-inaugural", "jfk-inaugural", None, 11.0)
    text = (tmp_path / "Daily" / "2026-11-24.md").read_text()
    assert text.endswith("## Videos\n\n- [[jfk-inaugural]] · 0:11\n")


def test_same_title_in_flight_gets_two_names(tmp_path: Path):
    """Two videos with one title, both downloaded before either note exists (runs side by side):
    the first claims the name, the second gets `<slug>-<video id>`; each keeps its own name."""
    vault, claims = tmp_path / "vault", tmp_path / "data" / "note-slugs.sqlite3"
    first = note_slug("JFK inaugural address", "video-a", vault, claims=claims)
    second = note_slug("JFK inaugural address", "video-b", vault, claims=claims)
    assert first == "jfk-inaugural-address" and second == "jfk-inaugural-address-video-b"
    assert note_slug("JFK inaugural address", "video-a", vault, claims=claims) == first
    assert note_slug("JFK inaugural address", "video-b", vault, claims=claims) == second
    # without the claims (the old behaviour) both would have been given the same name
    assert note_slug("JFK inaugural address", "video-b", vault) == first
