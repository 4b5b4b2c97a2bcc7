"""Plain-text analysis of a transcript: sentences and their TextRank ranking.

No markdown here: the builtin sections render what these functions choose.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass

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
_MAX_SENTENCE_WORDS = 60


@dataclass
class Sentence:
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


def split_sentences(transcript: dict) -> list[Sentence]:
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
    sentences: list[Sentence] = []
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
        sentences.append(Sentence(len(sentences), stripped, starts[seg], words, terms))
    return sentences


def _long_sentence_cut(text: str, lo: int, hi: int, offsets: list[int]) -> int:
    """A cut point after ~30-60 words: a segment boundary if one falls there, else a space."""
    word_starts = [m.start() + lo for m in re.finditer(r"\S+", text[lo:hi])]
    low, high = word_starts[30], word_starts[_MAX_SENTENCE_WORDS]
    boundary = [o for o in offsets if low <= o <= high]
    return boundary[-1] if boundary else word_starts[40]


def textrank(sentences: list[Sentence], damping: float = 0.85) -> list[float]:
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


def similar(a: Sentence, b: Sentence) -> bool:
    """Near-duplicates: more than half of their content words shared."""
    if not a.terms or not b.terms:
        return a.text.lower() == b.text.lower()
    return len(a.terms & b.terms) / len(a.terms | b.terms) > 0.5


def pick_sentences(
    ranked: list[Sentence],
    count: int,
    *,
    min_words: int = 6,
    max_words: int | None = None,
    min_terms: int = 3,
    avoid: list[Sentence] | None = None,
) -> list[Sentence]:
    """The best `count` sentences by rank with at least `min_terms` content words (no
    "Let's keep going."), skipping near-duplicates of ones already chosen or in `avoid`."""
    chosen: list[Sentence] = []
    avoid = avoid or []
    for s in ranked:
        if len(chosen) >= count:
            break
        if len(s.words) < min_words or (max_words and len(s.words) > max_words):
            continue
        if len(s.terms) < min_terms:
            continue
        if any(similar(s, c) for c in chosen + avoid):
            continue
        chosen.append(s)
    return chosen


def clean(text: str) -> str:
    """Drop leading fillers ("And so, ...") and capitalize: for summary and key points only."""
    cleaned = _LEADING_FILLER.sub("", text).strip()
    if len(cleaned.split()) < 3:
        cleaned = text.strip()
    cleaned = cleaned.rstrip(",;:—– ")
    return cleaned[:1].upper() + cleaned[1:]


def shorten(text: str, max_words: int) -> str:
    words = text.split()
    if len(words) <= max_words:
        return text
    return " ".join(words[:max_words]).rstrip(",;:—–") + " …"


def only_repeats(spoken: str, summary: str) -> bool:
    """True when every sentence of `spoken` is a near-duplicate of one in `summary` (a short
    clip whose summary is its whole transcript): key points or quotes could only repeat it."""
    said = split_sentences({"text": spoken})
    told = split_sentences({"text": summary})
    return bool(said and told) and all(any(similar(s, t) for t in told) for s in said)
