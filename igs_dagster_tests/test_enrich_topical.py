"""The offline enricher on real words: topical tags (keyphrases, not word counts) and no
section that only repeats the summary. Drives `builtin_enrich` and the enriched_summary
check as the pipeline does; the model is the bundled all-MiniLM-L6-v2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from igs_dagster.video import notes
from igs_dagster.video.checks import check_enrichment
from igs_dagster.video.enrich import STOPWORDS, builtin_enrich
from igs_dagster.video.enrich.builtin import allowed_omissions
from igs_dagster.video.enrich.keyphrases import keyphrase_tags, tag_form
from igs_dagster.video.enrich.text import split_sentences
from igs_dagster.video.enrich.verify import normalise

SPEECHES = Path(__file__).parents[1] / "bench" / "speech_text.txt"
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
_TAG = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def _speeches() -> dict[str, list[str]]:
    """Author/work heading -> its paragraphs, from the benchmark's public-domain text."""
    works: dict[str, list[str]] = {}
    current = None
    for block in SPEECHES.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        heads = [line for line in lines if line.startswith("# ")]
        if heads:
            current = heads[-1][2:]
        text = " ".join(line for line in lines if not line.startswith("#"))
        if text and current:
            works.setdefault(current, []).append(text)
    return works


def _segments(text: str, words_per_segment: int = 12) -> dict:
    """Whisper-like segments: ~12 words each, cut across sentences, 2.5 words/s."""
    words = text.split()
    segments = []
    for i in range(0, len(words), words_per_segment):
        chunk = words[i : i + words_per_segment]
        start = i / 2.5
        segments.append({"start": start, "end": start + len(chunk) / 2.5,
                         "text": " " + " ".join(chunk)})
    return {"text": " ".join(words), "segments": segments, "language": "en"}


def _note(folder: Path, slug: str, title: str, transcript: dict) -> Path:
    inp = notes.NoteInput(
        video_id=slug, title=title, source_label="local", source_url=None, channel=None,
        published=None, duration=transcript["segments"][-1]["end"], archive_path=None,
        transcribed="2026-11-26", tags=["video"], timestamp_url=lambda s: None,
    )
    return notes.write_note(folder, slug, inp, transcript)


def _section(text: str, name: str) -> str | None:
    match = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |^<!-- igs:transcript -->)",
                      text, re.M | re.S)
    return match.group(1).strip() if match else None


def _tags(note: str) -> list[str]:
    return [t.removeprefix("#") for t in (_section(note, "Tags") or "").split()]


def _assert_valid_tags(tags: list[str], source: str) -> None:
    """Obsidian tags, each a phrase of the text (not a stopword), none inside another."""
    spoken = f" {normalise(source)} "
    assert tags
    for tag in tags:
        assert _TAG.match(tag), tag
        assert f" {tag.replace('-', ' ')} " in spoken, tag
        assert not set(tag.split("-")) <= STOPWORDS, tag
    words = [w for t in tags for w in t.split("-")]
    assert len(words) == len(set(words)), tags  # no tag repeats another's word


def test_jfk_clip_says_its_sentence_once_with_topical_tags(tmp_path: Path) -> None:
    transcript = {"text": JFK, "language": "en", "segments": [
        {"start": 0.0, "end": 8.0, "text": " And so my fellow Americans, ask not what your "
                                           "country can do for you,"},
        {"start": 8.0, "end": 11.0, "text": " ask what you can do for your country."}]}
    note = _note(tmp_path / "vault", "jfk", "jfk", transcript)
    builtin_enrich(note, transcript, {}, timestamp_url=lambda s: None)
    after = note.read_text(encoding="utf-8")

    tags = _tags(after)
    _assert_valid_tags(tags, JFK)
    assert tags[0] == "fellow-americans"  # the phrase, not `fellow` and `americans`
    region = notes.enrichment_region(after)
    assert region.lower().count("ask not what your country") == 1
    assert _section(after, "Key Points") is None and _section(after, "Notable Quotes") is None
    outcome = check_enrichment(note)
    assert outcome.passed, outcome.reason
    assert "Key Points and Notable Quotes (would repeat the summary)" in outcome.reason


def test_check_refuses_omissions_the_builtin_would_not_make(tmp_path: Path) -> None:
    """Omitting sections is the builtin's documented rule for short clips, nothing more: an
    agent's note, or a builtin note whose summary is not the whole transcript, needs all six."""
    works = _speeches()
    text = " ".join(works["Abraham Lincoln, Address at Gettysburg (1863)"])
    transcript = _segments(text)
    note = _note(tmp_path / "vault", "gettysburg", "Gettysburg", transcript)
    builtin_enrich(note, transcript, {}, timestamp_url=lambda s: None)
    full = note.read_text(encoding="utf-8")
    assert check_enrichment(note).passed and allowed_omissions(full) == ()

    cut = re.sub(r"^## Key Points\n.*?(?=^## )", "", full, flags=re.M | re.S)
    note.write_text(cut, encoding="utf-8")
    assert check_enrichment(note).reason == "missing sections: Key Points"

    # An agent that leaves out what repeats a clip's summary still fails: it promised six.
    clip = {"text": JFK, "language": "en",
            "segments": [{"start": 0.0, "end": 11.0, "text": " " + JFK}]}
    jfk = _note(tmp_path / "other", "jfk", "jfk", clip)
    builtin_enrich(jfk, clip, {}, timestamp_url=lambda s: None)
    assert check_enrichment(jfk).passed
    jfk.write_text(jfk.read_text(encoding="utf-8").replace("enriched_by: builtin",
                                                           "enriched_by: pi"), encoding="utf-8")
    assert check_enrichment(jfk).reason == "missing sections: Key Points, Notable Quotes"


@pytest.mark.parametrize("work, topical", [
    ("Patrick Henry", {"liberty", "peace", "slavery", "war", "freedom"}),
    ("Walden", {"quiet-desperation", "simplicity", "living", "labors", "life"}),
    ("Declaration of Independence", {"rights", "government", "tyranny", "colonies",
                                     "legislature", "unalienable-rights", "laws"}),
])
def test_longer_talks_get_topical_phrases_and_distinct_points(
        tmp_path: Path, work: str, topical: set[str]) -> None:
    works = _speeches()
    name = next((k for k in works if work in k), None)
    if name is None:
        pytest.skip(f"{work} is not in bench/speech_text.txt")
    text = " ".join(works[name])
    transcript = _segments(text)
    note = _note(tmp_path / "vault", "talk", "A reading", transcript)
    builtin_enrich(note, transcript, {}, timestamp_url=lambda s: None)
    after = note.read_text(encoding="utf-8")

    tags = _tags(after)
    _assert_valid_tags(tags, text)
    assert len(tags) >= 4
    assert topical & set(tags[:4]), tags  # the talk's subject ranks near the top
    # ranked by meaning, not by counts: the most repeated content word is not simply first
    assert tags == keyphrase_tags(split_sentences(transcript), "A reading")
    assert tag_form("Natural Selection") == "natural-selection" and tag_form("1776 war") is None

    summary = _section(after, "Executive Summary")
    points = [re.sub(r"^- (\*\*[^*]+\*\* )?", "", p)
              for p in _section(after, "Key Points").splitlines()]
    assert len(points) >= 2 and len(set(points)) == len(points)
    for point in points:  # no point repeats a summary sentence
        assert normalise(point.removesuffix(" …")) not in normalise(summary), point
    quotes = re.findall(r'^> "(.+)"', _section(after, "Notable Quotes"), re.M)
    assert quotes and all(normalise(q) not in normalise(summary) for q in quotes)
    assert check_enrichment(note).passed
