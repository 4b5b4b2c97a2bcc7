"""Creator captions as the transcript (`IGS_TRANSCRIBER__SOURCE=auto|captions`), no Whisper.

`choose` picks, from what yt-dlp extracted, the subtitles written by the video's creator in the
spoken language (`info["subtitles"]`; the language from `info["language"]`, else the configured
one, else the only creator track there is). YouTube's automatic captions
(`info["automatic_captions"]`) are taken only with `source="captions"` and only when there are
no creator captions: with `auto` they never are.

`to_transcript` turns the downloaded WebVTT (or SubRip) file into the transcript JSON Whisper
would have written (video/transcript.py): timed segments, `backend: captions`, so the note is
the same format with `transcript_source: captions` in its frontmatter.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.text import one_line
from igs_dagster.video import transcript

FORMATS = "vtt/srt/best"
MAX_CAPTION_BYTES = 20 * 1024 * 1024
_NOT_SPEECH = {"live_chat", "rechat", "comments", "danmaku"}  # yt-dlp puts chats among subtitles
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_CUE_TIME = re.compile(rf"^\s*{_TIME}\s+-->\s+{_TIME}")
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class CaptionChoice:
    language: str  # the track's language code, as yt-dlp names it
    kind: str  # creator | automatic


def base_language(lang: str | None) -> str:
    """`en` for `en`, `en-US`, `en-orig`."""
    return (lang or "").split("-")[0].split("_")[0].lower()


def _matching(tracks: dict, spoken: str | None) -> str | None:
    langs = [lang for lang, formats in (tracks or {}).items()
             if formats and lang not in _NOT_SPEECH]
    if spoken:
        exact = [lang for lang in langs if lang.lower() == spoken.lower()]
        same = [lang for lang in langs if base_language(lang) == base_language(spoken)]
        return (exact or same or [None])[0]
    return langs[0] if len(langs) == 1 else None


def choose(info: dict, source: str, language: str | None = None) -> CaptionChoice | None:
    """The caption track to use as the transcript, or None (then Whisper transcribes)."""
    if source not in ("auto", "captions"):
        return None
    spoken = info.get("language") or language
    creator = _matching(info.get("subtitles") or {}, spoken)
    if creator:
        return CaptionChoice(creator, "creator")
    if source == "captions" and spoken:
        auto = info.get("automatic_captions") or {}
        original = f"{spoken}-orig"  # YouTube's speech recognition in the spoken language
        if auto.get(original):
            return CaptionChoice(original, "automatic")
        found = _matching(auto, spoken)
        if found:
            return CaptionChoice(found, "automatic")
    return None


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def _cue_text(lines: list[str]) -> str:
    text = " ".join(html.unescape(_TAG.sub("", line)) for line in lines)
    return " ".join(text.split())


def parse_cues(text: str) -> list[dict]:
    """(start, end, text) segments of a WebVTT or SubRip file, in time order; a cue that only
    repeats the end of the previous one (rolling automatic captions) adds just its new words."""
    segments: list[dict] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [line for line in block.split("\n") if line.strip()]
        index = next((i for i, line in enumerate(lines) if _CUE_TIME.match(line)), None)
        if index is None:
            continue  # WEBVTT header, NOTE, STYLE, REGION blocks
        m = _CUE_TIME.match(lines[index])
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        words = _cue_text(lines[index + 1:])
        if not words:
            continue
        if segments:
            previous = segments[-1]["text"]
            if words == previous or previous.endswith(words):
                continue
            if words.startswith(previous):
                words = words[len(previous):].strip()
                if not words:
                    continue
        segments.append({"start": round(start, 2), "end": round(max(end, start), 2),
                         "text": words})
    segments.sort(key=lambda seg: seg["start"])
    return segments


def to_transcript(captions: Path, out_json: Path, *, language: str | None, kind: str,
                  duration: float = 0.0) -> transcript.TranscriptInfo:
    """Write the caption file as transcript JSON (atomic); an empty or unreadable file ->
    PermanentError (the caller falls back to Whisper)."""
    started = time.perf_counter()
    try:
        raw = fsutil.read_regular_file(Path(captions), MAX_CAPTION_BYTES, "captions")
        segments = parse_cues(raw.decode("utf-8", errors="replace"))
    except (OSError, PermanentError) as err:
        raise PermanentError(f"unreadable captions {Path(captions).name}: {one_line(err, 200)}") from None
    if not segments:
        raise PermanentError(f"captions {Path(captions).name} hold no text")
    return transcript.write_segments(
        segments, out_json, backend="captions", model=kind, language=language,
        source=Path(captions).name,
        duration=duration if duration > 0 else segments[-1]["end"],
        elapsed_s=time.perf_counter() - started,
    )

