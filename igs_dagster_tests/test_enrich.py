"""Enrichment: the offline builtin enricher and the agent path with stand-in agent CLIs."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import pytest

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import AgentSettings
from igs_dagster.video import notes
from igs_dagster.video.enrich import SECTIONS, agent_enrich, builtin_enrich, check_enriched
from igs_dagster.video.enrich.builtin import REPEATING_SECTIONS, allowed_omissions
from igs_dagster.video.enrich.noteedit import present_sections
from igs_dagster.video.frontmatter import dump_frontmatter, split_frontmatter
from igs_dagster_tests.test_notes import UNKNOWN_SOURCE, make_input

FIXTURES = Path(__file__).parent / "fixtures" / "enrich"
JFK_ID = "jfkSample01"
LONG_ID = "longTalk001"


def _url_for(video_id: str):
    return lambda s: f"https://www.youtube.com/watch?v={video_id}&t={s}s"


def _load_json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- long transcript

_FILLERS = (
    "So let's keep going.",
    "Okay, here is the next passage.",
    "Um, that matters more than it sounds.",
    "Think about that for a moment.",
    "Let me read that line again, because it is worth hearing twice.",
    "And this is where it gets interesting.",
)


def _bank() -> list[list[str]]:
    text = (FIXTURES / "paragraph_bank.txt").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    paragraphs = [p.strip() for p in "\n".join(lines).split("\n\n") if p.strip()]
    return [re.split(r"(?<=[.!?])\s+", " ".join(p.split())) for p in paragraphs]


def long_transcript(minutes: float = 40.0, seed: int = 1863) -> dict:
    """A deterministic ~40-minute Whisper-like transcript: passages of a public-domain
    paragraph bank in varied combinations, cut into 6-16 word segments that do not
    follow sentence boundaries, at ~2.5 words/s with small pauses."""
    rng = random.Random(seed)
    bank = _bank()
    words: list[str] = []
    budget = int(minutes * 60 * 2.5)
    while len(words) < budget:
        paragraph = bank[rng.randrange(len(bank))]
        first = rng.randrange(len(paragraph))
        run = paragraph[first : first + rng.randint(2, 4)]
        if rng.random() < 0.35:
            run.insert(rng.randrange(len(run) + 1), rng.choice(_FILLERS))
        for sentence in run:
            words.extend(sentence.split())
    segments = []
    t = 0.0
    i = 0
    while i < len(words) and t < minutes * 60:
        n = rng.randint(6, 16)
        chunk = words[i : i + n]
        i += n
        dur = len(chunk) / rng.uniform(2.2, 2.9)
        segments.append(
            {"start": round(t, 2), "end": round(t + dur, 2), "text": " " + " ".join(chunk)}
        )
        t += dur + rng.choice((0.0, 0.0, 0.2, 0.4, 0.8))
    return {
        "text": " ".join(s["text"].strip() for s in segments),
        "segments": segments,
        "language": "en",
        "model": "tiny.en",
        "backend": "faster-whisper",
        "duration": segments[-1]["end"],
        "rtf": 0.05,
        "elapsed_s": 120.0,
        "created_at": "2026-11-24T10:00:00+00:00",
    }


LONG_META = {
    "title": "Founding Words and Natural History: a Reading",
    "channel": "Public Domain Readings",
    "channel_url": "https://www.youtube.com/channel/UCpublicDomainReads",
    "uploader": "pd-readings",
    "upload_date": "20251104",
    "description": (
        "Readings from Lincoln, Roosevelt, Thoreau, Darwin and Emerson.\n\n"
        "Texts: https://www.gutenberg.org/ebooks/205 and https://www.gutenberg.org/ebooks/1228."
    ),
    "chapters": [
        {"start_time": 0.0, "end_time": 600.0, "title": "Speeches"},
        {"start_time": 600.0, "end_time": 1500.0, "title": "Walden"},
        {"start_time": 1500.0, "end_time": 2400.0, "title": "On the Origin of Species"},
    ],
    "tags": ["reading"],
    "source_url": f"https://www.youtube.com/watch?v={LONG_ID}",
    "extractor": "youtube",
}


def _write_long_note(folder: Path, transcript: dict) -> Path:
    inp = notes.NoteInput(
        video_id=LONG_ID,
        title=LONG_META["title"],
        source_label="youtube",
        source_url=LONG_META["source_url"],
        channel=LONG_META["channel"],
        published=LONG_META["upload_date"],
        duration=transcript["duration"],
        archive_path=f"archive/youtube/{LONG_ID}/reading.mp4",
        transcribed="2026-11-24",
        tags=["video", "youtube"],
        timestamp_url=_url_for(LONG_ID),
    )
    folder.mkdir(parents=True, exist_ok=True)
    return notes.write_note(folder.parent.parent, "founding-words", inp, transcript)


# --------------------------------------------------------------------------- checks


def _section(text: str, name: str) -> str:
    match = re.search(
        rf"^## {re.escape(name)}\n(.*?)(?=^## |^<!-- igs:transcript -->)", text, re.M | re.S
    )
    assert match, f"section {name} missing"
    return match.group(1).strip()


def _segment_at(transcript: dict, pos: int) -> dict:
    """The segment whose text contains character `pos` of the space-joined transcript."""
    offset = 0
    for seg in transcript["segments"]:
        offset += len(" ".join(seg["text"].split())) + 1
        if pos < offset:
            return seg
    raise AssertionError(pos)


def _assert_enriched_note(
    before: str, after: str, transcript: dict, video_id: str, omitted: tuple[str, ...] = ()
) -> None:
    # An agent must write all six sections; the builtin leaves out only what would repeat
    # its summary, and the enriched_summary check accepts exactly that.
    agent_rule = check_enriched(before, after)
    assert agent_rule == (f"missing sections: {', '.join(omitted)}" if omitted else None)
    assert allowed_omissions(after) == omitted
    for name in SECTIONS:
        assert bool(re.search(rf"^## {re.escape(name)}$", after, re.M)) != (name in omitted), name
    assert notes.transcript_block(after) == notes.transcript_block(before)
    old_fm, _ = split_frontmatter(before)
    fm, _ = split_frontmatter(after)
    assert fm["enriched_by"] == "builtin"
    for key, value in old_fm.items():
        if key not in ("enriched_by", "tags"):
            assert fm[key] == value, key
    assert fm["tags"][: len(old_fm["tags"])] == old_fm["tags"]
    # The frontmatter stays in notes.py's own style (a re-render would not change it).
    assert after.startswith(dump_frontmatter(fm))
    # Every tag in the Tags section is in the frontmatter too.
    section_tags = re.findall(r"#([a-z0-9-]+)", _section(after, "Tags"))
    assert section_tags and set(section_tags) <= set(fm["tags"])
    # Quotes are verbatim transcript sentences linking to real segment starts.
    starts = {int(s["start"]) for s in transcript["segments"]}
    joined = " ".join(" ".join(s["text"].split()) for s in transcript["segments"])
    quotes = re.findall(
        r'^> "(.+)" — \[(\d+:\d{2}(?::\d{2})?)\]\((\S+)\)$',
        "" if omitted else _section(after, "Notable Quotes"),
        re.M,
    )
    assert quotes or omitted
    for quote, label, url in quotes:
        assert quote in joined
        assert url.startswith(f"https://www.youtube.com/watch?v={video_id}&t=")
        seconds = int(re.search(r"&t=(\d+)s$", url).group(1))
        assert seconds in starts
        assert label == notes.format_duration(seconds)
        # ...and the quote begins inside a segment that starts at that second.
        begins = [m.start() for m in re.finditer(re.escape(quote), joined)]
        assert any(int(_segment_at(transcript, pos)["start"]) == seconds for pos in begins)
    # Key points carry timestamp links to real segment starts; with chapters, each chapter's
    # title (and its start) opens its points (issue 22).
    for line in ("" if omitted else _section(after, "Key Points")).splitlines():
        if not line.strip() or re.match(r"^\*\*[^*]+\*\* · \[\d+:\d{2}(?::\d{2})?\]\(\S+\)$", line):
            continue
        match = re.match(r"^- \*\*\[(\d+:\d{2}(?::\d{2})?)\]\((\S+)\)\*\* \S", line)
        assert match, line
        assert int(re.search(r"&t=(\d+)s$", match.group(2)).group(1)) in starts
    # Links in the region are the source, the channel, description links, or timestamps.
    region = notes.enrichment_region(after)
    for url in re.findall(r"\]\((\S+?)\)", region):
        assert url.startswith(
            (
                "https://www.youtube.com/",
                "https://www.jfklibrary.org/",
                "https://www.gutenberg.org/",
            )
        )


# --------------------------------------------------------------------------- builtin


def test_builtin_jfk(jfk_note: Path) -> None:
    before = jfk_note.read_text(encoding="utf-8")
    transcript = _load_json("jfk_transcript.json")
    meta = _load_json("jfk_meta.json")

    result = builtin_enrich(jfk_note, transcript, meta, timestamp_url=_url_for(JFK_ID))
    after = jfk_note.read_text(encoding="utf-8")

    _assert_enriched_note(before, after, transcript, JFK_ID, omitted=REPEATING_SECTIONS)
    assert result.enricher == "builtin"
    assert "TextRank" in result.method
    assert result.sections == [s for s in SECTIONS if s not in REPEATING_SECTIONS]
    assert result.note_path == jfk_note
    assert "ask what you can do for your country" in result.preview
    assert len(result.preview) <= 1500
    json.dumps(result.to_json())

    # The 11 s clip is one sentence: said once (the summary), not three times.
    summary = _section(after, "Executive Summary")
    assert summary.startswith("My fellow Americans, ask not what your country can do for you")
    region = notes.enrichment_region(after)
    assert region.lower().count("ask not what your country") == 1
    assert "**Channel:** IGS Samples" in _section(after, "Speaker Context")
    assert "does not name the speaker" in _section(after, "Speaker Context")
    related = _section(after, "Related")
    assert f"(https://www.youtube.com/watch?v={JFK_ID})" in related
    assert (
        "(https://www.jfklibrary.org/learn/about-jfk/historic-speeches/inaugural-address)"
        in related
    )
    # Topical tags: the phrase, not the most repeated words.
    assert _section(after, "Tags").split() == ["#fellow-americans", "#country"]
    assert split_frontmatter(after)[0]["tags"] == [
        "video", "youtube", "fellow-americans", "country"]

    # Idempotent: a second run writes the same bytes.
    builtin_enrich(jfk_note, transcript, meta, timestamp_url=_url_for(JFK_ID))
    assert jfk_note.read_text(encoding="utf-8") == after


def test_builtin_long_transcript(tmp_path: Path) -> None:
    transcript = long_transcript()
    assert 2350 < transcript["duration"] <= 2410 and len(transcript["segments"]) > 400
    note = _write_long_note(tmp_path / "vault" / "Resources" / "videos", transcript)
    before = note.read_text(encoding="utf-8")

    result = builtin_enrich(note, transcript, LONG_META, timestamp_url=_url_for(LONG_ID))
    after = note.read_text(encoding="utf-8")

    _assert_enriched_note(before, after, transcript, LONG_ID)
    summary = _section(after, "Executive Summary").split("\n\n")
    assert len(summary) == 4  # 3 paragraphs + the method line
    assert summary[-1].startswith("_Extractive summary")
    points = [p for p in _section(after, "Key Points").splitlines() if p.startswith("- ")]
    assert 4 <= len(points) <= 8
    stamps = [int(re.search(r"&t=(\d+)s\)", p).group(1)) for p in points]
    assert stamps == sorted(stamps) and stamps[-1] > 600  # spread over the talk, in order
    quotes = [q for q in _section(after, "Notable Quotes").splitlines() if q.startswith(">")]
    assert 2 <= len(quotes) <= 3 and len(set(quotes)) == len(quotes)
    context = _section(after, "Speaker Context")
    assert (
        "[Public Domain Readings](https://www.youtube.com/channel/UCpublicDomainReads)" in context
    )
    assert "**Uploader:** pd-readings" in context
    # chapters are section breaks of the key points now (their list sits above the transcript)
    assert "Walden" not in context
    key_points = _section(after, "Key Points")
    assert f"**Walden** · [10:00](https://www.youtube.com/watch?v={LONG_ID}&t=600s)" in key_points
    walden = key_points.split("**Walden**", 1)[1].split("\n\n")[0]
    assert all(600 <= int(t) < 1500 for t in re.findall(r"&t=(\d+)s\)\*\*", walden))
    related = _section(after, "Related")
    assert "(https://www.gutenberg.org/ebooks/205)" in related
    assert "(https://www.gutenberg.org/ebooks/1228)" in related  # trailing '.' dropped
    assert len(re.findall(r"#[a-z]", _section(after, "Tags"))) >= 5
    assert len(result.preview) <= 1500 and result.preview.count("\n- ") >= 2

    builtin_enrich(note, transcript, LONG_META, timestamp_url=_url_for(LONG_ID))
    assert note.read_text(encoding="utf-8") == after

    # Deterministic across fresh inputs too; and a notes.py re-render keeps the enrichment.
    other = _write_long_note(tmp_path / "other" / "Resources" / "videos", long_transcript())
    builtin_enrich(other, long_transcript(), dict(LONG_META), timestamp_url=_url_for(LONG_ID))
    assert other.read_text(encoding="utf-8") == after
    _write_long_note(tmp_path / "vault" / "Resources" / "videos", transcript)
    assert note.read_text(encoding="utf-8") == after


def test_builtin_pasted_text_without_times(tmp_path: Path) -> None:
    sentences = [s for p in _bank() for s in p][:30]
    transcript = {
        "text": " ".join(sentences),
        "segments": [{"start": None, "end": None, "text": s} for s in sentences],
        "language": "en",
    }
    inp = make_input(video_id="pasted-0001", title="Pasted notes", source_label="text",
                     tags=["text"], timestamp_url=lambda s: None, **UNKNOWN_SOURCE)
    note = notes.write_note(tmp_path / "vault", "pasted-notes", inp, transcript)
    before = note.read_text(encoding="utf-8")
    builtin_enrich(note, transcript, {}, timestamp_url=lambda s: None)
    after = note.read_text(encoding="utf-8")
    assert check_enriched(before, after) is None
    region = notes.enrichment_region(after)
    assert "](" not in region and not re.search(r"\b\d+:\d{2}\b", region)  # no invented links/times
    assert "_No links are known for this source._" in region
    assert re.search(r'^> ".+"$', _section(after, "Notable Quotes"), re.M)
    assert notes.transcript_block(after) == notes.transcript_block(before)


def test_builtin_refuses_broken_notes(tmp_path: Path) -> None:
    transcript = _load_json("jfk_transcript.json")
    note = tmp_path / "n.md"
    text = (FIXTURES / "jfk_note.md").read_text(encoding="utf-8")
    note.write_text(text.replace("<!-- igs:transcript -->\n", ""), encoding="utf-8")
    with pytest.raises(PermanentError, match="cannot enrich"):
        builtin_enrich(note, transcript, {}, timestamp_url=_url_for(JFK_ID))
    note.write_text(
        text.replace("tags: [video, youtube]", "tags: [video, youtube"), encoding="utf-8"
    )
    with pytest.raises(PermanentError, match="frontmatter"):
        builtin_enrich(note, transcript, {}, timestamp_url=_url_for(JFK_ID))


def test_builtin_escapes_structure_breaking_text(jfk_note: Path) -> None:
    transcript = {
        "segments": [
            {
                "start": 0.0,
                "end": 4.0,
                "text": "We wrote <!-- igs:transcript --> into the chat today.",
            },
            {
                "start": 4.0,
                "end": 9.0,
                "text": "## Tags is not a heading when we say it out loud, friends.",
            },
        ]
    }
    builtin_enrich(jfk_note, transcript, {}, timestamp_url=_url_for(JFK_ID))
    after = jfk_note.read_text(encoding="utf-8")
    assert len(re.findall(r"^<!-- igs:transcript -->$", after, re.M)) == 1
    assert len(re.findall(r"(?<!\\)<!-- igs:transcript -->", after)) == 1
    assert "We wrote \\<\\!-- igs\\:transcript --\\> into the chat today." in after
    assert present_sections(after) == list(SECTIONS)


# --------------------------------------------------------------------------- check_enriched


def test_check_enriched_reasons() -> None:
    before = (FIXTURES / "jfk_note.md").read_text(encoding="utf-8")
    region = "\n" + "".join(f"text\n\n## {name}\n\n- x\n\n" for name in SECTIONS[1:])
    good = before.replace("\n_Pending enrichment._\n\n", region)
    assert check_enriched(before, good) is None
    assert check_enriched(before, before) == "the note is unchanged"
    assert "frontmatter" in check_enriched(before, good.replace("type: video", "type: [video"))
    assert "keys removed: video_id" in check_enriched(
        before, good.replace('video_id: "jfkSample01"\n', "")
    )
    assert "values changed: video_id" in check_enriched(
        before, good.replace('"jfkSample01"', '"x"')
    )
    assert check_enriched(before, good.replace("ask not", "ask now")) == "transcript block changed"
    assert (
        check_enriched(before, good.split("<!-- igs:transcript -->")[0])
        == "transcript block removed"
    )
    assert check_enriched(before, good.replace("## Notable Quotes", "## Quotes")) == (
        "missing sections: Notable Quotes"
    )


def test_check_enriched_quotes_and_links() -> None:
    before = (FIXTURES / "jfk_note.md").read_text(encoding="utf-8")

    def with_region(quote_lines: str, related: str = "- [Source](https://example.org/a_(b))") -> str:
        region = _GOOD_REGION.replace(
            '> "ask what you can do for your country." — '
            "[0:00](https://www.youtube.com/watch?v=jfkSample01&t=0s)",
            quote_lines,
        ).replace("- [Source](https://www.youtube.com/watch?v=jfkSample01)", related)
        return before.replace("\n_Pending enrichment._\n\n", region)

    # Verbatim up to case, spacing and punctuation, across segment and line breaks: accepted.
    ok = with_region(
        '> "And so, my fellow Americans:\n>  ASK NOT what your country can do for you —" '
        "— [0:00](https://www.youtube.com/watch?v=jfkSample01&t=0s)\n\n"
        "> “ask what you can do for your country” — 0:05"
    )
    assert check_enriched(before, ok) is None
    misquote = with_region('> "ask what your country can do for me" — [0:00](https://x.org/)')
    assert check_enriched(before, misquote) == (
        "quote not in the transcript: 'ask what your country can do for me'"
    )
    partial_word = with_region('> "ask no" — 0:00')  # words, not characters
    assert "quote not in the transcript" in check_enriched(before, partial_word)
    for bad in (
        "- [Profile](www.example.org/jfk)",
        "- [Profile](javascript:alert(1))",
        "- [Profile](https:///nohost)",
        "- see ftp://example.org/file",
        "- [Profile]()",
    ):
        reason = check_enriched(before, with_region('> "ask not" — 0:00', bad))
        assert reason and reason.startswith("link is not a well-formed http(s) URL"), bad
    assert check_enriched(before, with_region('> "ask not"', "- <https://example.org/x>")) is None


# --------------------------------------------------------------------------- agent path

_AGENT_PRELUDE = f"""#!{sys.executable}
import pathlib, re, sys
prompt = sys.stdin.read()
here = pathlib.Path(__file__)
here.with_suffix(".prompt").write_text(prompt)
note = pathlib.Path(re.search(r"Note to edit: `([^`]+)`", prompt).group(1))
text = note.read_text()
"""

_GOOD_REGION = """
The speaker urges citizens to serve their country rather than ask what it can do for them.

## Key Points

- **[0:00](https://www.youtube.com/watch?v=jfkSample01&t=0s)** Service over entitlement.

## Speaker Context

John F. Kennedy, per the description.

## Notable Quotes

> "ask what you can do for your country." — [0:00](https://www.youtube.com/watch?v=jfkSample01&t=0s)

## Related

- [Source](https://www.youtube.com/watch?v=jfkSample01)

## Tags

#civic-duty #inaugural-address

"""

AGENTS = {
    "good": "text = text.replace('\\n_Pending enrichment._\\n\\n', REGION)\n"
    "text = text.replace('enriched_by: null', 'enriched_by: pi')\n"
    "note.write_text(text)\nprint('enriched', note.name)\n",
    "good_no_marker": "text = text.replace('\\n_Pending enrichment._\\n\\n', REGION)\n"
    "note.write_text(text)\n",
    "break_frontmatter": "text = text.replace('\\n_Pending enrichment._\\n\\n', REGION)\n"
    "note.write_text(text.replace('title: ', 'title: [', 1))\n",
    "delete_transcript": "text = text.replace('\\n_Pending enrichment._\\n\\n', REGION)\n"
    "note.write_text(text.split('<!-- igs:transcript -->')[0])\n",
    "noop": "print('nothing to do')\n",
    "crash": "note.write_text(text.replace('_Pending', 'half-written'))\n"
    "print('partial work'); print('Error: model overloaded', file=sys.stderr); sys.exit(3)\n",
    "slow": "note.write_text(text + 'junk')\nimport time\ntime.sleep(60)\n",
}


def _agent(tmp_path: Path, kind: str) -> Path:
    script = tmp_path / "bin" / f"agent-{kind}"
    script.parent.mkdir(exist_ok=True)
    body = _AGENT_PRELUDE + f"REGION = {_GOOD_REGION!r}\n" + AGENTS[kind]
    script.write_text(body, encoding="utf-8")
    script.chmod(0o755)
    return script


def test_agent_accepted(jfk_note: Path, tmp_path: Path) -> None:
    style = tmp_path / "style.md"
    style.write_text("Short sentences. No jargon.\n", encoding="utf-8")
    settings = AgentSettings(tool="pi", timeout_s=60, style_file=style)
    script = _agent(tmp_path, "good")
    transcript_json = FIXTURES / "jfk_transcript.json"

    result = agent_enrich(
        jfk_note,
        "pi",
        settings,
        work_dir=tmp_path / "work",
        transcript_path=transcript_json,
        argv=[str(script)],
    )

    after = jfk_note.read_text(encoding="utf-8")
    fm, _ = split_frontmatter(after)
    assert fm["enriched_by"] == "pi"
    assert result.enricher == "pi" and result.method == "agent: pi"
    assert result.sections == list(SECTIONS)
    assert result.preview.startswith("The speaker urges citizens")
    assert "Service over entitlement." in result.preview
    assert (
        "enriched jfk-inaugural-address-excerpt.md"
        in (tmp_path / "work" / "agent-output.log").read_text()
    )
    prompt = script.with_suffix(".prompt").read_text(encoding="utf-8")
    # the agent edits a copy in its own workspace (issue 23), never the vault note itself
    workspace = tmp_path / "work" / "workspace"
    assert str((workspace / jfk_note.name).resolve()) in prompt
    assert str(jfk_note.resolve()) not in prompt
    assert str((workspace / "transcript.json").resolve()) in prompt
    assert "Short sentences. No jargon." in prompt
    assert all(f"## {name}" in prompt for name in SECTIONS)
    assert "<!-- igs:transcript -->" in prompt and "enriched_by: pi" in prompt
    assert "$" not in prompt  # every placeholder was filled


def test_agent_enriched_by_set_when_agent_forgets(jfk_note: Path, tmp_path: Path) -> None:
    before = jfk_note.read_text(encoding="utf-8")
    result = _enrich(jfk_note, tmp_path, "claude", "good_no_marker", AgentSettings(timeout_s=60))
    after = jfk_note.read_text(encoding="utf-8")
    assert split_frontmatter(after)[0]["enriched_by"] == "claude"
    assert after.replace("enriched_by: claude", "enriched_by: null") != before
    assert notes.transcript_block(after) == notes.transcript_block(before)
    assert result.enricher == "claude"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("break_frontmatter", "frontmatter broken"),
        ("delete_transcript", "transcript block removed"),
        ("noop", "the note is unchanged"),
    ],
)
def test_agent_rejected_and_restored(
    jfk_note: Path, tmp_path: Path, kind: str, reason: str
) -> None:
    original = jfk_note.read_bytes()
    with pytest.raises(PermanentError) as info:
        _enrich(jfk_note, tmp_path, "codex", kind, AgentSettings(timeout_s=60))
    message = str(info.value)
    assert message.startswith("agent codex enrichment rejected: ")
    assert reason in message and message.endswith("; note restored")
    assert "\n" not in message
    assert jfk_note.read_bytes() == original


def _enrich(note: Path, tmp_path: Path, tool: str, behaviour: str, settings: AgentSettings,
            **kw):
    """agent_enrich through a stand-in agent that behaves as `behaviour` says."""
    return agent_enrich(note, tool, settings, work_dir=tmp_path / "work",
                        argv=[str(_agent(tmp_path, behaviour))], **kw)


def test_agent_failure_restores_and_is_transient(jfk_note: Path, tmp_path: Path) -> None:
    original = jfk_note.read_bytes()
    with pytest.raises(RuntimeError, match=r"agent pi exited with code 3: Error: model overloaded"):
        _enrich(jfk_note, tmp_path, "pi", "crash", AgentSettings(timeout_s=60))
    assert jfk_note.read_bytes() == original


def test_agent_timeout_restores_and_is_transient(jfk_note: Path, tmp_path: Path) -> None:
    original = jfk_note.read_bytes()
    with pytest.raises(RuntimeError, match=r"agent pi timed out after 1\.5s") as info:
        _enrich(jfk_note, tmp_path, "pi", "slow", AgentSettings(timeout_s=1.5))
    assert not isinstance(info.value, PermanentError)
    assert jfk_note.read_bytes() == original


def test_agent_missing_style_file_is_permanent(jfk_note: Path, tmp_path: Path) -> None:
    settings = AgentSettings(timeout_s=60, style_file=tmp_path / "nope.md")
    with pytest.raises(PermanentError, match="style_file"):
        _enrich(jfk_note, tmp_path, "pi", "good", settings)


def test_builtin_tags_prefer_recurring_phrases(jfk_note: Path) -> None:
    lines = [
        "Machine learning changed how we build search engines at work.",
        "Most teams now train machine learning models on their own logs.",
        "The cost of machine learning is mostly data cleaning, not compute.",
        "Search engines still need careful evaluation by people who read results.",
        "Thank you.",
    ]
    transcript = {
        "segments": [
            {"start": 5.0 * i, "end": 5.0 * i + 4.5, "text": text} for i, text in enumerate(lines)
        ]
    }
    builtin_enrich(jfk_note, transcript, {}, timestamp_url=_url_for(JFK_ID))
    after = jfk_note.read_text(encoding="utf-8")
    tags = _section(after, "Tags").split()
    assert set(tags) == {"#machine-learning", "#search-engines"}  # the two topics, once each
    assert "machine-learning" in split_frontmatter(after)[0]["tags"]
    assert "Thank you" not in _section(after, "Key Points")


def test_builtin_empty_transcript_and_hand_edited_frontmatter(jfk_note: Path) -> None:
    text = jfk_note.read_text(encoding="utf-8")
    text = text.replace(
        "tags: [video, youtube]\n", "tags:\n  - video\n  - youtube\nrating: 5  # mine\n"
    )
    jfk_note.write_text(text, encoding="utf-8")
    result = builtin_enrich(
        jfk_note, {"text": "", "segments": []}, {}, timestamp_url=_url_for(JFK_ID)
    )
    after = jfk_note.read_text(encoding="utf-8")
    fm, _ = split_frontmatter(after)
    assert fm["enriched_by"] == "builtin" and fm["tags"] == ["video", "youtube"]
    assert "rating: 5  # mine\n" in after  # other lines are kept byte for byte
    assert result.sections == list(SECTIONS)
    assert "_The transcript is empty; there is nothing to summarize._" in after
    assert "Extractive summary" not in after
    assert notes.transcript_block(after) == notes.transcript_block(text)


def test_agent_cancelled_is_transient(jfk_note: Path, tmp_path: Path) -> None:
    original = jfk_note.read_bytes()
    cancel = tmp_path / "cancel"
    cancel.touch()
    with pytest.raises(RuntimeError, match="agent pi was cancelled"):
        _enrich(jfk_note, tmp_path, "pi", "good", AgentSettings(timeout_s=60), cancel_file=cancel)
    assert jfk_note.read_bytes() == original
