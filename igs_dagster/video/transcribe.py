"""Local Whisper transcription of a media file to transcript JSON (no Dagster here): the
audio decoded in pieces (video/audio.py), each piece run through the chosen backend
(video/whisper_backends.py), each segment appended as it comes and the transcript written
atomically at the end (video/transcript.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from igs_dagster.core.settings import TranscriberSettings
from igs_dagster.video import transcript, whisper_backends
from igs_dagster.video.audio import SAMPLE_RATE, audio_pieces, media_seconds

ProgressFn = Callable[[float, float], None]


def transcribe_to_file(
    media: Path,
    out_json: Path,
    cfg: TranscriberSettings,
    on_progress: ProgressFn | None = None,
) -> transcript.TranscriptInfo:
    """Transcribe `media` locally and write the transcript JSON to `out_json` atomically.

    The audio is decoded and transcribed in pieces of at most a few minutes (`audio_pieces`),
    so memory stays flat however long the media is; each segment is appended to a temp file as
    it is decoded. `on_progress(position_seconds, duration_seconds)` is called after each
    segment (the duration is the container's until the last piece is decoded).
    Undecodable media or media without audio -> PermanentError, and nothing is written.
    """
    media, out_json = Path(media), Path(out_json)
    backend, model = whisper_backends.plan(cfg)
    pieces = audio_pieces(media)
    first = next(pieces)  # bad media fails here, before anything is written
    stream = transcript.start_stream(out_json)

    loading = time.perf_counter()
    if backend == "mlx":
        mlx_whisper = whisper_backends.load_mlx(model)
    else:
        loaded = whisper_backends.load_faster_whisper(model, cfg)
    started = time.perf_counter()  # elapsed_s and rtf exclude model loading
    try:
        with open(stream, "w", encoding="utf-8") as handle:
            offset = 0  # samples before the current piece
            language = cfg.language
            estimate = media_seconds(media) or 0.0
            audio: Any = first
            while audio is not None:
                upcoming = _next_or_none(pieces)  # decoded ahead: is this the last piece?
                total = (offset + audio.size) / SAMPLE_RATE
                if upcoming is not None:
                    total = max(estimate, total + upcoming.size / SAMPLE_RATE)
                if backend == "mlx":
                    run = whisper_backends.run_mlx(audio, mlx_whisper, model, language, cfg.task)
                else:
                    run = whisper_backends.run_faster_whisper(audio, loaded, cfg, language)
                shift = offset / SAMPLE_RATE
                for start, end, raw in run.segments:
                    text = transcript.clean_text(raw)
                    if not text:
                        continue
                    start, end = start + shift, end + shift
                    seg = {"start": round(start, 2), "end": round(end, 2), "text": text}
                    handle.write(transcript.segment_line(seg))
                    handle.flush()
                    if on_progress is not None:
                        on_progress(min(end, total), total)
                language = language or run.language
                offset += audio.size
                audio = upcoming
        duration = offset / SAMPLE_RATE
        elapsed = time.perf_counter() - started
        rtf = round(elapsed / duration, 4) if duration > 0 else None
        return transcript.finish(
            stream,
            out_json,
            backend=backend,
            model=model,
            language=language,
            source=media.name,
            duration=duration,
            elapsed_s=elapsed,
            rtf=rtf,
            load_s=started - loading,
            task=cfg.task,
        )
    except BaseException:
        stream.unlink(missing_ok=True)
        raise
    finally:
        pieces.close()


def _next_or_none(pieces: Iterator[Any]) -> Any:
    try:
        return next(pieces)
    except StopIteration:
        return None

