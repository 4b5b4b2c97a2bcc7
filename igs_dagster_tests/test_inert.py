"""Issue 23, finding 1: untrusted text stays inert in every note.

A feed description, a pasted transcript, channel and uploader names, chapter titles and the
built-in enricher's Speaker Context reached notes as live Obsidian markup (```` ```dataviewjs ````
blocks that Dataview runs as JavaScript, `$$` math, tags, wiki links, embeds, `%%` comments,
`==` highlights). `inert.inert(text, place)` is the one function every writer uses; the property
test renders its output in each place with a CommonMark parser (markdown-it) and scans it for
Obsidian's own syntax, over generated strings."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from igs_dagster.core import inert
from igs_dagster.video import notes
from igs_dagster.video.daily import link_daily
from igs_dagster.video.enrich.builtin import builtin_enrich
from igs_dagster.video.frontmatter import dump_frontmatter, split_frontmatter

MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")
# the syntax trees a Markdown place may never hold (markdown-it's token types)
LIVE_TOKENS = {"fence", "code_block", "code_inline", "html_block", "html_inline", "hr",
               "ordered_list_open", "image", "s_open", "lheading_open"}
# Obsidian and Dataview syntax that CommonMark does not know, found in the source with
# backslash-escaped characters taken out
OBSIDIAN = {
    "wiki link or embed": re.compile(r"\[\["),
    "comment": re.compile(r"%%"),
    "highlight": re.compile(r"=="),
    "math": re.compile(r"\$"),
    "code": re.compile(r"`|~~~"),
    "tag": re.compile(r"(?:^|(?<=\s))#[^\s#]"),
    "html": re.compile(r"<"),
    "dataview field": re.compile(r"::"),
    "block id or footnote": re.compile(r"\^"),
    "url scheme": re.compile(r"(?<![A-Za-z0-9+.-])(?!https?://)[A-Za-z][A-Za-z0-9+.-]*:(?=\S)", re.I),
}
TEMPLATES = {  # where each place's text goes, as the writers put it
    "cell": "| Title |\n|---|\n| {x} |\n",
    "item": "- {x}\n",
    "paragraph": "{x}\n",
    "callout": "> [!info] Source\n> {x}\n",
    "heading": "# {x}\n",
    "link_label": "[{x}](https://example.com/source)\n",
    "transcript": "> [!note]- Transcript\n> **[0:01](https://example.com/t)** {x}\n",
}
HOSTILE = [
    "```dataviewjs\ndv.el('b', 'pwned')\n```", "`$= dv.pages().length`", "`= this.file.name`",
    "$$\\frac{1}{2}$$", "$x$", "#tag", "#", "[[Secret note]]", "![[embed.png]]", "%%hidden%%",
    "==marked==", "<script>alert(1)</script>", "<!-- igs:transcript -->", "javascript:alert(1)",
    "obsidian://open?vault=x", "file:///etc/passwd", "data:text/html,x", "mailto:a@b.c",
    "https://ok.example/x", "key:: value", "[key:: value]", "---", "===", "1. item", "- item",
    "+ item", "> quote", "| a | b |", "[x](javascript:alert(1))", "<https://a.b>", "~~~",
    "[^1]", "^block-id", "\\", "&amp;", "&#x5b;&#x5b;x]]", "*a* _b_", "[!note]", "    code",
    "\n\n", "\t", "\u2028", "\x1b[31m", "a@b.example",
]
_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12),
                           st.text(alphabet="`*_~=^$|&<>[]!%#@:-+.()\\/ abc019\n", max_size=12)),
                 max_size=8).map("".join)
PROPERTY = hsettings(max_examples=150, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow])


def unescaped(source: str) -> str:
    """`source` with every backslash escape (backslash + ASCII punctuation) blanked out."""
    return re.sub(r"\\[!-/:-@\[-`{-~]", "\x00\x00", source)


def obsidian_syntax(source: str) -> list[str]:
    bare = unescaped(source)
    return [name for name, pattern in OBSIDIAN.items() if pattern.search(bare)]


def _tokens(source: str):
    for token in MD.parse(source):
        yield token
        yield from token.children or []


def visible_words(source: str) -> Counter:
    text = " ".join(t.content for t in _tokens(source) if t.type == "text")
    return Counter(re.findall(r"\w+", text))


def words(text: str) -> Counter:
    return Counter(re.findall(r"\w+", inert.clean_line(text)))


def _link_targets(source: str) -> list[str]:
    return [t.attrGet("href") for t in _tokens(source) if t.type == "link_open"]


@pytest.mark.parametrize("place", sorted(TEMPLATES))
@PROPERTY
@given(text=_text)
def test_property_inert_text_in_every_markdown_place(place: str, text: str) -> None:
    out = inert.inert(text, place)
    assert "\n" not in out and "\r" not in out
    assert obsidian_syntax(out) == [], (text, out)
    source = TEMPLATES[place].format(x=out)
    empty = TEMPLATES[place].format(x="")
    live = {t.type for t in _tokens(source)} & LIVE_TOKENS
    assert not live, (text, out, live)
    assert _link_targets(source) == _link_targets(empty), (text, out)  # no link of its own
    structure = [t.type for t in MD.parse(source) if t.nesting != 0]
    plain_word = TEMPLATES[place].format(x="word")
    assert not out or structure == [t.type for t in MD.parse(plain_word) if t.nesting != 0], (
        text, out)
    assert visible_words(source) - visible_words(empty) == words(text), (text, out)


@PROPERTY
@given(text=_text)
def test_property_inert_frontmatter_value(text: str) -> None:
    out = inert.inert(text, "frontmatter")
    value = split_frontmatter(dump_frontmatter({"title": out}) + "\n")[0]["title"]
    assert value == out and "\n" not in out
    # Obsidian links [[x]] in a text property, and Dataview renders field values as Markdown
    for marker in ("[[", "]]", "%%", "==", "$$", "`", "<", ">", "::", "~~"):
        assert marker not in out, (text, out, marker)
    assert not re.search(r"(?:^|\s)#[^\s#]|\$\S", out), (text, out)
    assert not OBSIDIAN["url scheme"].search(out), (text, out)
    assert words(out) == words(text), (text, out)


def test_unknown_place_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown place"):
        inert.inert("x", "footer")  # type: ignore[arg-type]


# ---- the note writers with the payloads (fails on the code before issue 23) -----------

def _payload(tag: str) -> str:
    """Every live construct of the issue, marked with `tag` so a survivor names its source."""
    return (f"```dataviewjs dv.el('b','{tag}') ``` $${tag}$$ #{tag}tag [[{tag}Link]] "
            f"![[{tag}Embed]] %%{tag}Comment%% =={tag}Mark== <b>{tag}</b> "
            f"javascript:{tag}() `$= {tag}` {tag}Field:: x")


SURVIVORS = {  # what must not appear, with escapes blanked out, for a payload tagged `tag`
    "code": lambda t: "```" in t or "`$=" in t, "math": lambda t: "$$" in t,
    "tag": lambda t: re.search(r"(?<!\S)#[A-Za-z]", t) is not None,
    "wiki link": lambda t: "[[" in t, "comment": lambda t: "%%" in t, "highlight": lambda t: "==" in t,
    "html": lambda t: "<b>" in t, "scheme": lambda t: "javascript:" in t, "field": lambda t: "::" in t,
}
CHANNEL_URL = "https://example.com/channel"


def _hostile_note(tmp_path: Path) -> tuple[Path, str]:
    pasted = "\n\n".join(["```dataviewjs", "dv.el('b', 'Pasted')", "```", "$$", "Pasted", "$$",
                          _payload("Pasted")])
    segments = [{"start": 0.0, "end": 4.0, "text": _payload("Spoken")},
                {"start": None, "end": None, "text": "```dataviewjs"}]
    segments += [{"start": None, "end": None, "text": p} for p in pasted.split("\n\n")]
    transcript = {"text": " ".join(s["text"] for s in segments), "segments": segments}
    inp = notes.NoteInput(
        video_id="hostile01", title=_payload("Title"), source_label="podcast",
        source_url="https://example.com/ep.mp3", channel=_payload("Channel"), published=None,
        duration=11.0, archive_path="/archive/2026/hostile", transcribed="2026-11-24",
        tags=["video"], timestamp_url=lambda s: f"https://example.com/ep.mp3#t={s}",
        description="\n".join(["```dataviewjs", "dv.el('b','Descr')", "```", _payload("Descr")]),
        chapters=[{"title": _payload("Chapter"), "start_time": 0.0}],  # the note's chapter list
    )
    vault = tmp_path / "vault"
    path = notes.write_note(vault, "hostile", inp, transcript)
    meta = {"title": _payload("Title"), "channel": _payload("Channel"),
            "uploader": _payload("Uploader"), "channel_url": CHANNEL_URL,
            "description": _payload("Descr"), "extractor": "generic",
            "chapters": [{"title": _payload("Chapter"), "start_time": 0.0}],
            "webpage_url": "https://example.com/ep.mp3"}
    transcript_named = {"segments": [*segments, {"start": 5.0, "end": 9.0,
                                                 "text": "My name is " + _payload("Named")}]}
    builtin_enrich(path, transcript_named, meta,
                   timestamp_url=lambda s: f"https://example.com/ep.mp3#t={s}")
    link_daily(vault, "2026-11-24", "hostile", _payload("Daily"), _payload("DailyCh"), 11)
    return path, (vault / "Daily" / "2026-11-24.md").read_text(encoding="utf-8")


def test_hostile_text_in_every_note_writer_stays_inert(tmp_path: Path) -> None:
    note, daily = _hostile_note(tmp_path)
    text = note.read_text(encoding="utf-8")
    meta, body = split_frontmatter(text)
    tokens = {t.type for t in _tokens(body)}
    assert not tokens & {"fence", "code_block", "code_inline", "html_inline"}, tokens
    html = [t.content.strip() for t in _tokens(body) if t.type == "html_block"]
    assert html == [notes.TRANSCRIPT_MARKER], html  # only our own region marker
    assert daily.count("[[hostile]]") == 1
    bare = unescaped(body + daily.replace("[[hostile]]", "our-link"))
    cases = 0
    for source in ("Title", "Channel", "Descr", "Spoken", "Pasted", "Uploader", "Chapter",
                   "Named", "Daily", "DailyCh"):
        lines = [line for line in bare.splitlines() if source in line]
        for name, survives in SURVIVORS.items():
            cases += 1
            assert not any(survives(line) for line in lines), (source, name, lines)
    assert cases == 90
    for key in ("title", "channel"):  # frontmatter values: Obsidian's properties view links [[x]]
        assert "[[" not in meta[key] and "`" not in meta[key] and "$$" not in meta[key]
    # the words are all still there for the reader
    assert "TitleLink" in body and "DescrComment" in body and "SpokenMark" in body
    # the enrichment region's own links are only the http(s) ones it was given
    region = notes.enrichment_region(text) or ""
    hrefs = {t.attrGet("href") for t in _tokens(region) if t.type == "link_open"}
    assert all(h.startswith("https://") for h in hrefs), hrefs
