"""The transcript JSON, the claim check every later step reads: written from a transcription,
pasted text or captions the same way, and read back checked.

    {text, segments: [{start, end, text}], language, task, model, backend, source,
     duration, rtf, elapsed_s, created_at}

`language` is the spoken language (detected by multilingual models unless set); with
task `translate` the text is English. Segments are appended to a temp file
(`fsutil.TEMP_PREFIX`) in out_json's folder as they come (`start_stream`, `segment_line`),
then the final file is assembled and renamed into place atomically (`finish`). Pasted
transcripts (`text_to_transcript`) have `start`/`end` = None: no timestamps are invented.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.text import one_line
from igs_dagster.video.whisper_backends import model_loads

_NO_SPACE_LANGUAGES = {"zh", "ja", "th", "lo", "my", "km", "yue", "bo"}


@dataclass
class TranscriptInfo:
    """What the Dagster asset records about a transcript (the JSON file is the claim check)."""

    path: Path
    backend: str
    model: str
    language: str | None
    duration: float
    elapsed_s: float
    rtf: float | None
    segments: int
    words: int
    load_s: float = 0.0  # seconds this call spent loading the model (0.0: already loaded)
    model_loads: int = 0  # models loaded by this process so far (one per process is the goal)

    def to_json(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def start_stream(out_json: Path) -> Path:
    """The temp file segments for `out_json` are appended to, in its folder (made if needed),
    after removing what a killed run for this same output left (not other outputs' temps)."""
    out_json.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{fsutil.TEMP_PREFIX}{out_json.name}."
    for entry in out_json.parent.iterdir():
        if entry.is_file() and entry.name.startswith(prefix):
            entry.unlink(missing_ok=True)
    return out_json.parent / f"{prefix}segments.jsonl"


def segment_line(seg: dict) -> str:
    return json.dumps(seg, ensure_ascii=False) + "\n"


def _read_stream(stream: Path) -> Iterator[dict]:
    with open(stream, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def finish(
    stream: Path,
    out_json: Path,
    *,
    backend: str,
    model: str,
    language: str | None,
    source: str,
    duration: float,
    elapsed_s: float,
    rtf: float | None,
    load_s: float = 0.0,
    task: str = "transcribe",
) -> TranscriptInfo:
    segments = list(_read_stream(stream))  # a few hundred bytes per segment
    # translated text is English, whatever the spoken language
    sep = "" if language in _NO_SPACE_LANGUAGES and task == "transcribe" else " "
    text = sep.join(seg["text"] for seg in segments if seg["text"])
    payload = {
        "text": text,
        "segments": segments,
        "language": language,
        "task": task,
        "model": model,
        "backend": backend,
        "source": source,
        "duration": round(duration, 3),
        "rtf": rtf,
        "elapsed_s": round(elapsed_s, 3),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    fsutil.atomic_write_json(out_json, payload)
    stream.unlink(missing_ok=True)
    same = {key: payload[key] for key in ("backend", "model", "language", "duration", "elapsed_s",
                                          "rtf")}  # as written to the file
    return TranscriptInfo(path=out_json, segments=len(segments), words=len(text.split()),
                          load_s=round(load_s, 3), model_loads=model_loads(), **same)


def clean_text(text: str) -> str:
    return " ".join(text.split())



_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_MAX_PARAGRAPH = 800  # characters; longer blocks of pasted text are cut at sentence ends


def _paragraphs(text: str) -> list[str]:
    blocks = [clean_text(block) for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
    out: list[str] = []
    for block in blocks:
        if not block:
            continue
        if len(block) <= _MAX_PARAGRAPH:
            out.append(block)
            continue
        current = ""
        for sentence in _SENTENCE_END.split(block):
            if current and len(current) + 1 + len(sentence) > _MAX_PARAGRAPH:
                out.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}" if current else sentence
        if current:
            out.append(current)
    return out


def text_to_transcript(text: str, out_json: Path, *, source: str) -> TranscriptInfo:
    """Write a pasted transcript as transcript JSON (no Whisper).

    Segments are the text's paragraphs (blank-line separated; blocks over ~800 characters are
    split at sentence ends) with `start` and `end` = None: timestamps are never invented.
    `backend` is "text", `model` "none", `duration` 0.0 (unknown) and `rtf` None.
    """
    if not isinstance(text, str) or not text.strip():
        raise PermanentError("transcript text is empty")
    started = time.perf_counter()
    segments = [{"start": None, "end": None, "text": p} for p in _paragraphs(text)]
    return write_segments(segments, out_json, backend="text", model="none", language=None,
                          source=source, duration=0.0, elapsed_s=time.perf_counter() - started)


def write_segments(segments: Iterable[dict], out_json: Path, *, backend: str, model: str,
                   language: str | None, source: str, duration: float,
                   elapsed_s: float) -> TranscriptInfo:
    """Transcript JSON from segments made without Whisper (pasted text, captions), written
    the same way as a transcription's (temp file, then an atomic rename)."""
    stream = start_stream(Path(out_json))
    try:
        with open(stream, "w", encoding="utf-8") as handle:
            for seg in segments:
                handle.write(segment_line(seg))
        return finish(stream, out_json, backend=backend, model=model, language=language,
                       source=source, duration=duration, elapsed_s=elapsed_s, rtf=None)
    except BaseException:
        stream.unlink(missing_ok=True)
        raise


def load_transcript(path: Path) -> dict:
    """Read and check a transcript JSON; missing or malformed -> PermanentError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PermanentError(f"transcript not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PermanentError(f"cannot read transcript {path.name}: {one_line(err, 300)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise PermanentError(f"transcript {path.name} has no text")
    segments = data.get("segments")
    if not isinstance(segments, list) or not all(
        isinstance(s, dict)
        and isinstance(s.get("text"), str)
        and all(s.get(k) is None or isinstance(s.get(k), int | float) for k in ("start", "end"))
        for s in segments
    ):
        raise PermanentError(f"transcript {path.name} has malformed segments")
    return data
