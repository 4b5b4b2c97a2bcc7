"""Audio for transcription: the first audio stream of a media file decoded to 16 kHz mono
float32 in pieces of a few minutes (PyAV, no ffmpeg binary), so memory stays flat however long
the media is; and the media's length from its container, for progress before decoding ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from igs_dagster.core.errors import PermanentError
from igs_dagster.core.text import one_line

SAMPLE_RATE = 16_000

# Long media is decoded and transcribed piece by piece, so memory does not grow with its
# length: a piece is at most PIECE_S seconds (a shorter rest of up to PIECE_GRACE_S seconds
# joins the last piece), and it ends at the quietest 50 ms of its last PIECE_CUT_S seconds,
# so no word is cut in two. Feature extraction takes about 1 MB per second of a piece.
# Pieces are transcribed independently (the language found in the first is kept): handing the
# previous piece's last words on as a text prompt made Whisper drop its timestamps and skip
# words (word error rate 29% instead of 16% on 12 minutes of speech, tiny.en).
# Media up to PIECE_S + PIECE_GRACE_S seconds (6 minutes) is one piece: exactly the same
# audio and decoding as faster-whisper given the whole file.
PIECE_S = 300
PIECE_GRACE_S = 60
PIECE_CUT_S = 20
_FRAME = SAMPLE_RATE // 20  # 50 ms
_BLOCK_SAMPLES = 500_000  # source samples resampled at a time (as faster-whisper does)


def _decode_error(media: Path, err: BaseException) -> PermanentError:
    return PermanentError(f"cannot decode audio in {media.name}: {one_line(err, 300)}")


def _pcm_blocks(media: Path) -> Iterator[Any]:
    """The first audio stream of `media` as 16 kHz mono int16 arrays, decoded as they are
    needed (PyAV, no ffmpeg binary): the same samples faster-whisper's decode_audio makes."""
    import av

    try:
        container = av.open(str(media), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, IndexError, ValueError) as err:
        raise _decode_error(media, err) from None
    with container:
        if not container.streams.audio:
            raise PermanentError(f"cannot decode audio in {media.name}: no audio stream")
        resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        fifo = av.audio.fifo.AudioFifo()
        frames = container.decode(audio=0)
        try:
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except av.error.InvalidDataError:
                    continue  # a damaged frame is skipped, as faster-whisper does
                frame.pts = None
                fifo.write(frame)
                if fifo.samples >= _BLOCK_SAMPLES:
                    for out in resampler.resample(fifo.read()):
                        yield out.to_ndarray().reshape(-1)
            rest = [fifo.read()] if fifo.samples > 0 else []
            for block in [*rest, None]:
                for out in resampler.resample(block):
                    yield out.to_ndarray().reshape(-1)
        except (av.error.FFmpegError, IndexError, ValueError) as err:
            raise _decode_error(media, err) from None


def _quiet_cut(audio: Any, end: int) -> int:
    """Index of the quietest 50 ms frame's middle in the PIECE_CUT_S seconds before `end`."""
    import numpy as np

    start = max(0, end - PIECE_CUT_S * SAMPLE_RATE)
    frames = (end - start) // _FRAME
    if frames < 2:
        return end
    window = audio[start : start + frames * _FRAME].astype(np.float32).reshape(frames, _FRAME)
    energy = np.einsum("ij,ij->i", window, window)
    return start + int(np.argmin(energy)) * _FRAME + _FRAME // 2


def audio_pieces(media: Path) -> Iterator[Any]:
    """Decode `media` to mono float32 16 kHz, yielded in pieces (see PIECE_S) as needed.

    Undecodable media, media without an audio stream or without samples -> PermanentError,
    raised by the first `next()`.
    """
    import numpy as np

    media = Path(media)
    if not media.is_file():
        raise PermanentError(f"media file not found: {media}")
    limit = (PIECE_S + PIECE_GRACE_S) * SAMPLE_RATE
    pending: list[Any] = []
    size = 0
    yielded = False
    for block in _pcm_blocks(media):
        pending.append(block)
        size += block.size
        while size > limit:
            audio = np.concatenate(pending)
            cut = _quiet_cut(audio, PIECE_S * SAMPLE_RATE)
            yield audio[:cut].astype(np.float32) / 32768.0
            yielded = True
            pending, size = [audio[cut:]], audio.size - cut
            del audio
    if size:
        yield np.concatenate(pending).astype(np.float32) / 32768.0
    elif not yielded:
        raise PermanentError(f"cannot decode audio in {media.name}: no audio samples")


def media_seconds(media: Path) -> float | None:
    """The audio's length from the container (for progress before decoding ends), if known."""
    import av

    try:
        with av.open(str(media), mode="r", metadata_errors="ignore") as container:
            stream = container.streams.audio[0] if container.streams.audio else None
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            if container.duration:
                return container.duration / av.time_base
    except (av.error.FFmpegError, IndexError, ValueError):
        return None
    return None

