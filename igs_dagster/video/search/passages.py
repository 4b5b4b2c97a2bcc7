"""Transcript segments -> passages of a few sentences, each with the second it starts at.

A passage is what search returns and what related notes quote: long enough to carry a topic
(about 3 sentences, at most ~80 words), short enough to read in the result list and to point
at one moment of the video. Sentences longer than a segment keep the segment's start; a
segment holding several sentences gives each a start interpolated by character position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TARGET_WORDS = 55
MAX_WORDS = 80
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


@dataclass(frozen=True)
class Passage:
    start: float | None
    end: float | None
    text: str
    # (character offset in text, start second) of each sentence or segment piece, so a hit can
    # point at the moment inside the passage where the query's words are
    anchors: tuple[tuple[int, float], ...] = ()


def sentences(segments: list[dict]) -> list[tuple[float | None, float | None, str]]:
    """(start, end, sentence) pieces: segments split at sentence ends, times interpolated."""
    out: list[tuple[float | None, float | None, str]] = []
    for seg in segments:
        text = " ".join(str(seg.get("text") or "").split())
        if not text:
            continue
        start, end = seg.get("start"), seg.get("end")
        parts = [p for p in _SENTENCE_END.split(text) if p]
        timed = isinstance(start, int | float) and isinstance(end, int | float) and end >= start
        offset = 0
        for part in parts:
            if timed:
                t0 = start + (end - start) * offset / max(len(text), 1)
                offset += len(part) + 1
                t1 = start + (end - start) * min(offset, len(text)) / max(len(text), 1)
                out.append((round(t0, 2), round(t1, 2), part))
            else:
                out.append((start if isinstance(start, int | float) else None, None, part))
    return out


def _ends_sentence(text: str) -> bool:
    return text.rstrip().endswith((".", "!", "?", "…"))


def passages(segments: list[dict]) -> list[Passage]:
    """Consecutive sentences joined until ~55 words at a sentence end (or 80 words at most)."""
    result: list[Passage] = []
    words: list[str] = []
    anchors: list[tuple[int, float]] = []
    start: float | None = None
    end: float | None = None

    def flush() -> None:
        nonlocal words, anchors
        if words:
            result.append(Passage(start, end, " ".join(words), tuple(anchors)))
        words, anchors = [], []

    for t0, t1, text in sentences(segments):
        piece = text.split()
        while len(piece) > MAX_WORDS:  # one run-on "sentence": cut it, keep its start
            flush()
            result.append(Passage(t0, t1, " ".join(piece[:MAX_WORDS]),
                                  ((0, t0),) if t0 is not None else ()))
            piece = piece[MAX_WORDS:]
        if words and len(words) + len(piece) > MAX_WORDS:
            flush()
        if not words:
            start = t0
        if t0 is not None:
            offset = len(" ".join(words)) + (1 if words else 0)
            anchors.append((offset, t0))
        words += piece
        end = t1 if t1 is not None else end
        if len(words) >= TARGET_WORDS and _ends_sentence(text):
            flush()
    flush()
    return result
