"""SubRip (.srt) and WebVTT (.vtt) subtitles from a transcript's timed segments.

Named `<media stem>.<lang>.srt|vtt` beside the media, the way Plex, Jellyfin and VLC pick them
up. Cues follow common subtitle limits: at most 2 lines of 42 characters and 7 s on screen;
a longer segment is split at sentence ends first, then at commas, then between words, and
its time is shared out by character count.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from igs_dagster.core import fsutil

LINE_CHARS = 42
MAX_LINES = 2
MAX_CHARS = LINE_CHARS * MAX_LINES
MAX_SECONDS = 7.0
MIN_SECONDS = 0.8
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")
_CLAUSE = re.compile(r"(?<=[,;:])\s+")


def _pieces(text: str) -> list[str]:
    """Split text into cue-sized pieces: sentences, then clauses, then words."""
    out: list[str] = []
    for sentence in _SENTENCE.split(text):
        if len(sentence) <= MAX_CHARS:
            out.append(sentence)
            continue
        for clause in _CLAUSE.split(sentence):
            if len(clause) <= MAX_CHARS:
                out.append(clause)
            else:
                out += textwrap.wrap(clause, MAX_CHARS, break_long_words=True)
    # join short neighbours back while they fit one cue
    merged: list[str] = []
    for piece in out:
        if merged and len(merged[-1]) + 1 + len(piece) <= MAX_CHARS and not merged[-1].endswith(
            (".", "!", "?", "…")
        ):
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    return [p for p in merged if p.strip()]


def cues(segments: list[dict]) -> list[tuple[float, float, str]]:
    """(start, end, text) cues within the limits, in time order, never overlapping."""
    result: list[tuple[float, float, str]] = []
    for seg in segments:
        text = " ".join(str(seg.get("text") or "").split())
        start, end = seg.get("start"), seg.get("end")
        if not text or not isinstance(start, int | float) or not isinstance(end, int | float):
            continue
        end = max(end, start + MIN_SECONDS)
        pieces = _pieces(text)
        total = sum(len(p) for p in pieces) or 1
        t = float(start)
        for piece in pieces:
            dur = (end - start) * len(piece) / total
            piece_end = t + dur
            # a piece longer than MAX_SECONDS on screen: shown for its share, capped
            result.append((t, min(piece_end, t + MAX_SECONDS), piece))
            t = piece_end
    result.sort(key=lambda cue: cue[0])
    fixed: list[tuple[float, float, str]] = []
    for i, (s, e, text) in enumerate(result):
        if i + 1 < len(result):
            e = min(e, result[i + 1][0])
        if e > s:
            fixed.append((s, e, text))
    return fixed


def _wrap(text: str) -> str:
    lines = textwrap.wrap(text, LINE_CHARS) or [text]
    if len(lines) > MAX_LINES:  # balance into two lines (only when a word is very long)
        half = len(text) // 2
        cut = text.rfind(" ", 0, half + 1)
        lines = [text[:cut], text[cut + 1:]] if cut > 0 else [text]
    return "\n".join(lines)


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _clean(text: str) -> str:
    """Cue text is plain: no tags a player would render, no `-->` that would end a cue."""
    return text.replace("<", "‹").replace(">", "›").replace("-->", "→")


def to_srt(segments: list[dict]) -> str:
    blocks = [
        f"{i}\n{_clock(s, ',')} --> {_clock(e, ',')}\n{_wrap(_clean(t))}\n"
        for i, (s, e, t) in enumerate(cues(segments), 1)
    ]
    return "\n".join(blocks)


def to_vtt(segments: list[dict]) -> str:
    blocks = [
        f"{_clock(s, '.')} --> {_clock(e, '.')}\n{_wrap(_clean(t))}\n"
        for s, e, t in cues(segments)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def subtitle_names(media: Path, language: str | None) -> tuple[str, str]:
    lang = (language or "und").lower()
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", lang):
        lang = "und"
    return f"{media.stem}.{lang}.srt", f"{media.stem}.{lang}.vtt"


def write_subtitles(media: Path, segments: list[dict], language: str | None,
                    folder: Path | None = None) -> list[Path]:
    """Write both files (atomically, unchanged ones left alone) beside `media` or in `folder`."""
    folder = Path(folder or media.parent)
    srt_name, vtt_name = subtitle_names(media, language)
    written = []
    for name, text in ((srt_name, to_srt(segments)), (vtt_name, to_vtt(segments))):
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            fsutil.atomic_write_text(path, text)
        written.append(path)
    return written
