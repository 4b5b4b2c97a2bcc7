"""Enrich a video note: summary, key points, speaker context, quotes, links and tags.

Two enrichers fill the note's enrichment region (between the `## Executive Summary` heading
line and `<!-- igs:transcript -->`):

- `builtin_enrich`: offline and deterministic. Sentences of the transcript are ranked with a
  TextRank-style graph (sentences are nodes, shared content words weight the edges, PageRank
  scores them); the top ones, in their original order, make the summary, key points and
  quotes. Same inputs, same bytes.
- `agent_enrich`: an AI agent CLI (pi, claude, codex) edits the note in place from the prompt
  in `prompts/enrich.md`; `check_enriched` then accepts the edit or the original bytes are
  restored.

Both keep the frontmatter (only `enriched_by` and `tags` change) and the transcript block
byte-identical, and write atomically.
"""

from __future__ import annotations

import bisect
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import yaml

from igs_dagster import fsutil, notes
from igs_dagster.errors import PermanentError
from igs_dagster.settings import AgentSettings

SECTIONS = (
    "Executive Summary",
    "Key Points",
    "Speaker Context",
    "Notable Quotes",
    "Related",
    "Tags",
)
TRANSCRIPT_MARKER = notes.TRANSCRIPT_MARKER
SUMMARY_HEADING = notes.SUMMARY_HEADING
PROMPT_FILE = Path(__file__).parent / "prompts" / "enrich.md"
AGENT_LOG_NAME = "agent-output.log"
BUILTIN_METHOD = "extractive: TextRank-style sentence ranking (word-overlap graph, PageRank)"
METHOD_NOTE = (
    "_Extractive summary: transcript sentences ranked by a TextRank-style word-overlap graph, "
    "shown in their original order._"
)
PREVIEW_MAX = 1500
STYLE_MAX_CHARS = 20_000


@dataclass
class EnrichResult:
    enricher: str  # "builtin" or the agent tool name
    method: str
    duration_s: float
    note_path: Path
    preview: str
    sections: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "enricher": self.enricher,
            "method": self.method,
            "duration_s": round(self.duration_s, 3),
            "note_path": str(self.note_path),
            "preview": self.preview,
            "sections": list(self.sections),
        }


# --------------------------------------------------------------------------------------------
# Note structure (frontmatter, enrichment region, transcript block)
# --------------------------------------------------------------------------------------------


def _frontmatter_yaml_bounds(text: str) -> tuple[int, int]:
    """Offsets of the YAML between the frontmatter's `---` lines (as notes.split_frontmatter)."""
    notes.split_frontmatter(text)  # PermanentError when missing or invalid
    close = text.find("\n---\n", 3)
    return 4, (close + 1 if close != -1 else len(text) - 3)


def _region_bounds(text: str) -> tuple[int, int]:
    """Offsets of the enrichment region (see notes.enrichment_region)."""
    region = notes.enrichment_region(text)
    if region is None:
        raise PermanentError(
            f"note has no '{SUMMARY_HEADING}' heading followed by the "
            f"'{TRANSCRIPT_MARKER}' marker: cannot enrich it"
        )
    end = len(text) - len(notes.transcript_block(text))
    return end - len(region), end


def _render_key(key: str, value: Any) -> str:
    """`key: value` on one line, collections in flow style (`tags: [video, youtube]`)."""
    flow = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=2**31)
    return f"{key}: {flow.strip()[1:-1]}"


def _set_frontmatter(text: str, updates: dict[str, Any]) -> str:
    """Set top-level frontmatter keys, leaving every other line byte-identical."""
    before, _ = notes.split_frontmatter(text)
    start, end = _frontmatter_yaml_bounds(text)
    lines = text[start:end].splitlines(keepends=True)
    for key, value in updates.items():
        rendered = _render_key(key, value) + "\n"
        key_re = re.compile(rf"^{re.escape(key)}[ \t]*:")
        idx = next((i for i, line in enumerate(lines) if key_re.match(line)), None)
        if idx is None:
            lines.append(rendered)
            continue
        stop = idx + 1
        while stop < len(lines) and (
            lines[stop][:1] in (" ", "\t", "-") or not lines[stop].strip()
        ):
            stop += 1
        lines[idx:stop] = [rendered]
    new_text = text[:start] + "".join(lines) + text[end:]
    expected = {**before, **updates}
    try:
        parsed, _ = notes.split_frontmatter(new_text)
    except PermanentError:
        parsed = None
    if parsed != expected:  # unusual layout: re-render the whole block the notes.py way
        _, body = notes.split_frontmatter(text)
        new_text = notes.dump_frontmatter(expected) + body
    return new_text


# --------------------------------------------------------------------------------------------
# Text analysis
# --------------------------------------------------------------------------------------------

STOPWORDS = frozenset(
    """
    a about above across actually after again against ago ah all almost along already also
    although always am among an and another any anybody anyone anything anyway anywhere are
    aren't around as ask asked at away back be became because become been before being below
    between both but by came can can't cannot could couldn't day days did didn't do does
    doesn't doing don't done down during each either else enough even ever every everybody
    everyone everything exactly far few first for from further get gets getting give given go
    goes going gone gonna good got gotta great had hadn't has hasn't have haven't having he
    he'd he'll he's her here here's hers herself him himself his how however i i'd i'll i'm
    i've if in indeed instead into is isn't it it's its itself just keep kind know known
    last later least less let let's like likely little lot lots made make makes making many
    may maybe me mean means might mine more most mostly much must my myself need needs never
    new next no nobody none nor not nothing now of off often oh ok okay old on once one ones
    only onto or other others otherwise our ours ourselves out over own part per perhaps
    pretty probably put quite rather re really right said same saw say saying says see seem
    seemed seems seen several shall she she'd she'll she's should shouldn't since so some
    somebody someone something sometimes somewhat soon sort still such sure take taken tell
    than thank thanks that that's the their theirs them themselves then there there's these
    they they'd they'll they're they've thing things think this those though thought through
    thus to today together too took toward towards try trying two uh um under unless until
    up upon us use used using very via want wanted wants was wasn't way ways we we'd we'll
    we're we've well went were weren't what what's whatever when where whether which while
    who who's whole whom whose why will with within without won't would wouldn't yeah yes
    yet you you'd you'll you're you've your yours yourself yourselves
    """.split()
)
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e u.s u.k no fig inc ltd co gen col lt sgt".split()
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*\s+")
_LEADING_FILLER = re.compile(
    r"^(?:(?:and|but|so|well|um|uh|okay|ok|now|yeah|right|like)\b[\s,]*)+", re.IGNORECASE
)
_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+")
_MAX_SENTENCE_WORDS = 60


@dataclass
class _Sentence:
    index: int
    text: str
    start: float | None  # start of the transcript segment the sentence begins in
    words: list[str]  # all word tokens (lowercase)
    terms: frozenset[str]  # normalized content words


def _tokens(text: str) -> list[str]:
    return [w.lower().replace("’", "'").strip("'-") for w in _WORD.findall(text)]


def _term(word: str) -> str | None:
    word = word.removesuffix("'s")
    if len(word) < 3 or word in STOPWORDS or word.isdigit():
        return None
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word


def _joined_segments(transcript: dict) -> tuple[str, list[int], list[float | None]]:
    """Join segment texts with single spaces; return (text, char offsets, start times)."""
    segments = [s for s in transcript.get("segments") or [] if str(s.get("text") or "").strip()]
    if not segments:
        return " ".join(str(transcript.get("text") or "").split()), [0], [None]
    parts: list[str] = []
    offsets: list[int] = []
    starts: list[float | None] = []
    pos = 0
    for seg in segments:
        piece = " ".join(str(seg["text"]).split())
        offsets.append(pos)
        start = seg.get("start")
        starts.append(float(start) if isinstance(start, int | float) else None)
        parts.append(piece)
        pos += len(piece) + 1
    return " ".join(parts), offsets, starts


def _split_sentences(transcript: dict) -> list[_Sentence]:
    text, offsets, starts = _joined_segments(transcript)
    spans: list[tuple[int, int]] = []
    begin = 0
    for match in _BOUNDARY.finditer(text):
        words_before = text[begin : match.start()].split()
        last = words_before[-1].lower().rstrip(".") if words_before else ""
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue  # "Dr. Smith", "J. F. Kennedy"
        spans.append((begin, match.end()))
        begin = match.end()
    if begin < len(text):
        spans.append((begin, len(text)))
    # Unpunctuated transcripts: cut over-long "sentences" at segment boundaries or word counts.
    pieces: list[tuple[int, int]] = []
    for lo, hi in spans:
        while len(text[lo:hi].split()) > _MAX_SENTENCE_WORDS:
            cut = _long_sentence_cut(text, lo, hi, offsets)
            pieces.append((lo, cut))
            lo = cut
        pieces.append((lo, hi))
    sentences: list[_Sentence] = []
    for lo, hi in pieces:
        chunk = text[lo:hi]
        stripped = chunk.strip()
        if not stripped:
            continue
        lo += len(chunk) - len(chunk.lstrip())
        seg = max(0, bisect.bisect_right(offsets, lo) - 1)
        words = _tokens(stripped)
        if not words:
            continue
        terms = frozenset(t for t in (_term(w) for w in words) if t)
        sentences.append(_Sentence(len(sentences), stripped, starts[seg], words, terms))
    return sentences


def _long_sentence_cut(text: str, lo: int, hi: int, offsets: list[int]) -> int:
    """A cut point after ~30-60 words: a segment boundary if one falls there, else a space."""
    word_starts = [m.start() + lo for m in re.finditer(r"\S+", text[lo:hi])]
    low, high = word_starts[30], word_starts[_MAX_SENTENCE_WORDS]
    boundary = [o for o in offsets if low <= o <= high]
    return boundary[-1] if boundary else word_starts[40]


def _textrank(sentences: list[_Sentence], damping: float = 0.85) -> list[float]:
    """PageRank over a graph whose edge weights are shared content words, normalized by
    sentence length (Mihalcea & Tarau 2004): w(i, j) = |Ti ∩ Tj| / (log|Si| + log|Sj|)."""
    n = len(sentences)
    if n == 0:
        return []
    postings: dict[str, list[int]] = {}
    for s in sentences:
        for term in sorted(s.terms):
            postings.setdefault(term, []).append(s.index)
    overlap: list[Counter[int]] = [Counter() for _ in range(n)]
    # On long inputs a word in more than a fifth of all sentences says little about any of
    # them (and costs O(df^2)): leave it out, like a stopword.
    common = max(40, n // 5)
    for ids in postings.values():
        if 1 < len(ids) <= common:
            for i in ids:
                counter = overlap[i]
                for j in ids:
                    if j != i:
                        counter[j] += 1
    lengths = [math.log(1 + len(s.words)) for s in sentences]
    edges: list[list[tuple[int, float]]] = []
    for i in range(n):
        row = [(j, c / (lengths[i] + lengths[j])) for j, c in sorted(overlap[i].items())]
        edges.append(row)
    out_weight = [sum(w for _, w in row) for row in edges]
    scores = [1.0 / n] * n
    for _ in range(100):
        dangling = sum(scores[i] for i in range(n) if out_weight[i] == 0)
        base = (1 - damping) / n + damping * dangling / n
        new = [base] * n
        for j in range(n):
            if out_weight[j]:
                share = damping * scores[j] / out_weight[j]
                for i, w in edges[j]:
                    new[i] += share * w
        delta = max(abs(a - b) for a, b in zip(new, scores, strict=True))
        scores = new
        if delta < 1e-9:
            break
    return scores


def _similar(a: _Sentence, b: _Sentence) -> bool:
    if not a.terms or not b.terms:
        return a.text.lower() == b.text.lower()
    return len(a.terms & b.terms) / len(a.terms | b.terms) > 0.5


def _pick(
    ranked: list[_Sentence],
    count: int,
    *,
    min_words: int = 6,
    max_words: int | None = None,
    min_terms: int = 3,
    avoid: list[_Sentence] | None = None,
) -> list[_Sentence]:
    """The best `count` sentences by rank with at least `min_terms` content words (no
    "Let's keep going."), skipping near-duplicates of ones already chosen or in `avoid`."""
    chosen: list[_Sentence] = []
    avoid = avoid or []
    for s in ranked:
        if len(chosen) >= count:
            break
        if len(s.words) < min_words or (max_words and len(s.words) > max_words):
            continue
        if len(s.terms) < min_terms:
            continue
        if any(_similar(s, c) for c in chosen + avoid):
            continue
        chosen.append(s)
    return chosen


# --------------------------------------------------------------------------------------------
# Markdown helpers
# --------------------------------------------------------------------------------------------


def _safe_md(text: str) -> str:
    """One line, `<` escaped like notes.py does (no HTML comments, no second marker)."""
    return " ".join(text.replace("<", "\\<").split())


def _md_url(url: str) -> str:
    """A link destination; URLs with spaces, parentheses or angle brackets get `<...>`."""
    url = "".join(url.split())
    if any(ch in url for ch in "()<>"):
        return "<" + url.replace("<", "%3C").replace(">", "%3E") + ">"
    return url


def _clean(text: str) -> str:
    """Drop leading fillers ("And so, ...") and capitalize: for summary and key points only."""
    cleaned = _LEADING_FILLER.sub("", text).strip()
    if len(cleaned.split()) < 3:
        cleaned = text.strip()
    cleaned = cleaned.rstrip(",;:—– ")
    return cleaned[:1].upper() + cleaned[1:]


def _shorten(text: str, max_words: int) -> str:
    words = text.split()
    if len(words) <= max_words:
        return text
    return " ".join(words[:max_words]).rstrip(",;:—–") + " …"


def _stamp(start: float | None, timestamp_url: Callable[[int], str | None]) -> str | None:
    if start is None:
        return None
    label = notes.format_duration(int(start))
    url = timestamp_url(int(start))
    return f"[{label}]({_md_url(url)})" if url else label


# --------------------------------------------------------------------------------------------
# Builtin enricher
# --------------------------------------------------------------------------------------------


def _meta_value(meta: dict, fm: dict, *keys: str) -> str | None:
    for source in (meta, fm):
        for key in keys:
            value = source.get(key)
            if value not in (None, ""):
                return str(value).strip()
    return None


def _published(meta: dict, fm: dict) -> str | None:
    upload = str(meta.get("upload_date") or "")
    if re.fullmatch(r"\d{8}", upload):
        return f"{upload[:4]}-{upload[4:6]}-{upload[6:]}"
    value = fm.get("published")
    return str(value) if value else None


def _summary(ranked: list[_Sentence]) -> tuple[list[str], list[_Sentence]]:
    """2-3 short paragraphs: the top sentences (<= 45 words) in their original order."""
    n = len(ranked)
    count = 1 if n <= 3 else min(6, max(2, round(n * 0.03)))
    chosen = _pick(ranked, count, max_words=45)  # short sentences first, then any
    chosen += _pick(ranked, count - len(chosen), avoid=chosen)
    chosen = chosen or _pick(ranked, count, min_words=1, min_terms=0)
    chosen.sort(key=lambda s: s.index)
    if not chosen:
        return ["_The transcript is empty; there is nothing to summarize._"], []
    groups = 1 if len(chosen) <= 2 else 2 if len(chosen) <= 4 else 3
    size = math.ceil(len(chosen) / groups)
    paragraphs = [
        " ".join(_safe_md(_clean(s.text)) for s in chosen[k : k + size])
        for k in range(0, len(chosen), size)
    ]
    return paragraphs, chosen


def _windows(sentences: list[_Sentence], meta: dict) -> list[list[_Sentence]]:
    """Parts of the talk for key points: its chapters (2-8 of them) when sentence times are
    known, else up to 8 equal runs of sentences."""
    chapters = [
        c["start_time"]
        for c in meta.get("chapters") or []
        if isinstance(c, dict) and isinstance(c.get("start_time"), int | float)
    ]
    timed = all(s.start is not None for s in sentences)
    if timed and 2 <= len(chapters) <= 8:
        bounds = sorted(chapters)[1:]
        parts: list[list[_Sentence]] = [[] for _ in range(len(bounds) + 1)]
        for s in sentences:
            parts[bisect.bisect_right(bounds, s.start)].append(s)
        return [p for p in parts if p]
    count = min(8, max(2, len(sentences) // 10), len(sentences))
    if count == 0:
        return []
    size = len(sentences) / count
    return [sentences[round(k * size) : round((k + 1) * size)] for k in range(count)]


def _point_line(text: str, start: float | None, timestamp_url: Callable[[int], str | None]) -> str:
    stamp = _stamp(start, timestamp_url)
    text = _safe_md(_clean(_shorten(text, 30)))
    return f"- **{stamp}** {text}" if stamp else f"- {text}"


def _key_points(
    transcript: dict,
    sentences: list[_Sentence],
    scores: list[float],
    summary: list[_Sentence],
    meta: dict,
    timestamp_url: Callable[[int], str | None],
) -> tuple[list[str], list[_Sentence]]:
    """The best sentence of each part of the talk, preferring ones not in the summary."""
    if len(sentences) < 2:
        # A single sentence (a short clip): one point per transcript segment reads better.
        segs = [s for s in transcript.get("segments") or [] if str(s.get("text") or "").strip()]
        if len(segs) >= 2:
            lines = []
            for seg in segs[:8]:
                start = seg.get("start")
                start = start if isinstance(start, int | float) else None
                lines.append(_point_line(" ".join(str(seg["text"]).split()), start, timestamp_url))
            return lines, []
    chosen: list[_Sentence] = []
    windows = _windows(sentences, meta)
    per_window = max(1, 8 // len(windows)) if windows else 1
    for window in windows:
        ranked = sorted(window, key=lambda s: (-scores[s.index], s.index))
        for _ in range(per_window):
            pick = (
                _pick(ranked, 1, avoid=chosen + summary)
                or _pick(ranked, 1, avoid=chosen)
                or _pick(ranked, 1, min_words=3, avoid=chosen)
            )
            chosen += pick
    if not chosen:
        chosen = _pick(
            sorted(sentences, key=lambda s: (-scores[s.index], s.index)),
            1,
            min_words=1,
            min_terms=0,
        )
    chosen.sort(key=lambda s: s.index)
    lines = [_point_line(s.text, s.start, timestamp_url) for s in chosen]
    return lines or ["- _No key points: the transcript is empty._"], chosen


def _quotes(
    ranked: list[_Sentence], used: list[_Sentence], timestamp_url: Callable[[int], str | None]
) -> list[str]:
    """Up to 3 verbatim, quotable (8-35 words) sentences, preferring ones not shown yet."""
    chosen = _pick(ranked, 3, min_words=8, max_words=35, avoid=used)
    if len(chosen) < 2:
        chosen = _pick(ranked, 3, min_words=8, max_words=35) or _pick(
            ranked, 1, min_words=1, min_terms=0
        )
    chosen.sort(key=lambda s: s.index)
    lines = []
    for s in chosen:
        quote = _safe_md(s.text).replace('"', "'")
        stamp = _stamp(s.start, timestamp_url)
        lines.append(f'> "{quote}" — {stamp}' if stamp else f'> "{quote}"')
    # A blank line between quotes: consecutive '>' lines would merge into one blockquote.
    return "\n\n".join(lines).split("\n") if lines else ["_No quotes: the transcript is empty._"]


def _speaker_context(
    meta: dict,
    fm: dict,
    sentences: list[_Sentence],
    timestamp_url: Callable[[int], str | None],
) -> list[str]:
    lines: list[str] = []
    channel = _meta_value(meta, fm, "channel")
    uploader = _meta_value(meta, {}, "uploader")
    channel_url = _http_url(meta.get("channel_url") or meta.get("uploader_url"))
    if channel:
        lines.append(
            f"- **Channel:** [{_safe_md(channel)}]({channel_url})"
            if channel_url
            else f"- **Channel:** {_safe_md(channel)}"
        )
    if uploader and uploader != channel:
        lines.append(f"- **Uploader:** {_safe_md(uploader)}")
    published = _published(meta, fm)
    if published:
        lines.append(f"- **Published:** {published}")
    platform = _meta_value(meta, fm, "extractor", "source")
    if platform:
        lines.append(f"- **Platform:** {_PLATFORMS.get(platform.lower(), platform)}")
    duration = _meta_value({}, fm, "duration")
    if duration:
        lines.append(f"- **Duration:** {duration}")
    description = str(meta.get("description") or "").strip()
    if description:
        first = _URL.sub("", re.split(r"\n\s*\n", description)[0])
        first = _shorten(_safe_md(first), 80)
        if first:
            lines += ["", "From the description:", "", f"> {first}"]
    chapters = [c for c in meta.get("chapters") or [] if isinstance(c, dict) and c.get("title")]
    if chapters:
        lines += ["", "Chapters:", ""]
        for chapter in chapters[:30]:
            start = chapter.get("start_time")
            stamp = _stamp(start if isinstance(start, int | float) else None, timestamp_url)
            title = _safe_md(str(chapter["title"]))
            lines.append(f"- **{stamp}** {title}" if stamp else f"- {title}")
    named = next((s for s in sentences if re.search(r"\bmy name is\b", s.text, re.I)), None)
    if named:
        stamp = _stamp(named.start, timestamp_url)
        where = f" at {stamp}" if stamp else ""
        lines += ["", f'The speaker introduces themselves{where}: "{_safe_md(named.text)}"']
    elif lines:
        lines += [
            "",
            "_The transcript does not name the speaker; this context comes from the video's "
            "metadata only._",
        ]
    else:
        lines.append(
            "_Little is known: no channel, uploader or description metadata is available, "
            "and the transcript does not name the speaker._"
        )
    return lines


_PLATFORMS = {"youtube": "YouTube", "vimeo": "Vimeo", "generic": "web", "text": "pasted text"}


def _http_url(value: Any) -> str | None:
    text = str(value or "").strip()
    return text if re.fullmatch(r"https?://\S+", text) else None


def _related(meta: dict, fm: dict, title: str) -> list[str]:
    links: list[str] = []
    seen: set[str] = set()

    def add(label: str, url: str | None) -> None:
        if url and url not in seen:
            seen.add(url)
            links.append(f"- [{label}]({url})")

    source_url = _http_url(
        meta.get("source_url") or meta.get("webpage_url") or fm.get("source_url")
    )
    add(f"Source: {_link_label(title)}", source_url)
    channel = _meta_value(meta, fm, "channel")
    add(f"Channel: {_link_label(channel or 'channel')}", _http_url(meta.get("channel_url")))
    for match in _URL.findall(str(meta.get("description") or "")):
        url = match.rstrip(".,;:!?")
        add(url, url)
        if len(links) >= 20:
            break
    return links or ["_No links are known for this source._"]


def _link_label(text: str) -> str:
    return _safe_md(text).replace("[", "(").replace("]", ")")


def _keywords(sentences: list[_Sentence], title: str, limit: int = 8) -> list[str]:
    """Tags: frequent two-word phrases (`natural-selection`, at most 3), then frequent words,
    stopwords left out; words of the title count extra. Ties go to the earlier word."""
    counts: Counter[str] = Counter()
    pairs: Counter[str] = Counter()  # in how many DIFFERENT sentences a phrase occurs
    first_seen: dict[str, int] = {}
    pos = 0
    seen_texts: set[str] = set()
    for s in sentences:
        previous: str | None = None
        new_text = s.text.lower() not in seen_texts
        seen_texts.add(s.text.lower())
        sentence_pairs: set[str] = set()
        for word in s.words:
            tag = _tag_form(word)
            if tag:
                counts[tag] += 1
                first_seen.setdefault(tag, pos)
                if previous:
                    sentence_pairs.add(f"{previous}-{tag}")
                    first_seen.setdefault(f"{previous}-{tag}", pos)
            previous = tag
            pos += 1
        if new_text:
            pairs.update(sentence_pairs)
    for word in _tokens(title):
        tag = _tag_form(word)
        if tag and tag in counts:
            counts[tag] += 2  # words in the title are likely the topic

    def order(c: Counter[str]) -> list[str]:
        return sorted(c, key=lambda t: (-c[t], first_seen[t], t))

    phrases = [p for p in order(pairs) if pairs[p] >= 3][:3]
    in_phrases = {part for p in phrases for part in p.split("-")}
    words = [w for w in order(counts) if w not in in_phrases]
    return (phrases + words)[:limit]


def _tag_form(word: str) -> str | None:
    word = word.removesuffix("'s")
    if len(word) < 3 or word in STOPWORDS or "'" in word:
        return None
    tag = re.sub(r"[^a-z0-9-]", "", word.lower()).strip("-")
    if len(tag) < 3 or tag.isdigit() or not tag[0].isalpha():
        return None
    return tag


def _frontmatter_tags(fm: dict) -> list[str]:
    tags = fm.get("tags")
    if isinstance(tags, str):
        return [t for t in re.split(r"[,\s]+", tags) if t]
    if isinstance(tags, list):
        return [str(t) for t in tags if t not in (None, "")]
    return []


def builtin_enrich(
    note_path: Path,
    transcript: dict,
    meta: dict,
    *,
    timestamp_url: Callable[[int], str | None],
) -> EnrichResult:
    """Fill the enrichment region offline; deterministic (same inputs, same bytes)."""
    started = time.monotonic()
    note_path = Path(note_path)
    text = _read_note(note_path)
    fm, _body = notes.split_frontmatter(text)
    region_start, region_end = _region_bounds(text)
    meta = meta or {}

    sentences = _split_sentences(transcript or {})
    scores = _textrank(sentences)
    ranked = sorted(sentences, key=lambda s: (-scores[s.index], s.index))
    title = _meta_value(meta, fm, "title") or note_path.stem

    paragraphs, summary = _summary(ranked)
    points, point_sentences = _key_points(
        transcript or {}, sentences, scores, summary, meta, timestamp_url
    )
    keywords = _keywords(sentences, title)
    blocks = {
        "Executive Summary": ["\n\n".join(paragraphs)] + (["", METHOD_NOTE] if summary else []),
        "Key Points": points,
        "Speaker Context": _speaker_context(meta, fm, sentences, timestamp_url),
        "Notable Quotes": _quotes(ranked, summary + point_sentences, timestamp_url),
        "Related": _related(meta, fm, title),
        "Tags": [" ".join(f"#{k}" for k in keywords) or "_No keywords found._"],
    }
    parts = ["\n" + "\n".join(blocks["Executive Summary"]) + "\n"]
    for name in SECTIONS[1:]:
        parts.append(f"\n## {name}\n\n" + "\n".join(blocks[name]) + "\n")
    region = "".join(parts) + "\n"

    new_text = text[:region_start] + region + text[region_end:]
    tags = list(dict.fromkeys(_frontmatter_tags(fm) + keywords))
    new_text = _set_frontmatter(new_text, {"enriched_by": "builtin", "tags": tags})
    if notes.transcript_block(new_text) != notes.transcript_block(text):  # invariant
        raise RuntimeError("builtin enrichment would change the transcript block")
    if new_text != text:
        fsutil.atomic_write_text(note_path, new_text)
    return EnrichResult(
        enricher="builtin",
        method=BUILTIN_METHOD,
        duration_s=time.monotonic() - started,
        note_path=note_path,
        preview=_preview(new_text),
        sections=_present_sections(new_text),
    )


# --------------------------------------------------------------------------------------------
# Agent enricher
# --------------------------------------------------------------------------------------------


def _head(text: str) -> str:
    """The note before its transcript block."""
    return text[: len(text) - len(notes.transcript_block(text))]


def _present_sections(text: str) -> list[str]:
    head = _head(text)
    found = {m.group(1).strip() for m in re.finditer(r"^##[ \t]+(.+?)[ \t]*$", head, re.MULTILINE)}
    return [name for name in SECTIONS if name in found]


def _section_text(text: str, name: str) -> str:
    head = _head(text)
    match = re.search(
        rf"^##[ \t]+{re.escape(name)}[ \t]*$\n(.*?)(?=^##[ \t]|\Z)", head, re.M | re.S
    )
    return match.group(1).strip() if match else ""


def _preview(text: str) -> str:
    summary = _section_text(text, "Executive Summary")
    first_para = summary.split("\n\n", 1)[0].strip() if summary else ""
    bullets = [
        line for line in _section_text(text, "Key Points").splitlines() if line.startswith("- ")
    ][:3]
    parts = [p for p in (first_para, "\n".join(bullets)) if p]
    preview = "\n\n".join(parts)
    if len(preview) > PREVIEW_MAX:
        preview = preview[: PREVIEW_MAX - 1].rstrip() + "…"
    return preview


def check_enriched(before: str, after: str) -> str | None:
    """None when `after` is an acceptable enrichment of `before`, else the reason."""
    if after == before:
        return "the note is unchanged"
    try:
        old_fm, _ = notes.split_frontmatter(before)
    except PermanentError:
        old_fm = {}
    try:
        new_fm, _ = notes.split_frontmatter(after)
    except PermanentError as err:
        return f"frontmatter broken ({err})"
    missing_keys = [key for key in old_fm if key not in new_fm]
    if missing_keys:
        return f"frontmatter keys removed: {', '.join(map(str, missing_keys))}"
    changed = [
        key
        for key, value in old_fm.items()
        if key not in ("enriched_by", "tags") and new_fm[key] != value
    ]
    if changed:
        return f"frontmatter values changed: {', '.join(map(str, changed))}"
    old_block, new_block = notes.transcript_block(before), notes.transcript_block(after)
    if old_block and not new_block:
        return "transcript block removed"
    if new_block != old_block:
        return "transcript block changed"
    if notes.enrichment_region(after) is None:
        return f"the '{SUMMARY_HEADING}' heading is gone"
    missing = [name for name in SECTIONS if name not in _present_sections(after)]
    if missing:
        return f"missing sections: {', '.join(missing)}"
    return None


def build_prompt(
    note_path: Path,
    tool: str,
    settings: AgentSettings,
    *,
    transcript_path: Path | None = None,
) -> str:
    """The agent prompt from `prompts/enrich.md` for this note."""
    template = Template(PROMPT_FILE.read_text(encoding="utf-8"))
    style = ""
    if settings.style_file is not None:
        style_path = Path(settings.style_file).expanduser()
        try:
            content = style_path.read_text(encoding="utf-8")
        except OSError as err:
            raise PermanentError(
                f"cannot read agent style_file {style_path}: {err.strerror}"
            ) from None
        content = content.strip()[:STYLE_MAX_CHARS]
        if content:
            style = (
                "## Writing style\n\nWrite the sections following this style guide "
                f"(from {style_path.name}):\n\n<style>\n{content}\n</style>\n"
            )
    transcript_line = (
        f"- Transcript with segment times (JSON, read-only): `{Path(transcript_path).resolve()}`"
        if transcript_path
        else "- The transcript is in the note itself, below the marker."
    )
    return template.substitute(
        note_path=str(Path(note_path).resolve()),
        note_name=Path(note_path).name,
        tool=tool,
        transcript_line=transcript_line,
        sections="\n".join(f"## {name}" for name in SECTIONS),
        marker=TRANSCRIPT_MARKER,
        style=style,
    )


def _read_note(note_path: Path) -> str:
    try:
        return Path(note_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PermanentError(f"note {note_path} does not exist") from None
    except UnicodeDecodeError:
        raise PermanentError(f"note {note_path} is not UTF-8 text") from None


def _restore(note_path: Path, original: bytes) -> None:
    try:
        current = note_path.read_bytes()
    except OSError:
        current = None
    if current != original:
        fsutil.atomic_write_bytes(note_path, original)


def _last_line(tail: str | None) -> str:
    lines = [line.strip() for line in (tail or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def agent_enrich(
    note_path: Path,
    tool: str,
    settings: AgentSettings,
    *,
    work_dir: Path,
    transcript_path: Path | None = None,
    argv: list[str] | None = None,
    pid_file: Path | None = None,
    cancel_file: Path | None = None,
    on_output: Callable[[str], None] | None = None,
) -> EnrichResult:
    """Let an agent CLI edit the note in place; keep the edit only if `check_enriched` passes.

    The agent runs in the note's folder with the prompt on stdin; its output goes to
    `work_dir/agent-output.log`. `pid_file`, `cancel_file` and `on_output` are passed to
    `agent_runner.run_agent`. Rejected edits: the original bytes are restored and
    PermanentError is raised. Timeouts, cancellation and non-zero exits restore the note and
    raise RuntimeError (transient, retried).
    """
    from igs_dagster import agent_runner

    started = time.monotonic()
    note_path = Path(note_path)
    original = note_path.read_bytes() if note_path.is_file() else None
    if original is None:
        raise PermanentError(f"note {note_path} does not exist")
    before = _read_note(note_path)
    _region_bounds(before)  # refuse notes without the expected structure up front
    prompt = build_prompt(note_path, tool, settings, transcript_path=transcript_path)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    command = list(argv) if argv else agent_runner.agent_command(tool, settings)

    try:
        result = agent_runner.run_agent(
            tool,
            prompt,
            note_path.resolve().parent,
            work_dir / AGENT_LOG_NAME,
            timeout_s=settings.timeout_s,
            argv=command,
            pid_file=pid_file,
            cancel_file=cancel_file,
            on_output=on_output,
        )
    except BaseException:
        _restore(note_path, original)
        raise
    if result.timed_out or getattr(result, "cancelled", False) or not result.ok:
        _restore(note_path, original)
        if result.timed_out:
            what = f"timed out after {settings.timeout_s:g}s"
        elif getattr(result, "cancelled", False):
            what = "was cancelled"
        else:
            what = f"exited with code {result.returncode}"
        raise RuntimeError(f"agent {tool} {what}: {_last_line(result.tail)}; note restored")

    try:
        after = note_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        after = None
        reason = f"the note is unreadable ({type(err).__name__})"
    else:
        reason = check_enriched(before, after)
    if reason is not None or after is None:
        _restore(note_path, original)
        raise PermanentError(f"agent {tool} enrichment rejected: {reason}; note restored")

    fm, _ = notes.split_frontmatter(after)
    if fm.get("enriched_by") != tool:
        after = _set_frontmatter(after, {"enriched_by": tool})
        fsutil.atomic_write_text(note_path, after)
    return EnrichResult(
        enricher=tool,
        method=f"agent: {tool}",
        duration_s=time.monotonic() - started,
        note_path=note_path,
        preview=_preview(after),
        sections=_present_sections(after),
    )
