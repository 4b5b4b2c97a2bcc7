"""Quality checks of a video's outputs, as plain functions (wired as Dagster asset checks in
defs/video/checks.py): each returns a CheckOutcome with a one-line reason and small metadata.

The transcript screen looks for what whole-file Whisper does when it degenerates: one word or
phrase looping ("yeah" x144 in the original system) and segments timed past the media's end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from igs_dagster.core.errors import PermanentError
from igs_dagster.video import notes
from igs_dagster.video.daily import DAILY_DIR
from igs_dagster.video.enrich.builtin import allowed_omissions
from igs_dagster.video.enrich.noteedit import SECTIONS, present_sections
from igs_dagster.video.enrich.verify import check_quotes
from igs_dagster.video.frontmatter import ALWAYS_KEYS, split_frontmatter

NOTE_KEYS = ALWAYS_KEYS  # the others (channel, duration, ...) are left out when unknown
WPM_RANGE = (50.0, 260.0)  # plausible speech rates; checked on clips of a minute or more
MIN_COVERAGE = 0.2  # speech time over media duration, below which the transcript is suspect
LOOP_REPEATS = 6  # the same 1-4 word n-gram back to back this many times: a decoding loop
END_SLACK_S = 2.0


@dataclass
class CheckOutcome:
    passed: bool
    reason: str
    metadata: dict = field(default_factory=dict)


def check_note(note_path: Path, vault: Path, slug: str) -> CheckOutcome:
    try:
        text = Path(note_path).read_text(encoding="utf-8")
        meta, _ = split_frontmatter(text)
    except (OSError, UnicodeDecodeError, PermanentError) as err:
        return CheckOutcome(False, f"note unreadable: {err}")
    missing = [k for k in NOTE_KEYS if k not in meta]
    markers = len(re.findall(rf"^{re.escape(notes.TRANSCRIPT_MARKER)}[ \t]*$", text, re.M))
    day = str(meta.get("transcribed") or "")
    daily = Path(vault) / DAILY_DIR / f"{day}.md"
    links = daily.read_text(encoding="utf-8").count(f"[[{slug}]]") if daily.is_file() else 0
    problems = []
    if missing:
        problems.append(f"frontmatter lacks {', '.join(missing)}")
    if markers != 1:
        problems.append(f"transcript marker found {markers} times")
    if links != 1:
        problems.append(f"daily note {day or '?'} links it {links} times")
    return CheckOutcome(not problems, "; ".join(problems) or "frontmatter, marker, daily link ok",
                        {"missing_keys": len(missing), "markers": markers, "daily_links": links})


def check_enrichment(note_path: Path) -> CheckOutcome:
    """The sections the enricher promises, and verbatim quotes. That is all six, except where
    the offline enricher left out key points and quotes because its summary already is the
    whole transcript (enrich.builtin.allowed_omissions): repeating one sentence three times is
    no better note. Agent enrichments must have all six."""
    text = Path(note_path).read_text(encoding="utf-8")
    region = notes.enrichment_region(text) or ""
    present = present_sections(text)
    omitted = allowed_omissions(text)
    missing = [s for s in SECTIONS if s not in present and s not in omitted]
    quote_problem = check_quotes(text, region)
    problems = ([f"missing sections: {', '.join(missing)}"] if missing else []) + (
        [quote_problem] if quote_problem else [])
    ok = (f"six sections less {' and '.join(omitted)} (would repeat the summary)" if omitted
          else "six sections") + ", quotes verbatim"
    return CheckOutcome(not problems, "; ".join(problems) or ok, {"sections": len(present)})


_TOKEN = re.compile(r"[\w']+")


def longest_loop(words: list[str], max_n: int = 4) -> tuple[int, str]:
    """(repeats, n-gram) of the longest back-to-back repetition of a 1..max_n word n-gram."""
    best, best_gram = 1, ""
    for n in range(1, max_n + 1):
        for offset in range(n):
            run, prev = 1, None
            for i in range(offset, len(words) - n + 1, n):
                gram = tuple(words[i:i + n])
                run = run + 1 if gram == prev else 1
                prev = gram
                if run > best:
                    best, best_gram = run, " ".join(gram)
    return best, best_gram


def check_transcript(transcript: dict, media_duration: float | None) -> CheckOutcome:
    segments = [s for s in transcript.get("segments") or []
                if isinstance(s.get("start"), int | float) and isinstance(s.get("end"), int | float)]
    words = [w.lower() for w in _TOKEN.findall(transcript.get("text") or "")]
    duration = float(media_duration or transcript.get("duration") or 0)
    speech = sum(max(0.0, s["end"] - s["start"]) for s in segments)
    meta: dict = {"words": len(words), "speech_s": round(speech, 1), "duration_s": duration}
    if not segments:  # a pasted text has no times: only the loop screen applies
        repeats, gram = longest_loop(words)
        meta["longest_loop"] = repeats
        ok = repeats < LOOP_REPEATS
        return CheckOutcome(ok, "untimed text" if ok else f"'{gram}' repeated {repeats} times", meta)
    problems = []
    if duration > 0:
        coverage = speech / duration
        meta["coverage"] = round(coverage, 3)
        if duration >= 60 and coverage < MIN_COVERAGE:
            problems.append(f"speech covers {coverage:.0%} of the media")
        wpm = len(words) / (duration / 60)
        meta["words_per_minute"] = round(wpm, 1)
        if duration >= 60 and speech > 0 and not WPM_RANGE[0] <= len(words) / (speech / 60) <= WPM_RANGE[1]:
            problems.append(f"{len(words) / (speech / 60):.0f} words per minute of speech")
        past = [s for s in segments if s["start"] > duration + END_SLACK_S]
        meta["segments_past_end"] = len(past)
        if past:
            problems.append(f"{len(past)} segment(s) start after the media ends "
                            f"(first at {past[0]['start']:.0f}s)")
    repeats, gram = longest_loop(words)
    meta["longest_loop"] = repeats
    if repeats >= LOOP_REPEATS:
        where = next((s["start"] for s in segments
                      if longest_loop(_TOKEN.findall(s["text"].lower()))[0] >= 3), None)
        problems.append(f"'{gram}' repeated {repeats} times"
                        + (f" (around {where:.0f}s)" if where is not None else ""))
    return CheckOutcome(not problems, "; ".join(problems) or "coverage, rate and repetition ok",
                        meta)
